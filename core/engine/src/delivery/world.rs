//! What delivery needs to know, loaded once and shared: the directory as
//! the store holds it (active people, managers, champions, identities), the
//! channel routes (instance, identity kind, render formats), and each
//! rollout's definition, pinned item and step timetable.

use super::DeliveryError;
use cascade_model::content::{Classification, LearningItem, parse_item};
use cascade_model::directory::{ChannelIdentity, Directory, MOBILE_CHANNEL};
use cascade_model::rollout::{Calendar, RolloutDefinition, Step, wave_steps};
use cascade_privacy::PrivacyGuard;
use cascade_render::{Channel, NoticeReason};
use cascade_store::{Outbox, Store, StoredRollout};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// A channel instance as delivery uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRoute {
    pub instance: String,
    /// The plugin's channel kind, sent in each request.
    pub kind: String,
    /// Which of a person's identities addresses them here (e.g. `email`).
    pub identity: String,
    /// The renders the message carries.
    pub formats: Vec<Channel>,
    /// Messages can carry buttons (the plugin's `buttons` capability);
    /// without them, choices go as signed links (email).
    pub buttons: bool,
    /// Buttons can open a form at once (the plugin's `forms` capability).
    pub forms: bool,
    /// The plugin can post in a team's channel with buttons and edit the
    /// post (`channel-posts`, `buttons` and `edit`).
    pub channel_posts: bool,
    /// Most sends a second, from the channel's config or its plugin.
    pub per_second: Option<f64>,
    /// The channel's sending quota: most sends a minute and a day.
    pub quota: Quota,
    /// The channel's own retry settings, over the engine's defaults.
    pub retry: cascade_plugin_host::RetryConfig,
    /// The highest classification the channel carries in full.
    pub carries: Classification,
    /// Email domains that get OFFICIAL-SENSITIVE items in full here
    /// although the channel carries only OFFICIAL (lower case).
    pub secure_domains: Vec<String>,
    /// The other instances this channel's sends are spread over
    /// (`spread_over`), each with its own quota.
    pub spread: Vec<String>,
}

/// How one person gets an item on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The item's full text (marked when it needs a marking).
    Full,
    /// A notice with the title, summary and a signed link to read it.
    Notice(NoticeReason),
}

impl ChannelRoute {
    /// Whether this channel sends text messages, which carry only a short
    /// notice (its people are addressed by their `mobile`).
    pub fn is_text_message(&self) -> bool {
        self.identity == MOBILE_CHANNEL
    }

    /// The highest classification the channel carries to `address`: its
    /// own, or OFFICIAL-SENSITIVE for an email at a secure domain.
    pub fn carries_to(&self, address: &str) -> Classification {
        if self.is_text_message() {
            return Classification::Official;
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, domain)| domain.trim_end_matches('>').to_ascii_lowercase());
        let secure = domain.is_some_and(|domain| {
            self.secure_domains.iter().any(|secure| {
                domain == *secure
                    || domain
                        .strip_suffix(secure.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            })
        });
        if secure {
            Classification::OfficialSensitive
        } else {
            self.carries
        }
    }

    /// How the person at `address` gets an item of `classification` here.
    pub fn reading(&self, classification: Classification, address: &str) -> Reading {
        if classification <= self.carries_to(address) {
            Reading::Full
        } else if self.secure_domains.is_empty() || self.is_text_message() {
            Reading::Notice(NoticeReason::Channel)
        } else {
            Reading::Notice(NoticeReason::Address)
        }
    }
}

/// A channel's sending quota, as its provider enforces it. Sends over it
/// wait for the window to have room, counted as no attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
}

impl Quota {
    pub fn is_set(&self) -> bool {
        self.per_minute.is_some() || self.per_day.is_some()
    }

