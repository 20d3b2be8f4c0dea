//! The kept reports ([`ReportCache`]) against reports computed afresh
//! ([`generate`]), on random stores: the demo directory imported, then
//! random rollouts, sends of every outcome, bounces, acknowledgements,
//! follow-up answers, confirmations, directory changes (moves, roles,
//! champions, names), rollout and item changes, and the clock passing
//! wave deadlines. After every step each rollout's report and the
//! period's report from the cache equal, field for field, the ones
//! computed afresh; a write a trigger of 20261104000000_report_stamps
//! missed would show here as a stale figure.

use super::*;
use crate::project::{Project, scaffold};
use cascade_model::content;
use cascade_model::directory::read_csv;
use cascade_model::rollout::{QuietHours, StepKind, parse_definition};
use cascade_store::{
    AckMethod, DeliveryOutcome, Evidence, NewAcknowledgement, NewAnswer, NewConfirmation,
    NewDelivery, NewMember, NewRollout, Outbox, SqliteStore, Store,
};
use chrono::{NaiveDate, TimeZone};

/// A small deterministic generator (xorshift64*), so a failing seed can be
/// run again.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    taxonomy: Taxonomy,
    item_id: String,
    item_version: String,
    definition: String,
    people: Vec<String>,
    /// (team, agency)
    teams: Vec<(String, String)>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    scaffold(dir.path()).unwrap();
    let project = Project::open(dir.path()).unwrap();
    let store = SqliteStore::open(&project.store_path().to_string_lossy())
        .await
        .unwrap();
    for name in ["agencies.csv", "teams.csv", "people.csv", "champions.csv"] {
        let path = project.directory_dir().join(name);
        let file = read_csv(&path).unwrap();
        store.import(&file, &path, &project.taxonomy).await.unwrap();
    }
    let (items, _) = content::load_dir(&project.content_dir(), &project.taxonomy);
    let loaded = items
        .into_iter()
        .find(|l| l.item.id == "7mb-neglect-seeing-the-child")
        .unwrap();
    store.save_item(&loaded.item, &loaded.text).await.unwrap();
    let path = project.rollouts_dir().join("neglect-briefing.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let definition = parse_definition(&path, &text).unwrap();
    assert_eq!(definition.waves.len(), 2, "the demo rollout has two waves");
    let people = store
        .texts("SELECT id FROM people ORDER BY id")
        .await
        .unwrap();
    let teams = store
        .texts("SELECT id || ' ' || agency_id FROM teams ORDER BY id")
        .await
        .unwrap()
        .iter()
        .map(|t| {
            let (team, agency) = t.split_once(' ').unwrap();
            (team.to_owned(), agency.to_owned())
        })
        .collect();
    World {
        _dir: dir,
        store,
        taxonomy: project.taxonomy.clone(),
        item_id: loaded.item.id.clone(),
        item_version: loaded.item.version.0.clone(),
        definition: serde_json::to_string(&definition).unwrap(),
        people,
        teams,
    }
}

async fn execute(store: &SqliteStore, sql: &str, binds: &[&str]) {
    store.execute_sql(sql, binds).await.unwrap();
}

