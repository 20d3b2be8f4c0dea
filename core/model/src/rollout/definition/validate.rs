//! Field checks: a rollout file's raw values turned into a definition, each
//! problem reported with its line and the fix, all of them at once.

use super::keys::unknown_keys;
use super::raw::{RawDefinition, RawFollowUp, RawList, RawSelector, RawValue, RawWave};
use super::{Audience, Digest, Enrol, FollowUp, RolloutDefinition, Selector, Wave};
use crate::bounds::Bounds;
use crate::content::{SourceLocation, is_slug, slugify};
use crate::rollout::RolloutError;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// The most escalation rungs: champion, manager, business-unit digest.
const MAX_ESCALATIONS: usize = 3;
const DEFAULT_MAX_ATTEMPTS: u32 = 5;
const MAX_ATTEMPTS: u32 = 20;
/// The most days any count of days in a rollout may be (a wave's start, the
/// deadline, a reminder, an escalation, a follow-up). A rollout is planned
/// within a year; the bound also keeps every date a plan computes (start,
/// plus a wave's day, plus the deadline, plus an escalation) a real date,
/// where an unbounded number would overflow the calendar.
const MAX_DAYS: u32 = 365;

/// The most refreshers a rollout has.
const MAX_REFRESHERS: usize = 6;

/// The days a refresher's offset says: `30d` is 30 days, `6w` 42.
fn refresher_days(text: &str) -> Option<u32> {
    let (number, per) = match text.strip_suffix('d') {
        Some(n) => (n, 1),
        None => (text.strip_suffix('w')?, 7),
    };
    let number = number.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse::<u32>().ok()?.checked_mul(per)
}

/// A count of days from `min` to [`MAX_DAYS`].
fn days(key: &'static str, min: u32, example: u32) -> Bounds<u32> {
    Bounds {
        key,
        min,
        max: MAX_DAYS,
        example,
    }
}

/// Parses one rollout file. All problems found are returned at once.
pub fn parse_definition(path: &Path, text: &str) -> Result<RolloutDefinition, Vec<RolloutError>> {
    let mut p = Problems::new(path, text);
    let raw: RawDefinition = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| p.line(s.start)).unwrap_or(1);
            p.errors.extend(unknown_keys(path, text));
            p.at_line(
                line,
                format!("not a valid rollout file: {}", e.message().trim()),
                "rollouts are TOML: `key = \"value\"`, lists as [\"a\", \"b\"], `start = 2026-12-01T09:30:00`, waves as [[waves]] tables",
            );
            return Err(p.errors);
        }
    };
    p.errors.extend(unknown_keys(path, text));

    let id = p.required_string(&raw.id, "id", "\"neglect-2026-12\"", 1);
    if let (Some(id), Some(v)) = (&id, &raw.id)
        && !is_slug(id)
    {
        p.at(
            v.span(),
            format!("id \"{id}\" must be lowercase letters, digits and dashes"),
            format!("for example id = \"{}\"", slugify(id)),
        );
    }
    let (item, digest) = p.item_or_digest(&raw);
    let start = p.start(&raw.start);
    let urgent = p.flag(&raw.urgent, "urgent", false);
    let reacknowledge = p.flag(&raw.reacknowledge, "reacknowledge", false);
    let fallback = p.flag(&raw.fallback, "fallback", true);
    let channels = p.channels(&raw.channels);
    let ack_deadline_days = match &raw.ack_deadline_days {
        Some(v) => p.number(v, days("ack_deadline_days", 1, 14)),
        None => {
            p.at_line(
                1,
                "the rollout has no `ack_deadline_days`",
                "add e.g. ack_deadline_days = 28: the days each person has to acknowledge, counted from their own wave's send",
            );
            None
        }
    };
    let reminder_days = p.reminder_days(&raw.reminder_days, ack_deadline_days);
    let escalation_days = p.escalation_days(&raw.escalation_days);
    let champion_reminder_days = match &raw.champion_reminder_days {
        Some(list) => p
            .ascending_days(list, "champion_reminder_days")
            .map(|days| days.into_iter().map(|(d, _)| d).collect()),
        None => Some(Vec::new()),
    };
    let max_attempts = match &raw.max_attempts {
        None => Some(DEFAULT_MAX_ATTEMPTS),
        Some(v) => p.number(
            v,
            Bounds {
                key: "max_attempts",
                min: 1,
                max: MAX_ATTEMPTS,
                example: DEFAULT_MAX_ATTEMPTS,
            },
        ),
    };
    let unsubscribe_url = match &raw.unsubscribe_url {
        None => Some(None),
        Some(v) => p.unsubscribe_url(v).map(Some),
    };
    let audience = match &raw.audience {
        Some(a) => {
            let include = p.selector(a.get_ref());
            let exclude = match &a.get_ref().exclude {
                Some(e) => p.selector(e.get_ref()),
                None => Some(Selector::default()),
            };
            include
                .zip(exclude)
                .map(|(include, exclude)| Audience { include, exclude })
        }
        None => Some(Audience::default()),
    };
    let waves = p.waves(&raw.waves);
    let follow_ups = p.follow_ups(&raw.follow_ups);
    let team_posts = p.ids(&raw.team_posts, "team_posts");
    let enrol = p.enrol(&raw, start, reacknowledge);
    let bulletin = p.bulletin(&raw);
    let refreshers = p.refreshers(&raw.refreshers);

    if !p.errors.is_empty() {
        return Err(p.errors);
    }
    let parsed = (|| {
        Some(RolloutDefinition {
            id: id?,
            item: item?,
            digest: digest?,
            bulletin: bulletin?,
            start: start?,
            urgent: urgent?,
            reacknowledge: reacknowledge?,
            channels: channels?,
            fallback: fallback?,
            ack_deadline_days: ack_deadline_days?,
            reminder_days: reminder_days?,
            escalation_days: escalation_days?,
            champion_reminder_days: champion_reminder_days?,
            max_attempts: max_attempts?,
            unsubscribe_url: unsubscribe_url?,
            audience: audience?,
            team_posts: team_posts?,
            waves: waves?,
            follow_ups: follow_ups?,
            refreshers: refreshers?,
            enrol: enrol?.0,
            open_until: enrol?.1,
            induction: None,
        })
    })();
    parsed.ok_or(p.errors)
}