    /// How long `sends` take under the quota, from an empty window, as
    /// `plan` says it: "2,400 at 30 a minute: about 80 minutes".
    pub fn describe(&self, sends: u64, noun: &str) -> Option<String> {
        let mut parts = Vec::new();
        let mut minutes = 0u64;
        if let Some(limit) = self.per_minute {
            let windows = sends.div_ceil(u64::from(limit));
            minutes = minutes.max(windows);
            parts.push(format!("{} a minute", thousands(u64::from(limit))));
        }
        if let Some(limit) = self.per_day {
            let days = sends.div_ceil(u64::from(limit));
            // The last day's sends go in its first minutes.
            minutes = minutes.max(days.saturating_sub(1) * 24 * 60 + 1);
            parts.push(format!("{} a day", thousands(u64::from(limit))));
        }
        if parts.is_empty() || sends == 0 {
            return None;
        }
        let how_long = match minutes {
            0 | 1 => "within a minute".to_owned(),
            m if m < 120 => format!("about {m} minutes"),
            m if m < 48 * 60 => format!("about {} hours", m.div_ceil(60)),
            m => format!("about {} days", m.div_ceil(24 * 60)),
        };
        Some(format!(
            "{} {noun} at {}: {how_long}",
            thousands(sends),
            parts.join(" and ")
        ))
    }
}

/// 2400 as "2,400".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What `Reports::directory_version` gives.
pub type DirectoryVersion = (i64, i64, i64);

/// The [`World`] being served, replaced whole when the directory in the
/// store changes (an import while `serve` runs: joiners, movers, leavers),
/// so a running serve sends to people imported after it started.
pub struct SharedWorld {
    current: RwLock<Arc<World>>,
    /// The store's directory version the current world was loaded at.
    stamp: Mutex<Option<DirectoryVersion>>,
}

impl SharedWorld {
    pub fn new(world: World, stamp: Option<DirectoryVersion>) -> SharedWorld {
        SharedWorld {
            current: RwLock::new(Arc::new(world)),
            stamp: Mutex::new(stamp),
        }
    }

    /// The world as it is now; a send or a tick keeps the one it started with.
    pub fn get(&self) -> Arc<World> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The directory version the current world was loaded at.
    pub fn stamp(&self) -> Option<DirectoryVersion> {
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves `world` from now on.
    pub fn replace(&self, world: World, stamp: Option<DirectoryVersion>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(world);
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp;
    }
}

/// The directory and identities, as the store holds them.
pub struct World {
    pub directory: Directory,
    people: HashMap<String, usize>,
    /// Identity kind (e.g. `email`), then person id, to address: looked up
    /// by `&str` on every send. Changes while serving: chat accounts are
    /// linked, and providers report addresses that can no longer be reached.
    identities: RwLock<HashMap<String, HashMap<String, Arc<str>>>>,
    pub routes: HashMap<String, ChannelRoute>,
    /// The teams each champion covers, (id, name) by name.
    champion_teams: HashMap<String, Vec<(String, String)>>,
}

impl World {
    pub async fn load<S: Store + Outbox>(
        store: &S,
        routes: Vec<ChannelRoute>,
    ) -> Result<World, DeliveryError> {
        let people: Vec<_> = store
            .people(true)
            .await?
            .into_iter()
            .map(|p| p.person)
            .collect();
        let directory = Directory {
            agencies: store.agencies().await?,
            teams: store.teams().await?,
            champions: store.champions().await?,
            people,
        };
        let identities = store.all_identities().await?;
        Ok(World::new(directory, identities, routes))
    }

    pub fn new(
        directory: Directory,
        identities: Vec<ChannelIdentity>,
        routes: Vec<ChannelRoute>,
    ) -> World {
        let mut by_kind: HashMap<String, HashMap<String, Arc<str>>> = HashMap::new();
        for i in identities {
            by_kind
                .entry(i.channel)
                .or_default()
                .insert(i.person_id, i.address.into());
        }
        let people = directory
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let champion_teams =
            cascade_model::directory::teams_covered(&directory.champions, &directory.teams);
        World {
            champion_teams,
            directory,
            people,
            identities: RwLock::new(by_kind),
            routes: routes
                .into_iter()
                .map(|r| (r.instance.clone(), r))
                .collect(),
        }
    }

    pub fn person(&self, id: &str) -> Option<&cascade_model::directory::Person> {
        self.people.get(id).map(|&i| &self.directory.people[i])
    }

