//! The whole path: a rollout started in the engine, scheduled and dispatched
//! with a hand-held clock (claim, compose and render, send through the real
//! plugin library, record), to a real SMTP server process that answers some
//! recipients with faults. What the server kept is parsed and compared with
//! what the engine recorded.

mod support;

use cascade_engine::engine::Until;
use cascade_plugin_email::message_id;
use cascade_store::{DeliveryState, Inspect, Outbox};
use cascade_test_support::outbox::rows;
use cascade_test_support::utc;
use std::collections::BTreeMap;
use support::{Person, SmtpServer, TITLE, email_channel, header, part, project, rollout, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_briefing_carries_its_ack_link_as_a_button_in_html_and_a_plain_url_in_text() {
    let server = SmtpServer::start();
    let people: [Person; 2] = [
        ("p-zoe", "Zoë Brontë", "zoe@agency.example"),
        ("p-sam", "Sam Okafor", "sam@agency.example"),
    ];
    let dir = project(&people, &email_channel(&server.channel_config(2))).await;
    let runner = start(dir.path(), &rollout(dir.path(), 3), utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.stop().await;

    let rows = rows(runner.store().as_ref()).await;
    let received = server.received();
    assert_eq!(rows.len(), 2);
    assert_eq!(received.len(), 2);
    for row in &rows {
        assert_eq!(row.state, DeliveryState::Sent, "{row:?}");
        let (_, name, address) = people.iter().find(|p| p.0 == row.recipient_id).unwrap();
        let message = received
            .iter()
            .find(|m| m["rcpt_tos"][0] == *address)
            .unwrap_or_else(|| panic!("nothing reached {address}"));
        assert_eq!(row.provider_id.as_deref(), message["queue_id"].as_str());
        assert_eq!(header(message, "Subject"), Some(TITLE));
        assert_eq!(
            header(message, "To"),
            Some(format!("{name} <{address}>").as_str())
        );
        assert_eq!(
            header(message, "Message-ID"),
            Some(message_id(&row.idempotency_key, "northbridge.example").as_str())
        );

        let text = part(message, "text/plain");
        let url = text
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("http://localhost:8080/ack/"))
            .unwrap_or_else(|| panic!("no acknowledgement URL on a line of its own in:\n{text}"));
        assert!(text.contains(&format!("Hello {name},")), "{text}");
        assert!(!text.contains('<'), "the text part has no markup: {text}");

        let html = part(message, "text/html");
        let button = html
            .find(&format!("<a href=\"{url}\""))
            .map(|at| &html[at..at + html[at..].find("</a>").unwrap()])
            .unwrap_or_else(|| panic!("the HTML has no link to {url}:\n{html}"));
        assert!(
            button.contains("display:inline-block") && button.contains("background:#1d4ed8"),
            "the link looks like a button: {button}"
        );
        assert!(button.contains("Acknowledge"), "{button}");
        assert!(html.contains("<h1 "), "{html}");
        assert_eq!(
            header(message, "List-Id"),
            None,
            "mandatory learning offers no opt-out"
        );
    }
    let urls: Vec<&str> = received.iter().map(|m| part(m, "text/plain")).collect();
    assert_ne!(urls[0], urls[1], "each person gets their own link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_faults_every_message_ends_delivered_once_or_dead_with_the_servers_reason() {
    let server = SmtpServer::start();
    let people: Vec<(String, String, String)> = [
        "ok-1",
        "ok-2",
        "ok-3",
        "busy-1",
        "tempfail-1",
        "drop-1",
        "slow-1",
        "reject-1",
        "deferred-1",
    ]
    .iter()
    .map(|local| {
        (
            format!("p-{local}"),
            format!("Person {local}"),
            format!("{local}@agency.example"),
        )
    })
    .collect();
    let borrowed: Vec<Person> = people
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let dir = project(&borrowed, &email_channel(&server.channel_config(3))).await;
    let runner = start(dir.path(), &rollout(dir.path(), 3), utc(2026, 3, 27, 8, 0)).await;
    let mut now = utc(2026, 3, 27, 9, 0);
    runner.tick(now).await.unwrap();
    for _ in 0..240 {
        if runner.idle(now, Until::NothingLeft).await.unwrap() {
            break;
        }
        now += chrono::Duration::minutes(1);
        runner.tick(now).await.unwrap();
    }
    assert!(
        runner.idle(now, Until::NothingLeft).await.unwrap(),
        "every row settled"
    );
    runner.stop().await;

    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in server.received() {
        kept.entry(message["rcpt_tos"][0].as_str().unwrap().to_owned())
            .or_default()
            .push(message["queue_id"].as_str().unwrap().to_owned());
    }
    let rows = rows(runner.store().as_ref()).await;
    assert_eq!(rows.len(), people.len(), "one row a person, none lost");
    for row in &rows {
        let local = row.recipient_id.strip_prefix("p-").unwrap();
        let address = format!("{local}@agency.example");
        let error = row.last_error.as_deref().unwrap_or_default();
        if local.starts_with("reject") {
            assert_eq!(row.state, DeliveryState::Dead, "{row:?}");
            assert_eq!(row.attempts, 1, "a 550 is not retried: {row:?}");
            assert!(
                error.contains("550 5.1.1") && error.contains("User unknown"),
                "{error}"
            );
            assert!(!kept.contains_key(&address));
        } else if local.starts_with("deferred") {
            assert_eq!(row.state, DeliveryState::Dead, "{row:?}");
            assert!(
                error.contains("gave up after 3 attempts") && error.contains("451"),
                "{error}"
            );
            assert!(!kept.contains_key(&address));
        } else {
            assert_eq!(row.state, DeliveryState::Sent, "{row:?}");
            assert_eq!(
                kept.get(&address).map(Vec::as_slice),
                Some(std::slice::from_ref(row.provider_id.as_ref().unwrap())),
                "delivered exactly once, recorded with the server's queue id"
            );
            let expected_attempts = if local.starts_with("ok") || local.starts_with("slow") {
                1
            } else {
                2
            };
            assert_eq!(row.attempts, expected_attempts, "{row:?}");
        }
    }
    let deferred_attempts = server
        .events()
        .iter()
        .filter(|(rcpt, _)| rcpt.starts_with("deferred"))
        .count();
    assert_eq!(deferred_attempts, 3, "max_attempts = 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_rollout_people_may_opt_out_of_sends_list_headers() {
    let server = SmtpServer::start();
    let people: [Person; 1] = [("p-zoe", "Zoë Brontë", "zoe@agency.example")];
    let dir = project(&people, &email_channel(&server.channel_config(1))).await;
    let path = rollout(dir.path(), 3);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "max_attempts = 3\n",
            "max_attempts = 3\nunsubscribe_url = \"mailto:sbu@northbridge.example?subject=unsubscribe\"\n",
            1,
        ),
    )
    .unwrap();
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.stop().await;

    let received = server.received();
    assert_eq!(received.len(), 1);
    let list_id = header(&received[0], "List-Id").expect("a List-Id header");
    assert!(
        list_id.ends_with("<now.northbridge.example>"),
        "the rollout's id under the opt-out URL's domain: {list_id}"
    );
    assert_eq!(
        header(&received[0], "List-Unsubscribe"),
        Some("<mailto:sbu@northbridge.example?subject=unsubscribe>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_sends_every_article_of_the_issue_in_one_email_per_person() {
    let server = SmtpServer::start();
    let people: [Person; 2] = [
        ("p-zoe", "Zoë Brontë", "zoe@agency.example"),
        ("p-sam", "Sam Okafor", "sam@agency.example"),
    ];
    let dir = project(&people, &email_channel(&server.channel_config(2))).await;
    let path = dir.path().join("rollouts/issue.toml");
    std::fs::write(
        &path,
        "id = \"pm-2026-12\"\nnewsletter_issue = \"2026-12\"\nstart = 2026-03-27T09:00:00\n\
         urgent = true\nchannels = [\"email\"]\nack_deadline_days = 10\n\
         unsubscribe_url = \"mailto:sbu@northbridge.example?subject=unsubscribe\"\n\n\
         [audience]\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n",
    )
    .unwrap();
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.stop().await;

    let rows = rows(runner.store().as_ref()).await;
    let received = server.received();
    assert_eq!(rows.len(), 2, "one row a person, not one per article");
    assert_eq!(received.len(), 2, "one email a person");
    // The issue's three articles, in id order; not the next issue's.
    let articles = [
        "CSE awareness day: training dates now open",
        "New policy: resolving professional differences",
        "Safer sleep week: talking to families before the holidays",
    ];
    for message in &received {
        assert_eq!(
            header(message, "Subject"),
            Some("Partnership Matters: December 2026")
        );
        assert!(header(message, "List-Unsubscribe").is_some());
        let html = part(message, "text/html");
        let text = part(message, "text/plain");
        let mut at = 0;
        for title in articles {
            let heading = format!("{title}</h2>");
            let found = html[at..].find(&heading).unwrap_or_else(|| {
                panic!("no <h2> for \"{title}\" after the previous one:\n{html}")
            });
            at += found + heading.len();
            assert!(text.contains(title), "{text}");
        }
        assert!(!html.contains("Launch of the Northbridge child exploitation strategy"));
        assert!(html.contains("In this issue"), "{html}");
        // Each article keeps its links; one acknowledgement covers the issue.
        assert!(html.contains("href=\"https://learning.northbridge.example/escalation-log\""));
        assert!(html.contains("href=\"https://www.lullabytrust.org.uk/\""));
        let links = text
            .lines()
            .filter(|l| l.trim().starts_with("http://localhost:8080/ack/"))
            .count();
        assert_eq!(links, 1, "{text}");
    }
    let item = runner
        .store()
        .rollout("pm-2026-12")
        .await
        .unwrap()
        .unwrap()
        .item_id;
    assert_eq!(item, "partnership-matters-2026-12");
}

/// An HTTP request to `app`; the status and the body.
async fn call(app: &axum::Router, method: &str, uri: &str) -> (u16, String) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [192, 0, 2, 1],
            50_000,
        ))))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_by_email_offers_each_answer_as_a_link_that_records_it_on_post() {
    let server = SmtpServer::start();
    let people: [Person; 1] = [("p-zoe", "Zoë Brontë", "zoe@agency.example")];
    let dir = project(&people, &email_channel(&server.channel_config(1))).await;
    let path = rollout(dir.path(), 3);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{text}\n[[follow_ups]]\nafter_days = 90\nquestion = \"Have you used this in practice?\"\n\
             answers = [\"Used it in practice\", \"Not yet\", \"Not relevant to my role\"]\n"
        ),
    )
    .unwrap();
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.tick(utc(2026, 6, 25, 9, 0)).await.unwrap();
    runner.stop().await;

    let received = server.received();
    assert_eq!(received.len(), 2, "the briefing, then the follow-up");
    let follow_up = &received[1];
    assert_eq!(
        header(follow_up, "Subject"),
        Some(format!("Follow-up: {TITLE}").as_str())
    );
    let text = part(follow_up, "text/plain");
    let link = |answer: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{answer}: http://localhost:8080/answer/")))
            .unwrap_or_else(|| panic!("no link for \"{answer}\" in:\n{text}"));
        line.split_once(": ").unwrap().1.trim().to_owned()
    };
    let used = link("Used it in practice");
    let not_yet = link("Not yet");
    assert!(
        used.ends_with("/1") && not_yet.ends_with("/2"),
        "{used} {not_yet}"
    );
    let html = part(follow_up, "text/html");
    assert!(html.contains(&format!("<a href=\"{used}\"")), "{html}");

    let project = cascade_engine::project::Project::open(dir.path()).unwrap();
    let keys = cascade_engine::ack::AckKeys::load(project.config.ack.as_ref().unwrap(), dir.path())
        .unwrap();
    let clock: cascade_server::Clock = std::sync::Arc::new(|| utc(2026, 6, 25, 10, 0));
    let app = cascade_server::ack_router(cascade_server::ServerState::new(
        runner.store().clone(),
        std::sync::Arc::new(keys),
        project.taxonomy.clone(),
        chrono_tz::Europe::London,
        clock,
    ));
    let answers = || async {
        runner
            .store()
            .answers()
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.answer, a.channel))
            .collect::<Vec<_>>()
    };
    let path = |url: &str| {
        url.strip_prefix("http://localhost:8080")
            .unwrap()
            .to_owned()
    };

    // Opening the link (as a mail scanner would) records nothing.
    let (status, page) = call(&app, "GET", &path(&used)).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Used it in practice") && page.contains("Record my answer"),
        "{page}"
    );
    assert!(answers().await.is_empty());

    let (status, page) = call(&app, "POST", &path(&used)).await;
    assert_eq!(status, 200);
    assert!(page.contains("We have recorded your answer"), "{page}");
    assert_eq!(
        answers().await,
        [("Used it in practice".to_owned(), "web".to_owned())]
    );

    // The first answer stands; an answer the question does not have is refused.
    let (status, page) = call(&app, "POST", &path(&not_yet)).await;
    assert_eq!(status, 200);
    assert!(page.contains("already answered"), "{page}");
    let (status, _) = call(&app, "POST", &path(&used.replace("/1", "/7"))).await;
    assert!(status >= 400, "{status}");
    assert_eq!(answers().await.len(), 1);

    // The briefing's own link is not a follow-up.
    let briefing = part(&received[0], "text/plain");
    let ack = briefing
        .lines()
        .find(|l| l.trim().starts_with("http://localhost:8080/ack/"))
        .unwrap()
        .trim()
        .replace("/ack/", "/answer/");
    let (status, _) = call(&app, "POST", &format!("{}/1", path(&ack))).await;
    assert!(status >= 400, "{status}");
    assert_eq!(answers().await.len(), 1);
}