pub(in crate::rollout) struct Problems<'a> {
    path: &'a Path,
    text: &'a str,
    pub(in crate::rollout) errors: Vec<RolloutError>,
}

impl<'a> Problems<'a> {
    pub(in crate::rollout) fn new(path: &'a Path, text: &'a str) -> Self {
        Problems {
            path,
            text,
            errors: Vec::new(),
        }
    }

    /// The 1-based line of a byte offset in the file.
    pub(in crate::rollout) fn line(&self, offset: usize) -> usize {
        1 + self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
    }

    pub(in crate::rollout) fn at_line(
        &mut self,
        line: usize,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.errors.push(RolloutError {
            at: SourceLocation {
                path: self.path.to_owned(),
                line,
            },
            message: message.into(),
            help: help.into(),
        });
    }

    pub(in crate::rollout) fn at(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let line = self.line(span.start);
        self.at_line(line, message, help);
    }

    pub(super) fn string(
        &mut self,
        v: &Spanned<toml::Value>,
        key: &str,
        example: &str,
    ) -> Option<String> {
        match v.get_ref() {
            toml::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            toml::Value::String(_) => {
                self.at(
                    v.span(),
                    format!("`{key}` is empty"),
                    format!("write e.g. {key} = {example}"),
                );
                None
            }
            other => {
                self.at(
                    v.span(),
                    format!("`{key}` must be text, not {}", other.type_str()),
                    format!("write e.g. {key} = {example}"),
                );
                None
            }
        }
    }

