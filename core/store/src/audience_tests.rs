//! The store's audience queries against the Rust rules they stand for
//! ([`resolve`], [`count_resolved`], [`tally_teams`]): random directories,
//! audiences, waves, identities, earlier rollouts and acknowledgements,
//! written to a real store (SQLite, and PostgreSQL on the test server),
//! must give the same members, counts and teams both ways. People have random time zones, working patterns and
//! absences: each member's first send and shift, written by the store from
//! its timing groups, must be what [`person_start`] gives that person.

use super::*;
use crate::pg::PgStore;
use cascade_model::directory::{Directory, Person, Team};
use cascade_model::rollout::{
    Audience, Calendar, QuietHours, RolloutDefinition, Selector, Wave, audience_query,
    count_resolved, parse_definition, person_start, plan_timing, resolve, tally_teams,
};
use chrono::NaiveDate;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Raw SQL on either store: the case's rows as an import, rollouts and
/// acknowledgements would have left them, and the members written.
trait Raw: Audiences {
    fn exec(&self, sql: String) -> impl Future<Output = ()>;

    /// The members of rollout `new`: (person, first send, shift), by person.
    fn written(&self) -> impl Future<Output = Vec<(String, i64, u32)>>;
}

const WRITTEN: &str = "SELECT person_id, next_due_at, shift_days FROM rollout_members
                       WHERE rollout_id = 'new' ORDER BY person_id";

impl Raw for SqliteStore {
    async fn exec(&self, sql: String) {
        sqlx::query(&sql)
            .execute(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn written(&self) -> Vec<(String, i64, u32)> {
        sqlx::query_as(WRITTEN)
            .fetch_all(self.pool())
            .await
            .unwrap()
    }
}

impl Raw for PgStore {
    async fn exec(&self, sql: String) {
        sqlx::query(&sql)
            .execute(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn written(&self) -> Vec<(String, i64, u32)> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(WRITTEN)
            .fetch_all(self.pool())
            .await
            .unwrap();
        rows.into_iter()
            .map(|(p, due, shift)| (p, due, u32::try_from(shift).unwrap()))
            .collect()
    }
}

/// A SQLite store in a file of its own (kept while the store is).
async fn sqlite_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("cascade.db").to_str().unwrap())
        .await
        .unwrap();
    (dir, store)
}

const AGENCIES: [&str; 3] = ["ag-a", "ag-b", "ag-c"];
const ROLES: [&str; 3] = ["manager", "practitioner", "safeguarding-lead"];
const THEMES: [&str; 2] = ["neglect", "cse"];
const KINDS: [&str; 2] = ["email", "telegram"];
const TEAMS: usize = 6;
/// The partnership's zone: a person in it is timed as everyone is.
const HOME: &str = "Europe/London";
const ZONES: [&str; 4] = [
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
];
const PATTERNS: [&str; 4] = [
    "Mon-Fri 08:00-18:00",
    "20:00-08:00",
    "Tue-Thu",
    "Sat,Sun 07:00-19:00",
];
const ITEM: &str = "7mb-neglect";

fn team(t: usize) -> String {
    format!("t-{t}")
}

fn agency_of(t: usize) -> &'static str {
    AGENCIES[t % AGENCIES.len()]
}

#[derive(Debug, Clone)]
struct GenPerson {
    team: usize,
    active: bool,
    roles: BTreeSet<usize>,
    /// (theme, active, has a team)
    champion: Vec<(usize, bool, bool)>,
    /// (kind, unreachable)
    identities: Vec<(usize, bool)>,
    /// In an earlier rollout of the item: Some(cancelled).
    earlier: Option<bool>,
    /// Acknowledged version 1, version 2.
    acked: (bool, bool),
    /// Index into ZONES, PATTERNS; days after the rollout's start day
    /// they are back (negative: before it).
    timing: (Option<usize>, Option<usize>, Option<i64>),
}

