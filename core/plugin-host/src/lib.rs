//! The plugin host: finds channel plugin libraries, checks and loads them,
//! starts the configured channel instances and routes sends to them.
//!
//! Everything unsafe about plugins lives in `library` (loading, the C table)
//! and `instance` (calls across the boundary). Nothing a plugin does (an
//! error, a panic, a hang, malformed JSON) escapes as more than a
//! [`PluginError`]. Libraries are never unloaded.

mod config;
mod discover;
mod instance;
mod library;

pub use config::{ChannelConfig, PER_SECOND, PluginsConfig, RetryConfig, SecretSource};
pub use discover::{PluginFile, default_search_dirs, discover, writable_by_others};
pub use instance::{ChannelInstance, HostService, Inbound, MemoryService, ServiceFuture};
pub use library::LoadedPlugin;

use cascade_plugin_api::{SendRequest, SendResult};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Everything that can go wrong with a plugin, each naming the file or the
/// channel instance, what was expected and what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: cannot read the plugin file: {reason}", path = path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: SHA-256 is {found}, but the configuration pins {expected}; refusing to load it\n  help: if this file is a trusted new build, update [plugins.sha256] with `cascade plugins`", path = path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: not a loadable shared library ({reason})\n  help: remove it from the plugin folder, or rebuild the plugin for this platform", path = path.display())]
    NotALibrary { path: PathBuf, reason: String },
    #[error("{path}: the library has no `{symbol}` symbol, so it is not a cascade plugin\n  help: a Rust plugin exports it with cascade_plugin_api::export_plugin!", path = path.display(), symbol = cascade_plugin_api::ENTRY_SYMBOL)]
    NoEntrySymbol { path: PathBuf },
    #[error("{path}: plugin ABI version {found}, but this cascade speaks versions 2 and {wanted}\n  help: rebuild the plugin against cascade-plugin-api for ABI version {wanted}", path = path.display())]
    AbiMismatch {
        path: PathBuf,
        found: u32,
        wanted: u32,
    },
    #[error("{path}: the plugin's manifest is not usable: {reason}", path = path.display())]
    BadManifest { path: PathBuf, reason: String },
    #[error("{path}: a plugin named \"{name}\" is already loaded from {first}\n  help: keep one copy of each plugin in the plugin folders", path = path.display(), first = first.display())]
    DuplicateName {
        name: String,
        path: PathBuf,
        first: PathBuf,
    },
    #[error(
        "channel \"{instance}\": no plugin named \"{plugin}\" was found (found: {known}){unpinned}\n  help: check the plugin name, or add its folder to [plugins] dirs"
    )]
    UnknownPlugin {
        instance: String,
        plugin: String,
        known: String,
        /// Empty, or the files left unloaded for want of a pin.
        unpinned: String,
    },
    #[error("{path}: {what} can be written by users other than its owner (mode {mode:o}), so they could replace a plugin and run code as cascade\n  help: chmod go-w {path}", path = path.display())]
    WritableByOthers {
        path: PathBuf,
        what: &'static str,
        mode: u32,
    },
    #[error("channel \"{instance}\": secret \"{key}\": {reason}")]
    Secret {
        instance: String,
        key: String,
        reason: String,
    },
    #[error("channel \"{instance}\": the {plugin} plugin refused to start: {reason}")]
    StartFailed {
        instance: String,
        plugin: String,
        reason: String,
    },
    #[error("channel \"{instance}\": the {plugin} plugin did not finish starting within {after:?}")]
    StartTimedOut {
        instance: String,
        plugin: String,
        after: Duration,
    },
    #[error(
        "channel \"{instance}\" is defined twice\n  help: give each [[channels]] entry its own name"
    )]
    DuplicateInstance { instance: String },
    #[error("no channel instance named \"{instance}\"")]
    UnknownInstance { instance: String },
    #[error("channel \"{instance}\" is stopped")]
    Stopped { instance: String },
    #[error(
        "channel \"{instance}\": delivery {delivery_id} got no answer from the plugin within {after:?}"
    )]
    SendTimedOut {
        instance: String,
        delivery_id: String,
        after: Duration,
    },
    #[error(
        "channel \"{instance}\": the plugin answered delivery {delivery_id} with malformed JSON: {reason}"
    )]
    MalformedResult {
        instance: String,
        delivery_id: String,
        reason: String,
    },
    #[error("channel \"{instance}\": the plugin did not answer a webhook request within {after:?}")]
    WebhookTimedOut { instance: String, after: Duration },
    #[error(
        "channel \"{instance}\": the plugin answered a webhook request with malformed JSON: {reason}"
    )]
    MalformedWebhookResponse { instance: String, reason: String },
}