    /// `item`, or for a digest `newsletter_issue` (and maybe `newsletter`):
    /// exactly one of the two.
    fn item_or_digest(&mut self, raw: &RawDefinition) -> (Option<String>, Option<Option<Digest>>) {
        if raw.bulletin.is_some() {
            return self.bulletin_has_no_item(raw);
        }
        let Some(issue) = &raw.newsletter_issue else {
            if let Some(newsletter) = &raw.newsletter {
                self.at(
                    newsletter.span(),
                    "`newsletter` applies only to a digest",
                    "add newsletter_issue = \"2026-12\" to send the whole issue, or remove `newsletter`",
                );
                return (None, None);
            }
            if raw.item.is_none() {
                self.at_line(
                    1,
                    "`item` is missing",
                    "add e.g. item = \"7mb-neglect-seeing-the-child\", or newsletter_issue = \"2026-12\" for every article of a newsletter issue in one message",
                );
                return (None, None);
            }
            let item =
                self.required_string(&raw.item, "item", "\"7mb-neglect-seeing-the-child\"", 1);
            return (item, Some(None));
        };
        if let Some(item) = &raw.item {
            self.at(
                item.span(),
                "a digest names a `newsletter_issue`, not an `item`",
                "remove `item` to send every article of the issue in one message, or remove `newsletter_issue` to send one item",
            );
            return (None, None);
        }
        let example = "\"2026-12\"";
        let issue_text = self.string(issue, "newsletter_issue", example);
        let newsletter = match &raw.newsletter {
            None => Some(None),
            Some(v) => self
                .string(v, "newsletter", "\"Partnership Matters\"")
                .map(Some),
        };
        let valid = issue_text.as_deref().is_some_and(|i| {
            NaiveDate::parse_from_str(&format!("{i}-01"), "%Y-%m-%d").is_ok() && i.len() == 7
        });
        if issue_text.is_some() && !valid {
            self.at(
                issue.span(),
                format!(
                    "newsletter_issue \"{}\" is not a year and month",
                    issue_text.unwrap_or_default()
                ),
                format!("write it as the articles do, e.g. newsletter_issue = {example}"),
            );
            return (None, None);
        }
        let digest = issue_text
            .zip(newsletter)
            .map(|(issue, newsletter)| Some(Digest { issue, newsletter }));
        (digest.as_ref().map(|_| String::new()), digest)
    }

    /// A required text value; `table_line` is where to point when it is missing.
    fn required_string(
        &mut self,
        v: &RawValue,
        key: &str,
        example: &str,
        table_line: usize,
    ) -> Option<String> {
        match v {
            Some(v) => self.string(v, key, example),
            None => {
                self.at_line(
                    table_line,
                    format!("`{key}` is missing"),
                    format!("add e.g. {key} = {example}"),
                );
                None
            }
        }
    }

