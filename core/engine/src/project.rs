//! A project folder: `cascade.toml`, `content/`, `directory/`, `rollouts/`
//! and `templates/`. Opening one reads its configuration; `check` validates
//! everything in it and reports every problem at once.

use crate::ack::AckKeys;
use crate::config::{CONFIG_FILE, Config, ConfigError};
use cascade_model::content::{self, Classification, LoadedItem, Taxonomy};
use cascade_model::directory::Directory;
use cascade_privacy::PrivacyGuard;
use cascade_render::{Channel, RenderInput, Renderer};
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
    // this file: a fresh random one for every project, its owner's only from
    // the moment it exists, in a folder only its owner may enter.
    let key_path = dir.join(".cascade/ack-signing.key");
    let private = dir.join(".cascade");
    cascade_model::private_file::create_dir(&private).map_err(io(&private))?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system provides randomness");
    cascade_model::private_file::write_new(&key_path, format!("{}\n", hex::encode(key)).as_bytes())
        .map_err(io(&key_path))?;
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

    pub fn rollouts_dir(&self) -> PathBuf {
        self.root.join("rollouts")
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

    /// The key link codes are hashed under, made on first use.
    pub fn link_code_key(
        &self,
    ) -> Result<crate::link_code::LinkCodeKey, crate::link_code::LinkCodeKeyError> {
        crate::link_code::LinkCodeKey::load_or_create(
            &self.root.join(&self.config.store.link_code_key),
        )
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
        if let Some(sso) = &self.config.console.sso {
            let file = self.root.join(CONFIG_FILE);
            problems.extend(
                crate::config::sso_problems(sso)
                    .into_iter()
                    .map(|p| format!("{}: {p}", file.display())),
            );
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
        problems.extend(self.induction_problems(&items, &directory));
        let guard = match PrivacyGuard::new(&self.config.privacy) {
            Ok(guard) => {
                for loaded in &items {
                    problems.extend(item_privacy_problems(&guard, loaded));
                }
                let (outside, in_templates) = self.privacy_outside_content(&guard, &directory);
                problems.extend(outside);
                Some((guard, in_templates))
            }
            Err(e) => {
                problems.push(format!("{}: {e}", self.root.join(CONFIG_FILE).display()));
                None
            }
        };
        if let Some(renderer) = &renderer {
            for loaded in &items {
                problems.extend(self.item_render_problems(renderer, guard.as_ref(), loaded));
            }
        }
        CheckReport {
            problems,
            items,
            directory,
            renderer,
        }
    }

    /// What is wrong with `[induction]` against the project: key items
    /// that do not exist or are not published, named twice, channels not
    /// configured, agencies or teams of its audience not in the
    /// directory. The pace and deadline were checked with the rest of
    /// cascade.toml when it was read.
    pub fn induction_problems(&self, items: &[LoadedItem], directory: &Directory) -> Vec<String> {
        let Some(induction) = &self.config.induction else {
            return Vec::new();
        };
        let file = self.root.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let at = |key: &str| {
            format!(
                "{}:{}",
                file.display(),
                crate::config::line_in_table(&text, "induction", key)
            )
        };
        let in_audience = |key: &str| {
            format!(
                "{}:{}",
                file.display(),
                crate::config::line_in_table(&text, "induction.audience", key)
            )
        };
        let today = chrono::Utc::now().date_naive();
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in &induction.items {
            if !seen.insert(id) {
                problems.push(format!(
                    "{}: [induction] items names \"{id}\" twice\n  help: keep each key item once, where it comes in the order",
                    at("items")
                ));
            }
            match items.iter().find(|l| &l.item.id == id) {
                None => problems.push(format!(
                    "{}: [induction] items: no item \"{id}\" in {}\n  help: use the id (`id` in its front matter) of an item in the content folder",
                    at("items"),
                    self.content_dir().display(),
                )),
                Some(loaded) if !loaded.item.status.may_roll_out(today) => problems.push(format!(
                    "{}: [induction] items: \"{id}\" is a draft or under embargo, so joiners could not be sent it\n  help: publish {} first, or take it out of the induction",
                    at("items"),
                    loaded.path.display()
                )),
                Some(_) => {}
            }
        }
        for agency in &induction.audience.agencies {
            if !directory.agencies.iter().any(|a| &a.id == agency) {
                problems.push(format!(
                    "{}: [induction.audience] agencies: no agency \"{agency}\" in agencies.csv\n  help: use an agency_id from the directory",
                    in_audience("agencies")
                ));
            }
        }
        for team in &induction.audience.teams {
            if !directory.teams.iter().any(|t| &t.id == team) {
                problems.push(format!(
                    "{}: [induction.audience] teams: no team \"{team}\" in teams.csv\n  help: use a team_id from the directory",
                    in_audience("teams")
                ));
            }
        }
        for channel in &induction.channels {
            if !self.config.channels.iter().any(|c| &c.name == channel) {
                problems.push(format!(
                    "{}: [induction] channels: no channel \"{channel}\" in [[channels]]\n  help: use one of {}",
                    at("channels"),
                    self.config
                        .channels
                        .iter()
                        .map(|c| format!("\"{}\"", c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        problems
    }

    /// Every problem `check` reports for one content file, were its text
    /// `text` (a file at `path` in the content folder, written or not):
    /// parsing, an id another file already uses, the privacy guard and
    /// rendering for every channel, by the same code as `check`, so the
    /// console and `cascade check` agree. Nothing is written. Returns the
    /// item when there is no problem.
    pub fn check_item(&self, path: &Path, text: &str) -> Result<LoadedItem, Vec<String>> {
        let item = content::parse_item(path, text, &self.taxonomy)
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let loaded = LoadedItem {
            item,
            path: path.to_owned(),
            text: text.to_owned(),
        };
        let mut problems = Vec::new();
        let (others, _) = content::load_dir(&self.content_dir(), &self.taxonomy);
        if let Some(other) = others
            .iter()
            .find(|o| o.item.id == loaded.item.id && o.path != path)
        {
            problems.push(format!(
                "{}: id \"{}\" is already used by {}\n  help: give each item its own id; a new version of the same item is an edit of the same file",
                path.display(),
                loaded.item.id,
                other.path.display()
            ));
        }
        let guard = match PrivacyGuard::new(&self.config.privacy) {
            Ok(guard) => {
                problems.extend(item_privacy_problems(&guard, &loaded));
                let (directory, _) = Directory::load_dir(&self.directory_dir(), &self.taxonomy);
                let (_, in_templates) = self.privacy_outside_content(&guard, &directory);
                Some((guard, in_templates))
            }
            Err(e) => {
                problems.push(format!("{}: {e}", self.root.join(CONFIG_FILE).display()));
                None
            }
        };
        match self.renderer() {
            Ok(renderer) => {
                problems.extend(self.item_render_problems(&renderer, guard.as_ref(), &loaded))
            }
            Err(mut e) => problems.append(&mut e),
        }
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(problems)
        }
    }

    /// An item rendered for every channel: what cannot be rendered, and a
    /// privacy finding a template brought into the message (a template's
    /// own finding, in `guard`'s list, is reported once at the template).
    fn item_render_problems(
        &self,
        renderer: &Renderer,
        guard: Option<&(PrivacyGuard, Vec<String>)>,
        loaded: &LoadedItem,
    ) -> Vec<String> {
        let input = self.sample_input("Sam Example");
        let mut problems = Vec::new();
        for channel in Channel::ALL {
            match renderer.render(&loaded.item, &self.taxonomy, channel, &input) {
                Ok(chunks) => {
                    problems.extend(guard.and_then(|(guard, in_templates)| {
                        rendered_problem(
                            guard,
                            loaded,
                            &chunks.concat(),
                            in_templates,
                            &channel.to_string(),
                        )
                    }));
                }
                Err(e) => problems.push(format!(
                    "{}: cannot render for {channel}: {e}",
                    loaded.path.display()
                )),
            }
        }
        problems
    }

    /// The privacy guard over what people and admins write outside content
    /// files that ends up in a message, a page or a report: templates and
    /// partials, rollout files (follow-up questions and answers, names), the
    /// directory's agency and team names, and the partnership's name and
    /// theme labels.
    /// Returns the problems, and the text of each template finding.
    fn privacy_outside_content(
        &self,
        guard: &PrivacyGuard,
        directory: &Directory,
    ) -> (Vec<String>, Vec<String>) {
        let mut problems = Vec::new();
        let mut in_templates = Vec::new();
        let mut files = Vec::new();
        collect_files(&self.templates_dir(), "hbs", &mut files);
        collect_files(&self.rollouts_dir(), "toml", &mut files);
        for path in files {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let findings = if path.extension().is_some_and(|e| e == "toml") {
                guard.scan_toml(&text)
            } else {
                let findings = guard.scan(&text);
                in_templates.extend(findings.iter().map(|f| f.text.clone()));
                findings
            };
            problems.extend(findings.iter().map(|f| f.in_file(&path).to_string()));
        }
        let names = directory
            .agencies
            .iter()
            .map(|a| ("agencies.csv", &a.id, &a.name))
            .chain(
                directory
                    .teams
                    .iter()
                    .map(|t| ("teams.csv", &t.id, &t.name)),
            );
        let config = self.root.join(CONFIG_FILE);
        let in_config = std::iter::once(("the partnership", &self.config.partnership.name)).chain(
            self.taxonomy
                .themes()
                .iter()
                .map(|theme| (theme.id.as_str(), &theme.label)),
        );
        let named = names
            .map(|(file, id, name)| (self.directory_dir().join(file), id.as_str(), name))
            .chain(in_config.map(|(id, name)| (config.clone(), id, name)));
        for (file, id, name) in named {
            if let Some(finding) = guard.scan(name).first() {
                problems.push(format!(
                    "{}: the name of \"{id}\" holds a {} {:?} that looks like a child's identifying detail\n  help: rename it",
                    file.display(),
                    finding.kind.label(),
                    finding.text
                ));
            }
        }
        (problems, in_templates)
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
            // Previews and checks are for the business unit, who may read
            // every item in full.
            carries: Classification::OfficialSensitive,
            confirm: None,
        }
    }
}

/// Files with `extension` under `dir`, at any depth, in name order.
fn collect_files(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_files(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

/// A `[[privacy_allow]]` entry that names a deny-listed name: refused,
/// because the partnership's deny list outranks an item's exceptions.
fn denied_names_allowed(guard: &PrivacyGuard, loaded: &LoadedItem) -> Vec<String> {
    loaded
        .item
        .privacy_allow
        .iter()
        .filter(|allow| {
            guard
                .scan(&allow.text)
                .iter()
                .any(|f| f.kind == cascade_privacy::FindingKind::DeniedName)
        })
        .map(|allow| {
            let line = loaded
                .text
                .lines()
                .position(|line| line.contains(allow.text.as_str()))
                .map_or(1, |n| n + 1);
            format!(
                "{}:{line}: privacy_allow names {:?}, which is on the partnership's deny list; an item cannot allow a deny-listed name\n  help: remove the name from the item and this entry",
                loaded.path.display(),
                allow.text
            )
        })
        .collect()
}

/// The privacy guard's findings in an item's own text that its allows do
/// not cover, and any allow of a deny-listed name.
fn item_privacy_problems(guard: &PrivacyGuard, loaded: &LoadedItem) -> Vec<String> {
    let mut problems: Vec<String> = guard
        .blocking_item(&loaded.text, &loaded.item.privacy_allow)
        .iter()
        .map(|finding| finding.in_file(&loaded.path).to_string())
        .collect();
    problems.extend(denied_names_allowed(guard, loaded));
    problems
}

/// The problem with an item's rendered message (`rendered_for` says for
/// which format or channel): its first finding that neither the item's own
/// text and allows nor `reported` (texts already reported at a template)
/// account for, i.e. one a template brought in.
pub fn rendered_problem(
    guard: &PrivacyGuard,
    loaded: &LoadedItem,
    rendered: &str,
    reported: &[String],
    rendered_for: &str,
) -> Option<String> {
    let in_rendered = guard.blocking(rendered, &loaded.item.privacy_allow);
    if in_rendered.is_empty() {
        return None;
    }
    let in_source = guard.scan_item(&loaded.text);
    let finding = in_rendered.into_iter().find(|finding| {
        !reported
            .iter()
            .any(|text| guard.same_text(text, &finding.text))
            && !in_source
                .iter()
                .any(|f| f.kind == finding.kind && guard.same_text(&f.text, &finding.text))
    })?;
    Some(format!(
        "{}: rendered for {rendered_for}, the message holds a {} {:?} that looks like a child's identifying detail\n  help: it comes from a template or the item's text; remove it",
        loaded.path.display(),
        finding.kind.label(),
        finding.text
    ))
}