fn person() -> impl Strategy<Value = GenPerson> {
    (
        0..TEAMS,
        prop::bool::weighted(0.85),
        prop::collection::btree_set(0..ROLES.len(), 0..=2),
        prop::collection::vec(
            (
                0..THEMES.len(),
                prop::bool::weighted(0.8),
                prop::bool::weighted(0.8),
            ),
            0..=2,
        ),
        prop::collection::vec((0..KINDS.len(), prop::bool::weighted(0.2)), 0..=2),
        prop::option::weighted(0.2, any::<bool>()),
        (any::<bool>(), prop::bool::weighted(0.3)),
        (
            prop::option::weighted(0.4, 0..ZONES.len()),
            prop::option::weighted(0.4, 0..PATTERNS.len()),
            prop::option::weighted(0.3, -3i64..20),
        ),
    )
        .prop_map(
            |(team, active, roles, champion, identities, earlier, acked, timing)| GenPerson {
                team,
                active,
                roles,
                champion,
                identities,
                earlier,
                acked,
                timing,
            },
        )
}

fn calendar() -> Calendar {
    Calendar::new(HOME, QuietHours::default()).unwrap()
}

/// The start day of [`definition`]'s rollouts.
fn start_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

fn absent_until(p: &GenPerson) -> Option<NaiveDate> {
    p.timing
        .2
        .map(|days| start_day() + chrono::TimeDelta::days(days))
}

fn pid(i: usize) -> String {
    format!("p-{i:02}")
}

/// A selector of a few agencies, teams, roles, champion themes and people.
fn selector(people: usize, themes: bool) -> impl Strategy<Value = Selector> {
    let pick = |n: usize| prop::collection::btree_set(0..n, 0..=2);
    (
        pick(AGENCIES.len()),
        pick(TEAMS),
        pick(ROLES.len()),
        if themes {
            pick(THEMES.len()).boxed()
        } else {
            Just(BTreeSet::new()).boxed()
        },
        pick(people.max(1)),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(a, t, r, th, p, empty)| {
            if empty {
                return Selector::default();
            }
            Selector {
                agencies: a.iter().map(|&i| AGENCIES[i].to_owned()).collect(),
                teams: t.iter().map(|&i| team(i)).collect(),
                roles: r.iter().map(|&i| ROLES[i].to_owned()).collect(),
                champion_themes: th.iter().map(|&i| THEMES[i].to_owned()).collect(),
                people: p.iter().map(|&i| pid(i)).collect(),
            }
        })
}

fn wave(people: usize) -> impl Strategy<Value = Wave> {
    (selector(people, false), any::<bool>(), 0u32..10).prop_map(|(s, champions, after_days)| Wave {
        name: format!("after {after_days}"),
        after_days,
        champions_of_item_themes: champions,
        agencies: s.agencies,
        teams: s.teams,
        roles: s.roles,
        people: s.people,
    })
}

#[derive(Debug, Clone)]
struct Case {
    people: Vec<GenPerson>,
    include: Selector,
    exclude: Selector,
    waves: Vec<Wave>,
    item_themes: Vec<String>,
    channels: Vec<String>,
    /// Whether the rollout "earlier" is still active (else it was
    /// cancelled, and nobody counts as reached).
    earlier_active: bool,
    /// Whether the plan times people (else every member has their wave's
    /// first send, as before a plan knew about zones and absences).
    timed: bool,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(person(), 1..30).prop_flat_map(|people| {
        let n = people.len();
        (
            Just(people),
            selector(n, true),
            selector(n, true),
            prop::collection::vec(wave(n), 0..=3),
            prop::collection::btree_set(0..THEMES.len(), 0..=2),
            prop::sample::select(vec![
                vec!["email"],
                vec!["telegram"],
                vec!["email", "telegram"],
                vec!["telegram", "email"],
                vec!["email", "email"],
            ]),
            any::<bool>(),
            prop::bool::weighted(0.7),
        )
            .prop_map(
                |(people, include, exclude, waves, themes, channels, earlier_active, timed)| Case {
                    people,
                    include,
                    exclude,
                    waves,
                    item_themes: themes.iter().map(|&i| THEMES[i].to_owned()).collect(),
                    channels: channels.into_iter().map(str::to_owned).collect(),
                    earlier_active,
                    timed,
                },
            )
    })
}

/// The example definition with the case's audience, waves and channels.
fn definition(case: &Case) -> RolloutDefinition {
    let text = "id = \"prop\"\nitem = \"7mb-neglect\"\nstart = 2026-12-01T09:30:00\n\
                ack_deadline_days = 28\nchannels = [\"email\"]\n[[waves]]\nname = \"All\"\n";
    let mut def =
        parse_definition(Path::new("prop.toml"), text).unwrap_or_else(|e| panic!("{e:?}"));
    def.audience = Audience {
        include: case.include.clone(),
        exclude: case.exclude.clone(),
    };
    def.waves = case.waves.clone();
    def.channels = case.channels.clone();
    def
}