/// Exchange Online takes about 30 messages a minute from a mailbox: with
/// `max_per_minute`, a rollout over the quota sends a minute's worth per
/// window, the rest waiting (not failing, no attempt spent), and ends in
/// the number of windows `plan` said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_over_the_per_minute_quota_finishes_in_the_windows_plan_predicted() {
    let server = SmtpServer::start();
    let people = numbered_people(25);
    let borrowed: Vec<Person> = people
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let channel = email_channel(&server.channel_config(4)) + "max_per_minute = 10\n";
    let dir = project(&borrowed, &channel).await;
    let rollout = rollout(dir.path(), 2);

    let engine = cascade_engine::engine::Engine::open(
        cascade_engine::project::Project::open(dir.path()).unwrap(),
        false,
    )
    .await
    .unwrap_or_else(|p| panic!("{p}"));
    let planned = engine.plan(&rollout, utc(2026, 3, 27, 8, 0)).await.unwrap();
    assert_eq!(
        planned.quota_lines,
        ["email: 25 emails at 10 a minute: about 3 minutes"]
    );
    drop(engine);

    let runner = start(dir.path(), &rollout, utc(2026, 3, 27, 8, 0)).await;
    let mut windows = 0;
    for minute in 0..10 {
        let now = utc(2026, 3, 27, 9, 0) + chrono::Duration::minutes(minute);
        runner.tick(now).await.unwrap();
        let sent = rows(runner.store().as_ref())
            .await
            .iter()
            .filter(|r| r.state == DeliveryState::Sent)
            .count();
        assert!(
            sent <= 10 * (minute as usize + 1),
            "at most 10 a minute: {sent} after minute {minute}"
        );
        if sent == 25 {
            windows = minute + 1;
            break;
        }
    }
    runner.stop().await;
    assert_eq!(windows, 3, "the three windows plan predicted");
    let done = rows(runner.store().as_ref()).await;
    assert!(
        done.iter().all(|r| r.state == DeliveryState::Sent),
        "{done:?}"
    );
    assert!(
        done.iter().all(|r| r.attempts == 1),
        "waiting for the quota spends no attempt: {done:?}"
    );
    assert_eq!(server.received().len(), 25, "the server refused none");

    // A restarted `serve` counts what was sent before it: at 09:02:30
    // the minute already holds the 5 sent at 09:02, so 5 more go.
    let sent_again = sent_by_a_restart_at_09_02_30(dir.path()).await;
    assert_eq!(sent_again, 5, "the quota's window survives a restart");
}

