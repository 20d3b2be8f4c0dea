//! The engine: a project opened for rollouts, with its store, its channel
//! plugins and the channel routes they give. Planning and starting a
//! rollout, and the serve loop (scheduler, dispatcher, HTTP health), live
//! here; the CLI only prints.

use crate::delivery::{
    ChannelRoute, Composer, DispatchSettings, Dispatcher, OVERDUE_WAIT, POLL_WAIT, Quota, Rollouts,
    SharedWorld, TeamPoster, World, millis, schedule_due,
};
use crate::inbound::polls::{self, PollTurns};
use crate::inbound::{self, ActionKey, Answer, Conversations, Desk, InboundOutcome, LinkCodeKey};
use crate::planner::{Planner, posts_in_channels};
use crate::project::Project;
use crate::respond::Responses;
use cascade_model::content::Classification;
use cascade_model::rollout::Calendar;
use cascade_plugin_api::{
    Capability, Manifest, Message, MessagePart, Recipient, Reply, SendRequest, SendResult,
};
use cascade_plugin_host::{self as plugins, ChannelConfig, Inbound, LoadReport, PluginHost};
use cascade_privacy::PrivacyGuard;
use cascade_render::Channel;
use cascade_store::{AllStores, NewRollout, NewTeamPost, SqliteStore, Wake};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

pub use crate::plan::Planned;
pub use crate::problems::Problems;

/// A project opened for rollouts over a store `S` (SQLite when opened with
/// [`Engine::open`]).
pub struct Engine<S> {
    pub project: Project,
    pub store: Arc<S>,
    pub host: PluginHost,
    pub routes: Vec<ChannelRoute>,
    pub calendar: Calendar,
    /// Button presses and commands the channel plugins report.
    inbound: mpsc::UnboundedReceiver<Inbound>,
    /// Channels that could not start (opened with
    /// [`Engine::open_serving`]): `serve` tries them again.
    waiting: Vec<ChannelConfig>,
    /// Which channel instances may long-poll now: leased when opened for
    /// serving, so only the process holding a channel's poll lease polls.
    turns: Arc<PollTurns>,
}

/// Which channels opening an engine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Starting {
    None,
    /// Every one; any that cannot start is a problem.
    All,
    /// Those that can; the others are down and tried again by `serve`.
    Available,
}

