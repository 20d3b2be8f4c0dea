//! Team posts: a rollout's item posted once in each team channel it names,
//! with a live count ("2 of 3 acknowledged") kept current by editing the
//! post. Like the dispatcher, a restartable loop over the store: a post,
//! and each edit of its count, is claimed under a lease in the
//! dispatcher's name and recorded with its outcome, so several serves on
//! one store never post or edit the same post at once; a count is
//! recomputed from the acknowledgements whatever route recorded them, and a
//! post whose count changed is edited at most once per
//! `team_post_edit_interval`, so acknowledgements arriving together are
//! shown by one edit. An edit that is rate limited or fails is tried again
//! later; the count shown only moves when an edit lands, so the last edit
//! always shows the true count.

use super::{
    ChannelRoute, Composer, DeliveryError, DispatchSettings, RolloutRuntime, Rollouts, SharedWorld,
    backoff, dispatcher::jitter, millis,
};
use cascade_model::actions::ActionRef;
use cascade_model::rollout::count_line;
use cascade_plugin_api::{
    Action, ChannelPost, Message, MessagePart, Recipient, SendRequest, SendResult,
};
use cascade_plugin_host::PluginHost;
use cascade_render::RenderInput;
use cascade_store::{
    ClaimedTeamPost, Outbox, StaleTeamPost, Store, TeamCount, TeamPostEdit, TeamPostOutcome,
    TeamPosts,
};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How long a failed edit (the post was deleted, the bot lost access)
/// waits before it is tried again.
const FAILED_EDIT_WAIT: Duration = Duration::from_secs(3600);

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

/// When the next edit of a post may be made after one at `now`: never
/// sooner than the pacing interval, nor than the provider asked.
pub fn next_edit_at(now: i64, interval: Duration, retry_after: Option<Duration>) -> i64 {
    now + ms(interval.max(retry_after.unwrap_or_default()))
}

/// Posts team posts when due and keeps their counts current.
pub struct TeamPoster<S> {
    pub store: Arc<S>,
    pub host: Arc<PluginHost>,
    pub rollouts: Arc<Rollouts>,
    pub world: Arc<SharedWorld>,
    pub composer: Arc<Composer>,
    pub settings: DispatchSettings,
    /// The id the leases are taken in: the dispatcher's
    /// ([`super::Dispatcher::owner`]), so taking back a stopped serve's
    /// leases takes back its posts and edits with its outbox rows.
    pub owner: String,
}

impl<S: Store + Outbox + TeamPosts> TeamPoster<S> {
    /// Posts every team post due at `now`; returns how many were attempted.
    pub async fn post_due(&self, now: DateTime<Utc>) -> Result<usize, DeliveryError> {
        let claimed = self
            .store
            .claim_team_posts(millis(now), ms(self.settings.lease), &self.owner)
            .await?;
        for post in &claimed {
            let outcome = self.post(post, now).await?;
            if let TeamPostOutcome::Dead { reason } = &outcome {
                tracing::warn!(rollout = %post.rollout_id, team = %post.team_id, channel = %post.channel, "gave up a team post: {reason}");
            }
            self.store
                .record_team_post(post.id, &outcome, &self.owner, millis(now))
                .await?;
        }
        Ok(claimed.len())
    }

    /// Edits every sent post whose count changed and whose next edit is
    /// due at `now`, each claimed under a lease (another serve's edits are
    /// left to it); returns how many edits were attempted.
    pub async fn refresh_counts(&self, now: DateTime<Utc>) -> Result<usize, DeliveryError> {
        let stale = self
            .store
            .claim_stale_team_posts(millis(now), ms(self.settings.lease), &self.owner)
            .await?;
        for post in &stale {
            let edit = self.edit(post, now).await?;
            if let TeamPostEdit::RetryAt { reason, .. } = &edit {
                tracing::warn!(rollout = %post.rollout_id, team = %post.team_id, channel = %post.channel, "the live count of a team post was not updated; trying again later: {reason}");
            }
            self.store
                .record_team_post_edit(post.id, &edit, &self.owner, millis(now))
                .await?;
        }
        Ok(stale.len())
    }