/// The loaded plugins and their running channel instances. Instances may
/// start while others serve (a channel that could not start is tried
/// again), so they sit behind a lock.
pub struct PluginHost {
    plugins: Vec<Arc<LoadedPlugin>>,
    /// Files not loaded because pins are configured and they have none.
    unpinned: Vec<PathBuf>,
    instances: RwLock<BTreeMap<String, Arc<ChannelInstance>>>,
    /// Configured channels that are not running, and why.
    down: RwLock<BTreeMap<String, String>>,
    inbound: mpsc::UnboundedSender<Inbound>,
    /// Answers version-3 plugins' requests (durable inbound, plugin state).
    service: RwLock<Arc<dyn HostService>>,
    send_timeout: Duration,
    start_timeout: Duration,
}

/// Whether a configured channel is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    Up,
    /// Not running: it could not start (the reason, in words for a person).
    Down {
        reason: String,
    },
}

/// The outcome of looking at every plugin file: what loaded, and what did not.
pub struct LoadReport {
    pub host: PluginHost,
    pub problems: Vec<PluginError>,
}

impl PluginHost {
    /// Loads every plugin file found, checking pins first. A file that fails
    /// is reported and skipped; the others still load. Once any pin is
    /// configured, a file without one is never opened (opening a library
    /// runs its initialisers): it is only remembered, see [`Self::unpinned`].
    pub fn load(
        files: &[PluginFile],
        config: &PluginsConfig,
        inbound: mpsc::UnboundedSender<Inbound>,
    ) -> LoadReport {
        let mut plugins: Vec<Arc<LoadedPlugin>> = Vec::new();
        let mut unpinned = Vec::new();
        let mut problems = Vec::new();
        for file in files {
            let pin = config.pinned_hash(&file.path);
            if pin.is_none() && config.pins_configured() {
                tracing::warn!(
                    path = %file.path.display(),
                    "plugin file not pinned in [plugins.sha256], so not loaded"
                );
                unpinned.push(file.path.clone());
                continue;
            }
            match LoadedPlugin::load(file, pin) {
                Ok(plugin) => {
                    if let Some(first) = plugins
                        .iter()
                        .find(|p| p.manifest.name == plugin.manifest.name)
                    {
                        problems.push(PluginError::DuplicateName {
                            name: plugin.manifest.name.clone(),
                            path: plugin.path.clone(),
                            first: first.path.clone(),
                        });
                    } else {
                        plugins.push(Arc::new(plugin));
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        LoadReport {
            host: PluginHost {
                plugins,
                unpinned,
                instances: RwLock::default(),
                down: RwLock::default(),
                service: RwLock::new(Arc::new(MemoryService::new(inbound.clone()))),
                inbound,
                send_timeout: config.send_timeout(),
                start_timeout: config.start_timeout(),
            },
            problems,
        }
    }

    /// Has `service` answer the requests of version-3 plugins (durable
    /// inbound events, plugin state) for instances started from now on.
    /// Until then a [`MemoryService`] answers: events are handled as
    /// plain `emit`s and state lives in memory.
    pub fn set_service(&self, service: Arc<dyn HostService>) {
        *self.service.write().unwrap_or_else(PoisonError::into_inner) = service;
    }

    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    pub fn plugin(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| p.manifest.name == name)
    }

    /// Plugin files found but not loaded, because pins are configured and
    /// these have none.
    pub fn unpinned(&self) -> &[PathBuf] {
        &self.unpinned
    }

    /// Names the unpinned files, for an error about a plugin that was not
    /// found: it may be one of them. Empty when there are none.
    pub fn unpinned_hint(&self) -> String {
        if self.unpinned.is_empty() {
            return String::new();
        }
        format!(
            "\n  not loaded because [plugins.sha256] does not pin them: {}",
            self.unpinned
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// Starts one channel instance: resolves its secrets, hands the plugin
    /// its configuration, and waits (up to the start timeout) for it. A
    /// failure leaves the channel down with its reason (see
    /// [`Self::channel_states`]) until a later start succeeds.
    pub async fn start(&self, channel: &ChannelConfig, base_dir: &Path) -> Result<(), PluginError> {
        let started = self.start_instance(channel, base_dir).await;
        let mut down = self.down.write().unwrap_or_else(PoisonError::into_inner);
        match &started {
            Ok(()) => {
                down.remove(&channel.name);
            }
            Err(PluginError::DuplicateInstance { .. }) => {}
            Err(error) => {
                down.insert(channel.name.clone(), error.to_string());
            }
        }
        started
    }

    async fn start_instance(
        &self,
        channel: &ChannelConfig,
        base_dir: &Path,
    ) -> Result<(), PluginError> {
        if self.instances().iter().any(|i| i.name == channel.name) {
            return Err(PluginError::DuplicateInstance {
                instance: channel.name.clone(),
            });
        }
        let plugin =
            self.plugin(&channel.plugin)
                .cloned()
                .ok_or_else(|| PluginError::UnknownPlugin {
                    instance: channel.name.clone(),
                    plugin: channel.plugin.clone(),
                    known: self
                        .plugins
                        .iter()
                        .map(|p| p.manifest.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    unpinned: self.unpinned_hint(),
                })?;
        let config = channel.resolved_config(base_dir)?;
        let service = self
            .service
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let instance = ChannelInstance::start(
            channel.name.clone(),
            plugin,
            config,
            self.inbound.clone(),
            service,
            self.send_timeout,
            self.start_timeout,
        )
        .await?;
        self.instances
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(channel.name.clone(), Arc::new(instance));
        Ok(())
    }

    pub fn instance(&self, name: &str) -> Result<Arc<ChannelInstance>, PluginError> {
        self.instances
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| PluginError::UnknownInstance {
                instance: name.to_owned(),
            })
    }

    /// The running instances.
    pub fn instances(&self) -> Vec<Arc<ChannelInstance>> {
        self.instances
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Whether the named channel is running.
    pub fn is_up(&self, name: &str) -> bool {
        self.instances
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    /// Every channel started or tried, by name: running, or down and why.
    pub fn channel_states(&self) -> BTreeMap<String, ChannelState> {
        let mut states: BTreeMap<String, ChannelState> = self
            .down
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, reason)| {
                (
                    name.clone(),
                    ChannelState::Down {
                        reason: reason.clone(),
                    },
                )
            })
            .collect();
        for instance in self.instances() {
            let state = match instance.fault() {
                None => ChannelState::Up,
                Some(reason) => ChannelState::Down { reason },
            };
            states.insert(instance.name.clone(), state);
        }
        states
    }

    /// Sends through the named instance.
    pub async fn send(
        &self,
        instance: &str,
        request: &SendRequest,
    ) -> Result<SendResult, PluginError> {
        self.instance(instance)?.send(request).await
    }

    /// Stops every instance, letting each finish its in-flight sends.
    pub async fn stop(&self) {
        let instances = std::mem::take(
            &mut *self
                .instances
                .write()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (_, instance) in instances {
            instance.stop().await;
        }
    }
}