/// One random write (or the clock moving on); returns what it did.
async fn step(
    w: &World,
    rng: &mut Random,
    rollouts: &mut Vec<(String, Vec<String>)>,
    now: &mut DateTime<Utc>,
) -> String {
    let at = now.timestamp_millis();
    let store = &w.store;
    match rng.below(14) {
        0 | 1 if rollouts.len() < 4 => {
            let id = format!("r-{}", rollouts.len());
            let mut members: Vec<NewMember> = Vec::new();
            for p in &w.people {
                if rng.below(3) > 0 {
                    members.push(NewMember {
                        person_id: p.clone(),
                        wave: rng.below(2) as u32,
                        first_due_at: at,
                    });
                }
            }
            store
                .create_rollout(NewRollout {
                    id: &id,
                    item_id: &w.item_id,
                    item_version: &w.item_version,
                    definition: &w.definition,
                    members: &members,
                    audience: None,
                    team_posts: &[],
                    now: at,
                })
                .await
                .unwrap();
            let ids = members.into_iter().map(|m| m.person_id).collect();
            rollouts.push((id.clone(), ids));
            format!("rollout {id}")
        }
        0..=3 if !rollouts.is_empty() => {
            let (id, members) = rng.pick(rollouts);
            let kinds = [
                StepKind::Initial,
                StepKind::Reminder,
                StepKind::Escalation,
                StepKind::FollowUp,
            ];
            let mut deliveries = Vec::new();
            for p in members {
                if rng.below(2) == 0 {
                    let kind = kinds[rng.below(kinds.len())];
                    let number = rng.below(2) as u32;
                    deliveries.push(NewDelivery {
                        idempotency_key: format!("{id}/{p}/{}-{number}/{at}", kind.as_str()),
                        rollout_id: id.clone(),
                        person_id: p.clone(),
                        recipient_id: p.clone(),
                        wave: 0,
                        step_kind: kind,
                        step_number: number,
                        channel: "outbox".to_owned(),
                        channel_rank: 0,
                        due_at: at,
                    });
                }
            }
            store.materialise(&deliveries, &[], at).await.unwrap();
            let claimed = store.claim(at, 100, 60_000, &[]).await.unwrap();
            let outcomes: Vec<(i64, DeliveryOutcome)> = claimed
                .iter()
                .map(|c| {
                    let outcome = match rng.below(4) {
                        0 | 1 => DeliveryOutcome::Sent { provider_id: None },
                        2 => DeliveryOutcome::Dead {
                            reason: "refused".to_owned(),
                        },
                        _ => DeliveryOutcome::RetryAt {
                            at,
                            reason: "busy".to_owned(),
                        },
                    };
                    (c.id, outcome)
                })
                .collect();
            store.record(&outcomes, &[], at).await.unwrap();
            format!("{} sends in {id}", outcomes.len())
        }
        4 if !rollouts.is_empty() => {
            let (id, members) = rng.pick(rollouts);
            let mut acks: Vec<NewAcknowledgement> = Vec::new();
            for p in members.iter() {
                if rng.below(4) == 0 {
                    acks.push(NewAcknowledgement {
                        person_id: p.clone(),
                        item_id: w.item_id.clone(),
                        item_version: w.item_version.clone(),
                        rollout_id: Some(id.clone()),
                        delivery_id: None,
                        channel: "outbox".to_owned(),
                        method: AckMethod::Link,
                        at: at - rng.below(3_600_000) as i64,
                    });
                }
            }
            // The demo briefing's check question, answered first (right
            // first time, after a retry, or not at all): the
            // acknowledgement takes the answers, and kept reports count them.
            for ack in &acks {
                let attempt = |chosen: u32, right: bool, seen: u32| cascade_store::CheckAttempt {
                    person_id: ack.person_id.clone(),
                    item_id: ack.item_id.clone(),
                    item_version: ack.item_version.clone(),
                    question: 1,
                    question_digest: "q1".to_owned(),
                    chosen,
                    right,
                    seen,
                    at,
                };
                let attempts = match rng.below(3) {
                    0 => vec![attempt(2, true, 0)],
                    1 => vec![attempt(1, false, 0), attempt(2, true, 1)],
                    _ => Vec::new(),
                };
                for a in attempts {
                    store.record_check_attempts(&[a]).await.unwrap();
                }
            }
            store.acknowledge_items(&acks).await.unwrap();
            format!("{} acknowledgements in {id}", acks.len())
        }
        5 if !rollouts.is_empty() => {
            let (id, members) = rng.pick(rollouts);
            let person = rng.pick(members);
            let answer = ["Yes, I have", "Not yet", "Something else"][rng.below(3)];
            store
                .answer_follow_up(&NewAnswer {
                    rollout_id: id.clone(),
                    person_id: person.clone(),
                    follow_up: 1 + rng.below(2) as u32,
                    answer: answer.to_owned(),
                    example: None,
                    channel: "outbox".to_owned(),
                    at,
                })
                .await
                .unwrap();
            format!("an answer in {id}")
        }
        6 => {
            let (team, _) = rng.pick(&w.teams);
            let champion = rng.pick(&w.people);
            store
                .confirm_cascade(&NewConfirmation {
                    champion_id: champion.clone(),
                    item_id: w.item_id.clone(),
                    team_id: team.clone(),
                    session_date: format!("2026-12-{:02}", 1 + rng.below(28)),
                    present: rng.below(12) as u32,
                    method: "team-meeting".to_owned(),
                    note: None,
                    channel: "console".to_owned(),
                    at,
                })
                .await
                .unwrap();
            format!("a confirmation for {team}")
        }
        7 => {
            let person = rng.pick(&w.people);
            let (team, agency) = rng.pick(&w.teams);
            execute(
                store,
                "UPDATE people SET team_id = ?, agency_id = ? WHERE id = ?",
                &[team.as_str(), agency.as_str(), person.as_str()],
            )
            .await;
            format!("{person} moved to {team}")
        }
        8 => {
            let person = rng.pick(&w.people);
            let role = ["social-worker", "teacher", "manager"][rng.below(3)];
            if rng.below(2) == 0 {
                execute(
                    store,
                    "INSERT OR IGNORE INTO person_roles (person_id, role) VALUES (?, ?)",
                    &[person.as_str(), role],
                )
                .await;
            } else {
                execute(
                    store,
                    "DELETE FROM person_roles WHERE person_id = ?",
                    &[person.as_str()],
                )
                .await;
            }
            format!("{person}'s roles")
        }
        9 => {
            let person = rng.pick(&w.people);
            if rng.below(2) == 0 {
                execute(
                    store,
                    "INSERT INTO champions (person_id, theme, active, updated_at) VALUES (?, 'neglect', 1, 'now')
                     ON CONFLICT (person_id, theme) DO UPDATE SET active = 1 - active",
                    &[person.as_str()],
                )
                .await;
            } else {
                let (team, _) = rng.pick(&w.teams);
                execute(
                    store,
                    "UPDATE teams SET name = name || ' (renamed)' WHERE id = ?",
                    &[team.as_str()],
                )
                .await;
            }
            "a champion or a team name".to_owned()
        }
        10 if !rollouts.is_empty() => {
            let (id, _) = rng.pick(rollouts);
            match rng.below(3) {
                0 => {
                    let state = ["active", "paused", "cancelled"][rng.below(3)];
                    execute(
                        store,
                        "UPDATE rollouts SET state = ? WHERE id = ?",
                        &[state, id.as_str()],
                    )
                    .await;
                    format!("{id} {state}")
                }
                1 => {
                    // A provider's bounce: a sent message is dead after all.
                    execute(
                        store,
                        "UPDATE outbox SET state = 'dead', last_error = 'bounced'
                         WHERE id = (SELECT id FROM outbox WHERE rollout_id = ? AND state = 'sent'
                                     ORDER BY id LIMIT 1)",
                        &[id.as_str()],
                    )
                    .await;
                    format!("a bounce in {id}")
                }
                _ => {
                    execute(
                        store,
                        "UPDATE items SET title = title || ' (retitled)' WHERE id = ?",
                        &[w.item_id.as_str()],
                    )
                    .await;
                    "the item retitled".to_owned()
                }
            }
        }
        11 | 12 => {
            *now += chrono::Duration::hours(rng.below(4 * 24) as i64);
            format!("the clock at {now}")
        }
        _ => "nothing".to_owned(),
    }
}

