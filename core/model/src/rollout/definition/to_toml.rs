//! A definition written back as a rollout file, in one canonical form.

use super::{Audience, FollowUp, RolloutDefinition, Wave};
use chrono::NaiveDateTime;
use serde::Serialize;

/// Writes a definition as a rollout file; `parse_definition` reads it back unchanged.
pub fn to_toml(def: &RolloutDefinition) -> String {
    let canonical = CanonicalDefinition {
        id: &def.id,
        item: (def.digest.is_none() && def.bulletin.is_none()).then_some(def.item.as_str()),
        newsletter_issue: def.digest.as_ref().map(|d| d.issue.as_str()),
        newsletter: def.digest.as_ref().and_then(|d| d.newsletter.as_deref()),
        start: toml_datetime(def.start),
        urgent: def.urgent,
        reacknowledge: def.reacknowledge,
        channels: &def.channels,
        fallback: def.fallback,
        ack_deadline_days: def.ack_deadline_days,
        reminder_days: &def.reminder_days,
        escalation_days: &def.escalation_days,
        champion_reminder_days: &def.champion_reminder_days,
        max_attempts: def.max_attempts,
        unsubscribe_url: def.unsubscribe_url.as_deref(),
        audience: &def.audience,
        team_posts: &def.team_posts,
        waves: &def.waves,
        follow_ups: &def.follow_ups,
        enrol: def.enrol.as_str(),
        open_until: def.open_until.map(toml_date),
        bulletin: def.bulletin.as_ref(),
        refreshers: def.refreshers.iter().map(|d| format!("{d}d")).collect(),
    };
    toml::to_string(&canonical).expect("a rollout of strings, numbers and a date-time serialises")
}

fn toml_date(d: chrono::NaiveDate) -> toml::value::Datetime {
    d.format("%Y-%m-%d")
        .to_string()
        .parse()
        .expect("a formatted date parses as a TOML date")
}

fn toml_datetime(t: NaiveDateTime) -> toml::value::Datetime {
    t.format("%Y-%m-%dT%H:%M:%S%.f")
        .to_string()
        .parse()
        .expect("a formatted local date-time parses as a TOML date-time")
}

fn is_start(enrol: &&str) -> bool {
    *enrol == "start"
}

#[derive(Serialize)]
struct CanonicalDefinition<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    newsletter_issue: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    newsletter: Option<&'a str>,
    start: toml::value::Datetime,
    urgent: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reacknowledge: bool,
    channels: &'a [String],
    fallback: bool,
    ack_deadline_days: u32,
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    reminder_days: &'a [u32],
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    escalation_days: &'a [u32],
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    champion_reminder_days: &'a [u32],
    max_attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribe_url: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    team_posts: &'a [String],
    #[serde(skip_serializing_if = "is_start")]
    enrol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_until: Option<toml::value::Datetime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bulletin: Option<&'a crate::rollout::Bulletin>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    refreshers: Vec<String>,
    #[serde(skip_serializing_if = "Audience::is_everyone")]
    audience: &'a Audience,
    waves: &'a [Wave],
    #[serde(skip_serializing_if = "<[FollowUp]>::is_empty")]
    follow_ups: &'a [FollowUp],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{Digest, Selector};
    use chrono::NaiveDate;

    fn minimal() -> RolloutDefinition {
        RolloutDefinition {
            id: "safer-sleep".to_owned(),
            item: "7mb-safer-sleep".to_owned(),
            digest: None,
            bulletin: None,
            start: NaiveDate::from_ymd_opt(2026, 12, 1)
                .and_then(|d| d.and_hms_opt(9, 30, 0))
                .expect("a real date-time"),
            urgent: false,
            reacknowledge: false,
            channels: vec!["email".to_owned()],
            fallback: true,
            ack_deadline_days: 14,
            reminder_days: Vec::new(),
            escalation_days: Vec::new(),
            champion_reminder_days: Vec::new(),
            max_attempts: 5,
            unsubscribe_url: None,
            audience: Audience::default(),
            team_posts: Vec::new(),
            waves: vec![Wave {
                name: "Everyone".to_owned(),
                after_days: 0,
                champions_of_item_themes: false,
                agencies: Vec::new(),
                teams: Vec::new(),
                roles: Vec::new(),
                people: Vec::new(),
            }],
            follow_ups: Vec::new(),
            refreshers: Vec::new(),
            enrol: crate::rollout::Enrol::Start,
            open_until: None,
            induction: None,
        }
    }

    #[test]
    fn an_open_rollout_is_written_back_with_its_enrolment_and_end() {
        let mut def = minimal();
        def.enrol = crate::rollout::Enrol::Joiners;
        def.open_until = NaiveDate::from_ymd_opt(2027, 3, 31);
        let text = to_toml(&def);
        assert!(
            text.contains("enrol = \"joiners\"\nopen_until = 2027-03-31\n"),
            "{text}"
        );
        let back = crate::rollout::parse_definition(std::path::Path::new("r.toml"), &text)
            .expect("it parses back");
        assert_eq!(back, def);
        assert!(!to_toml(&minimal()).contains("enrol"));
    }

    #[test]
    fn refreshers_are_written_back_as_days() {
        let mut def = minimal();
        def.refreshers = vec![30, 90, 180];
        let text = to_toml(&def);
        assert!(
            text.contains("refreshers = [\"30d\", \"90d\", \"180d\"]\n"),
            "{text}"
        );
        let back = crate::rollout::parse_definition(std::path::Path::new("r.toml"), &text)
            .expect("it parses back");
        assert_eq!(back, def);
        assert!(!to_toml(&minimal()).contains("refreshers"));
    }

    #[test]
    fn what_is_empty_or_off_is_left_out_and_the_rest_written_in_order() {
        assert_eq!(
            to_toml(&minimal()),
            "id = \"safer-sleep\"\nitem = \"7mb-safer-sleep\"\nstart = 2026-12-01T09:30:00\n\
             urgent = false\nchannels = [\"email\"]\nfallback = true\nack_deadline_days = 14\n\
             max_attempts = 5\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n"
        );
    }

    #[test]
    fn a_digest_is_written_as_its_issue_without_an_item() {
        let mut def = minimal();
        def.item = String::new();
        def.digest = Some(Digest {
            issue: "2026-12".to_owned(),
            newsletter: Some("Partnership Matters".to_owned()),
        });
        def.audience.exclude = Selector {
            people: vec!["p-tom".to_owned()],
            ..Selector::default()
        };
        let written = to_toml(&def);
        assert!(!written.contains("item ="), "{written}");
        assert!(
            written
                .contains("newsletter_issue = \"2026-12\"\nnewsletter = \"Partnership Matters\"\n"),
            "{written}"
        );
        assert!(
            written.contains("[audience.exclude]\npeople = [\"p-tom\"]\n"),
            "{written}"
        );
    }
}