/// The case as the Rust rules see it: the active people, the active
/// champions who cover a team.
fn directory(case: &Case) -> Directory {
    let mut people = Vec::new();
    let mut champions = Vec::new();
    for (i, p) in case.people.iter().enumerate() {
        if !p.active {
            continue;
        }
        people.push(Person {
            id: pid(i),
            display_name: pid(i),
            email: format!("{}@example.org", pid(i)),
            agency_id: agency_of(p.team).to_owned(),
            team_id: team(p.team),
            roles: p.roles.iter().map(|&r| ROLES[r].to_owned()).collect(),
            manager_id: None,
            time_zone: p.timing.0.map(|z| ZONES[z].to_owned()),
            mobile: None,
            works: p.timing.1.map(|w| PATTERNS[w].to_owned()),
            absent_until: absent_until(p),
        });
        let mut themes = BTreeSet::new();
        for &(theme, active, has_team) in &p.champion {
            if themes.insert(theme) && active && has_team {
                champions.push(Champion {
                    person_id: pid(i),
                    theme: THEMES[theme].to_owned(),
                    team_ids: vec![team(p.team)],
                });
            }
        }
    }
    Directory {
        agencies: Vec::new(),
        teams: (0..TEAMS)
            .map(|t| Team {
                id: team(t),
                agency_id: agency_of(t).to_owned(),
                name: team(t),
            })
            .collect(),
        champions,
        people,
    }
}

/// Writes the case into the store's tables as an import and earlier
/// rollouts and acknowledgements would have left them.
async fn write(store: &impl Raw, case: &Case) {
    let exec = |sql: String| store.exec(sql);
    for a in AGENCIES {
        exec(format!(
            "INSERT INTO agencies VALUES ('{a}', '{a}', 'police', 'x')"
        ))
        .await;
    }
    for t in 0..TEAMS {
        exec(format!(
            "INSERT INTO teams VALUES ('{}', '{}', 'x', 'x')",
            team(t),
            agency_of(t)
        ))
        .await;
    }
    for v in ["1", "2"] {
        exec(format!(
            "INSERT INTO items (id, version, kind, title, status, source, first_seen_at)
             VALUES ('{ITEM}', '{v}', 'x', 'x', 'published', 'x', 'x')"
        ))
        .await;
    }
    let earlier = if case.earlier_active {
        "active"
    } else {
        "cancelled"
    };
    for (name, state) in [("earlier", earlier), ("gone", "cancelled")] {
        exec(format!(
            "INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at) VALUES ('{name}', '{ITEM}', '1', '{{}}', '{state}', 0, 0)"
        ))
        .await;
    }
    for (i, p) in case.people.iter().enumerate() {
        let id = pid(i);
        let text = |v: Option<String>| v.map_or_else(|| "NULL".to_owned(), |v| format!("'{v}'"));
        exec(format!(
            "INSERT INTO people (id, display_name, email, agency_id, team_id, active, updated_at,
                                 time_zone, works, absent_until)
             VALUES ('{id}', 'x', '{id}@example.org', '{}', '{}', {}, 'x', {}, {}, {})",
            agency_of(p.team),
            team(p.team),
            i32::from(p.active),
            text(p.timing.0.map(|z| ZONES[z].to_owned())),
            text(p.timing.1.map(|w| PATTERNS[w].to_owned())),
            text(absent_until(p).map(|d| d.to_string())),
        ))
        .await;
        for &r in &p.roles {
            exec(format!(
                "INSERT INTO person_roles VALUES ('{id}', '{}')",
                ROLES[r]
            ))
            .await;
        }
        let mut themes = BTreeSet::new();
        for &(theme, active, has_team) in &p.champion {
            if !themes.insert(theme) {
                continue;
            }
            let theme = THEMES[theme];
            exec(format!(
                "INSERT INTO champions VALUES ('{id}', '{theme}', {}, 'x')",
                i32::from(active)
            ))
            .await;
            if has_team {
                exec(format!(
                    "INSERT INTO champion_teams VALUES ('{id}', '{theme}', '{}')",
                    team(p.team)
                ))
                .await;
            }
        }
        for (n, &(kind, unreachable)) in p.identities.iter().enumerate() {
            exec(format!(
                "INSERT INTO channel_identities (person_id, channel, address, linked_at, unreachable_at)
                 VALUES ('{id}', '{}', '{id}-{n}', 'x', {})",
                KINDS[kind],
                if unreachable { "1" } else { "NULL" }
            ))
            .await;
        }
        if let Some(cancelled) = p.earlier {
            let rollout = if cancelled { "gone" } else { "earlier" };
            exec(format!("INSERT INTO rollout_members (rollout_id, person_id, wave) VALUES ('{rollout}', '{id}', 0)")).await;
        }
        for (version, acked) in [("1", p.acked.0), ("2", p.acked.1)] {
            if acked {
                exec(format!(
                    "INSERT INTO acknowledgements (person_id, item_id, item_version, channel, method, at)
                     VALUES ('{id}', '{ITEM}', '{version}', 'web', 'link', 0)"
                ))
                .await;
            }
        }
    }
}

