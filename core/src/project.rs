//! A project folder: `cascade.toml`, `content/`, `directory/`, `rollouts/`
//! and `templates/`. Opening one reads its configuration; `check` validates
//! everything in it and reports every problem at once.

use crate::ack::AckKeys;
use crate::config::{CONFIG_FILE, Config, ConfigError};
use crate::content::{self, LoadedItem, Taxonomy};
use crate::directory::Directory;
use crate::privacy::PrivacyGuard;
use crate::render::{Channel, RenderInput, Renderer};
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// Every file of the example project `cascade init` writes, with the default
/// templates, as (path within the project, contents).
pub fn example_files() -> &'static [(&'static str, &'static str)] {
    embedded::PROJECT_FILES
}

/// The default templates, as (path under `templates/`, contents).
pub fn default_templates() -> impl Iterator<Item = (String, String)> {
    example_files().iter().filter_map(|(path, text)| {
        path.strip_prefix("templates/")
            .map(|rel| (rel.to_owned(), (*text).to_owned()))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: the folder is not empty\n  help: choose a new folder, or empty this one first", path = path.display())]
    NotEmpty { path: PathBuf },
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes the example project into `dir`, which must be new or empty.
pub fn scaffold(dir: &Path) -> Result<usize, ProjectError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ProjectError::Io { path, source }
    };
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ProjectError::NotEmpty {
            path: dir.to_owned(),
        });
    }
    for (rel, text) in example_files() {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    // The example configuration signs acknowledgement links with a key from
    // this file: a fresh random one for every project, readable only by its owner.
    let key_path = dir.join(".cascade/ack-signing.key");
    std::fs::create_dir_all(dir.join(".cascade")).map_err(io(dir))?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system provides randomness");
    std::fs::write(&key_path, format!("{}\n", hex::encode(key))).map_err(io(&key_path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&key_path))?;
    }
    Ok(example_files().len() + 1)
}

pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    pub taxonomy: Taxonomy,
}

/// What `check` found: the problems, and what loaded cleanly.
pub struct CheckReport {
    pub problems: Vec<String>,
    pub items: Vec<LoadedItem>,
    pub directory: Directory,
    pub renderer: Option<Renderer>,
}

impl Project {
    pub fn open(root: &Path) -> Result<Project, ProjectError> {
        let config = Config::load(&root.join(CONFIG_FILE))?;
        let taxonomy = config.taxonomy();
        Ok(Project {
            root: root.to_owned(),
            config,
            taxonomy,
        })
    }

    pub fn content_dir(&self) -> PathBuf {
        self.root.join("content")
    }

    pub fn directory_dir(&self) -> PathBuf {
        self.root.join("directory")
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.root.join("templates")
    }

    pub fn store_path(&self) -> PathBuf {
        self.root.join(&self.config.store.path)
    }

    /// The project's templates, or the built-in ones when it has none.
    pub fn renderer(&self) -> Result<Renderer, Vec<String>> {
        let dir = self.templates_dir();
        let renderer = if dir.is_dir() {
            Renderer::load_dir(&dir)
        } else {
            Renderer::new(default_templates())
        };
        renderer.map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    /// The acknowledgement link keys `[ack]` names, read and held to the
    /// rules `serve` signs links under (key length, key ids, link
    /// lifetime); `None` without `[ack]`. The error names the file and never
    /// holds key material.
    pub fn ack_keys(&self) -> Result<Option<AckKeys>, String> {
        let Some(config) = &self.config.ack else {
            return Ok(None);
        };
        AckKeys::load(config, &self.root)
            .map(Some)
            .map_err(|e| format!("{}: {e}", self.root.join(CONFIG_FILE).display()))
    }

    /// Validates the `[ack]` keys, templates, directory and content, and
    /// runs the privacy guard over every item. Nothing is written.
    pub fn check(&self) -> CheckReport {
        let mut problems = Vec::new();
        if let Err(e) = self.ack_keys() {
            problems.push(e);
        }
        let renderer = match self.renderer() {
            Ok(r) => {
                problems.extend(r.check().iter().map(ToString::to_string));
                Some(r)
            }
            Err(mut e) => {
                problems.append(&mut e);
                None
            }
        };
        let (directory, errors) = Directory::load_dir(&self.directory_dir(), &self.taxonomy);
        problems.extend(errors.iter().map(ToString::to_string));
        let (items, errors) = content::load_dir(&self.content_dir(), &self.taxonomy);
        problems.extend(errors.iter().map(ToString::to_string));
        match PrivacyGuard::new(&self.config.privacy) {
            Ok(guard) => {
                for loaded in &items {
                    for finding in guard.blocking(&loaded.text, &loaded.item.privacy_allow) {
                        problems.push(finding.in_file(&loaded.path).to_string());
                    }
                }
            }
            Err(e) => problems.push(format!("{}: {e}", self.root.join(CONFIG_FILE).display())),
        }
        if let Some(renderer) = &renderer {
            let input = self.sample_input("Sam Example");
            for loaded in &items {
                for channel in Channel::ALL {
                    if let Err(e) = renderer.render(&loaded.item, &self.taxonomy, channel, &input) {
                        problems.push(format!(
                            "{}: cannot render for {channel}: {e}",
                            loaded.path.display()
                        ));
                    }
                }
            }
        }
        CheckReport {
            problems,
            items,
            directory,
            renderer,
        }
    }

    /// Render inputs for previews and checks: a placeholder acknowledgement link.
    pub fn sample_input(&self, person_name: &str) -> RenderInput {
        let token = "PREVIEW-TOKEN";
        RenderInput {
            person_name: person_name.to_owned(),
            ack_url: Some(match &self.config.ack {
                Some(ack) => ack.link(token),
                None => format!("http://localhost:8080/ack/{token}"),
            }),
            ack_token: Some(token.to_owned()),
            partnership_name: self.config.partnership.name.clone(),
        }
    }
}
