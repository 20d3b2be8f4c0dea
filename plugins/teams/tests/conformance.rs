//! The channel-plugin conformance suite (`plugins/testing/conformance`)
//! run against the Teams plugin: the real library through the host, the
//! fake Bot Connector, token endpoint and OpenID key set as the provider.
//! Teams posts every press to the bot's messaging endpoint, cascade's
//! `/webhooks/teams`, so every check serves it; the fake refuses a
//! rate-limited post with 429 and Retry-After, and a person who blocked
//! the bot with 403.

mod support;

use cascade_plugin_conformance as conformance;
use support::Teams;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_a_message() {
    conformance::sends_a_message::<Teams>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_long_text() {
    conformance::splits_long_text::<Teams>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_come_back_as_actions() {
    conformance::buttons_come_back_as_actions::<Teams>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_reported() {
    conformance::retry_after_is_reported::<Teams>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_is_reported() {
    conformance::unreachable_is_reported::<Teams>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_updates_the_message() {
    conformance::edit_updates_the_message::<Teams>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_without_auth_is_refused() {
    conformance::webhook_without_auth_is_refused::<Teams>().await;
}
