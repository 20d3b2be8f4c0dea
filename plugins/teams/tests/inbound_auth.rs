//! Every request to the bot's messaging endpoint is checked as the Bot
//! Framework documents it, through cascade's own webhook route and the
//! real plugin library: a token with a wrong signature, another audience,
//! another issuer, past its expiry or before its start (beyond five
//! minutes of skew), a key id the Bot Framework does not publish, or a
//! `serviceurl` claim that is not the activity's is refused with 401; an
//! activity from another tenant or through a Bot Connector not allowed is
//! refused with 403; none of them becomes an event. Once the keys are
//! held, a forged token is refused on the headers, before the body is
//! read. A key published in a rotation is fetched when a token first
//! names it.

mod support;

use cascade_plugin_api::InboundKind;
use cascade_plugin_conformance::Running;
use std::time::Duration;
use support::Teams;
use support::fake_teams::{OTHER_TENANT, Signed, TENANT};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_forged_stale_or_foreign_activity_is_refused_and_becomes_nothing() {
    let mut channel = Running::<Teams>::start().await;
    let fake = channel.provider.0.clone();
    let conversation = fake.personal_conversation(1);
    let activity =
        |text: &str, tenant: &str| fake.text_activity(1, &conversation, true, text, tenant);

    for how in [
        Signed::Missing,
        Signed::WrongSignature,
        Signed::WrongAudience,
        Signed::WrongIssuer,
        Signed::Expired,
        Signed::NotYetValid,
        Signed::UnknownKey,
        Signed::OtherServiceUrl,
    ] {
        let status = fake.post(&activity("pending", TENANT), &how).await;
        assert_eq!(status, 401, "a token {how:?} is refused");
    }
    let status = fake
        .post(&activity("pending", OTHER_TENANT), &Signed::Valid)
        .await;
    assert_eq!(status, 403, "an activity from another tenant is refused");
    let mut elsewhere = activity("pending", TENANT);
    elsewhere["serviceUrl"] = serde_json::json!("http://127.0.0.2:9/");
    assert_eq!(
        fake.post(&elsewhere, &Signed::Valid).await,
        403,
        "a Bot Connector outside allowed_service_urls is refused, even signed for"
    );
    channel.assert_no_event(QUIET).await;

    let status = fake
        .post(&activity("pending", TENANT), &Signed::ExpiredWithinSkew)
        .await;
    assert_eq!(status, 200, "two minutes past expiry is within the skew");
    let event = channel.next_event().await;
    assert_eq!(
        event.kind,
        InboundKind::Command {
            name: "pending".to_owned(),
            args: vec![]
        }
    );
    assert_eq!(event.account, fake.address(1));
    channel.assert_no_event(QUIET).await;

    // With the keys held, a forged token is refused on the headers alone:
    // the body it announces is never waited for.
    let forged = fake
        .sign(&activity("pending", TENANT), &Signed::WrongSignature)
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(headers_only(&fake.webhook_url(), &forged).await, 401);
    assert!(started.elapsed() < Duration::from_secs(5));
    channel.assert_no_event(QUIET).await;
    channel.stop().await;
}

/// A POST whose headers announce a body that never comes; the status.
async fn headers_only(url: &str, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (address, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response))
        .await
        .expect("answered without the body")
        .unwrap();
    String::from_utf8_lossy(&response[..n])
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_id_fetches_the_keys_again_and_a_rotated_key_is_then_accepted() {
    let mut channel = Running::<Teams>::start().await;
    let fake = channel.provider.0.clone();
    let conversation = fake.personal_conversation(1);
    let activity = |text: &str| fake.text_activity(1, &conversation, true, text, TENANT);

    assert_eq!(fake.post(&activity("help"), &Signed::Valid).await, 200);
    channel.next_event().await;
    let fetches = {
        let state = fake.state();
        (state.metadata_fetches, state.key_fetches)
    };
    assert_eq!(
        fetches,
        (1, 1),
        "the keys are fetched once, through the metadata's jwks_uri"
    );
    assert_eq!(fake.post(&activity("help"), &Signed::Valid).await, 200);
    channel.next_event().await;
    assert_eq!(fake.state().key_fetches, 1, "and then kept");

    // A key id nobody publishes: the keys are fetched again, and it is
    // still refused.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(fake.post(&activity("help"), &Signed::UnknownKey).await, 401);
    assert_eq!(fake.state().key_fetches, 2);
    channel.assert_no_event(QUIET).await;

    // The Bot Framework rotates its keys: the first token signed with the
    // new key makes the plugin fetch them, and is accepted.
    fake.rotate_keys();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(fake.post(&activity("help"), &Signed::RotatedKey).await, 200);
    assert_eq!(fake.state().key_fetches, 3);
    let event = channel.next_event().await;
    assert_eq!(
        event.kind,
        InboundKind::Command {
            name: "help".to_owned(),
            args: vec![]
        }
    );
    assert_eq!(fake.post(&activity("help"), &Signed::RotatedKey).await, 200);
    channel.next_event().await;
    assert_eq!(fake.state().key_fetches, 3, "the new key is kept");
    channel.stop().await;
}
