//! Planning a rollout, pure: the project's pieces and the store's answers
//! in, the plan or every problem out. Nothing here reads a file, asks the
//! store or looks at a clock; [`crate::engine::Engine::plan`] is the shell
//! that gathers the inputs and asks the store the two questions whose
//! inputs only planning can give:
//!
//! ```text
//! read the rollout, the content, cascade.toml; ask the store about the directory
//!   └─▶ check(inputs, directory) ─▶ Checked { audience query, problems so far }
//!         ask the store to count the audience
//!           └─▶ conclude(checked, counts) ─▶ Planned (or every problem)
//!                 ask the store for the audience by team, for team posts
//! ```

use crate::delivery::{ChannelRoute, Quota, millis};
use crate::problems::Problems;
use cascade_model::content::{self, ContentError, ItemKind, LearningItem, LoadedItem, Taxonomy};
use cascade_model::directory::Team;
use cascade_model::rollout::{
    AudienceCounts, AudienceQuery, Calendar, Known, PlanSummary, PlannedTeamPost,
    RolloutDefinition, TeamPostChannel, TimingGroup, TimingMoves, audience_query, check_team_posts,
    plan_timing, summarise, validate, wave_send,
};
use cascade_privacy::PrivacyGuard;
use cascade_render::{RenderInput, Renderer};
use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A rollout that passed every check, ready to start.
pub struct Planned {
    pub definition: RolloutDefinition,
    pub item: LoadedItem,
    pub summary: PlanSummary,
    /// Who the rollout reaches, resolved in the store when it starts.
    pub audience: AudienceQuery,
    /// How many people it reaches, as planned.
    pub people: usize,
    /// People left out because another rollout of the item already has them.
    pub already_reached: usize,
    /// Posts in team channels, with when each is due.
    pub team_posts: Vec<PlannedTeamPost>,
    /// Per channel with a sending quota, how long its first messages take
    /// under it ("outbox: 2,400 emails at 30 a minute: about 80 minutes").
    pub quota_lines: Vec<String>,
    /// For an item with a marking, per channel, how many people get its
    /// full text and how many a notice with a link to read it.
    pub reading_lines: Vec<String>,
    /// Per text-message channel, the fragments each person's first text
    /// takes and their total, as Notify bills them.
    pub sms_lines: Vec<String>,
}

/// How many people each channel of the plan reaches with its first
/// message, in the order of the rollout's channels.
pub fn first_sends(summary: &PlanSummary) -> Vec<u64> {
    (0..summary.channels.len())
        .map(|i| {
            summary
                .waves
                .iter()
                .map(|w| w.by_channel.get(i).copied().unwrap_or(0) as u64)
                .sum()
        })
        .collect()
}

/// One channel's line of "who reads what": `full` of `people` get the
/// item in full, the others a notice.
pub fn reading_line(route: &ChannelRoute, item: &LearningItem, people: u64, full: u64) -> String {
    let marking = item.classification.marking().unwrap_or("OFFICIAL");
    let name = &route.instance;
    let them = |n: u64| if n == 1 { "person" } else { "people" };
    if route.is_text_message() {
        return format!(
            "{name}: {people} {} a notice by text message with the link to read it (a text never carries the item)",
            them(people)
        );
    }
    if full == people {
        return format!(
            "{name}: {people} {} the full text (the channel carries {marking})",
            them(people)
        );
    }
    let notices = people - full;
    if route.secure_domains.is_empty() {
        format!(
            "{name}: {notices} {} a notice with the link to read it (the channel carries only {})",
            them(notices),
            route.carries.name().to_uppercase()
        )
    } else {
        format!(
            "{name}: {full} {} the full text (at {}), {notices} a notice with the link to read it",
            them(full),
            route.secure_domains.join(", ")
        )
    }
}