/// The route of a configured channel, from its config and its plugin.
pub fn route(channel: &ChannelConfig, manifest: &Manifest) -> Result<ChannelRoute, String> {
    let kind = manifest.channels[0].clone();
    let formats = match &channel.formats {
        Some(names) => names
            .iter()
            .map(|n| {
                n.parse::<Channel>()
                    .map_err(|e| format!("channel \"{}\": formats: {e}", channel.name))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => match kind.as_str() {
            "email" => vec![Channel::EmailHtml, Channel::EmailText],
            "telegram" => vec![Channel::Telegram],
            // Teams rewrites this Markdown in Adaptive Cards' subset.
            "discord" | "teams" => vec![Channel::Discord],
            // GOV.UK Notify formats the plain text itself.
            "notify" => vec![Channel::EmailText],
            other => {
                return Err(format!(
                    "channel \"{}\": the {other} plugin has no default render\n  help: say which it carries, e.g. formats = [\"email-text\"]",
                    channel.name
                ));
            }
        },
    };
    let identity = channel.identity.clone().unwrap_or_else(|| kind.clone());
    if identity == cascade_model::directory::MOBILE_CHANNEL
        && channel.carries > Classification::Official
    {
        return Err(format!(
            "channel \"{}\": a text message carries only a short notice, never an OFFICIAL-SENSITIVE item\n  help: remove carries = \"{}\" from this channel",
            channel.name, channel.carries
        ));
    }
    if !channel.secure_domains.is_empty() && identity != "email" {
        return Err(format!(
            "channel \"{}\": secure_domains are email domains, and this channel addresses people by {identity}\n  help: move secure_domains to an email channel, or remove it",
            channel.name
        ));
    }
    Ok(ChannelRoute {
        instance: channel.name.clone(),
        identity,
        kind,
        formats,
        buttons: manifest.capabilities.contains(&Capability::Buttons),
        forms: manifest.capabilities.contains(&Capability::Forms),
        channel_posts: posts_in_channels(manifest),
        per_second: channel
            .per_second
            .or(manifest.limits.per_second)
            .filter(|r| *r > 0.0),
        quota: Quota {
            per_minute: channel.max_per_minute,
            per_day: channel.max_per_day,
        },
        retry: channel.retry.clone().unwrap_or_default(),
        carries: channel.carries,
        secure_domains: channel.secure_domains.clone(),
        spread: channel.spread_over.clone(),
    })
}

/// What is wrong with the channels' `spread_over` lists: each names other
/// configured instances of the same plugin that address people the same
/// way, and an instance shares one channel's sends at most.
pub fn check_spreads(routes: &[ChannelRoute]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut shared: HashMap<&str, &str> = HashMap::new();
    for route in routes.iter().filter(|r| !r.spread.is_empty()) {
        for name in &route.spread {
            let fix = "  help: spread_over names other [[channels]] of the same plugin, e.g. spread_over = [\"email-2\"]";
            let Some(other) = routes.iter().find(|r| &r.instance == name) else {
                problems.push(format!(
                    "channel \"{}\": spread_over names \"{name}\", which is not a configured channel\n{fix}",
                    route.instance
                ));
                continue;
            };
            if other.instance == route.instance {
                problems.push(format!(
                    "channel \"{}\": spread_over names the channel itself\n{fix}",
                    route.instance
                ));
            } else if other.kind != route.kind || other.identity != route.identity {
                problems.push(format!(
                    "channel \"{}\": spread_over names \"{name}\", a {} channel addressing people by {}, and this is a {} channel addressing them by {}\n{fix}",
                    route.instance, other.kind, other.identity, route.kind, route.identity
                ));
            } else if !other.spread.is_empty() {
                problems.push(format!(
                    "channel \"{}\": spread_over names \"{name}\", which spreads its own sends\n  help: list every instance in one spread_over",
                    route.instance
                ));
            } else if let Some(first) = shared.insert(name.as_str(), route.instance.as_str())
                && first != route.instance
            {
                problems.push(format!(
                    "channel \"{name}\" is in the spread_over of both \"{first}\" and \"{}\"\n  help: an instance shares one channel's sends; remove it from one list",
                    route.instance
                ));
            }
        }
    }
    problems
}

impl Engine<SqliteStore> {
    /// Opens the project's SQLite store and loads the plugins; with
    /// `start_channels`, starts every configured channel instance too.
    pub async fn open(project: Project, start_channels: bool) -> Result<Self, Problems> {
        let store = Arc::new(SqliteStore::open(&project.store_path().to_string_lossy()).await?);
        Engine::with_store(project, store, start_channels).await
    }

    /// As [`open`](Self::open) for `cascade serve`: starts the channels
    /// that can start; one that cannot is down (logged, shown in
    /// `/health`), its rows wait, and [`Runner::serve`] tries it again.
    pub async fn open_serving(project: Project) -> Result<Self, Problems> {
        let store = Arc::new(SqliteStore::open(&project.store_path().to_string_lossy()).await?);
        Engine::serving_with_store(project, store).await
    }
}

impl<S: AllStores> Engine<S> {
    /// The engine over a store already open; loads the plugins and, with
    /// `start_channels`, starts every configured channel instance too.
    pub async fn with_store(
        project: Project,
        store: Arc<S>,
        start_channels: bool,
    ) -> Result<Self, Problems> {
        let starting = if start_channels {
            Starting::All
        } else {
            Starting::None
        };
        Engine::opened(project, store, starting, PollTurns::free()).await
    }

    /// As [`open_serving`](Self::open_serving), over a store already open
    /// (several serves may share a PostgreSQL one): starts the channels
    /// that can start, and a channel that long-polls polls only while this
    /// process's [`Runner::serve`] holds its poll lease.
    pub async fn serving_with_store(project: Project, store: Arc<S>) -> Result<Self, Problems> {
        Engine::opened(project, store, Starting::Available, PollTurns::leased()).await
    }

    /// As [`with_store`](Self::with_store) with every channel started,
    /// for a command that only sends (`cascade link-codes --send`): a
    /// channel that long-polls never polls here, so it takes no update
    /// from the serves sharing the store.
    pub async fn for_sending(project: Project, store: Arc<S>) -> Result<Self, Problems> {
        // Leased turns, and no runner ever holds a lease for them.
        Engine::opened(project, store, Starting::All, PollTurns::leased()).await
    }

    async fn opened(
        project: Project,
        store: Arc<S>,
        starting: Starting,
        turns: PollTurns,
    ) -> Result<Self, Problems> {
        let turns = Arc::new(turns);
        let config = &project.config;
        let calendar = Calendar::new(
            &config.partnership.time_zone,
            config.partnership.quiet_hours,
        )
        .map_err(|e| {
            Problems::one(format!(
                "{}: [partnership] time_zone: {e}",
                project.root.join(crate::config::CONFIG_FILE).display()
            ))
        })?;
        let dirs = plugins::default_search_dirs(&config.plugins.dirs, &project.root);
        let (inbound_sender, inbound) = mpsc::unbounded_channel();
        let files = plugins::discover(&dirs);
        for warning in plugins::writable_by_others(&dirs, &files) {
            tracing::warn!("{warning}");
        }
        let LoadReport { host, problems } =
            PluginHost::load(&files, &config.plugins, inbound_sender.clone());
        // Before any channel starts: version-3 plugins store what arrives.
        host.set_service(Arc::new(inbound::inbox::InboxService {
            store: store.clone(),
            inbound: inbound_sender,
            turns: turns.clone(),
        }));
        let mut problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let mut routes = Vec::new();
        let mut waiting = Vec::new();
        for channel in &config.channels {
            let Some(plugin) = host.plugin(&channel.plugin) else {
                problems.push(format!(
                    "channel \"{}\": no plugin named \"{}\" was found in {}{}",
                    channel.name,
                    channel.plugin,
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    host.unpinned_hint()
                ));
                continue;
            };
            match route(channel, &plugin.manifest) {
                Ok(r) => routes.push(r),
                Err(e) => problems.push(e),
            }
            if starting == Starting::None {
                continue;
            }
            if let Err(e) = host.start(channel, &project.root).await {
                if starting == Starting::All {
                    problems.push(e.to_string());
                } else {
                    tracing::error!(channel = %channel.name, "the channel is down, its messages wait, and it is tried again shortly: {e}");
                    waiting.push(channel.clone());
                }
            }
        }
        problems.extend(check_spreads(&routes));
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(Engine {
            project,
            store,
            host,
            routes,
            calendar,
            inbound,
            waiting,
            turns,
        })
    }

    /// What planning (of a rollout, a bulletin or one of its issues) uses
    /// of this engine.
    pub fn planner(&self) -> Planner<'_, S> {
        Planner {
            project: &self.project,
            store: &*self.store,
            host: &self.host,
            routes: &self.routes,
            calendar: &self.calendar,
        }
    }

    /// Validates a rollout file against everything it names and works out
    /// who gets what when. Writes nothing. See [`Planner::plan`].
    pub async fn plan(&self, path: &Path, now: DateTime<Utc>) -> Result<Planned, Problems> {
        self.planner().plan(path, now).await
    }

    /// Persists a planned rollout: pins the item version and writes every
    /// member (the audience is resolved again in the store, in the same
    /// transaction) and team post. Nothing is sent here. Returns how many
    /// members were written.
    pub async fn start(&self, planned: &Planned, now: DateTime<Utc>) -> Result<u64, Problems> {
        // A bulletin's id is taken too: its issues' rollouts are named after it.
        if self.store.rollout(&planned.definition.id).await?.is_some()
            || self.store.bulletin(&planned.definition.id).await?.is_some()
        {
            return Err(Problems::one(format!(
                "a rollout or bulletin \"{}\" already exists\n  help: give the new rollout its own id, or see it with `cascade status {}`",
                planned.definition.id, planned.definition.id
            )));
        }
        self.store
            .save_item(&planned.item.item, &planned.item.text)
            .await?;
        let definition =
            serde_json::to_string(&planned.definition).expect("definitions are plain data");
        let written = self
            .store
            .create_rollout(NewRollout {
                id: &planned.definition.id,
                item_id: &planned.item.item.id,
                item_version: &planned.item.item.version.0,
                definition: &definition,
                members: &[],
                audience: Some(&planned.audience),
                team_posts: &planned
                    .team_posts
                    .iter()
                    .map(|p| NewTeamPost {
                        team_id: p.team_id.clone(),
                        channel: p.channel.clone(),
                        address: p.address.clone(),
                        due_at: p.due_at,
                    })
                    .collect::<Vec<_>>(),
                now: millis(now),
            })
            .await?;
        Ok(written)
    }

    /// Sets up `[induction]`: starts each key item's rollout not yet
    /// started, with no members; people new in later imports join. See
    /// [`crate::induction::set_up`].
    pub async fn start_induction(
        &self,
        now: DateTime<Utc>,
    ) -> Result<crate::induction::SetUp, Problems> {
        crate::induction::set_up(&self.planner(), now).await
    }

    /// Issues a person a link code and sends it to them through a channel
    /// (email, typically), so the code never passes through whoever runs
    /// the command. `Ok(Err(reason))` when this one person could not be sent it.
    pub async fn send_link_code(
        &self,
        key: &LinkCodeKey,
        channel: &str,
        person: &cascade_model::directory::Person,
        now: DateTime<Utc>,
    ) -> Result<Result<(), String>, Problems> {
        let Some(route) = self.routes.iter().find(|r| r.instance == channel) else {
            return Err(Problems::one(format!(
                "no channel \"{channel}\" is configured\n  help: use the name of one of the [[channels]] in cascade.toml"
            )));
        };
        let identities = self.store.identities(&person.id).await?;
        let Some(identity) = identities.iter().find(|i| i.channel == route.identity) else {
            return Ok(Err(format!("has no {} address", route.identity)));
        };
        let code = inbound::issue_code(&*self.store, key, &person.id, millis(now)).await?;
        let until = now.with_timezone(&self.calendar.time_zone())
            + chrono::Duration::milliseconds(inbound::CODE_LIFETIME_MS);
        let partnership = &self.project.config.partnership.name;
        let text = format!(
            "Hello {},\n\nTo receive learning from {partnership} in chat and acknowledge it with one tap, send this message to the partnership's bot:\n\n/link {code}\n\nThe code works once, until {}. If you did not expect this message, you can ignore it: nothing changes until the code is used.",
            person.display_name,
            until.format("%-d %B %Y at %H:%M"),
        );
        let hash = key.hash(&code);
        let request = SendRequest {
            delivery_id: format!("link-code-{}", &hash[..16]),
            idempotency_key: format!("link-code/{hash}"),
            channel: route.kind.clone(),
            recipient: Recipient {
                person_id: person.id.clone(),
                display_name: person.display_name.clone(),
                address: identity.address.clone(),
            },
            message: Message {
                subject: Some(format!("Your code to link a chat account to {partnership}")),
                parts: route
                    .formats
                    .iter()
                    .map(|&format| MessagePart {
                        format: format.name().into(),
                        chunks: vec![crate::delivery::paragraphs(format, &text)],
                    })
                    .collect(),
            },
            actions: Vec::new(),
            reply: None,
            list: None,
            post: None,
        };
        Ok(match self.host.send(channel, &request).await {
            Ok(SendResult::Delivered { .. }) => Ok(()),
            Ok(SendResult::Retry { reason, .. } | SendResult::Failed { reason, .. }) => Err(reason),
            Err(e) => Err(e.to_string()),
        })
    }

    /// The acknowledgement link signer, when `[ack]` is configured. A bad key
    /// stops start-up with the reason, never the key.
    pub fn ack_links(
        &self,
    ) -> Result<Option<(crate::ack::AckConfig, Arc<crate::ack::AckKeys>)>, Problems> {
        crate::planner::ack_links(&self.project)
    }

    /// Everything the scheduler and dispatcher need, ready to tick.
    pub async fn runner(self, settings: DispatchSettings) -> Result<Runner<S>, Problems> {
        let config = &self.project.config;
        let version = self.store.directory_version().await?;
        let world = Arc::new(SharedWorld::new(
            World::load(&*self.store, self.routes.clone()).await?,
            Some(version),
        ));
        let keys = ActionKey::new(self.store.engine_secret(inbound::actions::KEY_NAME).await?);
        let link_codes = self
            .project
            .link_code_key()
            .map_err(|e| Problems::one(e.to_string()))?;
        let guard = PrivacyGuard::new(&config.privacy).map_err(|e| Problems::one(e.to_string()))?;
        let rollouts = Arc::new(Rollouts::new(
            self.calendar.clone(),
            self.project.taxonomy.clone(),
            guard,
        ));
        let composer = Arc::new(Composer {
            renderer: self.project.renderer().map_err(Problems)?,
            taxonomy: self.project.taxonomy.clone(),
            partnership_name: config.partnership.name.clone(),
            ack_links: self.ack_links()?,
            actions: keys.clone(),
            time_zone: self.calendar.time_zone(),
            bodies: Default::default(),
        });
        let host = Arc::new(self.host);
        let poll_lease = settings.poll_lease;
        let dispatcher = Dispatcher::new(
            self.store.clone(),
            host.clone(),
            rollouts.clone(),
            world.clone(),
            composer.clone(),
            settings.clone(),
        );
        let team_posts = TeamPoster {
            store: self.store.clone(),
            host: host.clone(),
            rollouts: rollouts.clone(),
            world: world.clone(),
            composer,
            settings,
            owner: dispatcher.owner().to_owned(),
        };
        let restarts = self
            .waiting
            .into_iter()
            .map(|channel| Restart {
                channel,
                failures: 1,
                next: tokio::time::Instant::now() + RESTART_FIRST_WAIT,
                trying: false,
            })
            .collect();
        let induction_digests = config
            .induction
            .as_ref()
            .and_then(|i| i.timing().ok())
            .map(|t| crate::delivery::induction_digest::DigestSchedule::new(t.digest_day, t.time));
        Ok(Runner {
            induction_digests,
            bulletins: crate::bulletins::Issuer::new(self.calendar.clone(), self.routes.clone()),
            restarts: Arc::new(std::sync::Mutex::new(restarts)),
            root: self.project.root.clone(),
            responses: Responses::new(self.store.clone()),
            store: self.store,
            host,
            rollouts,
            world,
            dispatcher,
            team_posts,
            inbound: tokio::sync::Mutex::new(self.inbound),
            keys,
            link_codes,
            conversations: Conversations::default(),
            replayed: std::sync::atomic::AtomicBool::new(false),
            replies: AtomicU64::new(1),
            sending_replies: std::sync::Mutex::default(),
            turns: self.turns,
            poll_lease,
            taken: Arc::default(),
            shared: None,
            stale_checked: std::sync::Mutex::default(),
        })
    }

    /// Starts the channels and runs the scheduler and dispatcher; see
    /// [`Runner::serve`].
    pub async fn serve(
        self,
        shutdown: tokio::sync::watch::Receiver<bool>,
        until: Until,
        settings: DispatchSettings,
    ) -> Result<ServeReport, Problems> {
        self.runner(settings).await?.serve(shutdown, until).await
    }
}

/// The scheduler and dispatcher of an opened engine, driven by whatever
/// clock the caller keeps: `cascade serve` uses the real one, tests their own.
pub struct Runner<S> {
    store: Arc<S>,
    host: Arc<PluginHost>,
    rollouts: Arc<Rollouts>,
    world: Arc<SharedWorld>,
    dispatcher: Dispatcher<S>,
    /// Posts in team channels and their live counts.
    team_posts: TeamPoster<S>,
    /// Checks and records what people do with their deliveries in chat.
    responses: Responses<S>,
    inbound: tokio::sync::Mutex<mpsc::UnboundedReceiver<Inbound>>,
    /// Signs the ids of chat buttons.
    keys: ActionKey,
    /// Hashes the link codes people send.
    link_codes: LinkCodeKey,
    conversations: Conversations,
    /// Whether the inbox rows a previous run left unhandled were handled.
    replayed: std::sync::atomic::AtomicBool,
    replies: AtomicU64,
    /// Replies being sent in the background, waited for (a while) by
    /// [`Runner::stop`], so a clean stop loses none of them.
    /// (Handles, not a `JoinSet`: a runner dropped without a stop leaves
    /// them running, as before.)
    sending_replies: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Channels that are down, tried again with a growing wait.
    restarts: Arc<std::sync::Mutex<Vec<Restart>>>,
    /// The project folder, which channel configuration is relative to.
    root: std::path::PathBuf,
    /// Makes recurring bulletins' occurrences as they fall due.
    bulletins: crate::bulletins::Issuer,
    /// When champions get their joiners' induction progress, with
    /// `[induction]`.
    induction_digests: Option<crate::delivery::induction_digest::DigestSchedule>,
    /// Which channel instances may long-poll now (see [`inbound::polls`]).
    turns: Arc<PollTurns>,
    /// How long a poll lease lasts unrenewed.
    poll_lease: Duration,
    /// Channels whose poll lease `serve` took since the last round: their
    /// inbox rows left unhandled are handled next.
    taken: Arc<std::sync::Mutex<Vec<String>>>,
    /// With other serves on the same store (PostgreSQL): how long this
    /// serve's liveness lease lasts; see [`Runner::shared_with_other_serves`].
    shared: Option<Duration>,
    /// With other serves: when this one last looked for inbox rows a serve
    /// stored and did not live to handle ([`STALE_INBOX_EVERY`]).
    stale_checked: std::sync::Mutex<Option<DateTime<Utc>>>,
}

/// Renews `owner`'s liveness lease until `now + lease`, then takes back
/// the rows leased by owners without a live one. Returns the rows taken
/// back.
async fn keep_alive<S: cascade_store::Leases + cascade_store::Outbox>(
    store: &S,
    owner: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<u64, cascade_store::StoreError> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    store
        .hold_lease(
            &cascade_store::serve_lease(owner),
            owner,
            millis(now),
            millis(until),
        )
        .await?;
    let mut alive: Vec<String> = store
        .live_leases(cascade_store::SERVE_LEASE_PREFIX, millis(now))
        .await?
        .into_iter()
        .map(|(_, owner)| owner)
        .collect();
    if !alive.iter().any(|o| o == owner) {
        alive.push(owner.to_owned());
    }
    store.take_back_leases(millis(now), &alive).await
}

/// Finishes what recordings left for later
/// ([`cascade_store::Outbox::settle`]); a failure is said and left for the
/// next time.
async fn settle<S: cascade_store::Outbox>(store: &S) {
    if let Err(e) = store.settle().await {
        tracing::warn!(
            "could not link recorded sends into the evidence chain or fold their totals yet: {e}"
        );
    }
}

/// Keeps `owner` alive to the other serves, in a task of its own so that
/// a slow round of the serve loop (a long schedule, a wait for the
/// database) does not let its lease run out while it works: renews every
/// sixth of `lease`, takes back the rows of serves whose lease ran out,
/// and finishes what recordings left for later: sends recorded while
/// another serve was linking evidence, totals not folded yet
/// ([`cascade_store::Outbox::settle`]).
fn spawn_heartbeat<S: cascade_store::Leases + cascade_store::Outbox + 'static>(
    store: Arc<S>,
    owner: String,
    lease: Duration,
) -> Heartbeat {
    Heartbeat(tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease / 6).await;
            match keep_alive(&*store, &owner, lease, Utc::now()).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(
                    rows,
                    "took back the rows of a serve that stopped without finishing them; they are sent now"
                ),
                Err(e) => tracing::warn!("could not renew this serve's lease: {e}"),
            }
            settle(&*store).await;
        }
    }))
}

