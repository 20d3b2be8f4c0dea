//! Each person's own time in a plan: people who share a wave, a time zone,
//! a working pattern and a return from absence share a first send. The
//! store groups the audience so ([`TimingGroup`]), [`plan_timing`] works out
//! each group's first send and shift ([`TimingRule`]) and how many people
//! each rule moves, and the store writes the members with them, so a
//! million people are never timed one by one.

use super::calendar::Calendar;
use super::definition::RolloutDefinition;
use super::steps::{back_at, member_start, person_calendar, wave_send};
use crate::directory::Person;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// People of an audience in one wave with the same timing columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingGroup {
    pub wave: usize,
    pub time_zone: Option<String>,
    pub works: Option<String>,
    /// Only a return after the rollout's start (see
    /// [`super::AudienceQuery::absences_after`]); earlier ones change nothing.
    pub absent_until: Option<NaiveDate>,
    pub people: usize,
}

/// A group's timing as the store matches members to it: empty text for
/// an empty column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingRule {
    pub wave: usize,
    pub time_zone: String,
    pub works: String,
    /// `YYYY-MM-DD`.
    pub absent_until: String,
    pub shift_days: u32,
    /// Unix milliseconds.
    pub first_due_at: i64,
}

/// How many people each rule moves, for `cascade rollout plan`. A person
/// counts under each rule that changes their first send, taken in order:
/// their own zone, then their working pattern, then their absence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimingMoves {
    pub by_zone: usize,
    pub by_works: usize,
    pub by_absence: usize,
    /// The latest first send of anyone moved.
    pub latest_first_send: Option<DateTime<Utc>>,
    /// E.g. "Mon 11 Jan 2027 09:30 GMT", in the partnership's zone.
    pub latest_first_send_local: Option<String>,
}

impl TimingMoves {
    pub fn moved_anyone(&self) -> bool {
        self.latest_first_send.is_some()
    }

    /// Nobody moved: the plan says nothing of it in JSON.
    pub fn is_unmoved(&self) -> bool {
        !self.moved_anyone()
    }
}

/// The calendar and the return of someone with these columns.
fn person_clock(
    def: &RolloutDefinition,
    calendar: &Calendar,
    time_zone: Option<&str>,
    works: Option<&str>,
    absent_until: Option<NaiveDate>,
) -> (Calendar, Option<DateTime<Utc>>) {
    let own = person_calendar(def, calendar, time_zone, works);
    let back = absent_until.map(|day| back_at(&own, day));
    (own, back)
}

/// A person's shift and first send in `wave`: the rule that a group's
/// [`TimingRule`] stands for, stated over one person.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn person_start(
    def: &RolloutDefinition,
    calendar: &Calendar,
    person: &Person,
    wave: usize,
) -> (u32, DateTime<Utc>) {
    let (own, back) = person_clock(
        def,
        calendar,
        person.time_zone.as_deref(),
        person.works.as_deref(),
        person.absent_until,
    );
    member_start(def, &own, wave, back)
}

/// Each group's rule, and how many people the rules move.
pub fn plan_timing(
    def: &RolloutDefinition,
    calendar: &Calendar,
    groups: &[TimingGroup],
) -> (Vec<TimingRule>, TimingMoves) {
    let mut rules = Vec::with_capacity(groups.len());
    let mut moves = TimingMoves::default();
    for g in groups.iter().filter(|g| g.wave < def.waves.len()) {
        let (tz, works) = (g.time_zone.as_deref(), g.works.as_deref());
        let base = wave_send(def, calendar, g.wave);
        let zoned = wave_send(def, &person_calendar(def, calendar, tz, None), g.wave);
        let (own, back) = person_clock(def, calendar, tz, works, g.absent_until);
        let working = wave_send(def, &own, g.wave);
        let (shift_days, first) = member_start(def, &own, g.wave, back);
        let n = g.people;
        moves.by_zone += if zoned == base { 0 } else { n };
        moves.by_works += if working == zoned { 0 } else { n };
        moves.by_absence += if first == working { 0 } else { n };
        if first != base && n > 0 {
            moves.latest_first_send = moves.latest_first_send.max(Some(first));
        }
        rules.push(TimingRule {
            wave: g.wave,
            time_zone: g.time_zone.clone().unwrap_or_default(),
            works: g.works.clone().unwrap_or_default(),
            absent_until: g
                .absent_until
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            shift_days,
            first_due_at: first.timestamp_millis(),
        });
    }
    moves.latest_first_send_local = moves.latest_first_send.map(|t| calendar.format_local(t));
    (rules, moves)
}

#[cfg(test)]
mod tests {
    //! For random directories, working patterns, absences and rollouts: no
    //! send, reminder or escalation is ever due in someone's quiet hours
    //! or absence unless the rollout is urgent (nor, for an escalation, in
    //! the manager's it goes to), and everyone's first send is no later
    //! than the plan says.

