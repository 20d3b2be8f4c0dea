//! Planning's shell: what planning a rollout (or a recurring bulletin's
//! issue) reads of the project, asks the store and the plugin host, around
//! the pure [`crate::plan`]. The engine plans through it for `cascade
//! rollout plan`, and the runner for each bulletin occurrence it makes.

use crate::delivery::ChannelRoute;
use crate::plan::{self, DirectoryFacts, PlanInputs, Planned, named};
use crate::problems::Problems;
use crate::project::Project;
use cascade_model::content::{self, ContentError, LoadedItem};
use cascade_model::rollout::{
    Calendar, RolloutDefinition, TeamPostChannel, parse_definition, plan_team_posts,
};
use cascade_plugin_api::{Capability, Manifest};
use cascade_plugin_host::PluginHost;
use cascade_privacy::PrivacyGuard;
use cascade_store::AllStores;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::Arc;

/// The pieces of an opened project that planning uses.
pub struct Planner<'a, S> {
    pub project: &'a Project,
    pub store: &'a S,
    pub host: &'a PluginHost,
    pub routes: &'a [ChannelRoute],
    pub calendar: &'a Calendar,
}

/// Whether a plugin can carry team posts: post in a shared channel with
/// buttons, and edit the post.
pub fn posts_in_channels(manifest: &Manifest) -> bool {
    [
        Capability::ChannelPosts,
        Capability::Buttons,
        Capability::Edit,
    ]
    .iter()
    .all(|c| manifest.capabilities.contains(c))
}

/// The acknowledgement link signer, when `[ack]` is configured. A bad key
/// stops start-up with the reason, never the key.
pub fn ack_links(
    project: &Project,
) -> Result<Option<(crate::ack::AckConfig, Arc<crate::ack::AckKeys>)>, Problems> {
    let keys = project.ack_keys().map_err(Problems::one)?;
    Ok(project
        .config
        .ack
        .clone()
        .zip(keys)
        .map(|(config, keys)| (config, Arc::new(keys))))
}