/// An OFFICIAL-SENSITIVE briefing on an email channel that lists nhs.net
/// as a secure domain: the nhs.net address gets the whole briefing, the
/// gmail.com address a notice with the signed link to read it on
/// cascade's page; both are marked in the subject, at the top and at the
/// bottom of each part, as the Government Security Classifications ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_sensitive_briefing_goes_in_full_to_nhs_net_and_as_a_notice_to_gmail() {
    let server = SmtpServer::start();
    let people: [Person; 2] = [
        ("p-ann", "Ann Example", "ann.example@nhs.net"),
        ("p-bea", "Bea Example", "bea.example@gmail.com"),
    ];
    let channel = email_channel(&server.channel_config(2)) + "secure_domains = [\"nhs.net\"]\n";
    let dir = project(&people, &channel).await;
    let content = dir.path().join("content/7mb-neglect-seeing-the-child.md");
    let text = std::fs::read_to_string(&content).unwrap().replacen(
        "status = \"published\"",
        "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"What a local review taught us about seeing the child.\"",
        1,
    );
    std::fs::write(&content, text).unwrap();
    let runner = start(dir.path(), &rollout(dir.path(), 3), utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.stop().await;

    let received = server.received();
    assert_eq!(received.len(), 2);
    let body_sentence = "Each agency saw part of the picture";
    for (_, _, address) in people {
        let message = received
            .iter()
            .find(|m| m["rcpt_tos"][0] == address)
            .unwrap_or_else(|| panic!("nothing reached {address}"));
        assert_eq!(
            header(message, "Subject"),
            Some(format!("OFFICIAL-SENSITIVE: {TITLE}").as_str())
        );
        let text = part(message, "text/plain");
        let html = part(message, "text/html");
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.first(), Some(&"OFFICIAL-SENSITIVE"), "{text}");
        assert_eq!(lines.last(), Some(&"OFFICIAL-SENSITIVE"), "{text}");
        let body = html
            .split_once("<body")
            .unwrap()
            .1
            .split_once('>')
            .unwrap()
            .1;
        assert!(
            body.trim_start().starts_with("<p style=\"margin:0 0 16px; font-weight:bold; letter-spacing:0.05em;\">OFFICIAL-SENSITIVE</p>"),
            "{html}"
        );
        let before_close = body.rsplit_once("</body>").unwrap().0.trim_end();
        assert!(before_close.ends_with("OFFICIAL-SENSITIVE</p>"), "{html}");
        if address.ends_with("@nhs.net") {
            assert!(text.contains(body_sentence), "{address}: {text}");
            assert!(html.contains(body_sentence), "{address}: {html}");
        } else {
            assert!(!text.contains(body_sentence), "{address}: {text}");
            assert!(!html.contains(body_sentence), "{address}: {html}");
            assert!(
                text.contains("What a local review taught us about seeing the child.")
                    && text.contains("http://localhost:8080/ack/"),
                "{text}"
            );
            assert!(html.contains("href=\"http://localhost:8080/ack/"), "{html}");
        }
    }
}