    use super::*;
    use crate::rollout::steps::{open_from, shifted_wave_steps};
    use crate::rollout::{QuietHours, Wave, parse_definition};
    use chrono::{Days, NaiveTime, TimeDelta};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    const ZONES: [Option<&str>; 6] = [
        None,
        Some("Europe/London"),
        Some("America/New_York"),
        Some("Asia/Kolkata"),
        Some("Australia/Sydney"),
        Some("America/Los_Angeles"),
    ];
    const PATTERNS: [Option<&str>; 7] = [
        None,
        Some("Mon-Fri 08:00-18:00"),
        Some("nights"),
        Some("Tue-Thu"),
        Some("Sat,Sun 07:00-19:00"),
        Some("Wed 22:00-06:00"),
        Some("Mon,Fri 01:30-02:30"),
    ];

    /// Wave, time zone, works, return: as the store groups people.
    type GroupKey = (usize, Option<String>, Option<String>, Option<NaiveDate>);

    #[derive(Debug, Clone)]
    struct GenPerson {
        zone: usize,
        works: usize,
        /// Days after the rollout's start day they are back.
        back: Option<i64>,
        wave: usize,
        manager: usize,
    }

    #[derive(Debug, Clone)]
    struct Case {
        people: Vec<GenPerson>,
        /// Day of 2026, hour, minute.
        start: (u64, u32, u32),
        waves: Vec<u32>,
        deadline: u32,
        reminders: Vec<u32>,
        escalations: Vec<u32>,
        urgent: bool,
        weekends: bool,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(
                (
                    0..ZONES.len(),
                    0..PATTERNS.len(),
                    prop::option::weighted(0.4, -5i64..40),
                    0usize..3,
                    0usize..12,
                ),
                1..12,
            ),
            (0u64..365, 0u32..24, prop::sample::select(vec![0u32, 30])),
            prop::collection::vec(0u32..10, 1..=3),
            1u32..30,
            prop::collection::vec(1u32..10, 0..=2),
            prop::collection::vec(1u32..5, 0..=3),
            prop::bool::weighted(0.2),
            any::<bool>(),
        )
            .prop_map(
                |(people, start, waves, deadline, reminders, escalations, urgent, weekends)| {
                    let n = waves.len();
                    Case {
                        people: people
                            .into_iter()
                            .map(|(zone, works, back, wave, manager)| GenPerson {
                                zone,
                                works,
                                back,
                                wave: wave % n,
                                manager,
                            })
                            .collect(),
                        start,
                        waves,
                        deadline,
                        reminders,
                        escalations,
                        urgent,
                        weekends,
                    }
                },
            )
    }

    fn definition(case: &Case) -> RolloutDefinition {
        let text = "id = \"prop\"\nitem = \"7mb-neglect\"\nstart = 2026-01-01T09:30:00\n\
                    ack_deadline_days = 28\nchannels = [\"email\"]\n[[waves]]\nname = \"All\"\n";
        let mut def = parse_definition(Path::new("prop.toml"), text).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Days::new(case.start.0);
        def.start = day.and_time(NaiveTime::from_hms_opt(case.start.1, case.start.2, 0).unwrap());
        def.waves = case
            .waves
            .iter()
            .map(|&after_days| Wave {
                name: format!("after {after_days}"),
                after_days,
                champions_of_item_themes: false,
                agencies: Vec::new(),
                teams: Vec::new(),
                roles: Vec::new(),
                people: Vec::new(),
            })
            .collect();
        def.ack_deadline_days = case.deadline;
        let mut reminders = case.reminders.clone();
        reminders.sort_unstable();
        reminders.dedup();
        def.reminder_days = reminders;
        let mut escalations = case.escalations.clone();
        escalations.sort_unstable();
        escalations.dedup();
        def.escalation_days = escalations;
        def.urgent = case.urgent;
        def
    }

    fn person(def: &RolloutDefinition, i: usize, p: &GenPerson) -> Person {
        Person {
            id: format!("p-{i:02}"),
            display_name: format!("Person {i}"),
            email: format!("p{i}@example.org"),
            agency_id: "ag".to_owned(),
            team_id: "t".to_owned(),
            roles: Vec::new(),
            manager_id: None,
            time_zone: ZONES[p.zone].map(str::to_owned),
            mobile: None,
            works: PATTERNS[p.works]
                .map(|w| crate::rollout::WorkPattern::parse(w).unwrap().to_string()),
            absent_until: p.back.map(|d| def.start.date() + TimeDelta::days(d)),
        }
    }

    fn check(case: &Case) -> Result<(), TestCaseError> {
        let quiet = QuietHours {
            weekends: case.weekends,
            ..QuietHours::default()
        };
        let partnership = Calendar::new("Europe/London", quiet).unwrap();
        let def = definition(case);
        let people: Vec<Person> = case
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| person(&def, i, p))
            .collect();
        // The groups as the store makes them: returns on or before the
        // start day left out.
        let mut counts: BTreeMap<GroupKey, usize> = BTreeMap::new();
        for (p, g) in people.iter().zip(&case.people) {
            let back = p.absent_until.filter(|d| *d > def.start.date());
            if p.time_zone.is_some() || p.works.is_some() || back.is_some() {
                *counts
                    .entry((g.wave, p.time_zone.clone(), p.works.clone(), back))
                    .or_default() += 1;
            }
        }
        let groups: Vec<TimingGroup> = counts
            .into_iter()
            .map(
                |((wave, time_zone, works, absent_until), people)| TimingGroup {
                    wave,
                    time_zone,
                    works,
                    absent_until,
                    people,
                },
            )
            .collect();
        let (rules, moves) = plan_timing(&def, &partnership, &groups);

        for (p, g) in people.iter().zip(&case.people) {
            let back_day = p.absent_until.filter(|d| *d > def.start.date());
            let rule = rules.iter().find(|r| {
                r.wave == g.wave
                    && r.time_zone == p.time_zone.clone().unwrap_or_default()
                    && r.works == p.works.clone().unwrap_or_default()
                    && r.absent_until
                        == back_day
                            .map(|d| d.format("%Y-%m-%d").to_string())
                            .unwrap_or_default()
            });
            let base = wave_send(&def, &partnership, g.wave);
            let (shift, first) = match rule {
                Some(r) => (
                    r.shift_days,
                    DateTime::from_timestamp_millis(r.first_due_at).unwrap(),
                ),
                None => (0, base),
            };
            // The group's rule is the rule over the person.
            prop_assert_eq!((shift, first), person_start(&def, &partnership, p, g.wave));
            // No later than the plan says.
            let planned = moves
                .latest_first_send
                .map_or(base, |latest| latest.max(base));
            prop_assert!(first <= planned, "{} after the plan's {}", first, planned);

            let own = person_calendar(
                &def,
                &partnership,
                p.time_zone.as_deref(),
                p.works.as_deref(),
            );
            let back = p.absent_until.map(|d| back_at(&own, d));
            let manager = &people[g.manager % people.len()];
            let manager_own = person_calendar(
                &def,
                &partnership,
                manager.time_zone.as_deref(),
                manager.works.as_deref(),
            );
            let steps = shifted_wave_steps(&def, &own, g.wave, shift);
            prop_assert_eq!(steps[0].due_at, first);
            for step in &steps {
                if def.urgent {
                    continue;
                }
                prop_assert!(
                    own.is_open(step.due_at),
                    "{:?} {} due {} in {}'s quiet hours ({:?}, {:?})",
                    step.kind,
                    step.number,
                    step.due_at,
                    p.id,
                    p.time_zone,
                    p.works
                );
                if let Some(back) = back {
                    prop_assert!(
                        step.due_at >= back,
                        "{:?} due {} before {} is back at {}",
                        step.kind,
                        step.due_at,
                        p.id,
                        back
                    );
                }
                if step.kind == crate::rollout::StepKind::Escalation {
                    let due = open_from(&manager_own, manager.absent_until, false, step.due_at);
                    prop_assert!(
                        manager_own.is_open(due),
                        "escalation at {} in the manager's quiet hours",
                        due
                    );
                    if let Some(day) = manager.absent_until {
                        prop_assert!(due >= back_at(&manager_own, day));
                    }
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn nothing_is_due_in_anyones_quiet_hours_or_absence_and_no_first_send_is_later_than_planned(case in case()) {
            check(&case)?;
        }
    }

    #[test]
    fn the_plan_counts_who_each_rule_moves() {
        let partnership = Calendar::new("Europe/London", QuietHours::default()).unwrap();
        let text = "id = \"r\"\nitem = \"i\"\nstart = 2026-03-27T09:00:00\n\
                    ack_deadline_days = 10\nchannels = [\"email\"]\n[[waves]]\nname = \"All\"\n";
        let def = parse_definition(Path::new("r.toml"), text).unwrap();
        let group = |time_zone: Option<&str>, works: Option<&str>, back: Option<&str>, people| {
            TimingGroup {
                wave: 0,
                time_zone: time_zone.map(str::to_owned),
                works: works.map(str::to_owned),
                absent_until: back.map(|d| d.parse().unwrap()),
                people,
            }
        };
        let (rules, moves) = plan_timing(
            &def,
            &partnership,
            &[
                // London is the partnership's zone: nobody moves.
                group(Some("Europe/London"), None, None, 5),
                group(Some("America/New_York"), None, None, 2),
                group(None, Some("20:00-08:00"), None, 3),
                group(
                    Some("Asia/Kolkata"),
                    Some("20:00-08:00"),
                    Some("2026-04-20"),
                    1,
                ),
            ],
        );
        assert_eq!(rules.len(), 4);
        assert_eq!((moves.by_zone, moves.by_works, moves.by_absence), (3, 4, 1));
        assert_eq!(
            moves.latest_first_send_local.as_deref(),
            Some("Mon 20 Apr 2026 15:30 BST"),
            "20:00 in Kolkata on the day back"
        );
        let urgent = RolloutDefinition {
            urgent: true,
            ..def.clone()
        };
        let (_, moves) = plan_timing(
            &urgent,
            &partnership,
            &[group(None, Some("nights"), Some("2026-04-20"), 3)],
        );
        assert!(!moves.moved_anyone(), "urgent: at once for everyone");
    }
}
