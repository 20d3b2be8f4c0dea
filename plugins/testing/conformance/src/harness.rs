//! The plugin as the engine runs it: the library loaded by the real host, a
//! channel instance started from an operator's configuration (secrets in
//! files), sends and replies shaped as the dispatcher and the runner shape
//! them, and, when asked, cascade's webhook routes served on a socket.

use crate::{ChannelSetup, ChatProvider, Person, SentMessage};
use cascade_plugin_api::{
    Action, Capability, InboundEvent, Message, MessagePart, Recipient, Reply, SendRequest,
    SendResult,
};
use cascade_plugin_host::{
    ChannelConfig, Inbound, PluginFile, PluginHost, PluginsConfig, SecretSource,
};
use std::collections::BTreeMap;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long anything the checks wait for may take before the check fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// The subject the engine gives a learning message: the item's title.
pub(crate) const SUBJECT: &str = "7-minute briefing: Neglect and the toxic trio";

/// The library `cascade_plugin_<name>` cargo built next to the running test
/// binary (in its folder or one above it).
pub fn plugin_library(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let file = format!("{DLL_PREFIX}cascade_plugin_{name}{DLL_SUFFIX}");
    let mut dir = exe.parent().expect("the test binary is in a folder");
    loop {
        if dir.join(&file).is_file() {
            return dir.join(&file);
        }
        dir = dir.parent().unwrap_or_else(|| {
            panic!(
                "{file} was not built next to {}: build the plugin first (cargo build -p cascade-plugin-{name})",
                exe.display()
            )
        });
    }
}

/// A channel instance of the plugin, started through the host against the
/// provider's fake.
pub struct Running<P: ChatProvider> {
    pub provider: P,
    host: Arc<PluginHost>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    /// The instance's name, as `[[channels]] name`: the plugin's name.
    instance: String,
    /// The channel kind, the manifest's first channel, as the engine's
    /// routes name it in every send.
    kind: String,
    capabilities: Vec<Capability>,
    /// Cascade's webhook routes, when started with a listener.
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    /// Holds the secret files.
    _secrets: tempfile::TempDir,
}