/// Two sending mailboxes, each with its own quota of 10 a minute, the
/// second named in the first's `spread_over`: the rollout names only
/// `email`, sends go out through both mailboxes in turn (each under its
/// own quota, as Exchange Online counts per mailbox), together 20 a
/// minute, in the windows `plan` predicted for the two together; and a
/// restarted `serve` counts the group's sends already made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_spread_over_two_mailboxes_keep_each_mailbox_s_quota() {
    let server = SmtpServer::start();
    let people = numbered_people(45);
    let borrowed: Vec<Person> = people
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let first = email_channel(&server.channel_config(4))
        + "max_per_minute = 10\nspread_over = [\"email-2\"]\n";
    let mut config = server.channel_config(4);
    config["from"] = "Northbridge Learning <learning-2@northbridge.example>".into();
    let second = email_channel(&config).replace("name = \"email\"", "name = \"email-2\"")
        + "max_per_minute = 10\n";
    let dir = project(&borrowed, &format!("{first}\n{second}")).await;
    let rollout = rollout(dir.path(), 2);

    let engine = cascade_engine::engine::Engine::open(
        cascade_engine::project::Project::open(dir.path()).unwrap(),
        false,
    )
    .await
    .unwrap_or_else(|p| panic!("{p}"));
    let planned = engine.plan(&rollout, utc(2026, 3, 27, 8, 0)).await.unwrap();
    assert_eq!(
        planned.quota_lines,
        ["email (spread over email, email-2): 45 emails at 20 a minute: about 3 minutes"]
    );
    drop(engine);

    let by_mailbox = |received: &[serde_json::Value]| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for message in received {
            *counts
                .entry(message["mail_from"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        counts
    };
    let runner = start(dir.path(), &rollout, utc(2026, 3, 27, 8, 0)).await;
    let mut windows = 0;
    for minute in 0..10 {
        let now = utc(2026, 3, 27, 9, 0) + chrono::Duration::minutes(minute);
        runner.tick(now).await.unwrap();
        let counts = by_mailbox(&server.received());
        for (mailbox, sent) in &counts {
            assert!(
                *sent <= 10 * (minute as usize + 1),
                "{mailbox} sent {sent} by minute {minute}: over its own 10 a minute"
            );
        }
        if counts.values().sum::<usize>() == 45 {
            windows = minute + 1;
            break;
        }
    }
    runner.stop().await;
    assert_eq!(windows, 3, "the three windows plan predicted");
    let counts = by_mailbox(&server.received());
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        [
            "learning-2@northbridge.example",
            "learning@northbridge.example"
        ],
        "both mailboxes send"
    );
    let done = rows(runner.store().as_ref()).await;
    assert!(
        done.iter()
            .all(|r| r.state == DeliveryState::Sent && r.channel == "email" && r.attempts == 1),
        "recorded on the channel the rollout names, no attempt spent waiting: {done:?}"
    );

    // At 09:02:30 the group's minute holds the 5 sent at 09:02: 15 more go.
    let sent_again = sent_by_a_restart_at_09_02_30(dir.path()).await;
    assert_eq!(sent_again, 15, "the mailboxes' windows survive a restart");
}