/// The heartbeat task, stopped when the serve stops however it stops.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The first wait before a store that does not answer is tried again; it
/// doubles with each try, up to [`OUTAGE_LONGEST_WAIT`].
pub const OUTAGE_FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a store that does not answer.
pub const OUTAGE_LONGEST_WAIT: Duration = Duration::from_secs(15);
/// How often a serve says again that its store still does not answer.
pub const OUTAGE_SAID_EVERY: Duration = Duration::from_secs(60);
/// Rounds that may fail running while the store answers (a fault of the
/// round, not of the database) before the serve stops with the error.
pub const ROUND_FAULTS_AT_MOST: u32 = 3;

/// A run of failed rounds ([`Runner::ride_out`]).
struct Outage {
    /// When the store was first found not answering, in this run.
    since: Option<tokio::time::Instant>,
    /// Tries of a store that does not answer, in this run.
    tries: u32,
    /// Failed rounds running while the store answered.
    faults: u32,
    /// When the outage was last logged.
    said: tokio::time::Instant,
}

impl Default for Outage {
    fn default() -> Self {
        Outage {
            since: None,
            tries: 0,
            faults: 0,
            said: tokio::time::Instant::now(),
        }
    }
}

impl Outage {
    /// A round succeeded: says so if the store had stopped answering.
    fn over(&mut self) {
        if let Some(since) = self.since {
            tracing::info!(
                "the database answers again after {} s; sending and recording go on",
                since.elapsed().as_secs()
            );
        }
        *self = Outage::default();
    }
}