impl<P: ChatProvider> Running<P> {
    /// Starts the provider's fake and the channel configured against it.
    pub async fn start() -> Running<P> {
        let provider = P::start().await;
        let setup = provider.channel();
        if !P::WEBHOOK_ONLY {
            return Running::start_with(provider, setup, None).await;
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("the listener's address");
        provider.webhook_at(&format!("http://{address}/webhooks/{}", P::PLUGIN));
        Running::start_with(provider, setup, Some(listener)).await
    }

    /// Starts the channel from `setup`. With `listener`, cascade's webhook
    /// routes (`cascade_server::webhook_router`) are served on it through
    /// `cascade serve`'s accept loop, over this same host.
    pub async fn start_with(
        provider: P,
        setup: ChannelSetup,
        listener: Option<TcpListener>,
    ) -> Running<P> {
        let secret_dir = tempfile::tempdir().expect("a temporary folder");
        let mut secrets = BTreeMap::new();
        for (key, value) in &setup.secrets {
            let file = format!("{}-{key}", P::PLUGIN);
            std::fs::write(secret_dir.path().join(&file), format!("{value}\n"))
                .expect("the secret file is written");
            secrets.insert(key.clone(), SecretSource::File(file.into()));
        }
        let (events, inbound) = mpsc::unbounded_channel();
        let report = PluginHost::load(
            &[PluginFile {
                path: plugin_library(P::PLUGIN),
            }],
            &PluginsConfig::default(),
            events,
        );
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert!(
            problems.is_empty(),
            "the host refused the plugin: {problems:#?}"
        );
        let host = report.host;
        let manifest = &host
            .plugin(P::PLUGIN)
            .unwrap_or_else(|| panic!("the library does not call itself {:?}", P::PLUGIN))
            .manifest;
        let kind = manifest
            .channels
            .first()
            .unwrap_or_else(|| panic!("the {} plugin names no channel kind", P::PLUGIN))
            .clone();
        let capabilities = manifest.capabilities.clone();
        let channel = ChannelConfig {
            name: P::PLUGIN.to_owned(),
            plugin: P::PLUGIN.to_owned(),
            config: setup.config,
            secrets,
            identity: None,
            formats: None,
            per_second: None,
            max_per_minute: None,
            max_per_day: None,
            team_channels: BTreeMap::new(),
            retry: None,
            carries: Default::default(),
            secure_domains: Vec::new(),
            spread_over: Vec::new(),
        };
        host.start(&channel, secret_dir.path())
            .await
            .unwrap_or_else(|e| panic!("the {} channel did not start: {e}", P::PLUGIN));
        let host = Arc::new(host);
        let server = listener.map(|listener| {
            let app = cascade_server::webhook_router(Arc::clone(&host));
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let config = cascade_server::ServerConfig::default();
                cascade_server::serve(listener, app, &config, async {
                    let _ = stopped.await;
                })
                .await;
            });
            (stop, task)
        });
        Running {
            provider,
            host,
            inbound,
            instance: P::PLUGIN.to_owned(),
            kind,
            capabilities,
            server,
            _secrets: secret_dir,
        }
    }

    /// The capabilities the plugin's manifest claims.
    pub fn capabilities(&self) -> &[Capability] {
        &self.capabilities
    }

    /// Fails the check unless the manifest claims `needed`.
    pub fn assert_capable(&self, needed: &[Capability]) {
        for capability in needed {
            assert!(
                self.capabilities.contains(capability),
                "the {} plugin's manifest lacks {capability:?}, which this check is about (it claims {:?})",
                P::PLUGIN,
                self.capabilities
            );
        }
    }

    /// Sends through the host, as the dispatcher does; a host error (a
    /// timeout, a malformed answer) fails the check.
    pub async fn send(&self, request: &SendRequest) -> SendResult {
        self.host
            .send(&self.instance, request)
            .await
            .unwrap_or_else(|e| panic!("the host could not send {}: {e}", request.delivery_id))
    }

    /// The next event the plugin emitted, failing the check after a while.
    pub async fn next_event(&mut self) -> InboundEvent {
        let inbound = tokio::time::timeout(PATIENCE, self.inbound.recv())
            .await
            .unwrap_or_else(|_| panic!("the plugin emitted no event within {PATIENCE:?}"))
            .expect("the host's inbound channel closed");
        assert_eq!(
            inbound.instance, self.instance,
            "the event names its instance"
        );
        inbound.event
    }

    /// Fails the check if the plugin emits any event within `within`.
    pub async fn assert_no_event(&mut self, within: Duration) {
        if let Ok(Some(inbound)) = tokio::time::timeout(within, self.inbound.recv()).await {
            panic!("the plugin emitted an event it should not have: {inbound:?}");
        }
    }

    /// The messages at `address` once `done` holds for them.
    pub async fn messages_once(
        &self,
        address: &str,
        what: &str,
        done: impl Fn(&[SentMessage]) -> bool,
    ) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let messages = self.provider.messages_to(address);
            if done(&messages) {
                return messages;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("the provider never showed {what} at {address}: {messages:#?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the provider counts at least one answer to `press`, then
    /// a little longer, and returns the count.
    pub async fn answers_once(&self, press: &str) -> usize {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.provider.answers_to(press) == 0 {
            if tokio::time::Instant::now() > deadline {
                panic!("the press {press} was never answered");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A second answer, if the plugin makes one, would come at once.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.provider.answers_to(press)
    }

    /// Learning for `person` as the dispatcher sends outbox row `row`: the
    /// channel's render in `chunks`, the item's title as the subject.
    pub fn learning(
        &self,
        row: u32,
        person: &Person,
        chunks: Vec<String>,
        actions: Vec<Action>,
    ) -> SendRequest {
        SendRequest {
            delivery_id: format!("d{row}"),
            idempotency_key: format!("conformance/p-{row}/initial-1/p-{row}/{}", P::RENDER.name()),
            channel: self.kind.clone(),
            recipient: Recipient {
                person_id: format!("p-{row}"),
                display_name: "Sam Carter".to_owned(),
                address: person.address.clone(),
            },
            message: Message {
                subject: Some(SUBJECT.to_owned()),
                parts: vec![MessagePart {
                    format: P::RENDER.name().into(),
                    chunks,
                }],
            },
            actions,
            reply: None,
            list: None,
            post: None,
        }
    }

    /// The runner's answer number `n` to `event`: plain `text` to the
    /// event's address, carrying `reply` (whose event id is set here).
    pub fn reply(&self, n: u32, event: &InboundEvent, text: &str, reply: Reply) -> SendRequest {
        let event_id = event.id.clone().expect("an answerable event carries an id");
        SendRequest {
            delivery_id: format!("reply-{n}"),
            idempotency_key: format!("reply:{event_id}"),
            channel: self.kind.clone(),
            recipient: Recipient {
                person_id: String::new(),
                display_name: String::new(),
                address: event
                    .address
                    .clone()
                    .expect("an answerable event says where the answer goes"),
            },
            message: Message {
                subject: None,
                parts: vec![MessagePart {
                    format: "text".into(),
                    chunks: if text.is_empty() {
                        Vec::new()
                    } else {
                        vec![text.to_owned()]
                    },
                }],
            },
            actions: Vec::new(),
            reply: Some(Reply { event_id, ..reply }),
            list: None,
            post: None,
        }
    }

    /// The channel kind sends and events carry.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Stops cascade's webhook routes, if served, then the instance, letting
    /// it finish what is in flight; returns the provider's fake.
    pub async fn stop(self) -> P {
        if let Some((stop, task)) = self.server {
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                panic!("cascade's webhook server did not shut down within 5 s");
            }
        }
        for instance in self.host.instances() {
            instance.stop().await;
        }
        self.provider
    }
}

/// A button as the host offers it: the signed action id and its label.
pub(crate) fn action(id: &str, label: &str) -> Action {
    Action {
        id: id.to_owned(),
        label: label.to_owned(),
        form: None,
    }
}

/// One HTTP/1.1 request on its own connection; returns the status code.
pub async fn http_status(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("could not connect to {address}: {e}"));
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is written");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("the response is read");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}