/// `n` made-up people, `p-01` to `p-NN`, each with their own address.
fn numbered_people(n: usize) -> Vec<(String, String, String)> {
    (1..=n)
        .map(|n| {
            (
                format!("p-{n:02}"),
                format!("Person {n:02}"),
                format!("person-{n:02}@agency.example"),
            )
        })
        .collect()
}

/// Starts a second rollout to everyone on `email` in a new runner at
/// 09:02:30 (a restarted `serve`) and says how many of its sends went.
async fn sent_by_a_restart_at_09_02_30(dir: &std::path::Path) -> usize {
    let again = dir.join("rollouts/again.toml");
    std::fs::write(
        &again,
        "id = \"again\"\nitem = \"7mb-safer-sleep\"\nstart = 2026-03-27T09:00:00\n\
         urgent = true\nchannels = [\"email\"]\nfallback = false\nack_deadline_days = 10\n\
         max_attempts = 2\n\n[audience]\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n",
    )
    .unwrap();
    let later = utc(2026, 3, 27, 9, 2) + chrono::Duration::seconds(30);
    let runner = start(dir, &again, later).await;
    runner.tick(later).await.unwrap();
    runner.stop().await;
    rows(runner.store().as_ref())
        .await
        .iter()
        .filter(|r| r.rollout_id == "again" && r.state == DeliveryState::Sent)
        .count()
}