    async fn post(
        &self,
        post: &ClaimedTeamPost,
        now: DateTime<Utc>,
    ) -> Result<TeamPostOutcome, DeliveryError> {
        let rollout = self.rollouts.get(&*self.store, &post.rollout_id).await?;
        if !self.store.may_send(&post.rollout_id).await? {
            return Ok(TeamPostOutcome::Released);
        }
        let world = self.world.get();
        let Some(route) = world.routes.get(&post.channel) else {
            return Ok(TeamPostOutcome::Dead {
                reason: format!("channel \"{}\" is no longer configured", post.channel),
            });
        };
        if !route.channel_posts {
            // A plugin that does not know team posts would send each edit
            // as a new message.
            return Ok(TeamPostOutcome::Dead {
                reason: format!(
                    "the plugin of channel \"{}\" no longer has the channel-posts capability",
                    post.channel
                ),
            });
        }
        let count = self.store.team_count(post.id).await?;
        let request = match self.request(
            post.id,
            &post.team_id,
            &post.address,
            &rollout,
            route,
            count,
            None,
        ) {
            Ok(request) => request,
            Err(reason) => return Ok(TeamPostOutcome::Dead { reason }),
        };
        let retry = |reason: String, after: Option<Duration>| {
            if post.attempts >= rollout.definition.max_attempts {
                return TeamPostOutcome::Dead {
                    reason: format!("gave up after {} attempts: {reason}", post.attempts),
                };
            }
            let delay = backoff(
                post.attempts,
                after,
                self.settings.backoff_base,
                self.settings.backoff_max,
                jitter(post.id, post.attempts),
            );
            TeamPostOutcome::RetryAt {
                at: millis(now) + ms(delay),
                reason,
            }
        };
        Ok(match self.host.send(&post.channel, &request).await {
            Ok(SendResult::Delivered { provider_id }) => {
                tracing::info!(rollout = %post.rollout_id, team = %post.team_id, channel = %post.channel, "posted in the team's channel");
                TeamPostOutcome::Sent {
                    provider_id,
                    shown: count,
                    edit_due_at: next_edit_at(
                        millis(now),
                        self.settings.team_post_edit_interval,
                        None,
                    ),
                }
            }
            Ok(SendResult::Retry {
                reason,
                retry_after_ms,
            }) => retry(reason, retry_after_ms.map(Duration::from_millis)),
            Ok(SendResult::Failed { reason, .. }) => TeamPostOutcome::Dead { reason },
            // Timeouts and stopped instances: the outcome is unknown, so try again.
            Err(e) => retry(e.to_string(), None),
        })
    }

    async fn edit(
        &self,
        post: &StaleTeamPost,
        now: DateTime<Utc>,
    ) -> Result<TeamPostEdit, DeliveryError> {
        let interval = self.settings.team_post_edit_interval;
        let retry_at = |after: Duration| next_edit_at(millis(now), interval, Some(after));
        let rollout = self.rollouts.get(&*self.store, &post.rollout_id).await?;
        let world = self.world.get();
        let Some(route) = world.routes.get(&post.channel).filter(|r| r.channel_posts) else {
            return Ok(TeamPostEdit::RetryAt {
                at: retry_at(FAILED_EDIT_WAIT),
                reason: format!(
                    "channel \"{}\" is no longer configured with a plugin that has the channel-posts capability",
                    post.channel
                ),
            });
        };
        let request = match self.request(
            post.id,
            &post.team_id,
            &post.address,
            &rollout,
            route,
            post.count,
            Some(&post.provider_id),
        ) {
            Ok(request) => request,
            Err(reason) => {
                return Ok(TeamPostEdit::RetryAt {
                    at: retry_at(FAILED_EDIT_WAIT),
                    reason,
                });
            }
        };
        Ok(match self.host.send(&post.channel, &request).await {
            Ok(SendResult::Delivered { .. }) => TeamPostEdit::Shown {
                shown: post.count,
                next_at: next_edit_at(millis(now), interval, None),
            },
            Ok(SendResult::Retry {
                reason,
                retry_after_ms,
            }) => TeamPostEdit::RetryAt {
                at: retry_at(Duration::from_millis(retry_after_ms.unwrap_or_default())),
                reason,
            },
            Ok(SendResult::Failed { reason, .. }) => TeamPostEdit::RetryAt {
                at: retry_at(FAILED_EDIT_WAIT),
                reason,
            },
            Err(e) => TeamPostEdit::RetryAt {
                at: retry_at(Duration::ZERO),
                reason: e.to_string(),
            },
        })
    }