async fn run(seed: u64) -> (u64, u64) {
    let w = world().await;
    let calendar = Calendar::new("Europe/London", QuietHours::default()).unwrap();
    let cache = ReportCache::new();
    let mut rng = Random(seed);
    let mut rollouts = Vec::new();
    // Three weeks after the demo rollout's start: its waves' deadlines
    // (29 December and 5 January) pass during the run.
    let mut now = Utc.with_ymd_and_hms(2026, 12, 22, 10, 0, 0).unwrap();
    let period = Selection::Partnership {
        from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2027, 12, 31).unwrap(),
    };
    for n in 0..50 {
        let did = step(&w, &mut rng, &mut rollouts, &mut now).await;
        let mut selections = vec![period.clone()];
        selections.extend(
            rollouts
                .iter()
                .map(|(id, _)| Selection::Rollout(id.clone())),
        );
        for selection in &selections {
            for _ in 0..2 {
                let kept = cache
                    .generate(&w.store, selection, &calendar, &w.taxonomy, now)
                    .await
                    .unwrap();
                let fresh = generate(&w.store, selection, &calendar, &w.taxonomy, now)
                    .await
                    .unwrap();
                assert_eq!(
                    kept, fresh,
                    "seed {seed}, step {n} ({did}): {selection:?} from the cache differs from the report computed afresh"
                );
            }
        }
    }
    (cache.hits(), cache.misses())
}

#[tokio::test]
async fn kept_reports_equal_reports_computed_afresh_on_random_stores() {
    let (mut hits, mut misses) = (0, 0);
    for seed in 1..=6u64 {
        let (h, m) = run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).await;
        hits += h;
        misses += m;
    }
    // Both halves ran: reports given from the cache, and computed again
    // after writes and deadlines.
    assert!(hits > 300, "{hits} reports given from the cache");
    assert!(misses > 100, "{misses} reports computed");
}