/// Wave `i` is first sent at `1000 + i`.
fn first_due(wave: usize) -> i64 {
    1000 + wave as i64
}

/// What the Rust rules give: the members (person, wave), the counts and
/// the teams.
fn expected(
    case: &Case,
    def: &RolloutDefinition,
    reack: bool,
) -> (Vec<(String, i64, u32)>, AudienceCounts, Vec<TeamTally>) {
    let directory = directory(case);
    let reachable = |person: &str| -> Vec<String> {
        let i: usize = person[2..].parse().unwrap();
        let has: BTreeSet<&str> = case.people[i]
            .identities
            .iter()
            .filter(|(_, unreachable)| !unreachable)
            .map(|&(k, _)| KINDS[k])
            .collect();
        case.channels
            .iter()
            .filter(|c| has.contains(c.as_str()))
            .cloned()
            .collect()
    };
    let (mut resolved, waves) = if reack {
        let members = case
            .people
            .iter()
            .enumerate()
            .filter(|(_, p)| p.active && p.acked.0 && !p.acked.1)
            .map(|(i, _)| cascade_model::rollout::Member {
                person_id: pid(i),
                wave: 0,
            })
            .collect();
        (
            cascade_model::rollout::Resolved {
                members,
                unassigned: 0,
            },
            1,
        )
    } else {
        (resolve(def, &case.item_themes, &directory), def.waves.len())
    };
    let mut already_reached = 0;
    if !reack {
        resolved.members.retain(|m| {
            let i: usize = m.person_id[2..].parse().unwrap();
            let reached = case.earlier_active && case.people[i].earlier == Some(false);
            already_reached += usize::from(reached);
            !reached
        });
    }
    let mut counts = count_resolved(&resolved, waves, &case.channels, &reachable);
    counts.already_reached = already_reached;
    let calendar = calendar();
    let mut members: Vec<(String, i64, u32)> = resolved
        .members
        .iter()
        .map(|m| {
            let i: usize = m.person_id[2..].parse().unwrap();
            let p = &case.people[i];
            let timed = p.timing.0.is_some_and(|z| ZONES[z] != HOME)
                || p.timing.1.is_some()
                || p.timing.2.is_some_and(|d| d > 0);
            let person = directory.people.iter().find(|x| x.id == m.person_id);
            match person {
                // Timed by the Rust rule over the person, not by groups.
                Some(person) if timed && case.timed && m.wave < def.waves.len() => {
                    let (shift, first) = person_start(def, &calendar, person, m.wave);
                    (m.person_id.clone(), first.timestamp_millis(), shift)
                }
                _ => (m.person_id.clone(), first_due(m.wave), 0),
            }
        })
        .collect();
    members.sort();
    // The team tallies come from the wave's first sends.
    let sends: Vec<(&str, i64)> = members
        .iter()
        .map(|(p, _, _)| {
            let wave = resolved
                .members
                .iter()
                .find(|m| &m.person_id == p)
                .unwrap()
                .wave;
            (p.as_str(), first_due(wave))
        })
        .collect();
    let teams = tally_teams(&directory, &sends);
    (members, counts, teams)
}