    /// An opt-out URL that can stand in an email header as it is.
    fn unsubscribe_url(&mut self, v: &Spanned<toml::Value>) -> Option<String> {
        let example = "\"mailto:learning@northbridge.example?subject=unsubscribe\"";
        let url = self.string(v, "unsubscribe_url", example)?;
        let fits = (url.starts_with("https://") || url.starts_with("mailto:"))
            && url.is_ascii()
            && !url
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || matches!(c, '<' | '>'));
        if !fits {
            self.at(
                v.span(),
                format!("unsubscribe_url \"{url}\" must be an https: or mailto: URL without spaces or angle brackets"),
                format!("write e.g. unsubscribe_url = {example}, or leave it out for mandatory learning"),
            );
            return None;
        }
        Some(url)
    }

    /// `enrol` and `open_until`: who joins a running rollout, and until when.
    fn enrol(
        &mut self,
        raw: &RawDefinition,
        start: Option<NaiveDateTime>,
        reacknowledge: Option<bool>,
    ) -> Option<(Enrol, Option<NaiveDate>)> {
        let enrol = match &raw.enrol {
            None => Enrol::Start,
            Some(v) => match v.get_ref() {
                toml::Value::String(s) if s.trim() == "joiners" => Enrol::Joiners,
                toml::Value::String(s) if s.trim() == "start" => Enrol::Start,
                other => {
                    let written = match other {
                        toml::Value::String(s) => format!("\"{s}\""),
                        other => other.type_str().to_owned(),
                    };
                    self.at(
                        v.span(),
                        format!("`enrol` must be \"start\" or \"joiners\", not {written}"),
                        "write enrol = \"joiners\" to enrol people who come into the audience after the start, or leave it out to fix the members when the rollout starts",
                    );
                    return None;
                }
            },
        };
        if enrol == Enrol::Joiners
            && reacknowledge == Some(true)
            && let Some(v) = &raw.enrol
        {
            self.at(
                v.span(),
                "a re-acknowledgement round cannot enrol joiners: its audience is who acknowledged an earlier version",
                "remove `enrol`; people new to the audience get the item from an open rollout of its current version",
            );
            return None;
        }
        let Some(v) = &raw.open_until else {
            return Some((enrol, None));
        };
        let example = "open_until = 2027-03-31";
        let date = match v.get_ref() {
            toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d
                .date
                .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())),
            toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
            _ => None,
        };
        let Some(date) = date else {
            self.at(
                v.span(),
                "`open_until` must be a date",
                format!("write the last day joiners are enrolled, e.g. {example}"),
            );
            return None;
        };
        if enrol != Enrol::Joiners {
            self.at(
                v.span(),
                "`open_until` applies only to a rollout open to joiners",
                "add enrol = \"joiners\" to enrol people who come into the audience until then, or remove `open_until`",
            );
            return None;
        }
        if let Some(start) = start {
            let first = start.date();
            let last = first + chrono::Days::new(MAX_DAYS.into());
            if date < first || date > last {
                self.at(
                    v.span(),
                    format!(
                        "open_until {date} must be from the start day {first} to a year after it ({last})"
                    ),
                    "a rollout stays open at most a year: start a new rollout of the item for the year after",
                );
                return None;
            }
        }
        Some((enrol, Some(date)))
    }

    fn flag(&mut self, v: &RawValue, key: &str, default: bool) -> Option<bool> {
        match v {
            None => Some(default),
            Some(v) => match v.get_ref() {
                toml::Value::Boolean(b) => Some(*b),
                other => {
                    self.at(
                        v.span(),
                        format!("`{key}` must be true or false, not {}", other.type_str()),
                        format!("write {key} = true or {key} = false (without quotes); the default is {default}"),
                    );
                    None
                }
            },
        }
    }

    /// A whole number (of days or attempts) within `bounds`.
    fn number(&mut self, v: &Spanned<toml::Value>, bounds: Bounds<u32>) -> Option<u32> {
        match v.get_ref() {
            toml::Value::Integer(n) => match bounds.check(*n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.at(v.span(), bounds.message(n), bounds.help());
                    None
                }
            },
            other => {
                self.at(
                    v.span(),
                    format!(
                        "`{}` must be a whole number, not {}",
                        bounds.key,
                        other.type_str()
                    ),
                    format!(
                        "{} (without quotes), from {} to {}",
                        bounds.help(),
                        bounds.min,
                        bounds.max
                    ),
                );
                None
            }
        }
    }

    fn start(&mut self, v: &RawValue) -> Option<NaiveDateTime> {
        let help = "write the local wall-clock time without quotes or offset, e.g. start = 2026-12-01T09:30:00; the partnership's time zone applies";
        let Some(v) = v else {
            self.at_line(1, "the rollout has no `start`", help);
            return None;
        };
        let local = match v.get_ref() {
            toml::Value::Datetime(d) if d.offset.is_none() => {
                d.date.zip(d.time).and_then(|(d, t)| {
                    let date =
                        NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())?;
                    let time = NaiveTime::from_hms_nano_opt(
                        t.hour.into(),
                        t.minute.into(),
                        t.second.into(),
                        t.nanosecond,
                    )?;
                    Some(date.and_time(time))
                })
            }
            _ => None,
        };
        if local.is_none() {
            self.at(v.span(), "`start` must be a local date and time", help);
        }
        local
    }

    /// Texts of a list, each with its span; `None` after reporting a non-text.
    fn strings(
        &mut self,
        list: &Spanned<Vec<Spanned<toml::Value>>>,
        key: &str,
    ) -> Option<Vec<(String, Range<usize>)>> {
        let mut out = Vec::new();
        let mut ok = true;
        for v in list.get_ref() {
            match v.get_ref() {
                toml::Value::String(s) if !s.trim().is_empty() => {
                    out.push((s.trim().to_owned(), v.span()))
                }
                _ => {
                    ok = false;
                    self.at(
                        v.span(),
                        format!("every entry of `{key}` must be non-empty text"),
                        format!("write e.g. {key} = [\"a\", \"b\"]"),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// A list of ids with no repeats; absent means empty.
    pub(super) fn ids(&mut self, list: &RawList, key: &str) -> Option<Vec<String>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let entries = self.strings(list, key)?;
        let mut out: Vec<String> = Vec::new();
        let before = self.errors.len();
        for (id, span) in entries {
            if out.contains(&id) {
                self.at(
                    span,
                    format!("\"{id}\" is listed twice in `{key}`"),
                    "list each once",
                );
            } else {
                out.push(id);
            }
        }
        (self.errors.len() == before).then_some(out)
    }

    fn channels(&mut self, list: &RawList) -> Option<Vec<String>> {
        let help = "name the channel instances from cascade.toml in preference order, e.g. channels = [\"email\", \"telegram\"]";
        match list {
            None => {
                self.at_line(1, "the rollout has no `channels`", help);
                None
            }
            Some(l) if l.get_ref().is_empty() => {
                self.at(l.span(), "`channels` is empty", help);
                None
            }
            Some(_) => self.ids(list, "channels"),
        }
    }

    /// Numbers of days from 1 to [`MAX_DAYS`], strictly ascending.
    fn ascending_days(
        &mut self,
        list: &Spanned<Vec<Spanned<toml::Value>>>,
        key: &'static str,
    ) -> Option<Vec<(u32, Range<usize>)>> {
        let mut out: Vec<(u32, Range<usize>)> = Vec::new();
        let mut ok = true;
        for v in list.get_ref() {
            let Some(n) = self.number(v, days(key, 1, 7)) else {
                ok = false;
                continue;
            };
            if let Some((prev, _)) = out.last()
                && n <= *prev
            {
                ok = false;
                self.at(
                    v.span(),
                    format!("`{key}` must go up: {n} comes after {prev}"),
                    format!(
                        "list the days in ascending order without repeats, e.g. {key} = [7, 14]"
                    ),
                );
            }
            out.push((n, v.span()));
        }
        ok.then_some(out)
    }

    /// `refreshers = ["30d", "90d", "180d"]`: days (`d`) or weeks (`w`)
    /// after each person's acknowledgement, ascending, each within
    /// [`MAX_DAYS`], at most [`MAX_REFRESHERS`].
    fn refreshers(&mut self, list: &RawList) -> Option<Vec<u32>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let help = "write each as days or weeks after the person's acknowledgement, ascending, e.g. refreshers = [\"30d\", \"90d\", \"180d\"]";
        let mut out: Vec<u32> = Vec::new();
        let mut ok = true;
        if list.get_ref().len() > MAX_REFRESHERS {
            ok = false;
            self.at(
                list.span(),
                format!(
                    "{} refreshers; a rollout has at most {MAX_REFRESHERS}",
                    list.get_ref().len()
                ),
                "keep the few that space the learning out best, e.g. refreshers = [\"30d\", \"90d\", \"180d\"]",
            );
        }
        for v in list.get_ref() {
            let text = match v.get_ref() {
                toml::Value::String(text) => text.trim().to_owned(),
                other => {
                    ok = false;
                    self.at(
                        v.span(),
                        format!(
                            "a refresher must be text such as \"30d\", not {}",
                            other.type_str()
                        ),
                        help,
                    );
                    continue;
                }
            };
            let days = refresher_days(&text);
            let Some(days) = days.filter(|d| (1..=MAX_DAYS).contains(d)) else {
                ok = false;
                let message = match days {
                    Some(d) => format!(
                        "refresher \"{text}\" is {d} days; a refresher comes 1 to {MAX_DAYS} days after the acknowledgement"
                    ),
                    None => format!("refresher \"{text}\" is not a number of days or weeks"),
                };
                self.at(v.span(), message, help);
                continue;
            };
            if let Some(&prev) = out.last()
                && days <= prev
            {
                ok = false;
                self.at(
                    v.span(),
                    format!(
                        "`refreshers` must go up: \"{text}\" ({days} days) comes after {prev} days"
                    ),
                    help,
                );
            }
            out.push(days);
        }
        ok.then_some(out)
    }

    fn reminder_days(&mut self, list: &RawList, deadline: Option<u32>) -> Option<Vec<u32>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let days = self.ascending_days(list, "reminder_days")?;
        let mut ok = true;
        if let Some(deadline) = deadline {
            for (d, span) in &days {
                if *d >= deadline {
                    ok = false;
                    self.at(
                        span.clone(),
                        format!("a reminder on day {d} comes after the deadline (ack_deadline_days = {deadline})"),
                        "remind before the deadline, or move the deadline later; after the deadline, escalation_days apply",
                    );
                }
            }
        }
        ok.then(|| days.into_iter().map(|(d, _)| d).collect())
    }

    fn escalation_days(&mut self, list: &RawList) -> Option<Vec<u32>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let days = self.ascending_days(list, "escalation_days")?;
        if days.len() > MAX_ESCALATIONS {
            self.at(
                days[MAX_ESCALATIONS].1.clone(),
                format!("{} escalation rungs; there are at most {MAX_ESCALATIONS}", days.len()),
                "the rungs are 1: the theme's champion, 2: the person's manager, 3: a business-unit digest; remove the extra days",
            );
            return None;
        }
        Some(days.into_iter().map(|(d, _)| d).collect())
    }

    fn selector(&mut self, raw: &RawSelector) -> Option<Selector> {
        let agencies = self.ids(&raw.agencies, "agencies");
        let teams = self.ids(&raw.teams, "teams");
        let roles = self.ids(&raw.roles, "roles");
        let champion_themes = self.ids(&raw.champion_themes, "champion_themes");
        let people = self.ids(&raw.people, "people");
        Some(Selector {
            agencies: agencies?,
            teams: teams?,
            roles: roles?,
            champion_themes: champion_themes?,
            people: people?,
        })
    }

    fn waves(&mut self, raw: &Option<Spanned<Vec<Spanned<RawWave>>>>) -> Option<Vec<Wave>> {
        let help = "add at least one wave: [[waves]] with name = \"Champions\", after_days = 0 and a selector such as champions_of_item_themes = true";
        let Some(raw) = raw else {
            self.at_line(1, "the rollout has no [[waves]]", help);
            return None;
        };
        let mut waves = Vec::new();
        let mut ok = true;
        let count = raw.get_ref().len();
        for (i, w) in raw.get_ref().iter().enumerate() {
            let line = self.line(w.span().start);
            let wave = w.get_ref();
            let name = self.required_string(&wave.name, "name", "\"Champions\"", line);
            let after_days = match &wave.after_days {
                Some(v) => self.number(v, days("after_days", 0, 4)),
                None => Some(0),
            };
            let champions = self.flag(
                &wave.champions_of_item_themes,
                "champions_of_item_themes",
                false,
            );
            let agencies = self.ids(&wave.agencies, "agencies");
            let teams = self.ids(&wave.teams, "teams");
            let roles = self.ids(&wave.roles, "roles");
            let people = self.ids(&wave.people, "people");
            let parsed = (|| {
                Some(Wave {
                    name: name?,
                    after_days: after_days?,
                    champions_of_item_themes: champions?,
                    agencies: agencies?,
                    teams: teams?,
                    roles: roles?,
                    people: people?,
                })
            })();
            let Some(parsed) = parsed else {
                ok = false;
                continue;
            };
            if parsed.is_catch_all() && i + 1 < count {
                ok = false;
                self.at_line(
                    line,
                    format!("wave \"{}\" has no selector, so it takes everyone left, but it is not the last wave", parsed.name),
                    "give it a selector (champions_of_item_themes, agencies, teams, roles or people), or make it the last wave",
                );
            }
            if let Some(prev) = waves.iter().find(|p: &&Wave| p.name == parsed.name) {
                ok = false;
                self.at_line(
                    line,
                    format!("two waves are named \"{}\"", prev.name),
                    "give each wave its own name",
                );
            }
            if let Some(prev) = waves.last()
                && parsed.after_days < prev.after_days
            {
                ok = false;
                self.at_line(
                    line,
                    format!(
                        "wave \"{}\" starts on day {}, before the wave above it (day {})",
                        parsed.name, parsed.after_days, prev.after_days
                    ),
                    "list the waves in the order they go out",
                );
            }
            waves.push(parsed);
        }
        if count == 0 {
            self.at(raw.span(), "the rollout has no [[waves]]", help);
            return None;
        }
        ok.then_some(waves)
    }

    fn follow_ups(&mut self, raw: &[Spanned<RawFollowUp>]) -> Option<Vec<FollowUp>> {
        let mut out = Vec::new();
        let mut ok = true;
        for f in raw {
            let line = self.line(f.span().start);
            let follow_up = f.get_ref();
            let after_days = match &follow_up.after_days {
                Some(v) => self.number(v, days("after_days", 1, 90)),
                None => {
                    self.at_line(
                        line,
                        "the follow-up has no `after_days`",
                        "add e.g. after_days = 90: days after the person's wave send",
                    );
                    None
                }
            };
            let question = self.required_string(
                &follow_up.question,
                "question",
                "\"Have you used this learning in practice?\"",
                line,
            );
            let answers = self.answers(&follow_up.answers, line);
            let used = match (&follow_up.used, &answers) {
                (None, _) => Some(None),
                (Some(v), answers) => {
                    let used = self.string(v, "used", "\"Used it in practice\"");
                    match (used, answers) {
                        (Some(used), Some(answers)) if !answers.contains(&used) => {
                            self.at(
                                v.span(),
                                format!("`used` \"{used}\" is not one of the follow-up's answers"),
                                format!(
                                    "write the answer that says the learning was used, as written in `answers`: {}",
                                    answers
                                        .iter()
                                        .map(|a| format!("{a:?}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                            None
                        }
                        (Some(used), _) => Some(Some(used)),
                        (None, _) => None,
                    }
                }
            };
            let reasons = match &follow_up.reasons {
                None => Some(Vec::new()),
                Some(list) => {
                    let reasons = self.ids(&follow_up.reasons, "reasons");
                    match reasons {
                        Some(r) if !(2..=5).contains(&r.len()) => {
                            self.at(
                                list.span(),
                                format!("a follow-up has {} reasons; it needs 2 to 5, or none", r.len()),
                                "list the reasons someone may give for not using it, e.g. reasons = [\"Not relevant to my role\", \"No opportunity yet\", \"Need more training\"]",
                            );
                            None
                        }
                        other => other,
                    }
                }
            };
            match (after_days, question, answers, used, reasons) {
                (Some(after_days), Some(question), Some(answers), Some(used), Some(reasons)) => out
                    .push(FollowUp {
                        after_days,
                        question,
                        answers,
                        used,
                        reasons,
                    }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn answers(&mut self, raw: &RawList, table_line: usize) -> Option<Vec<String>> {
        let help = "give 2 to 5 fixed answers, e.g. answers = [\"Used it in practice\", \"Not yet\", \"Not relevant to my role\"]";
        let Some(list) = raw else {
            self.at_line(table_line, "the follow-up has no `answers`", help);
            return None;
        };
        let answers = self.ids(raw, "answers")?;
        if !(2..=5).contains(&answers.len()) {
            self.at(
                list.span(),
                format!("a follow-up has {} answers; it needs 2 to 5", answers.len()),
                help,
            );
            return None;
        }
        Some(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_reported_at_the_line_of_its_span() {
        let text = "id = \"a\"\nitem = 3\n\nurgent = 1";
        let mut p = Problems::new(Path::new("r.toml"), text);
        assert_eq!(p.line(0), 1);
        assert_eq!(p.line(text.find("3").expect("there")), 2);
        assert_eq!(p.line(text.len() + 100), 4, "past the end is the last line");
        p.at(text.find("urgent").expect("there")..text.len(), "m", "h");
        assert_eq!(p.errors[0].to_string(), "r.toml:4: m\n  help: h");
    }

    #[test]
    fn every_field_problem_is_reported_at_once_in_the_order_fields_are_checked() {
        let text = "id = \"Not A Slug\"\nitem = 3\nstart = 2026-12-01\nchannels = []\n\
                    ack_deadline_days = 400\nurgent = \"no\"\n";
        let errors: Vec<String> = parse_definition(Path::new("r.toml"), text)
            .expect_err("refused")
            .iter()
            .map(|e| e.to_string().lines().next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            errors,
            [
                "r.toml:1: id \"Not A Slug\" must be lowercase letters, digits and dashes",
                "r.toml:2: `item` must be text, not integer",
                "r.toml:3: `start` must be a local date and time",
                "r.toml:6: `urgent` must be true or false, not string",
                "r.toml:4: `channels` is empty",
                "r.toml:5: ack_deadline_days must be between 1 and 365, not 400",
                "r.toml:1: the rollout has no [[waves]]",
            ]
        );
    }
}