/// The first wait before a channel that could not start is tried again; it
/// doubles with each failure, up to [`RESTART_LONGEST_WAIT`]. Long enough
/// for a provider's usual retry-after (Discord asks for seconds).
pub const RESTART_FIRST_WAIT: Duration = Duration::from_secs(15);
/// The longest wait between two tries of a channel that is down.
pub const RESTART_LONGEST_WAIT: Duration = Duration::from_secs(600);

/// A channel that is down and when it is tried next.
struct Restart {
    channel: ChannelConfig,
    failures: u32,
    next: tokio::time::Instant,
    /// A start is under way.
    trying: bool,
}

impl<S> Runner<S> {
    /// The store the runner schedules from and records to.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The plugin host, with the channel instances started.
    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// The rollouts being served, loaded as they are needed.
    pub fn rollouts(&self) -> &Rollouts {
        &self.rollouts
    }

    /// The directory as loaded for serving, with the channel routes.
    pub fn world(&self) -> Arc<World> {
        self.world.get()
    }

    /// Signs the ids of chat buttons.
    pub fn keys(&self) -> &ActionKey {
        &self.keys
    }

    /// Hashes the link codes people send.
    pub fn link_codes(&self) -> &LinkCodeKey {
        &self.link_codes
    }
}

impl<S: AllStores> Runner<S> {
    /// The id this runner takes leases in: its outbox claims and, while
    /// serving, the poll leases of the channels that long-poll.
    pub fn owner(&self) -> &str {
        self.dispatcher.owner()
    }