impl<S: AllStores> Planner<'_, S> {
    /// Refuses to plan against a store nobody was imported into. The
    /// people themselves stay in the store: planning asks it about them
    /// ([`Audiences`]) rather than reading a million of them into memory.
    pub async fn require_people(&self) -> Result<(), Problems> {
        if self.store.has_people().await? {
            return Ok(());
        }
        Err(Problems::one(format!(
            "the store at {} holds no people\n  help: run `cascade import --project {}` first",
            self.project.store_path().display(),
            self.project.root.display()
        )))
    }

    /// Validates a rollout file against everything it names and works out
    /// who gets what when. Writes nothing. The shell around
    /// [`plan::check`] and [`plan::conclude`]: it reads the files, asks the
    /// store, and hands them what they need.
    pub async fn plan(&self, path: &Path, now: DateTime<Utc>) -> Result<Planned, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems::one(format!("{}: cannot read the rollout: {e}", path.display()))
        })?;
        let definition = parse_definition(path, &text)
            .map_err(|e| Problems(e.iter().map(ToString::to_string).collect()))?;
        if definition.bulletin.is_some() {
            return Err(Problems::one(format!(
                "{}: this is a recurring bulletin ([bulletin]), planned and started as one\n  help: run `cascade rollout plan {}` or `cascade rollout start {}`",
                path.display(),
                path.display(),
                path.display()
            )));
        }
        let (items, content_errors) =
            content::load_dir(&self.project.content_dir(), &self.project.taxonomy);
        self.plan_definition(path, &text, definition, items, content_errors, now)
            .await
    }

    /// Plans `definition`, written as `text` at `path`, over `items` (the
    /// content folder's, and for a bulletin's issue the issue itself).
    pub async fn plan_definition(
        &self,
        path: &Path,
        text: &str,
        definition: RolloutDefinition,
        items: Vec<LoadedItem>,
        content_errors: Vec<ContentError>,
        now: DateTime<Utc>,
    ) -> Result<Planned, Problems> {
        let taxonomy = &self.project.taxonomy;
        self.require_people().await?;
        let directory = DirectoryFacts {
            teams: self.store.teams().await?,
            agencies: self
                .store
                .agencies()
                .await?
                .into_iter()
                .map(|a| a.id)
                .collect(),
            people: self
                .store
                .people_near(&named(&definition, |s| &s.people, |w| &w.people))
                .await?,
            roles: self
                .store
                .roles_near(&named(&definition, |s| &s.roles, |w| &w.roles))
                .await?,
        };
        let config_path = self.project.root.join(crate::config::CONFIG_FILE);
        let config_text = std::fs::read_to_string(&config_path).unwrap_or_default();
        let team_channels = self.team_post_channels();
        let guard = PrivacyGuard::new(&self.project.config.privacy)
            .map_err(|e| Problems::one(e.to_string()))?;
        let renderer = self.project.renderer().map_err(Problems)?;
        let sample = self.project.sample_input("Sam Example");
        let checked = plan::check(
            PlanInputs {
                path,
                text,
                definition,
                items,
                content_errors,
                taxonomy,
                config_path: &config_path,
                config_text: &config_text,
                channels: self
                    .project
                    .config
                    .channels
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
                team_channels: &team_channels,
                routes: self.routes,
                calendar: self.calendar,
                today: now.with_timezone(&self.calendar.time_zone()).date_naive(),
                guard: &guard,
                renderer: &renderer,
                sample: &sample,
            },
            &directory,
        )?;
        // Each person's own zone, working pattern and absence, timed per
        // group of people who share them: what each rule moves.
        let mut checked = checked;
        let groups = self.store.timing_groups(checked.audience()).await?;
        let moves = checked.time(self.calendar, &groups);
        let counts = self
            .store
            .count_audience(checked.audience(), checked.kinds())
            .await?;
        let kinds = checked.kinds().to_vec();
        let mut planned = plan::conclude(checked, &counts, self.calendar)?;
        planned.summary.moves = moves;
        planned.quota_lines = plan::quota_lines(&planned.summary, self.routes);
        self.plan_readings(&mut planned, &kinds, now).await?;
        if !planned.definition.team_posts.is_empty() {
            let by_team = self.store.audience_by_team(&planned.audience).await?;
            planned.team_posts = plan_team_posts(
                &planned.definition,
                &team_channels,
                &directory.teams,
                &by_team,
            );
        }
        Ok(planned)
    }

    /// Who gets a marked item in full and who a notice, per channel, and
    /// the fragments of each person's text on text-message channels; a
    /// notice needs its reading link, and a team post the item in full.
    async fn plan_readings(
        &self,
        planned: &mut Planned,
        kinds: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), Problems> {
        let item = planned.item.item.clone();
        let ack_links = ack_links(self.project)?;
        let sends = plan::first_sends(&planned.summary);
        let mut problems = Vec::new();
        for (i, name) in planned.summary.channels.iter().enumerate() {
            let Some(route) = self.routes.iter().find(|r| &r.instance == name) else {
                continue;
            };
            let people = sends.get(i).copied().unwrap_or(0);
            if item.classification.marking().is_some() && people > 0 {
                let full = if route.is_text_message() {
                    0
                } else if route.carries >= item.classification {
                    people
                } else {
                    self.store
                        .count_at_domains(&planned.audience, kinds, i, &route.secure_domains)
                        .await? as u64
                };
                if full < people && ack_links.is_none() {
                    problems.push(format!(
                        "{}: \"{}\" is {} and channel \"{name}\" sends {} people a notice with a link to read it, and links need [ack] base_url\n  help: set [ack] in cascade.toml (see the example project), or use channels that carry {}",
                        planned.item.path.display(),
                        item.id,
                        item.classification.name().to_uppercase(),
                        people - full,
                        item.classification.name().to_uppercase()
                    ));
                }
                planned
                    .reading_lines
                    .push(plan::reading_line(route, &item, people, full));
            }
            if route.is_text_message()
                && people > 0
                && let Some((config, keys)) = &ack_links
            {
                let subject = match item.classification.marking() {
                    Some(marking) => format!("{marking}: {}", item.title),
                    None => item.title.clone(),
                };
                // Delivery numbers are not given out until the rollout
                // starts: a seven-digit one stands in for them.
                let texts: Vec<String> = self
                    .store
                    .people_under(&planned.audience, kinds, i)
                    .await?
                    .iter()
                    .map(|person| {
                        let link = config.link(&keys.sign(1_000_000, person, now));
                        cascade_plugin_api::sms::sms_notice(&subject, &link)
                    })
                    .collect();
                planned.sms_lines.extend(plan::sms_line(name, &texts));
            }
        }
        if item.classification.marking().is_some() {
            for instance in &planned.definition.team_posts {
                if let Some(route) = self.routes.iter().find(|r| &r.instance == instance)
                    && route.carries < item.classification
                {
                    problems.push(format!(
                        "{}: \"{}\" is {} and team posts go on channel \"{instance}\", which carries only {}: a team channel is read by everyone in it\n  help: remove \"{instance}\" from team_posts, or say carries = \"{}\" on that channel if it may carry it",
                        planned.item.path.display(),
                        item.id,
                        item.classification.name().to_uppercase(),
                        route.carries.name().to_uppercase(),
                        item.classification.name()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(problems))
        }
    }

    /// What each configured channel instance offers team posts.
    pub fn team_post_channels(&self) -> Vec<TeamPostChannel<'_>> {
        self.project
            .config
            .channels
            .iter()
            .map(|c| TeamPostChannel {
                name: &c.name,
                plugin: &c.plugin,
                team_channels: &c.team_channels,
                posts_in_channels: self
                    .host
                    .plugin(&c.plugin)
                    .is_some_and(|p| posts_in_channels(&p.manifest)),
            })
            .collect()
    }
}