    /// The post (or, with `edit`, the edit of the post sent as `edit`):
    /// the item rendered for the team, its count, and one "Acknowledge"
    /// button that refers to the post, signed.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        post_id: i64,
        team_id: &str,
        address: &str,
        rollout: &RolloutRuntime,
        route: &ChannelRoute,
        count: TeamCount,
        edit: Option<&str>,
    ) -> Result<SendRequest, String> {
        if let Some(finding) = &rollout.privacy_block {
            return Err(format!("the privacy guard blocked the item: {finding}"));
        }
        let team_name = self
            .world
            .get()
            .directory
            .teams
            .iter()
            .find(|t| t.id == team_id)
            .map_or_else(|| team_id.to_owned(), |t| t.name.clone());
        let input = RenderInput {
            person_name: format!("everyone in {team_name}"),
            ack_url: None,
            ack_token: None,
            partnership_name: self.composer.partnership_name.clone(),
            carries: route.carries,
            confirm: None,
        };
        let mut parts = Vec::new();
        for &format in &route.formats {
            let chunks = self
                .composer
                .renderer
                .render(&rollout.item, &self.composer.taxonomy, format, &input)
                .map_err(|e| format!("cannot render for {format}: {e}"))?;
            rollout.check_outgoing(&format!("team-post {format}"), || {
                format!("{}\n{}", rollout.item.title, chunks.concat())
            })?;
            parts.push(MessagePart {
                format: format.name().into(),
                chunks,
            });
        }
        Ok(SendRequest {
            delivery_id: format!("team-post-{post_id}"),
            idempotency_key: format!(
                "team-post/{}/{team_id}/{}",
                rollout.stored.id, route.instance
            ),
            channel: route.kind.clone(),
            recipient: Recipient {
                person_id: String::new(),
                display_name: team_name,
                address: address.to_owned(),
            },
            message: Message {
                subject: Some(rollout.item.title.clone()),
                parts,
            },
            actions: vec![Action {
                id: self.composer.actions.sign(&ActionRef::Post(post_id)),
                label: "Acknowledge".to_owned(),
                form: None,
            }],
            reply: None,
            list: None,
            post: Some(ChannelPost {
                status: Some(count_line(count.acknowledged, count.total)),
                edit: edit.map(str::to_owned),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_edit_waits_the_interval_or_the_providers_longer_wait() {
        let interval = Duration::from_secs(3);
        assert_eq!(next_edit_at(1_000, interval, None), 4_000);
        assert_eq!(
            next_edit_at(1_000, interval, Some(Duration::from_millis(500))),
            4_000,
            "a short rate limit still keeps the pace"
        );
        assert_eq!(
            next_edit_at(1_000, interval, Some(Duration::from_secs(30))),
            31_000,
            "a long rate limit is waited out"
        );
    }

    #[test]
    fn the_count_reads_as_people_say_it() {
        assert_eq!(count_line(0, 3), "0 of 3 acknowledged");
        assert_eq!(count_line(12, 30), "12 of 30 acknowledged");
    }
}