    /// The teams a champion covers, (id, name) by name; empty for anyone else.
    pub fn champion_teams(&self, person_id: &str) -> &[(String, String)] {
        self.champion_teams
            .get(person_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The person's address on a channel instance, if they can be reached there.
    pub fn address(&self, person_id: &str, instance: &str) -> Option<Arc<str>> {
        let route = self.routes.get(instance)?;
        self.identities
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&route.identity)?
            .get(person_id)
            .cloned()
    }

    /// A chat account was linked to the person: their address of that
    /// identity kind from now on.
    pub fn link(&self, identity: &str, person_id: &str, address: &str) {
        self.identities
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(identity.to_owned())
            .or_default()
            .insert(person_id.to_owned(), address.into());
    }

    /// The person can no longer be reached at `address` (they blocked the bot).
    pub fn unreachable(&self, identity: &str, person_id: &str, address: &str) {
        let mut identities = self.identities.write().unwrap_or_else(|p| p.into_inner());
        if let Some(people) = identities.get_mut(identity)
            && people.get(person_id).is_some_and(|a| **a == *address)
        {
            people.remove(person_id);
        }
    }

    /// The rollout's channels on which the person can be reached, in order,
    /// with their rank in the rollout's list.
    pub fn reachable<'a>(&self, person_id: &str, channels: &'a [String]) -> Vec<(u32, &'a str)> {
        channels
            .iter()
            .enumerate()
            .filter(|(_, c)| self.address(person_id, c).is_some())
            .map(|(rank, c)| (rank as u32, c.as_str()))
            .collect()
    }

    /// Active people with the business-unit role: the recipients of digests.
    pub fn business_unit(&self) -> Vec<&str> {
        self.directory
            .people
            .iter()
            .filter(|p| p.roles.iter().any(|r| r == "business-unit"))
            .map(|p| p.id.as_str())
            .collect()
    }
}

/// A rollout ready to schedule and dispatch: its definition, its pinned item
/// version, and each wave's steps.
pub struct RolloutRuntime {
    pub stored: StoredRollout,
    pub definition: RolloutDefinition,
    pub item: LearningItem,
    pub steps: Vec<Vec<Step>>,
    /// The privacy guard's first blocking finding, if any: nothing is sent.
    pub privacy_block: Option<String>,
    /// The guard over composed messages, the last line of defence.
    outgoing: OutgoingCheck,
}

/// The privacy guard over a rollout's composed messages, run once per kind
/// of message and format: what differs per person (their name, their link)
/// is the directory's, not the item's.
struct OutgoingCheck {
    guard: Arc<PrivacyGuard>,
    verdicts: Mutex<HashMap<String, Option<String>>>,
}

impl RolloutRuntime {
    /// Whether a composed message may go: the guard's first finding in
    /// `text` that the item's allows do not cover stops it. `key` names the
    /// kind of message and format; the verdict is kept per key.
    pub fn check_outgoing(&self, key: &str, text: impl FnOnce() -> String) -> Result<(), String> {
        let check = &self.outgoing;
        let known = check
            .verdicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        let verdict = match known {
            Some(verdict) => verdict,
            None => {
                let verdict = check
                    .guard
                    .blocking(&text(), &self.item.privacy_allow)
                    .first()
                    .map(|finding| {
                        format!(
                            "the privacy guard blocked the composed message ({key}): {} {:?} looks like a child's identifying detail",
                            finding.kind.label(),
                            finding.text
                        )
                    });
                check
                    .verdicts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.to_owned(), verdict.clone());
                verdict
            }
        };
        verdict.map_or(Ok(()), Err)
    }
}

/// Rollout runtimes by id, loaded from the store on first use.
pub struct Rollouts {
    calendar: Calendar,
    taxonomy: cascade_model::content::Taxonomy,
    guard: Arc<PrivacyGuard>,
    loaded: Mutex<HashMap<String, Arc<RolloutRuntime>>>,
}