    /// Runs the scheduler and dispatcher until `shutdown` turns true, or
    /// until there is nothing to do as `until` says; then waits for the
    /// sends in flight (up to [`DispatchSettings::stop_within`], leaving
    /// the rest to their lease) and stops the channels.
    pub async fn serve(
        self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        until: Until,
    ) -> Result<ServeReport, Problems> {
        let mut report = ServeReport::default();
        let mut next_schedule = Utc::now();
        // Dropped (so stopped) with this future, however it ends: a serve
        // aborted mid-way renews no lease, as if it had been killed.
        let keeping = AbortOnDrop(self.turns.is_leased().then(|| {
            tokio::spawn(polls::keep_leases(
                self.store.clone(),
                self.turns.clone(),
                self.owner().to_owned(),
                self.poll_lease,
                self.taken.clone(),
                || Utc::now().timestamp_millis(),
            ))
        }));
        // Alive to the other serves before any claim, then kept alive by a
        // task of its own.
        let heartbeat = match self.shared {
            Some(lease) => {
                match self.keep_alive(Utc::now()).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(
                        rows,
                        "took back the rows of a serve that stopped without finishing them; they are sent now"
                    ),
                    Err(e) => tracing::warn!("could not renew this serve's lease: {e}"),
                }
                Some(spawn_heartbeat(
                    self.store.clone(),
                    self.dispatcher.owner().to_owned(),
                    lease,
                ))
            }
            None => None,
        };
        let mut outage = Outage::default();
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self
                .round(&mut report, &mut next_schedule, &mut shutdown, until)
                .await
            {
                Ok(false) => outage.over(),
                Ok(true) => break,
                Err(problems) => {
                    if !self.ride_out(&problems, &mut outage, &mut shutdown).await {
                        return Err(problems);
                    }
                }
            }
        }
        let within = self.dispatcher.stop_within();
        let left = self.dispatcher.finish(within, Utc::now).await?;
        if left > 0 {
            tracing::warn!(
                left,
                "stopping with sends still unanswered after {} s; they are sent again once their lease runs out",
                within.as_secs()
            );
        }
        settle(&*self.store).await;
        // Nothing more is polled or stored here; what was stored and not
        // handled is handled by whoever takes the lease, at once.
        drop(keeping);
        self.turns.end_all();
        self.stop().await;
        drop(heartbeat);
        self.let_go_of_serve_lease().await;
        if self.turns.is_leased() {
            polls::let_go(&*self.store, self.owner(), &self.turns.polling()).await;
        }
        Ok(report)
    }

    /// One round of the serve loop: the scheduler when due, team posts,
    /// inbound events, half a second of sending, and when nothing was
    /// claimed, a wait for work. True when `until` says the serve is done.
    async fn round(
        &self,
        report: &mut ServeReport,
        next_schedule: &mut DateTime<Utc>,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        until: Until,
    ) -> Result<bool, Problems> {
        let now = Utc::now();
        if now >= *next_schedule {
            let queued = self.schedule(now).await?;
            if queued > 0 {
                tracing::info!(queued, "queued the messages that fell due");
            }
            report.queued += queued;
            self.team_posts(now).await?;
            *next_schedule = now + chrono::Duration::seconds(1);
        }
        self.restart_channels();
        self.handle_inbound(now).await?;
        // Half a second of sending at most, so inbound events (a button
        // press waiting for its answer) and newly due steps are handled
        // between rounds.
        let claimed = self
            .dispatch_for(Duration::from_millis(500), shutdown)
            .await?;
        if claimed > 0 {
            tracing::debug!(claimed, "dispatched");
        }
        report.dispatched += claimed;
        if claimed == 0 {
            if until != Until::Stopped && self.idle(Utc::now(), until).await? {
                return Ok(true);
            }
            if self.wait_for_work(shutdown).await? {
                *next_schedule = Utc::now();
            }
        }
        Ok(false)
    }

    /// After a failed round, decides whether the serve goes on. When the
    /// store does not answer (the database went away: restarted, failed
    /// over, cut off), the serve waits for it, looking again after ever
    /// longer waits up to [`OUTAGE_LONGEST_WAIT`], and goes on once it is
    /// back: sends in flight finish and their outcomes, kept in memory,
    /// are recorded then; acknowledgements meanwhile are answered 503 (try
    /// again), so nothing is taken that is not recorded. It says so when
    /// the outage begins, every [`OUTAGE_SAID_EVERY`] while it lasts, and
    /// when it ends. When the store answers, the fault was the round's
    /// own: tried again after a second, up to [`ROUND_FAULTS_AT_MOST`]
    /// times running, after which the serve stops with it (false).
    async fn ride_out(
        &self,
        problems: &Problems,
        outage: &mut Outage,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let wait = match self.store.reachable().await {
            Ok(()) => {
                outage.faults += 1;
                if outage.faults > ROUND_FAULTS_AT_MOST {
                    return false;
                }
                tracing::warn!(
                    "a round of work failed ({problems}); tried again in 1 s ({} of {ROUND_FAULTS_AT_MOST})",
                    outage.faults
                );
                Duration::from_secs(1)
            }
            Err(e) => {
                outage.faults = 0;
                let now = tokio::time::Instant::now();
                let since = *outage.since.get_or_insert(now);
                outage.tries += 1;
                let wait = OUTAGE_FIRST_WAIT
                    .saturating_mul(1 << outage.tries.min(10).saturating_sub(1))
                    .min(OUTAGE_LONGEST_WAIT);
                if outage.tries == 1 {
                    tracing::error!(
                        "the database does not answer ({e}); sending and recording wait for it, and what was sent meanwhile is recorded once it is back (tried again in {} s)",
                        wait.as_secs()
                    );
                    outage.said = now;
                } else if now - outage.said >= OUTAGE_SAID_EVERY {
                    tracing::error!(
                        "the database has not answered for {} s ({e}); tried again in {} s",
                        (now - since).as_secs(),
                        wait.as_secs()
                    );
                    outage.said = now;
                }
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
        true
    }

    /// With nothing claimed, waits until there may be work: the store's
    /// wake-up (work queued or made due sooner, by any process on
    /// PostgreSQL), the next due time the store knows, an inbound event
    /// (handled here), shutdown, or at most
    /// [`DispatchSettings::idle_wait`]. A store that cannot wake it for
    /// other processes' work is looked at every [`POLL_WAIT`] as before,
    /// work due that no channel took every [`OVERDUE_WAIT`]; with sends
    /// still in flight it does not wait (the next round waits for them).
    /// Woken by the store, it returns no sooner than [`POLL_WAIT`] after
    /// it began, so a burst of wake-ups (other serves recording retries)
    /// makes no more rounds than polling did. True when the wait ran out
    /// at a due time (or its longest), so the scheduler should run at once;
    /// after a wake-up it runs at its usual pace (at once after a second
    /// idle).
    async fn wait_for_work(
        &self,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<bool, Problems> {
        if self.dispatcher.unfinished().await > 0 {
            return Ok(false);
        }
        let began = tokio::time::Instant::now();
        let (wait, until_due) = if self.store.hears_other_writers() {
            let now = millis(Utc::now());
            let longest = self.dispatcher.idle_wait();
            match self.store.next_due_at(now).await? {
                Some(at) if at <= now => (OVERDUE_WAIT, false),
                Some(at) => {
                    let until = Duration::from_millis(u64::try_from(at - now).unwrap_or(0));
                    (until.min(longest), true)
                }
                None => (longest, true),
            }
        } else {
            (POLL_WAIT, false)
        };
        let stopping = async {
            if shutdown.changed().await.is_err() {
                // Its sender is gone: nothing can stop it this way any more.
                std::future::pending::<()>().await;
            }
        };
        let mut events = self.inbound.lock().await;
        let event = tokio::select! {
            wake = self.store.wait_for_work(wait) => {
                if wake == Wake::Work {
                    drop(events);
                    tokio::time::sleep_until(began + POLL_WAIT).await;
                    return Ok(false);
                }
                return Ok(until_due);
            }
            Some(event) = events.recv() => event,
            () = stopping => return Ok(false),
        };
        drop(events);
        self.handle_event(&event, Utc::now()).await?;
        Ok(false)
    }

    /// Tries again, in the background, each channel that is down and
    /// whose wait is over; its rows are sent once it runs.
    fn restart_channels(&self) {
        let mut restarts = self.restarts.lock().unwrap_or_else(|p| p.into_inner());
        restarts.retain(|r| !self.host.is_up(&r.channel.name));
        let now = tokio::time::Instant::now();
        for restart in restarts.iter_mut().filter(|r| !r.trying && r.next <= now) {
            restart.trying = true;
            let (host, channel, root) = (
                self.host.clone(),
                restart.channel.clone(),
                self.root.clone(),
            );
            let restarts = Arc::clone(&self.restarts);
            tokio::spawn(async move {
                let started = host.start(&channel, &root).await;
                let mut restarts = restarts.lock().unwrap_or_else(|p| p.into_inner());
                let Some(restart) = restarts.iter_mut().find(|r| r.channel.name == channel.name)
                else {
                    return;
                };
                restart.trying = false;
                match started {
                    Ok(()) => {
                        tracing::info!(channel = %channel.name, "the channel started; its waiting messages are sent now")
                    }
                    Err(e) => {
                        let wait = RESTART_FIRST_WAIT
                            .saturating_mul(1 << restart.failures.min(10))
                            .min(RESTART_LONGEST_WAIT);
                        restart.failures += 1;
                        restart.next = tokio::time::Instant::now() + wait;
                        tracing::error!(
                            channel = %channel.name,
                            "the channel is still down, tried again in {} s: {e}",
                            wait.as_secs()
                        );
                    }
                }
            });
        }
    }

    /// Makes the recurring bulletins' occurrences due at `now`, then
    /// queues every step due; returns the rows queued.
    pub async fn schedule(&self, now: DateTime<Utc>) -> Result<usize, Problems> {
        self.bulletins
            .make_due(&self.root, &*self.store, &self.host, now)
            .await?;
        self.refresh_world().await?;
        let world = self.world.get();
        let mut queued = schedule_due(&*self.store, &self.rollouts, &world, now).await?;
        if let Some(digests) = &self.induction_digests {
            queued += crate::delivery::induction_digest::schedule_digests(
                &*self.store,
                &self.rollouts,
                &world,
                digests,
                now,
            )
            .await?;
        }
        Ok(queued)
    }

    /// Loads the directory again when an import changed it while serving
    /// (joiners, movers, leavers, new addresses), so what is scheduled and
    /// sent from now on uses it; sends under way keep the one they began with.
    pub async fn refresh_world(&self) -> Result<(), Problems> {
        let version = self.store.directory_version().await?;
        if self.world.stamp() == Some(version) {
            return Ok(());
        }
        let routes: Vec<ChannelRoute> = self.world.get().routes.values().cloned().collect();
        let world = World::load(&*self.store, routes).await?;
        tracing::info!(
            people = world.directory.people.len(),
            "the directory changed in the store; serving the new one"
        );
        self.world.replace(world, Some(version));
        Ok(())
    }

    /// Takes back at once the rows leased by dispatchers that are no longer
    /// alive: with the project's serve lock held, that is every owner but
    /// this runner's own (a serve killed mid-send left them leased). They
    /// are claimed again by this runner's next round instead of when their
    /// lease runs out; the poll leases such a serve held are let go, so
    /// this one polls at once. Returns the rows taken back.
    pub async fn take_back_leases(
        &self,
        _held: &crate::serve_lock::ServeLock,
        now: DateTime<Utc>,
    ) -> Result<u64, Problems> {
        let owner = self.dispatcher.owner().to_owned();
        // Likewise the channels' poll leases: taken now, not when they run out.
        for (name, holder) in self
            .store
            .live_leases(cascade_store::POLL_LEASE_PREFIX, millis(now))
            .await?
        {
            if holder != owner {
                self.store.let_go_lease(&name, &holder).await?;
            }
        }
        Ok(self.store.take_back_leases(millis(now), &[owner]).await?)
    }

    /// Several serves share this store (PostgreSQL): [`Runner::serve`]
    /// then says this one is alive with the lease `serve:<owner>`, renewed
    /// every sixth of `lease` by a task of its own, and takes back the rows leased by serves
    /// whose lease ran out (killed, or cut off from the database). So a
    /// dead serve's rows are sent again within `lease` plus a renewal,
    /// not when their own, longer lease runs out.
    pub fn shared_with_other_serves(mut self, lease: Duration) -> Self {
        self.shared = Some(lease);
        self
    }

    /// With other serves (see [`Runner::shared_with_other_serves`]): renews
    /// this serve's liveness lease, then takes back the rows leased by
    /// owners without one. Returns the rows taken back.
    pub async fn keep_alive(&self, now: DateTime<Utc>) -> Result<u64, Problems> {
        let Some(lease) = self.shared else {
            return Ok(0);
        };
        Ok(keep_alive(&*self.store, self.dispatcher.owner(), lease, now).await?)
    }

    /// Gives up this serve's liveness lease (a clean stop), so the others
    /// do not wait for it to run out.
    async fn let_go_of_serve_lease(&self) {
        if self.shared.is_none() {
            return;
        }
        let owner = self.dispatcher.owner();
        if let Err(e) = self
            .store
            .let_go_lease(&cascade_store::serve_lease(owner), owner)
            .await
        {
            tracing::warn!(
                "could not give up this serve's lease; the others wait for it to run out: {e}"
            );
        }
    }

    /// Sends one batch of due rows; returns the rows claimed.
    pub async fn dispatch(&self, now: DateTime<Utc>) -> Result<usize, Problems> {
        Ok(self.dispatcher.dispatch_once(now).await?)
    }

    /// Sends what is due by the real clock, continuously, for up to
    /// `for_at_most` (see [`Dispatcher::dispatch_for`]); returns the rows
    /// claimed.
    pub async fn dispatch_for(
        &self,
        for_at_most: Duration,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<usize, Problems> {
        Ok(self
            .dispatcher
            .dispatch_for(Utc::now, for_at_most, stop)
            .await?)
    }

    /// Posts the team posts due at `now`, then edits the posts whose count
    /// changed and may be edited now; returns (posts, edits) attempted.
    pub async fn team_posts(&self, now: DateTime<Utc>) -> Result<(usize, usize), Problems> {
        let posted = self.team_posts.post_due(now).await?;
        let edited = self.team_posts.refresh_counts(now).await?;
        Ok((posted, edited))
    }

    /// Schedules, posts and refreshes team posts, then dispatches until
    /// nothing more is due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<(usize, usize), Problems> {
        let queued = self.schedule(now).await?;
        self.team_posts(now).await?;
        let mut dispatched = 0;
        loop {
            let claimed = self.dispatch(now).await?;
            if claimed == 0 {
                return Ok((queued, dispatched));
            }
            dispatched += claimed;
        }
    }

    /// Handles every inbound event waiting: links accounts, records
    /// acknowledgements, answers and cascade confirmations from the right
    /// accounts, and answers each event that asks for it through its channel.
    pub async fn handle_inbound(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboundOutcome>, Problems> {
        let mut events = self.inbound.lock().await;
        let mut outcomes = Vec::new();
        let first = !self.replayed.swap(true, Ordering::SeqCst);
        let taken = std::mem::take(&mut *self.taken.lock().unwrap_or_else(|p| p.into_inner()));
        // A channel that long-polls under a lease is another process's
        // while it holds the lease: its rows wait until this one takes it.
        let leased: Vec<String> = if self.turns.is_leased() {
            self.turns.polling()
        } else {
            Vec::new()
        };
        if first {
            // Conversations a previous run left open carry on, by the
            // clock the runner is driven by.
            self.conversations
                .load(
                    &*self.store,
                    self.world.get().routes.keys().map(String::as_str),
                    millis(now),
                )
                .await?;
            // Handled rows are kept a while as a record of what arrived.
            self.store.inbox_sweep(millis(now) - INBOX_KEPT_MS).await?;
        }
        for channel in &taken {
            // The previous holder may have moved its conversations on.
            if !first {
                self.conversations
                    .reload(&*self.store, channel, millis(now))
                    .await?;
            }
        }
        if first || !taken.is_empty() {
            // What a crash (or the previous holder of a poll lease) left
            // in the inbox comes first, in arrival order.
            for row in self.store.inbox_pending().await? {
                let ours = if leased.contains(&row.channel) {
                    taken.contains(&row.channel)
                } else {
                    first
                };
                if !ours {
                    continue;
                }
                if let Some(outcome) = self.handle_row(row, now).await? {
                    outcomes.push(outcome);
                }
            }
            if !outcomes.is_empty() {
                tracing::info!(
                    events = outcomes.len(),
                    "handled the inbound events stored but not handled before (by a previous run, or the process that polled before this one)"
                );
            }
        }
        if !first {
            outcomes.extend(self.handle_stale_rows(now, &leased).await?);
        }
        while let Ok(event) = events.try_recv() {
            if let Some(outcome) = self.handle_event(&event, now).await? {
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
    }

    /// Handles an inbox row read back from the store; one that cannot be
    /// read is set aside (marked handled) with an error in the log.
    async fn handle_row(
        &self,
        row: cascade_store::InboxRow,
        now: DateTime<Utc>,
    ) -> Result<Option<InboundOutcome>, Problems> {
        let event = match serde_json::from_str(&row.event) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(channel = %row.channel, event_id = %row.event_id, "an inbox row could not be read, so it is set aside: {e}");
                self.store
                    .inbox_handled(&row.channel, &row.event_id, millis(now))
                    .await?;
                return Ok(None);
            }
        };
        let event = Inbound {
            instance: row.channel,
            event,
        };
        self.handle_event(&event, now).await
    }

    /// With other serves on the store: every [`STALE_INBOX_EVERY`], the
    /// inbox rows still unhandled a liveness lease after they arrived.
    /// The serve that stored such a row (it hands its own on at once) was
    /// killed or cut off between storing and handling it, and, with no
    /// restart, nobody else would ever handle it: a webhook's or a
    /// gateway's event (Teams, Discord, Telegram by webhook) is stored by
    /// whichever serve received it. One serve at a time looks (the lease
    /// [`STALE_INBOX_LEASE`]); rows of channels that long-poll under a
    /// lease are left to that lease's holder, which handles them when it
    /// takes the lease over.
    async fn handle_stale_rows(
        &self,
        now: DateTime<Utc>,
        leased: &[String],
    ) -> Result<Vec<InboundOutcome>, Problems> {
        let Some(lease) = self.shared else {
            return Ok(Vec::new());
        };
        {
            let mut checked = self.stale_checked.lock().unwrap_or_else(|p| p.into_inner());
            if checked.is_some_and(|at| {
                now - at
                    < chrono::Duration::from_std(STALE_INBOX_EVERY).unwrap_or(chrono::Duration::MAX)
            }) {
                return Ok(Vec::new());
            }
            *checked = Some(now);
        }
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let held = self
            .store
            .hold_lease(
                STALE_INBOX_LEASE,
                self.owner(),
                millis(now),
                millis(now).saturating_add(lease_ms),
            )
            .await?;
        if !held {
            return Ok(Vec::new());
        }
        let before = millis(now).saturating_sub(lease_ms);
        let mut outcomes = Vec::new();
        for row in self.store.inbox_pending().await? {
            if row.received_at > before || leased.contains(&row.channel) {
                continue;
            }
            tracing::warn!(
                channel = %row.channel,
                event_id = %row.event_id,
                "handling an inbound event another serve stored but did not handle (it stopped or was cut off)"
            );
            if let Some(outcome) = self.handle_row(row, now).await? {
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
    }

    /// Handles one inbound event and answers it when it asks for an answer;
    /// `None` for an event from a channel that is not configured.
    pub async fn handle_event(
        &self,
        event: &Inbound,
        now: DateTime<Utc>,
    ) -> Result<Option<InboundOutcome>, Problems> {
        let stored = event.event.event_id.as_deref();
        if let Some(event_id) = stored
            && self
                .store
                .inbox_is_handled(&event.instance, event_id)
                .await?
        {
            // Handled already (a redelivery queued twice in this run).
            return Ok(None);
        }
        let world = self.world.get();
        let Some(route) = world.routes.get(&event.instance) else {
            tracing::warn!(channel = %event.instance, "an inbound event from an unconfigured channel");
            if let Some(event_id) = stored {
                self.store
                    .inbox_handled(&event.instance, event_id, millis(now))
                    .await?;
            }
            return Ok(None);
        };
        let handled = self
            .desk()
            .handle(event, &route.identity, millis(now))
            .await?;
        // Conversations first: an event marked handled must have left its
        // conversation where the next answer expects it.
        self.conversations.save(&*self.store, millis(now)).await?;
        if let Some(event_id) = stored {
            self.store
                .inbox_handled(&event.instance, event_id, millis(now))
                .await?;
        }
        if let (Some(id), Some(address)) = (&event.event.id, &event.event.address) {
            self.reply(&event.instance, route, id, address, handled.answer);
        }
        Ok(Some(handled.outcome))
    }

    /// What handling inbound events needs, borrowed from the runner.
    pub fn desk(&self) -> Desk<'_, S> {
        Desk {
            store: &self.store,
            responses: &self.responses,
            world: self.world.get(),
            rollouts: &self.rollouts,
            keys: &self.keys,
            link_codes: &self.link_codes,
            conversations: &self.conversations,
        }
    }

    /// Sends the answer to an event in the background: a reply is not
    /// evidence, so it is not queued durably, and a slow provider must not
    /// hold up the next event.
    fn reply(
        &self,
        instance: &str,
        route: &ChannelRoute,
        event_id: &str,
        address: &str,
        answer: Answer,
    ) {
        let n = self.replies.fetch_add(1, Ordering::Relaxed);
        let request = SendRequest {
            delivery_id: format!("reply-{n}"),
            idempotency_key: format!("reply:{event_id}"),
            channel: route.kind.clone(),
            recipient: Recipient {
                person_id: String::new(),
                display_name: String::new(),
                address: address.to_owned(),
            },
            message: Message {
                subject: None,
                parts: vec![MessagePart {
                    format: cascade_plugin_api::Format::Text,
                    chunks: if answer.text.is_empty() {
                        Vec::new()
                    } else {
                        vec![answer.text]
                    },
                }],
            },
            actions: answer.actions,
            reply: Some(Reply {
                event_id: event_id.to_owned(),
                notice: answer.notice,
                status: answer.status,
                keep_actions: answer.keep_actions,
                private: true,
            }),
            list: None,
            post: None,
        };
        let host = self.host.clone();
        let instance = instance.to_owned();
        let mut sending = self
            .sending_replies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Those already sent are let go.
        sending.retain(|reply| !reply.is_finished());
        sending.push(tokio::spawn(async move {
            match host.send(&instance, &request).await {
                Ok(SendResult::Delivered { .. }) => {}
                Ok(other) => {
                    tracing::warn!(channel = %instance, "a reply was not delivered: {other:?}")
                }
                Err(e) => tracing::warn!(channel = %instance, "a reply was not delivered: {e}"),
            }
        }));
    }

    /// Nothing to send now (nothing due or leased; with
    /// [`Until::NothingLeft`], nothing waiting to be retried either), no
    /// member step due at `now`, and no team post due or waiting for an
    /// edit of its count.
    pub async fn idle(&self, now: DateTime<Utc>, until: Until) -> Result<bool, Problems> {
        let left = match until {
            Until::NothingLeft => self.store.outstanding().await?,
            Until::Stopped | Until::NothingDueNow => self.store.due_now(millis(now)).await?,
        };
        Ok(left == 0
            && self.store.due_members(millis(now), 1).await?.is_empty()
            && self.store.team_posts_due(millis(now)).await? == 0
            && self.store.team_post_edits_due(millis(now)).await? == 0)
    }

    /// Waits (up to [`REPLIES_STOP_WAIT`]) for the replies being sent,
    /// then stops every channel instance at once, each given its stop
    /// timeout to finish its sends.
    pub async fn stop(&self) {
        let mut replies = std::mem::take(
            &mut *self
                .sending_replies
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        replies.retain(|reply| !reply.is_finished());
        if !replies.is_empty() {
            let waiting = replies.len();
            let all = async {
                for reply in &mut replies {
                    let _ = reply.await;
                }
            };
            if tokio::time::timeout(REPLIES_STOP_WAIT, all).await.is_err() {
                tracing::warn!(
                    waiting,
                    "stopped without some replies to chat: their channels did not answer in time"
                );
            }
        }
        let mut stopping = tokio::task::JoinSet::new();
        for instance in self.host.instances() {
            stopping.spawn(async move { instance.stop().await });
        }
        while stopping.join_next().await.is_some() {}
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// How long a clean stop waits for the replies to chat being sent.
const REPLIES_STOP_WAIT: Duration = Duration::from_secs(10);

/// How often a serve sharing its store looks for inbox rows another serve
/// stored and did not live to handle ([`Runner::handle_stale_rows`]).
pub const STALE_INBOX_EVERY: Duration = Duration::from_secs(10);

/// The lease of the serve that looks for those rows, one at a time.
pub const STALE_INBOX_LEASE: &str = "inbox:stale";

/// How long handled inbox rows are kept: 30 days.
const INBOX_KEPT_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// When `cascade serve` stops by itself, besides on a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Only when stopped (Ctrl-C, SIGTERM).
    Stopped,
    /// Once nothing is left to send now: rows waiting to be retried later
    /// do not keep it running (`--until-idle`).
    NothingDueNow,
    /// Once nothing is left at all, retries included
    /// (`--until-idle --wait-for-retries`).
    NothingLeft,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ServeReport {
    pub queued: usize,
    pub dispatched: usize,
}

#[cfg(test)]
mod spread_tests {
    use super::*;

    fn route(instance: &str, kind: &str, spread: &[&str]) -> ChannelRoute {
        ChannelRoute {
            instance: instance.to_owned(),
            kind: kind.to_owned(),
            identity: kind.to_owned(),
            formats: vec![Channel::EmailText],
            buttons: false,
            forms: false,
            channel_posts: false,
            per_second: None,
            quota: Default::default(),
            retry: Default::default(),
            carries: Default::default(),
            secure_domains: Vec::new(),
            spread: spread.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn spread_over_names_other_instances_of_the_same_kind_once() {
        let good = [
            route("email", "email", &["email-2", "email-3"]),
            route("email-2", "email", &[]),
            route("email-3", "email", &[]),
        ];
        assert!(check_spreads(&good).is_empty());

        let bad = [
            route("email", "email", &["email", "missing", "chat", "email-2"]),
            route("email-2", "email", &["email-3"]),
            route("email-3", "email", &[]),
            route("other", "email", &["email-3"]),
            route("chat", "telegram", &[]),
        ];
        let problems = check_spreads(&bad);
        let said = |part: &str| problems.iter().any(|p| p.contains(part));
        assert!(
            said("spread_over names the channel itself"),
            "{problems:#?}"
        );
        assert!(
            said("\"missing\", which is not a configured channel"),
            "{problems:#?}"
        );
        assert!(said("\"chat\", a telegram channel"), "{problems:#?}");
        assert!(
            said("\"email-2\", which spreads its own sends"),
            "{problems:#?}"
        );
        assert!(
            said("\"email-3\" is in the spread_over of both"),
            "{problems:#?}"
        );
        assert_eq!(problems.len(), 5, "{problems:#?}");
    }
}