/// The line for a text-message channel: fragments per person (their
/// spread) and in all, from each person's text.
pub fn sms_line(name: &str, texts: &[String]) -> Option<String> {
    use cascade_plugin_api::sms::{Encoding, fragments};
    if texts.is_empty() {
        return None;
    }
    let mut by_count = std::collections::BTreeMap::<usize, u64>::new();
    let mut unicode = 0u64;
    for text in texts {
        let (encoding, _, count) = fragments(text);
        *by_count.entry(count).or_default() += 1;
        if encoding == Encoding::Ucs2 {
            unicode += 1;
        }
    }
    let total: u64 = by_count.iter().map(|(count, n)| *count as u64 * n).sum();
    let spread = by_count
        .iter()
        .map(|(count, n)| {
            format!(
                "{n} {} at {count} fragment{} each",
                if *n == 1 { "person" } else { "people" },
                if *count == 1 { "" } else { "s" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let encoding = if unicode > 0 {
        " (Unicode: 70 characters in one, 67 each when split)"
    } else {
        " (GSM: 160 characters in one, 153 each when split)"
    };
    Some(format!(
        "{name}: {spread}; {total} fragments in all for the first texts{encoding}"
    ))
}

/// The project's pieces a plan is made from, read and parsed by the shell.
pub struct PlanInputs<'a> {
    /// The rollout file (named in problems), its text and its definition.
    pub path: &'a Path,
    pub text: &'a str,
    pub definition: RolloutDefinition,
    /// The items of the content folder, and why any others did not load.
    pub items: Vec<LoadedItem>,
    pub content_errors: Vec<ContentError>,
    pub taxonomy: &'a Taxonomy,
    /// `cascade.toml`, whose lines the team post checks name.
    pub config_path: &'a Path,
    pub config_text: &'a str,
    /// The channel instances `cascade.toml` configures, by name.
    pub channels: BTreeSet<String>,
    /// What each of them offers team posts.
    pub team_channels: &'a [TeamPostChannel<'a>],
    /// The routes of the channel instances whose plugins were found.
    pub routes: &'a [ChannelRoute],
    pub calendar: &'a Calendar,
    /// Today where the partnership is: an item may only roll out if its
    /// status allows it today.
    pub today: NaiveDate,
    pub guard: &'a PrivacyGuard,
    pub renderer: &'a Renderer,
    /// What an item is rendered with to check that it renders.
    pub sample: &'a RenderInput,
}

/// What the store holds of the directory, as far as the definition names it.
pub struct DirectoryFacts {
    pub teams: Vec<Team>,
    /// Agency ids.
    pub agencies: BTreeSet<String>,
    /// Those of the people the definition names who are active, with their
    /// neighbours by id (for a "did you mean").
    pub people: BTreeSet<String>,
    /// Those of the roles the definition names that someone holds, or every
    /// role when one is missing.
    pub roles: BTreeSet<String>,
}

/// A rollout checked against everything but the size of its audience.
pub struct Checked {
    path: PathBuf,
    definition: RolloutDefinition,
    item: LoadedItem,
    /// The digest's articles' titles.
    titles: Vec<String>,
    audience: AudienceQuery,
    kinds: Vec<String>,
    /// Problems found so far: reported with whatever the counts add.
    problems: Vec<String>,
}

impl Checked {
    /// The audience for the store to count.
    pub fn audience(&self) -> &AudienceQuery {
        &self.audience
    }

    /// The identity kinds of the rollout's channels, in order: the store
    /// counts each person under the first they have.
    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Problems found so far.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The definition checked.
    pub fn definition(&self) -> &RolloutDefinition {
        &self.definition
    }

    /// Times the audience's people in their own zones, working patterns
    /// and absences: `groups` as the store gives them (see
    /// [`cascade_store::Audiences::timing_groups`]). The rules go with the
    /// audience to the store; the moves are for the plan.
    pub fn time(&mut self, calendar: &Calendar, groups: &[TimingGroup]) -> TimingMoves {
        let (rules, moves) = plan_timing(&self.definition, calendar, groups);
        self.audience.timing = rules;
        moves
    }
}

/// Every id of one kind a definition names, sorted and once each: in the
/// audience's include and exclude lists and in every wave.
pub fn named(
    def: &RolloutDefinition,
    in_selector: fn(&cascade_model::rollout::Selector) -> &Vec<String>,
    in_wave: fn(&cascade_model::rollout::Wave) -> &Vec<String>,
) -> Vec<String> {
    let mut ids: Vec<String> = in_selector(&def.audience.include)
        .iter()
        .chain(in_selector(&def.audience.exclude))
        .chain(def.waves.iter().flat_map(in_wave))
        .cloned()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Checks a rollout against everything it names, the item (or the
/// digest's articles) against its status, the privacy guard and every
/// format of its channels, and works out the audience query. `Err` when
/// planning cannot go on (no such item, no such newsletter issue); the
/// other problems travel in [`Checked`] to be reported with the counts'.
pub fn check(inputs: PlanInputs<'_>, directory: &DirectoryFacts) -> Result<Checked, Problems> {
    let PlanInputs {
        path,
        text,
        mut definition,
        items,
        content_errors,
        taxonomy,
        config_path,
        config_text,
        channels,
        team_channels,
        routes,
        calendar,
        today,
        guard,
        renderer,
        sample,
    } = inputs;
    let known = Known {
        items: items.iter().map(|l| l.item.id.clone()).collect(),
        agencies: directory.agencies.clone(),
        teams: directory.teams.iter().map(|t| t.id.clone()).collect(),
        people: directory.people.clone(),
        roles: directory.roles.clone(),
        themes: taxonomy.themes().iter().map(|t| t.id.clone()).collect(),
        channels,
    };
    let mut problems: Vec<String> = validate(&definition, path, text, &known)
        .iter()
        .map(ToString::to_string)
        .collect();
    problems.extend(
        check_team_posts(
            &definition,
            (path, text),
            (config_path, config_text),
            team_channels,
            &directory.teams,
        )
        .iter()
        .map(ToString::to_string),
    );
    // Follow-up questions and answers, and anything else written in the
    // rollout, reach people too.
    problems.extend(
        guard
            .scan_toml(text)
            .iter()
            .map(|f| f.in_file(path).to_string()),
    );
    // May the item go out, does the privacy guard pass it, does it
    // render for every channel used?
    let check_item = |loaded: &LoadedItem, problems: &mut Vec<String>| {
        if !loaded.item.status.may_roll_out(today) {
            problems.push(format!(
                "{}: item \"{}\" has status {} and may not be rolled out on {today}\n  help: set status to approved, published or internal (or wait for its embargo date)",
                loaded.path.display(),
                loaded.item.id,
                loaded.item.status.name()
            ));
        }
        for finding in guard.blocking_item(&loaded.text, &loaded.item.privacy_allow) {
            problems.push(finding.in_file(&loaded.path).to_string());
        }
        for channel in &definition.channels {
            let Some(route) = routes.iter().find(|r| &r.instance == channel) else {
                continue;
            };
            for &format in &route.formats {
                match renderer.render(&loaded.item, taxonomy, format, sample) {
                    Ok(chunks) => {
                        problems.extend(crate::project::rendered_problem(
                            guard,
                            loaded,
                            &chunks.concat(),
                            &[],
                            &format!("{format} (channel \"{channel}\")"),
                        ));
                    }
                    Err(e) => problems.push(format!(
                        "{}: cannot render for {format} (channel \"{channel}\"): {e}",
                        loaded.path.display()
                    )),
                }
            }
        }
    };
    let mut titles = Vec::new();
    let loaded = match &definition.digest {
        None => {
            let Some(loaded) = items.into_iter().find(|l| l.item.id == definition.item) else {
                problems.extend(content_errors.iter().map(ToString::to_string));
                return Err(Problems(problems));
            };
            check_item(&loaded, &mut problems);
            loaded
        }
        Some(digest) => {
            let articles = match digest_articles(digest, &items, path, text) {
                Ok(articles) => articles,
                Err(problem) => {
                    problems.push(problem);
                    problems.extend(content_errors.iter().map(ToString::to_string));
                    return Err(Problems(problems));
                }
            };
            for article in &articles {
                check_item(article, &mut problems);
            }
            titles = articles.iter().map(|a| a.item.title.clone()).collect();
            let ItemKind::NewsletterItem(first) = &articles[0].item.kind else {
                unreachable!("digest articles are newsletter items");
            };
            let issue = content::newsletter_issue(
                &first.newsletter,
                &digest.issue,
                &articles,
                taxonomy,
                path,
            )
            .map_err(|e| {
                Problems::one(format!("{}: cannot build the digest: {e}", path.display()))
            })?;
            if problems.is_empty() {
                check_item(&issue, &mut problems);
            }
            issue
        }
    };
    definition.item = loaded.item.id.clone();
    let mut audience = audience_query(
        &definition,
        &loaded.item.id,
        &loaded.item.version.0,
        &loaded.item.themes,
        &|wave| millis(wave_send(&definition, calendar, wave)),
    );
    // People in the partnership's own zone are timed as everyone is.
    audience.home_zone = calendar.time_zone().name().to_owned();
    if definition.reacknowledge && loaded.item.what_changed.is_none() {
        problems.push(format!(
            "{}: a re-acknowledgement round needs a `what_changed` note in the item\n  help: add what_changed = \"...\" to the front matter of {}, saying in a sentence or two what changed",
            path.display(),
            loaded.path.display()
        ));
    }
    // A refresher asks one of the item's check questions.
    if !definition.refreshers.is_empty() && loaded.item.check_questions.is_empty() {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with("refreshers"))
            .map_or(1, |i| i + 1);
        problems.push(format!(
            "{}:{line}: refreshers ask one of the item's check questions, and \"{}\" has none\n  help: add [[check_questions]] to the front matter of {}, or remove `refreshers`",
            path.display(),
            loaded.item.id,
            loaded.path.display()
        ));
    }
    // Counted per wave and by the first of the rollout's channels whose
    // kind of identity each person has: counts only, in the store.
    let kinds: Vec<String> = definition
        .channels
        .iter()
        .map(|c| {
            routes
                .iter()
                .find(|r| &r.instance == c)
                .map_or_else(String::new, |r| r.identity.clone())
        })
        .collect();
    Ok(Checked {
        path: path.to_owned(),
        definition,
        item: loaded,
        titles,
        audience,
        kinds,
        problems,
    })
}

/// The plan, once the store counted the audience: every problem found if
/// there is any (an empty audience is one), otherwise who gets what when.
/// Its team posts are left for the shell, which asks the store for the
/// audience by team only for a plan that has some.
pub fn conclude(
    checked: Checked,
    counts: &AudienceCounts,
    calendar: &Calendar,
) -> Result<Planned, Problems> {
    let Checked {
        path,
        definition,
        item,
        titles,
        audience,
        mut problems,
        ..
    } = checked;
    // Someone in two partnerships' audiences gets an item once, whichever
    // rollout reaches them first: the query leaves them out.
    let already_reached = counts.already_reached;
    if counts.members() == 0 {
        problems.push(format!(
            "{}: the audience is empty: no active person matches it and a wave{}\n  help: check [audience] and the wave selectors against the imported directory",
            path.display(),
            if already_reached > 0 {
                format!(" ({already_reached} matched but already have this item through another rollout)")
            } else {
                String::new()
            }
        ));
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let mut summary = summarise(&definition, calendar, counts);
    summary.articles = titles;
    Ok(Planned {
        definition,
        item,
        summary,
        people: counts.members(),
        audience,
        already_reached,
        team_posts: Vec::new(),
        quota_lines: Vec::new(),
        reading_lines: Vec::new(),
        sms_lines: Vec::new(),
    })
}

/// For each channel of the rollout with a sending quota, how long the
/// first messages it carries take under the quota, from an empty window.
pub fn quota_lines(summary: &PlanSummary, routes: &[ChannelRoute]) -> Vec<String> {
    summary
        .channels
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let route = routes.iter().find(|r| &r.instance == name)?;
            let sends: u64 = summary
                .waves
                .iter()
                .map(|w| w.by_channel.get(i).copied().unwrap_or(0) as u64)
                .sum();
            let noun = if route.identity == "email" {
                "emails"
            } else {
                "messages"
            };
            if route.spread.is_empty() {
                return route
                    .quota
                    .describe(sends, noun)
                    .map(|line| format!("{name}: {line}"));
            }
            // Spread over several instances: their quotas add up, and one
            // without a quota leaves the whole without one.
            let members: Vec<&ChannelRoute> = std::iter::once(route)
                .chain(
                    route
                        .spread
                        .iter()
                        .filter_map(|s| routes.iter().find(|r| &r.instance == s)),
                )
                .collect();
            let sum = |each: fn(&ChannelRoute) -> Option<u32>| {
                members
                    .iter()
                    .map(|r| each(r))
                    .try_fold(0u32, |total, n| n.map(|n| total.saturating_add(n)))
            };
            let quota = Quota {
                per_minute: sum(|r| r.quota.per_minute),
                per_day: sum(|r| r.quota.per_day),
            };
            let names: Vec<&str> = members.iter().map(|r| r.instance.as_str()).collect();
            quota
                .describe(sends, noun)
                .map(|line| format!("{name} (spread over {}): {line}", names.join(", ")))
        })
        .collect()
}

/// The articles of a digest's newsletter issue, in id order, or what is
/// wrong (no article has that issue; two newsletters share it) at the
/// `newsletter_issue` line of the rollout file.
fn digest_articles<'a>(
    digest: &cascade_model::rollout::Digest,
    items: &'a [LoadedItem],
    path: &Path,
    text: &str,
) -> Result<Vec<&'a LoadedItem>, String> {
    let line = text
        .lines()
        .position(|l| l.trim_start().starts_with("newsletter_issue"))
        .map_or(1, |i| i + 1);
    let newsletter_of = |l: &LoadedItem| match &l.item.kind {
        ItemKind::NewsletterItem(n) if n.issue == digest.issue => Some(n.newsletter.clone()),
        _ => None,
    };
    let mut articles: Vec<&LoadedItem> = items
        .iter()
        .filter(|l| {
            newsletter_of(l)
                .is_some_and(|n| digest.newsletter.as_ref().is_none_or(|wanted| *wanted == n))
        })
        .collect();
    articles.sort_by(|a, b| a.item.id.cmp(&b.item.id));
    let newsletters: BTreeSet<String> = articles.iter().filter_map(|l| newsletter_of(l)).collect();
    let issues: BTreeSet<&str> = items
        .iter()
        .filter_map(|l| match &l.item.kind {
            ItemKind::NewsletterItem(n) => Some(n.issue.as_str()),
            _ => None,
        })
        .collect();
    match newsletters.len() {
        0 => Err(format!(
            "{}:{line}: no newsletter item in the content folder has issue \"{}\"{}\n  help: {}",
            path.display(),
            digest.issue,
            digest
                .newsletter
                .as_ref()
                .map(|n| format!(" in \"{n}\""))
                .unwrap_or_default(),
            if issues.is_empty() {
                "add the issue's articles as newsletter-item files first".to_owned()
            } else {
                format!(
                    "issues with articles: {}",
                    issues.into_iter().collect::<Vec<_>>().join(", ")
                )
            }
        )),
        1 => Ok(articles),
        _ => Err(format!(
            "{}:{line}: issue \"{}\" has articles of {} newsletters\n  help: name one, e.g. newsletter = \"{}\"",
            path.display(),
            digest.issue,
            newsletters.len(),
            newsletters.first().expect("two or more")
        )),
    }
}

#[cfg(test)]
mod tests;