impl Rollouts {
    pub fn new(
        calendar: Calendar,
        taxonomy: cascade_model::content::Taxonomy,
        guard: PrivacyGuard,
    ) -> Rollouts {
        Rollouts {
            calendar,
            taxonomy,
            guard: Arc::new(guard),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    pub fn guard(&self) -> &PrivacyGuard {
        &self.guard
    }

    pub async fn get<S: Store + Outbox>(
        &self,
        store: &S,
        id: &str,
    ) -> Result<Arc<RolloutRuntime>, DeliveryError> {
        if let Some(r) = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(r.clone());
        }
        let problem = |message: String| DeliveryError::Rollout {
            rollout: id.to_owned(),
            message,
        };
        let stored = store
            .rollout(id)
            .await?
            .ok_or_else(|| problem("is not in the store".to_owned()))?;
        let definition: RolloutDefinition = serde_json::from_str(&stored.definition)
            .map_err(|e| problem(format!("its stored definition cannot be read: {e}")))?;
        let version = store
            .item_versions(&stored.item_id)
            .await?
            .into_iter()
            .find(|v| v.version.0 == stored.item_version)
            .ok_or_else(|| {
                problem(format!(
                    "item version {} is not in the store",
                    stored.item_version
                ))
            })?;
        let item = parse_item(
            Path::new(&format!("{} (stored)", stored.item_id)),
            &version.source,
            &self.taxonomy,
        )
        .map_err(|e| problem(format!("its pinned item no longer parses: {}", e[0])))?;
        let steps = (0..definition.waves.len())
            .map(|wave| wave_steps(&definition, &self.calendar, wave))
            .collect();
        let privacy_block = self
            .guard
            .blocking_item(&version.source, &item.privacy_allow)
            .first()
            .map(ToString::to_string);
        let runtime = Arc::new(RolloutRuntime {
            stored,
            definition,
            item,
            steps,
            privacy_block,
            outgoing: OutgoingCheck {
                guard: self.guard.clone(),
                verdicts: Mutex::new(HashMap::new()),
            },
        });
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), runtime.clone());
        Ok(runtime)
    }
}

#[cfg(test)]
mod quota_tests {
    use super::Quota;

    #[test]
    fn plan_says_how_long_a_quota_makes_the_sends_take() {
        let exchange = Quota {
            per_minute: Some(30),
            per_day: None,
        };
        assert_eq!(
            exchange.describe(2400, "emails").as_deref(),
            Some("2,400 emails at 30 a minute: about 80 minutes")
        );
        assert_eq!(
            exchange.describe(20, "emails").as_deref(),
            Some("20 emails at 30 a minute: within a minute")
        );
        let daily = Quota {
            per_minute: Some(30),
            per_day: Some(10_000),
        };
        assert_eq!(
            daily.describe(25_000, "emails").as_deref(),
            Some("25,000 emails at 30 a minute and 10,000 a day: about 3 days")
        );
        assert_eq!(Quota::default().describe(100, "emails"), None);
    }
}

#[cfg(test)]
mod reading_tests {
    use super::*;

    fn route(identity: &str, carries: Classification, secure: &[&str]) -> ChannelRoute {
        ChannelRoute {
            instance: "c".to_owned(),
            kind: "email".to_owned(),
            identity: identity.to_owned(),
            formats: vec![Channel::EmailText],
            buttons: false,
            forms: false,
            channel_posts: false,
            per_second: None,
            quota: Quota::default(),
            retry: Default::default(),
            carries,
            secure_domains: secure.iter().map(|s| (*s).to_owned()).collect(),
            spread: Vec::new(),
        }
    }

    #[test]
    fn a_sensitive_item_is_read_in_full_only_where_the_channel_or_domain_carries_it() {
        use Classification::{Official, OfficialSensitive as Sensitive};
        let email = route("email", Official, &["nhs.net"]);
        for (address, full) in [
            ("ann@nhs.net", true),
            ("Ann <ann@Trust.NHS.net>", true),
            ("bea@gmail.com", false),
            ("dee@notnhs.net", false),
            ("nhs.net@evil.example", false),
            ("", false),
        ] {
            let expected = if full {
                Reading::Full
            } else {
                Reading::Notice(NoticeReason::Address)
            };
            assert_eq!(email.reading(Sensitive, address), expected, "{address}");
            assert_eq!(email.reading(Official, address), Reading::Full, "{address}");
        }
        let chat = route("telegram", Official, &[]);
        assert_eq!(
            chat.reading(Sensitive, "12345"),
            Reading::Notice(NoticeReason::Channel)
        );
        let secure = route("email", Sensitive, &[]);
        assert_eq!(secure.reading(Sensitive, "bea@gmail.com"), Reading::Full);
        // A text message never carries the item, whatever it says.
        let sms = route(MOBILE_CHANNEL, Sensitive, &["nhs.net"]);
        assert_eq!(
            sms.reading(Sensitive, "+447700900001"),
            Reading::Notice(NoticeReason::Channel)
        );
    }
}
