//! The real plugin library, loaded by the real host, against a fake GOV.UK
//! Notify on loopback that checks every request's JWT (signature, issuer,
//! issued-at window), the template and its personalisation, and answers
//! 400, 403, 429 and 5xx with Notify's error body. Delivery receipts reach
//! the plugin through cascade's webhook route, refused without the bearer
//! token. A send whose answer was lost (a crash between send and record)
//! is not sent twice.

mod support;

use cascade_plugin_api::{InboundKind, ReceiptStatus, SendResult};
use serde_json::json;
use std::time::Duration;
use support::fake_notify::{
    self, CALLBACK_TOKEN, EMAIL_TEMPLATE, FakeNotify, NAMED_SMS_TEMPLATE, SECRET, SMS_TEMPLATE,
};
use support::{ACK, request, start};

fn email(fake: &FakeNotify) -> serde_json::Value {
    json!({ "kind": "email", "template_id": EMAIL_TEMPLATE, "base_url": fake.url })
}

fn sms(fake: &FakeNotify) -> serde_json::Value {
    json!({ "kind": "sms", "template_id": SMS_TEMPLATE, "base_url": fake.url })
}

fn failed(result: &SendResult) -> (&str, bool) {
    match result {
        SendResult::Failed {
            reason,
            unreachable,
        } => (reason.as_str(), *unreachable),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn retried(result: &SendResult) -> (String, Option<u64>) {
    match result {
        SendResult::Retry {
            reason,
            retry_after_ms,
        } => (reason.clone(), *retry_after_ms),
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_refuses_what_notify_refuses() {
    let fake = FakeNotify::start().await;
    let client = reqwest::Client::new();
    let get = |token: String| {
        client
            .get(format!("{}/v2/notifications", fake.url))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get(fake_notify::token_issued(0, SECRET))
            .await
            .unwrap()
            .status(),
        200
    );
    let stale = get(fake_notify::token_issued(40, SECRET)).await.unwrap();
    assert_eq!(stale.status(), 403);
    let body: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(body["status_code"], 403);
    assert_eq!(body["errors"][0]["error"], "AuthError");
    let ahead = get(fake_notify::token_issued(-40, SECRET)).await.unwrap();
    assert_eq!(ahead.status(), 403);
    let forged = get(fake_notify::token_issued(
        0,
        "00000000-0000-0000-0000-000000000000",
    ))
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_goes_with_a_fresh_token_the_template_and_notifys_formatting() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), email(&fake)).await;
    let result = running
        .host
        .send("notify", &request(1, "zoe@northbridge.example"))
        .await
        .unwrap();
    let stored = fake.notifications();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        result,
        SendResult::Delivered {
            provider_id: Some(stored[0].id.clone())
        }
    );
    let n = &stored[0];
    assert_eq!(n.kind, "email");
    assert_eq!(n.to, "zoe@northbridge.example");
    assert_eq!(n.template_id, EMAIL_TEMPLATE);
    assert_eq!(n.reference.as_deref(), Some("now/p-1/initial-1/p-1/0"));
    assert_eq!(n.personalisation["subject"], "Neglect: seeing the child");
    assert_eq!(n.personalisation["ack_link"], ACK);
    let body = n.personalisation["body"].as_str().unwrap();
    assert!(body.starts_with("# Neglect: seeing the child\n"), "{body}");
    assert!(body.contains("\n# Why it matters\n"), "{body}");
    assert!(
        body.contains("\n* What did you see?\n* Who spoke to the child?\n"),
        "{body}"
    );
    assert!(
        body.contains(&format!("\n{ACK}\n")),
        "the link is a plain URL: {body}"
    );
    assert!(
        !body.contains("<a ") && !body.contains("<p>"),
        "no HTML: {body}"
    );
    let tokens = fake.tokens();
    assert!(!tokens.is_empty());
    assert!(
        tokens.iter().all(|t| (t.now - t.iat).abs() <= 2),
        "{tokens:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_message_is_a_short_notice_with_the_link() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), sms(&fake)).await;
    let result = running
        .host
        .send("notify", &request(2, "07700 900123"))
        .await
        .unwrap();
    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    let n = &fake.notifications()[0];
    assert_eq!((n.kind.as_str(), n.to.as_str()), ("sms", "07700 900123"));
    assert_eq!(n.template_id, SMS_TEMPLATE);
    let body = n.personalisation["body"].as_str().unwrap();
    assert_eq!(
        body,
        format!("Neglect: seeing the child\nRead it and acknowledge: {ACK}")
    );
    let (encoding, _, count) = cascade_plugin_notify::fragments(body);
    assert_eq!(
        (encoding, count),
        (cascade_plugin_notify::Encoding::Gsm7, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifys_refusals_fail_or_retry_as_documented() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), sms(&fake)).await;
    let send = |n: usize, to: &str| {
        let host = running.host.clone();
        let request = request(n, to);
        async move { host.send("notify", &request).await }
    };

    // 400 validation: Notify's message, and the address is no good.
    let result = send(1, "01632 960123").await.unwrap();
    let (reason, unreachable) = failed(&result);
    assert!(
        reason.contains("phone_number Not a UK mobile number"),
        "{reason}"
    );
    assert!(unreachable);

    // 400 trial mode: a clear fix.
    fake.trial_mode(&["447700900999"]);
    let result = send(2, "07700 900123").await.unwrap();
    let (reason, unreachable) = failed(&result);
    assert!(reason.contains("when service is in trial mode"), "{reason}");
    assert!(reason.contains("make the service live"), "{reason}");
    assert!(!unreachable);
    assert!(matches!(
        send(3, "07700 900999").await.unwrap(),
        SendResult::Delivered { .. }
    ));

    // 403: the key.
    fake.fail_next(403, "AuthError", "Invalid token: API key not found");
    let result = send(4, "07700 900999").await.unwrap();
    let (reason, _) = failed(&result);
    assert!(
        reason.contains("Invalid token: API key not found"),
        "{reason}"
    );
    assert!(reason.contains("check that api_key"), "{reason}");

    // 429 rate limit: a retry after Notify's minute.
    fake.fail_next(
        429,
        "RateLimitError",
        "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds",
    );
    let (reason, after) = retried(&send(5, "07700 900999").await.unwrap());
    assert!(reason.contains("Exceeded rate limit"), "{reason}");
    assert_eq!(after, Some(60_000));

    // 429 daily limit: deferred to tomorrow, not failed.
    fake.fail_next(
        429,
        "TooManyRequestsError",
        "Exceeded send limits (250) for today",
    );
    let (reason, after) = retried(&send(6, "07700 900999").await.unwrap());
    assert!(reason.contains("deferred to tomorrow"), "{reason}");
    assert!(after.is_some_and(|ms| ms <= 86_400_000), "{after:?}");

    // 5xx: a retry with the host's backoff.
    fake.fail_next(500, "Exception", "Internal server error");
    let (reason, after) = retried(&send(7, "07700 900999").await.unwrap());
    assert!(reason.contains("HTTP 500"), "{reason}");
    assert_eq!(after, None);
    assert!(matches!(
        send(7, "07700 900999").await.unwrap(),
        SendResult::Delivered { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_placeholder_fails_with_notifys_message() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = json!({ "kind": "sms", "template_id": NAMED_SMS_TEMPLATE, "base_url": fake.url });
    let running = start(dir.path(), config).await;
    let result = running
        .host
        .send("notify", &request(1, "07700900123"))
        .await
        .unwrap();
    let (reason, unreachable) = failed(&result);
    assert!(reason.contains("Missing personalisation: name"), "{reason}");
    assert!(!unreachable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_with_a_fix() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = sms(&fake);
    config["api_key"] = json!(format!(
        "other-{}-{}",
        fake_notify::SERVICE,
        "00000000-0000-4000-8000-000000000000"
    ));
    let running = start(dir.path(), config).await;
    let result = running
        .host
        .send("notify", &request(1, "07700900123"))
        .await
        .unwrap();
    let (reason, _) = failed(&result);
    assert!(reason.contains("HTTP 403"), "{reason}");
    assert!(reason.contains("API integration"), "{reason}");
    assert!(!reason.contains("00000000-0000-4000-8000"), "{reason}");
    assert!(fake.notifications().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_send_and_record_does_not_send_twice() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = sms(&fake);
    config["journal"] = json!(dir.path().join("notify.journal"));

    // The first process: Notify takes the message, and the answer is lost.
    let running = start(dir.path(), config.clone()).await;
    fake.swallow_next();
    let host = running.host.clone();
    let first = tokio::spawn(async move { host.send("notify", &request(1, "07700900123")).await });
    while fake.notifications().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.lookups(), 0, "a reference never sent is not looked up");
    running.host.stop().await;
    let outcome = first.await.unwrap();
    assert!(
        !matches!(outcome, Ok(SendResult::Delivered { .. })),
        "the first send was never recorded as sent: {outcome:?}"
    );

    // The next process tries the delivery again with the same reference.
    let again = start(dir.path(), config).await;
    let result = again
        .host
        .send("notify", &request(1, "07700900123"))
        .await
        .unwrap();
    let stored = fake.notifications();
    assert_eq!(stored.len(), 1, "one text message, not two");
    assert_eq!(
        result,
        SendResult::Delivered {
            provider_id: Some(stored[0].id.clone())
        }
    );
    assert_eq!(fake.lookups(), 1);
    assert_eq!(fake.posts(), 1);

    // Another delivery is sent at once, without a look-up.
    let other = again
        .host
        .send("notify", &request(2, "07700900124"))
        .await
        .unwrap();
    assert!(matches!(other, SendResult::Delivered { .. }));
    assert_eq!((fake.lookups(), fake.posts()), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_journal_every_send_asks_notify_first() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), sms(&fake)).await;
    for _ in 0..2 {
        let result = running
            .host
            .send("notify", &request(1, "07700900123"))
            .await
            .unwrap();
        assert!(matches!(result, SendResult::Delivered { .. }));
    }
    assert_eq!(fake.notifications().len(), 1);
    assert_eq!((fake.lookups(), fake.posts()), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_over_the_limits_are_deferred_not_failed() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = sms(&fake);
    config["journal"] = json!(dir.path().join("notify.journal"));
    config["per_minute"] = json!(2);
    config["max_pacing_wait_ms"] = json!(0);
    let running = start(dir.path(), config).await;
    for n in 1..=2 {
        let result = running
            .host
            .send("notify", &request(n, "07700900123"))
            .await
            .unwrap();
        assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    }
    let (reason, after) = retried(
        &running
            .host
            .send("notify", &request(3, "07700900123"))
            .await
            .unwrap(),
    );
    assert!(reason.contains("deferred"), "{reason}");
    assert!(
        after.is_some_and(|ms| ms > 50_000 && ms <= 60_000),
        "{after:?}"
    );
    assert_eq!(fake.posts(), 2);

    let dir = tempfile::tempdir().unwrap();
    let mut config = sms(&fake);
    config["journal"] = json!(dir.path().join("notify.journal"));
    config["per_day"] = json!(1);
    let running = start(dir.path(), config).await;
    let first = running
        .host
        .send("notify", &request(11, "07700900123"))
        .await
        .unwrap();
    assert!(matches!(first, SendResult::Delivered { .. }));
    let (reason, after) = retried(
        &running
            .host
            .send("notify", &request(12, "07700900123"))
            .await
            .unwrap(),
    );
    assert!(reason.contains("deferred to tomorrow"), "{reason}");
    assert!(after.is_some_and(|ms| ms <= 86_400_000));
    assert_eq!(fake.posts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_need_the_bearer_token_and_become_events() {
    let fake = FakeNotify::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut running = start(dir.path(), email(&fake)).await;
    running
        .host
        .send("notify", &request(1, "zoe@northbridge.example"))
        .await
        .unwrap();
    let id = fake.notifications()[0].id.clone();
    let url = running.webhook.clone();

    assert_eq!(
        fake.receipt(&url, None, &id, "permanent-failure").await,
        401
    );
    assert_eq!(
        fake.receipt(
            &url,
            Some("not-the-callback-token"),
            &id,
            "permanent-failure"
        )
        .await,
        401
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(running.events.try_recv().is_err(), "nothing recorded");

    for (status, expected) in [
        ("delivered", ReceiptStatus::Delivered),
        ("permanent-failure", ReceiptStatus::PermanentFailure),
        ("temporary-failure", ReceiptStatus::TemporaryFailure),
        ("technical-failure", ReceiptStatus::TechnicalFailure),
    ] {
        assert_eq!(
            fake.receipt(&url, Some(CALLBACK_TOKEN), &id, status).await,
            200
        );
        let event = tokio::time::timeout(Duration::from_secs(5), running.events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.instance, "notify");
        assert_eq!(event.event.account, "zoe@northbridge.example");
        assert_eq!(
            event.event.kind,
            InboundKind::Receipt {
                idempotency_key: "now/p-1/initial-1/p-1/0".to_owned(),
                status: expected
            }
        );
    }
}