/// The case's audience query, the Rust rules' answer, and the store's
/// plan checked against it: timing groups, counts and teams.
async fn check_plan(
    store: &impl Raw,
    case: &Case,
    reack: bool,
) -> Result<(AudienceQuery, Vec<(String, i64, u32)>), TestCaseError> {
    write(store, case).await;
    let mut def = definition(case);
    def.reacknowledge = reack;
    let mut query = audience_query(&def, ITEM, "2", &case.item_themes, &first_due);
    query.home_zone = HOME.to_owned();
    let (members, counts, teams) = expected(case, &def, reack);
    if case.timed {
        let groups = store.timing_groups(&query).await.unwrap();
        let grouped: usize = groups.iter().map(|g| g.people).sum();
        let timed = members.iter().filter(|m| {
            let p = &case.people[m.0[2..].parse::<usize>().unwrap()];
            p.timing.0.is_some_and(|z| ZONES[z] != HOME)
                || p.timing.1.is_some()
                || p.timing.2.is_some_and(|d| d > 0)
        });
        prop_assert_eq!(grouped, timed.count());
        query.timing = plan_timing(&def, &calendar(), &groups).0;
    }

    prop_assert_eq!(
        &store.count_audience(&query, &case.channels).await.unwrap(),
        &counts
    );
    prop_assert_eq!(&store.audience_by_team(&query).await.unwrap(), &teams);
    Ok((query, members))
}

/// [`check_plan`], then the members `create_rollout` writes from the
/// audience query: each with the first send and shift the Rust rules give.
async fn check(store: &(impl Raw + Outbox), case: Case, reack: bool) -> Result<(), TestCaseError> {
    let (query, members) = check_plan(store, &case, reack).await?;
    let written = store
        .create_rollout(NewRollout {
            id: "new",
            item_id: ITEM,
            item_version: "2",
            definition: "{}",
            members: &[],
            audience: Some(&query),
            team_posts: &[],
            now: 0,
        })
        .await
        .unwrap();
    let stored = store.written().await;
    prop_assert_eq!(written as usize, members.len());
    prop_assert_eq!(stored, members);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_store_resolves_an_audience_as_the_rust_rules_do(case in case(), reack in prop::bool::weighted(0.2)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (_dir, store) = sqlite_store().await;
            check(&store, case, reack).await
        })?;
    }
}

proptest! {
    // Fewer cases: each is a fresh database on the test server.
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn the_postgres_store_resolves_an_audience_as_the_rust_rules_do(case in case(), reack in prop::bool::weighted(0.2)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = both::postgres().await;
            let checked = check(&store, case, reack).await;
            store.close().await;
            checked
        })?;
    }
}

/// Ten people of team 0, each made by `person(i)`, everyone in the
/// audience and no waves.
fn plain_case(person: impl Fn(usize) -> GenPerson) -> Case {
    Case {
        people: (0..10).map(person).collect(),
        include: Selector::default(),
        exclude: Selector::default(),
        waves: Vec::new(),
        item_themes: Vec::new(),
        channels: vec!["email".to_owned()],
        earlier_active: false,
        timed: false,
    }
}

/// An active person of team 0 with nothing else.
fn plain_person() -> GenPerson {
    GenPerson {
        team: 0,
        active: true,
        roles: BTreeSet::new(),
        champion: Vec::new(),
        identities: Vec::new(),
        earlier: None,
        acked: (false, false),
        timing: (None, None, None),
    }
}

async fn people_near_gives_a_known_id_or_its_neighbours_for_a_guess(store: impl Raw) {
    let case = plain_case(|i| GenPerson {
        active: i != 4,
        roles: BTreeSet::from([1]),
        ..plain_person()
    });
    write(&store, &case).await;
    let owned = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let near = async |ids: &[&str]| -> Vec<String> {
        let found = store.people_near(&owned(ids)).await.unwrap();
        found.into_iter().collect()
    };
    assert_eq!(near(&["p-03"]).await, ["p-03"]);
    // p-04 is inactive: its active neighbours are offered instead.
    assert_eq!(
        near(&["p-04"]).await,
        ["p-01", "p-02", "p-03", "p-05", "p-06", "p-07"]
    );
    // "p-5" sorts after every "p-0…": the three before it.
    assert_eq!(near(&["p-5"]).await, ["p-07", "p-08", "p-09"]);
    let roles = async |named: &[&str]| -> Vec<String> {
        let found = store.roles_near(&owned(named)).await.unwrap();
        found.into_iter().collect()
    };
    assert_eq!(roles(&["practitioner"]).await, ["practitioner"]);
    // A role nobody holds: every role held is offered for a guess.
    assert_eq!(roles(&["practicioner"]).await, ["practitioner"]);
    assert!(roles(&[]).await.is_empty());
    assert!(store.has_people().await.unwrap());
}

crate::both::on_both_stores!(people_near_gives_a_known_id_or_its_neighbours_for_a_guess);

async fn a_list_of_forty_thousand_people_goes_as_one_value(store: impl Raw + Outbox) {
    // More ids than SQLite takes bound values in one statement.
    let mut case = plain_case(|_| GenPerson {
        identities: vec![(0, false)],
        ..plain_person()
    });
    case.include.people = (0..40_000).map(|i| format!("x-{i}")).collect();
    case.include
        .people
        .extend(["p-01".to_owned(), "p-07".to_owned()]);
    case.waves = vec![Wave {
        name: "All".to_owned(),
        after_days: 0,
        champions_of_item_themes: false,
        agencies: Vec::new(),
        teams: Vec::new(),
        roles: Vec::new(),
        people: case.include.people.clone(),
    }];
    check(&store, case, false).await.unwrap();
}

both::on_both_stores!(a_list_of_forty_thousand_people_goes_as_one_value);

async fn people_under_a_kind_and_at_secure_domains_are_those_it_is_first_for(store: impl Raw) {
    // Every third person has an email identity only, the next one an
    // email and a Telegram identity, the next none.
    let mut case = plain_case(|i| GenPerson {
        identities: match i % 3 {
            0 => vec![(0, false)],
            1 => vec![(1, false), (0, false)],
            _ => Vec::new(),
        },
        ..plain_person()
    });
    case.waves = vec![Wave {
        name: "All".to_owned(),
        after_days: 0,
        champions_of_item_themes: false,
        agencies: Vec::new(),
        teams: Vec::new(),
        roles: Vec::new(),
        people: Vec::new(),
    }];
    write(&store, &case).await;
    for (person, address) in [
        ("p-00", "Ann <p-00@Secure.Example.ORG>"),
        ("p-03", "p-03@example.org"),
        ("p-04", "p-04@secure.example.org"),
        ("p-06", "p-06@team.secure.example.org"),
        ("p-09", "p-09@notsecure.example.org"),
    ] {
        store
            .exec(format!(
                "UPDATE channel_identities SET address = '{address}'
                 WHERE person_id = '{person}' AND channel = 'email'"
            ))
            .await;
    }
    let def = definition(&case);
    let query = audience_query(&def, ITEM, "2", &case.item_themes, &first_due);
    let kinds = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let secure = kinds(&["secure.example.org"]);

    let email_first = kinds(&["email", "telegram"]);
    assert_eq!(
        store.people_under(&query, &email_first, 0).await.unwrap(),
        ["p-00", "p-01", "p-03", "p-04", "p-06", "p-07", "p-09"]
    );
    assert!(
        store
            .people_under(&query, &email_first, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .count_at_domains(&query, &email_first, 0, &secure)
            .await
            .unwrap(),
        3
    );
    // Telegram first: email is left with those who have no Telegram.
    let telegram_first = kinds(&["telegram", "email"]);
    assert_eq!(
        store
            .people_under(&query, &telegram_first, 0)
            .await
            .unwrap(),
        ["p-01", "p-04", "p-07"]
    );
    assert_eq!(
        store
            .people_under(&query, &telegram_first, 1)
            .await
            .unwrap(),
        ["p-00", "p-03", "p-06", "p-09"]
    );
    assert_eq!(
        store
            .count_at_domains(&query, &telegram_first, 1, &secure)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_at_domains(&query, &telegram_first, 1, &kinds(&["example.org"]))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store
            .count_at_domains(&query, &telegram_first, 2, &secure)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .people_under(&query, &telegram_first, 2)
            .await
            .unwrap()
            .is_empty()
    );
}

both::on_both_stores!(people_under_a_kind_and_at_secure_domains_are_those_it_is_first_for);
