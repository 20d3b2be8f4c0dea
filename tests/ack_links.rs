//! Acknowledgement links and champion confirmations through the real router
//! and a real SQLite store, driven in-process with a hand-held clock; and
//! the server `cascade serve` runs, over TCP, against slow clients.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use cascade_engine::ack::AckKeys;
use cascade_engine::project::Project;
use cascade_model::content::parse_item;
use cascade_model::rollout::StepKind;
use cascade_server::{RateLimit, ServerConfig, ServerState, ack_router};
use cascade_store::{
    AckMethod, ConfirmationRecord, Evidence, EvidenceChain, Inspect, MemberAdvance, NewDelivery,
    NewMember, NewRollout, Outbox, SqliteStore, Store,
};
use cascade_test_support::{DemoProject, FakeClock, without_check_questions};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

const ITEM: &str = "7mb-neglect-seeing-the-child";
const TITLE: &str = "Neglect: seeing the child";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

fn keys() -> AckKeys {
    AckKeys::new(("k2".to_owned(), vec![7; 32]), Vec::new(), 60).unwrap()
}

/// A store with the demo neglect briefing, a small directory (Amy and Ben,
/// practitioners; Cara, champion for the team `north`), and a rollout that
/// sent the briefing to all three.
struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    project: Project,
    clock: FakeClock,
    /// Outbox row ids by person.
    deliveries: Vec<(String, i64)>,
}

impl World {
    /// The world with the briefing's check questions taken out: these
    /// tests are about the links, and one POST acknowledges.
    async fn new() -> World {
        World::with_item(|text| text).await
    }

    /// The world with the briefing's file changed by `edit` first, and its
    /// check questions taken out.
    async fn with_item(edit: fn(String) -> String) -> World {
        World::with_source(move |text| without_check_questions(edit(text))).await
    }

    /// The world with the briefing as the demo has it, check questions and all.
    async fn with_check_questions() -> World {
        World::with_source(|text| text).await
    }

    async fn with_source(edit: impl FnOnce(String) -> String) -> World {
        let dir = DemoProject::new()
            .edit(&format!("content/{ITEM}.md"), edit)
            .write(
                "directory/agencies.csv",
                "agency_id,name,kind\nnb-cc,Northbridge Children's Services,local-authority\n",
            )
            .write(
                "directory/teams.csv",
                "team_id,agency_id,name\nnorth,nb-cc,Early Help North\nsouth,nb-cc,Early Help South\n",
            )
            .write(
                "directory/people.csv",
                "person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone
amy,Amy Osei,amy@example.org,nb-cc,north,practitioner,,
ben,Ben Hart,ben@example.org,nb-cc,north,practitioner,,
cara,Cara Lund,cara@example.org,nb-cc,north,practitioner,,
",
            )
            .write(
                "directory/champions.csv",
                "person_id,theme,teams\ncara,neglect,north\n",
            )
            .import_directory()
            .await
            .into_dir();
        let project = Project::open(dir.path()).unwrap();
        let path = project.content_dir().join(format!("{ITEM}.md"));
        let text = std::fs::read_to_string(&path).unwrap();
        let item = parse_item(&path, &text, &project.taxonomy).unwrap();
        let store = Arc::new(
            SqliteStore::open(&project.store_path().to_string_lossy())
                .await
                .unwrap(),
        );
        store.save_item(&item, &text).await.unwrap();
        let now = cascade_engine::delivery::millis(start());
        let people = ["amy", "ben", "cara"];
        let members: Vec<NewMember> = people
            .iter()
            .map(|p| NewMember {
                person_id: (*p).to_owned(),
                wave: 0,
                first_due_at: now,
            })
            .collect();
        store
            .create_rollout(NewRollout {
                id: "r1",
                item_id: ITEM,
                item_version: &item.version.0,
                definition: "{}",
                members: &members,
                audience: None,
                now,
                team_posts: &[],
            })
            .await
            .unwrap();
        let rows: Vec<NewDelivery> = people
            .iter()
            .map(|p| NewDelivery {
                idempotency_key: format!("r1/{p}/0/{p}/0"),
                rollout_id: "r1".to_owned(),
                person_id: (*p).to_owned(),
                recipient_id: (*p).to_owned(),
                wave: 0,
                step_kind: StepKind::Initial,
                step_number: 0,
                channel: "email".to_owned(),
                channel_rank: 0,
                due_at: now,
            })
            .collect();
        let advances: Vec<MemberAdvance> = people
            .iter()
            .map(|p| MemberAdvance {
                rollout_id: "r1".to_owned(),
                person_id: (*p).to_owned(),
                next_step: 1,
                next_due_at: Some(now + 7 * 86_400_000),
                shift_days: None,
            })
            .collect();
        store.materialise(&rows, &advances, now).await.unwrap();
        let deliveries = store
            .outbox_rows()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.person_id, r.id))
            .collect();
        World {
            _dir: dir,
            store,
            project,
            clock: FakeClock::at(start()),
            deliveries,
        }
    }

    fn delivery(&self, person: &str) -> i64 {
        self.deliveries.iter().find(|(p, _)| p == person).unwrap().1
    }

    /// A token for `person`'s delivery, signed now.
    fn token(&self, person: &str) -> String {
        keys().sign(self.delivery(person), person, start())
    }

    fn state(&self, keys: AckKeys, rate_limit: Option<RateLimit>) -> ServerState<SqliteStore> {
        let clock = self.clock.as_fn();
        ServerState::new(
            self.store.clone(),
            Arc::new(keys),
            self.project.taxonomy.clone(),
            chrono_tz::Europe::London,
            clock,
        )
        .with_rate_limit(rate_limit)
    }

    fn app_with(&self, keys: AckKeys, rate_limit: Option<RateLimit>) -> Router {
        ack_router(self.state(keys, rate_limit))
    }

    fn app(&self) -> Router {
        self.app_with(keys(), None)
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// How many acknowledgements are recorded.
    async fn acks(&self) -> usize {
        cascade_test_support::outbox::acknowledgements(&*self.store).await
    }

    /// How many members of the rollout are marked acknowledged.
    async fn acknowledged_members(&self) -> usize {
        self.store
            .members("r1")
            .await
            .unwrap()
            .iter()
            .filter(|m| m.acknowledged_at.is_some())
            .count()
    }

    /// (person, acknowledged at) of every member of the rollout, by person.
    async fn member_acknowledgements(&self) -> Vec<(String, Option<i64>)> {
        self.store
            .members("r1")
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.person_id, m.acknowledged_at))
            .collect()
    }

    async fn confirmations(&self) -> Vec<ConfirmationRecord> {
        self.store.confirmations().await.unwrap()
    }

    /// Refusals counted, as (reason, count) by reason.
    async fn refusals(&self) -> Vec<(String, i64)> {
        cascade_test_support::outbox::refusals(&*self.store).await
    }

    async fn log(&self) -> Vec<(Option<String>, String)> {
        self.store
            .acknowledgement_log()
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.person_id, l.outcome))
            .collect()
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &Router, method: &str, uri: &str, form: Option<&str>) -> Answer {
    send_from(
        app,
        ([192, 0, 2, 1], 50_000).into(),
        None,
        method,
        uri,
        form,
    )
    .await
}

/// A request from the TCP peer `peer`, with `X-Forwarded-For` if given.
async fn send_from(
    app: &Router,
    peer: SocketAddr,
    forwarded_for: Option<&str>,
    method: &str,
    uri: &str,
    form: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let mut request = request
        .body(Body::from(form.unwrap_or_default().to_owned()))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[tokio::test]
async fn opening_an_ack_link_shows_a_confirm_page_and_records_nothing() {
    let w = World::new().await;
    let app = w.app();
    for _ in 0..3 {
        let page = send(&app, "GET", &format!("/ack/{}", w.token("amy")), None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(TITLE), "{}", page.body);
        assert!(page.body.contains("Amy Osei"));
        assert!(page.body.contains("<form method=\"post\">"));
        assert!(page.body.contains("Confirm I have read this"));
    }
    assert_eq!(w.acks().await, 0);
    assert!(w.log().await.is_empty());
    assert_eq!(w.acknowledged_members().await, 0);
}

/// The link in an OFFICIAL-SENSITIVE item's notice opens the item in full,
/// marked at the top and bottom of the page; its button acknowledges as
/// any acknowledgement link's does. An OFFICIAL item's page shows only its
/// title, unmarked.
#[tokio::test]
async fn a_notices_link_shows_the_sensitive_item_marked_and_its_button_acknowledges() {
    let w = World::with_item(|text| {
        text.replacen(
            "status = \"published\"",
            "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"What a local review taught us.\"",
            1,
        )
    })
    .await;
    let app = w.app();
    let uri = format!("/ack/{}", w.token("amy"));
    let page = send(&app, "GET", &uri, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let main = page.body.split("<main>").nth(1).unwrap();
    let main = main.split("</main>").next().unwrap().trim();
    assert!(
        main.starts_with("<p class=\"marking\">OFFICIAL-SENSITIVE</p>")
            && main.ends_with("<p class=\"marking\">OFFICIAL-SENSITIVE</p>"),
        "{main}"
    );
    assert!(
        main.contains("Each agency saw part of the picture"),
        "{main}"
    );
    assert!(main.contains("<form method=\"post\">"));
    assert_eq!(page.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(
        w.acks().await,
        0,
        "reading records nothing until the button"
    );
    let pressed = send(&app, "POST", &uri, None).await;
    assert_eq!(pressed.status, StatusCode::OK);
    assert_eq!(w.acks().await, 1);

    let plain = World::new().await;
    let page = send(
        &plain.app(),
        "GET",
        &format!("/ack/{}", plain.token("amy")),
        None,
    )
    .await;
    assert!(!page.body.contains("OFFICIAL"), "{}", page.body);
    assert!(!page.body.contains("Each agency saw part of the picture"));
}

#[tokio::test]
async fn a_double_post_records_one_acknowledgement_logs_the_repeat_and_stops_reminders() {
    let w = World::new().await;
    let app = w.app();
    let uri = format!("/ack/{}", w.token("amy"));
    let first = send(&app, "POST", &uri, None).await;
    w.advance(Duration::minutes(5));
    let second = send(&app, "POST", &uri, None).await;
    for page in [&first, &second] {
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Thank you"));
        assert!(page.body.contains(TITLE));
        assert!(
            page.body.contains(
                "How would you know if a family&#x27;s improvement was real and lasting?"
            ),
            "the thanks page lists the reflection questions: {}",
            page.body
        );
    }
    assert_eq!(first.body, second.body);
    let ack = w.store.acknowledgements().await.unwrap();
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].person_id, "amy");
    assert_eq!(ack[0].item_id, ITEM);
    assert_eq!(ack[0].rollout_id.as_deref(), Some("r1"));
    assert_eq!(ack[0].delivery_id, Some(w.delivery("amy")));
    assert_eq!(ack[0].channel, "web");
    assert_eq!(ack[0].method, AckMethod::Link);
    assert_eq!(ack[0].at, cascade_engine::delivery::millis(start()));
    assert_eq!(
        w.log().await,
        [
            (Some("amy".to_owned()), "recorded".to_owned()),
            (Some("amy".to_owned()), "repeat".to_owned())
        ]
    );
    let acknowledged = w.member_acknowledgements().await;
    assert_eq!(
        acknowledged,
        [
            (
                "amy".to_owned(),
                Some(cascade_engine::delivery::millis(start()))
            ),
            ("ben".to_owned(), None),
            ("cara".to_owned(), None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_are_committed_in_groups_and_each_answered_after_its_own_commit() {
    let w = World::new().await;
    let app = w.app();
    // Three people, each clicking several times at once: every request
    // answers "thank you", and each person is acknowledged exactly once.
    let mut requests = tokio::task::JoinSet::new();
    for round in 0..8 {
        for person in ["amy", "ben", "cara"] {
            let (app, uri) = (app.clone(), format!("/ack/{}", w.token(person)));
            requests.spawn(async move { (round, send(&app, "POST", &uri, None).await) });
        }
    }
    let mut answered = 0;
    while let Some(done) = requests.join_next().await {
        let (_, page) = done.unwrap();
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Thank you"));
        answered += 1;
    }
    assert_eq!(answered, 24);
    assert_eq!(w.acks().await, 3);
    let log = w.log().await;
    assert_eq!(log.len(), 24);
    for person in ["amy", "ben", "cara"] {
        let recorded = log
            .iter()
            .filter(|(p, o)| p.as_deref() == Some(person) && o == "recorded")
            .count();
        assert_eq!(recorded, 1, "{person}: {log:?}");
    }
    assert_eq!(w.acknowledged_members().await, 3);
}

#[tokio::test]
async fn a_group_commit_records_firsts_and_names_repeats_with_the_first_time() {
    use cascade_store::{AckMethod, AckOutcome, Evidence, NewAcknowledgement};
    let w = World::new().await;
    let stored = w.store.rollout("r1").await.unwrap().unwrap();
    let ack = |person: &str, at: i64| NewAcknowledgement {
        person_id: person.to_owned(),
        item_id: stored.item_id.clone(),
        item_version: stored.item_version.clone(),
        rollout_id: Some("r1".to_owned()),
        delivery_id: Some(w.delivery(person)),
        channel: "web".to_owned(),
        method: AckMethod::Link,
        at,
    };
    let earlier = w.store.acknowledge_items(&[ack("amy", 100)]).await.unwrap();
    assert_eq!(earlier, [AckOutcome::Recorded]);
    let group = [
        ack("ben", 200),
        ack("amy", 201),
        ack("ben", 202),
        ack("cara", 203),
    ];
    let outcomes = w.store.acknowledge_items(&group).await.unwrap();
    assert_eq!(
        outcomes,
        [
            AckOutcome::Recorded,
            AckOutcome::AlreadyAcknowledged { at: 100 },
            AckOutcome::AlreadyAcknowledged { at: 200 },
            AckOutcome::Recorded,
        ]
    );
    let acked = w.member_acknowledgements().await;
    assert_eq!(
        acked,
        [
            ("amy".to_owned(), Some(100)),
            ("ben".to_owned(), Some(200)),
            ("cara".to_owned(), Some(203))
        ]
    );
    let outcomes: Vec<String> = w.log().await.into_iter().map(|(_, o)| o).collect();
    assert_eq!(
        outcomes,
        ["recorded", "recorded", "repeat", "repeat", "recorded"]
    );
}

#[tokio::test]
async fn an_ack_link_with_a_forged_signature_is_refused() {
    let w = World::new().await;
    let app = w.app();
    let token = w.token("amy");
    let (body, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{body}.{}", "A".repeat(43));
    let wrong_key = AckKeys::new(("k2".to_owned(), vec![8; 32]), Vec::new(), 60)
        .unwrap()
        .sign(w.delivery("amy"), "amy", start());
    for token in [forged, wrong_key] {
        for method in ["GET", "POST"] {
            let page = send(&app, method, &format!("/ack/{token}"), None).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN);
            assert!(page.body.contains("This link is not valid"));
            assert!(page.body.contains("Nothing was recorded"));
            assert!(!page.body.contains(TITLE) && !page.body.contains("Amy"));
        }
    }
    assert_eq!(w.acks().await, 0);
    assert!(w.log().await.is_empty(), "refusals are counted, not logged");
    assert_eq!(
        w.refusals().await,
        [("acknowledgement: forged".to_owned(), 2)]
    );
}

#[tokio::test]
async fn an_ack_link_made_for_someone_else_is_refused_like_a_forged_one() {
    let w = World::new().await;
    let app = w.app();
    // Validly signed, but for Ben and Amy's delivery; and for a delivery that
    // does not exist.
    let for_ben = keys().sign(w.delivery("amy"), "ben", start());
    let nowhere = keys().sign(9_999, "amy", start());
    let forged_page = send(&app, "GET", "/ack/v1.k2.1.YW15.1.AAAA", None).await;
    for token in [&for_ben, &nowhere] {
        let page = send(&app, "POST", &format!("/ack/{token}"), None).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("This link is not valid"));
        assert_eq!(
            page.body, forged_page.body,
            "nothing tells whether the delivery or person exists"
        );
    }
    assert_eq!(w.acks().await, 0);
    assert!(w.log().await.is_empty());
    assert_eq!(
        w.refusals().await,
        [
            ("acknowledgement: no such delivery".to_owned(), 1),
            (
                "acknowledgement: the link was made for someone else".to_owned(),
                1
            ),
        ]
    );
}

#[tokio::test]
async fn an_expired_ack_link_is_refused_with_what_to_do() {
    let w = World::new().await;
    let app = w.app();
    let uri = format!("/ack/{}", w.token("amy"));
    w.advance(Duration::days(60));
    for method in ["GET", "POST"] {
        let page = send(&app, method, &uri, None).await;
        assert_eq!(page.status, StatusCode::GONE);
        assert!(page.body.contains("This link has expired"));
        assert!(page.body.contains("use the link in the latest email"));
        assert!(page.body.contains("business unit"));
    }
    assert_eq!(w.acks().await, 0);
    assert_eq!(
        w.refusals().await,
        [("acknowledgement: expired".to_owned(), 1)]
    );
}

#[tokio::test]
async fn a_link_signed_with_a_rotated_out_key_works_until_the_key_retires() {
    let w = World::new().await;
    let old = AckKeys::new(("k1".to_owned(), vec![1; 32]), Vec::new(), 60).unwrap();
    let rotated = AckKeys::new(
        ("k2".to_owned(), vec![7; 32]),
        vec![("k1".to_owned(), vec![1; 32], start() + Duration::days(10))],
        60,
    )
    .unwrap();
    let app = w.app_with(rotated, None);
    let amy = format!("/ack/{}", old.sign(w.delivery("amy"), "amy", start()));
    let ben = format!("/ack/{}", old.sign(w.delivery("ben"), "ben", start()));
    w.advance(Duration::days(9));
    assert_eq!(send(&app, "POST", &amy, None).await.status, StatusCode::OK);
    w.advance(Duration::days(1));
    let page = send(&app, "POST", &ben, None).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("This link no longer works"));
    assert!(page.body.contains("latest email"));
    let acked: Vec<String> = w
        .store
        .acknowledgements()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.person_id)
        .collect();
    assert_eq!(acked, ["amy"]);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let w = World::new().await;
    let app = w.app();
    let token = w.token("amy");
    for (method, uri) in [
        ("GET", "/health".to_owned()),
        ("GET", format!("/ack/{token}")),
        ("POST", format!("/ack/{token}")),
        ("GET", "/ack/nonsense".to_owned()),
        ("GET", format!("/confirm/{}", w.token("cara"))),
    ] {
        let answer = send(&app, method, &uri, None).await;
        let h = |name: &str| {
            answer
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            h("content-security-policy").as_deref(),
            Some(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
            ),
            "{method} {uri}"
        );
        assert_eq!(h("x-content-type-options").as_deref(), Some("nosniff"));
        assert_eq!(h("referrer-policy").as_deref(), Some("no-referrer"));
        assert_eq!(h("cache-control").as_deref(), Some("no-store"));
    }
}

#[tokio::test]
async fn a_client_over_the_rate_limit_gets_429_with_retry_after() {
    let w = World::new().await;
    let app = w.app_with(
        keys(),
        Some(RateLimit {
            per_second: 0.5,
            burst: 3,
        }),
    );
    let uri = format!("/ack/{}", w.token("amy"));
    for _ in 0..3 {
        assert_eq!(send(&app, "GET", &uri, None).await.status, StatusCode::OK);
    }
    let limited = send(&app, "GET", &uri, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "2");
    assert!(limited.body.contains("Too many requests"));
    assert!(limited.headers.contains_key("content-security-policy"));
    assert_eq!(
        send(&app, "GET", "/health", None).await.status,
        StatusCode::OK,
        "the health endpoint is not limited"
    );
}

#[tokio::test]
async fn a_champion_sees_a_form_with_the_teams_they_cover() {
    let w = World::new().await;
    let page = send(
        &w.app(),
        "GET",
        &format!("/confirm/{}", w.token("cara")),
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Cara Lund"));
    assert!(page.body.contains(TITLE));
    assert!(
        page.body
            .contains("<option value=\"north\" selected>Early Help North</option>")
    );
    assert!(!page.body.contains("Early Help South"));
    assert!(page.body.contains("value=\"2026-03-02\""));
    for method in ["team-meeting", "supervision", "briefing-session", "email"] {
        assert!(page.body.contains(&format!("value=\"{method}\"")));
    }
}

#[tokio::test]
async fn a_champion_cannot_confirm_for_a_team_they_do_not_cover() {
    let w = World::new().await;
    let app = w.app();
    let uri = format!("/confirm/{}", w.token("cara"));
    let page = send(
        &app,
        "POST",
        &uri,
        Some("team=south&session_date=2026-03-02&present=9&method=team-meeting&note="),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("Choose one of the teams you cover"));
    let page = send(
        &app,
        "POST",
        &uri,
        Some("team=north&session_date=2026-03-03&present=-2&method=team-meeting"),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body
            .contains("The session date cannot be in the future")
    );
    assert!(page.body.contains("whole number, 0 or more"));
    assert_eq!(w.confirmations().await.len(), 0);
}

#[tokio::test]
async fn someone_who_is_not_a_champion_gets_no_confirmation_form() {
    let w = World::new().await;
    let uri = format!("/confirm/{}", w.token("amy"));
    let page = send(&w.app(), "GET", &uri, None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("not listed as a champion"));
    let page = send(
        &w.app(),
        "POST",
        &uri,
        Some("team=north&session_date=2026-03-02&present=9&method=team-meeting"),
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(w.confirmations().await.len(), 0);
}

#[tokio::test]
async fn a_valid_confirmation_is_stored_once() {
    let w = World::new().await;
    let app = w.app();
    let uri = format!("/confirm/{}", w.token("cara"));
    let form = "team=north&session_date=2026-02-27&present=11&method=supervision&note=Discussed+%3Cday+in+the+life%3E";
    let page = send(&app, "POST", &uri, Some(form)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("this briefing is recorded"));
    assert!(page.body.contains("Early Help North"));
    let again = send(&app, "POST", &uri, Some(form)).await;
    assert!(again.body.contains("already recorded"));
    // champion, item, team, session date, present, method, note, channel
    let rows: Vec<_> = w
        .confirmations()
        .await
        .into_iter()
        .map(|c| {
            (
                c.champion_id,
                c.item_id,
                c.team_id,
                c.session_date,
                c.present,
                c.method,
                c.note,
                c.channel,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(
            "cara".to_owned(),
            ITEM.to_owned(),
            "north".to_owned(),
            "2026-02-27".to_owned(),
            11,
            "supervision".to_owned(),
            Some("Discussed <day in the life>".to_owned()),
            "web".to_owned()
        )]
    );
}

#[tokio::test]
async fn a_thousand_forged_posts_write_a_handful_of_rows() {
    let w = World::new().await;
    let app = w.app();
    let token = w.token("amy");
    let (body, _) = token.rsplit_once('.').unwrap();
    for n in 0..1000 {
        let forged = format!("{body}.{n:0>4}{}", "A".repeat(39));
        let page = send(&app, "POST", &format!("/ack/{forged}"), None).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        if n % 100 == 99 {
            w.advance(Duration::seconds(7));
        }
    }
    let logged = w.log().await.len();
    assert_eq!(logged, 0, "no row per refusal in the log");
    let rows = w.store.refusal_counts().await.unwrap().len();
    assert!(
        (1..=3).contains(&rows),
        "one row per reason per minute, not {rows}"
    );
    assert_eq!(
        w.refusals().await,
        [("acknowledgement: forged".to_owned(), 1000)],
        "every refusal is counted"
    );
}

fn trusting(w: &World, rate_limit: RateLimit) -> Router {
    ack_router(
        w.state(keys(), Some(rate_limit))
            .with_trusted_proxies(vec!["10.0.0.0/8".parse().unwrap()]),
    )
}

const TWO_THEN_WAIT: RateLimit = RateLimit {
    per_second: 0.001,
    burst: 2,
};

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_stays_in_the_peers_bucket() {
    let w = World::new().await;
    let app = trusting(&w, TWO_THEN_WAIT);
    let uri = format!("/ack/{}", w.token("amy"));
    let peer = SocketAddr::from(([203, 0, 113, 5], 40_000));
    let mut statuses = Vec::new();
    for n in 1..=4 {
        let forwarded = format!("198.51.100.{n}");
        statuses.push(
            send_from(&app, peer, Some(&forwarded), "GET", &uri, None)
                .await
                .status,
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    let w = World::new().await;
    let app = trusting(&w, TWO_THEN_WAIT);
    let uri = format!("/ack/{}", w.token("amy"));
    let proxy = SocketAddr::from(([10, 0, 0, 2], 40_000));
    let from = |client: &'static str| {
        let (app, uri) = (app.clone(), uri.clone());
        async move {
            send_from(&app, proxy, Some(client), "GET", &uri, None)
                .await
                .status
        }
    };
    assert_eq!(from("198.51.100.1").await, StatusCode::OK);
    assert_eq!(from("198.51.100.1").await, StatusCode::OK);
    assert_eq!(from("198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        from("198.51.100.2").await,
        StatusCode::OK,
        "another client behind the same proxy is not limited with the first"
    );
    // What a client writes left of the address the proxy appended is ignored.
    assert_eq!(
        from("198.51.100.2, 198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

// The server `cascade serve` runs, over TCP.

use cascade_server::serve;
use std::time::{Duration as StdDuration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `app` as `cascade serve` does, on an ephemeral port.
async fn serving(app: Router, config: ServerConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, app, &config, std::future::pending()).await });
    address
}

fn short_timeouts(max_connections: u64) -> ServerConfig {
    ServerConfig {
        header_timeout_seconds: 2,
        body_timeout_seconds: 2,
        idle_timeout_seconds: 2,
        max_connections,
        trusted_proxies: Vec::new(),
    }
}

/// The status of a GET of `path`, and how long it took.
async fn get(address: SocketAddr, path: &str) -> (u16, StdDuration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        StdDuration::from_secs(20),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("an answer within 20 s")
    .unwrap();
    let status = String::from_utf8_lossy(&response)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

/// Whether the server closes `stream` (end of file or a reset, after
/// whatever it answered) within `within`.
async fn closed_within(mut stream: impl AsyncReadExt + Unpin, within: StdDuration) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_stalled_clients_starve_nobody_and_are_closed_by_the_timeouts() {
    // Each connection is a file descriptor here and one in the server.
    let open_files = cascade_server::raise_open_file_limit().unwrap();
    assert!(
        open_files >= 2_400,
        "this test needs 2,400 open files; the hard limit is {open_files}"
    );
    let w = World::new().await;
    let address = serving(w.app(), short_timeouts(1_100)).await;
    let mut stalled = Vec::new();
    for _ in 0..1_000 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Half: ")
            .await
            .unwrap();
        stalled.push(stream);
    }
    // Confirmation forms whose bodies arrive a byte every 100 ms.
    let form_uri = format!("/confirm/{}", w.token("cara"));
    let mut trickling = Vec::new();
    for _ in 0..20 {
        let stream = TcpStream::connect(address).await.unwrap();
        let (reading, mut writing) = stream.into_split();
        let head = format!(
            "POST {form_uri} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        );
        writing.write_all(head.as_bytes()).await.unwrap();
        tokio::spawn(async move {
            while writing.write_all(b"a").await.is_ok() {
                tokio::time::sleep(StdDuration::from_millis(100)).await;
            }
        });
        trickling.push(reading);
    }
    let started = Instant::now();

    let (health, took) = get(address, "/health").await;
    assert_eq!(health, 200);
    assert!(took < StdDuration::from_secs(1), "/health took {took:?}");
    let (page, took) = get(address, &format!("/ack/{}", w.token("amy"))).await;
    assert_eq!(page, 200);
    assert!(
        took < StdDuration::from_secs(1),
        "the ack page took {took:?}"
    );

    // The header timeout (2 s) closes every half-sent request; the body
    // timeout (2 s) every trickling body. A second of slack for a busy CI.
    let mut closing = tokio::task::JoinSet::new();
    for stream in stalled {
        closing.spawn(closed_within(stream, StdDuration::from_secs(4)));
    }
    for stream in trickling {
        closing.spawn(closed_within(stream, StdDuration::from_secs(4)));
    }
    let closed = closing.join_all().await;
    let open = closed.iter().filter(|closed| !**closed).count();
    assert_eq!(
        open,
        0,
        "{open} slow connections still open after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_the_timeouts_free_a_place() {
    let w = World::new().await;
    let address = serving(w.app(), short_timeouts(2)).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(address).await.unwrap());
    }
    // Let the server accept both before the third arrives.
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let (health, took) = get(address, "/health").await;
    assert_eq!(health, 200);
    assert!(
        took >= StdDuration::from_millis(1_500),
        "the third connection waited for a place, not {took:?}"
    );
    assert!(
        took < StdDuration::from_secs(5),
        "and got one when the idle ones timed out, not after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_responses_is_closed_when_idle() {
    let w = World::new().await;
    let address = serving(w.app(), short_timeouts(16)).await;
    // A small receive window, and many pipelined requests whose answers it
    // never reads: the server's writes stall once the buffers are full.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let (reading, mut writing) = stream.into_split();
    tokio::spawn(async move {
        let requests = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1_000);
        for _ in 0..100 {
            if writing.write_all(requests.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(StdDuration::from_secs(4)).await;
    assert!(
        closed_within(reading, StdDuration::from_secs(5)).await,
        "the stalled connection was closed by the idle timeout"
    );
}

/// The demo briefing's check question: the right option is the second.
const QUESTION: &str =
    "On a home visit where you are worried about neglect, what should you ask to see?";

/// The person's answers to the briefing's check questions, as kept:
/// (first answer, right first time, attempts, recorded with an acknowledgement).
async fn check_answers(w: &World, person: &str) -> Vec<(u32, bool, u32, bool)> {
    let version = &w.store.item_versions(ITEM).await.unwrap()[0].version.0;
    w.store
        .check_progress(person, ITEM, version)
        .await
        .unwrap()
        .answers
        .into_iter()
        .map(|a| {
            (
                a.first_answer,
                a.right_first_time,
                a.attempts,
                a.acknowledgement_id.is_some(),
            )
        })
        .collect()
}

/// Issue 19: an item with check questions asks them on the link's page, in
/// one form of radio buttons that works without scripts. Nothing answered
/// records nothing; a wrong answer shows the explanation and the section it
/// points to (escaped), and asks again; the right one records the
/// acknowledgement, "after a retry". The same wrong POST sent twice counts
/// one try.
#[tokio::test]
async fn a_check_question_is_asked_first_and_a_wrong_answer_shows_its_section_then_asks_again() {
    let w = World::with_check_questions().await;
    let app = w.app();
    let uri = format!("/ack/{}", w.token("amy"));
    let page = send(&app, "GET", &uri, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("<form method=\"post\" novalidate>"), "{body}");
    assert!(body.contains("<fieldset>"), "{body}");
    assert!(
        body.contains(&format!("<legend>Question 1 of 1: {QUESTION}</legend>")),
        "{body}"
    );
    for o in 1..=3 {
        assert!(
            body.contains(&format!(
                "<input type=\"radio\" id=\"q1-{o}\" name=\"q1\" value=\"{o}\"><label for=\"q1-{o}\">"
            )),
            "option {o}: {body}"
        );
    }
    assert!(body.contains("<input type=\"hidden\" name=\"seen1\" value=\"0\">"));
    assert!(!body.contains("There is a problem"));
    assert_eq!(w.acks().await, 0);

    // Sent without an answer: the error summary links to the question.
    let missing = send(&app, "POST", &uri, Some("")).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.body.contains("<title>Error: "), "{}", missing.body);
    assert!(
        missing
            .body
            .contains("<a href=\"#q1-1\">Choose an answer to question 1</a>")
    );
    assert!(check_answers(&w, "amy").await.is_empty());

    // Wrong, twice over (a double click): one try, the section shown.
    for _ in 0..2 {
        let wrong = send(&app, "POST", &uri, Some("q1=1&seen1=0")).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        let body = &wrong.body;
        assert!(body.contains("Not quite"), "{body}");
        assert!(
            body.contains("Seeing the child&#x27;s own space shows their daily life"),
            "{body}"
        );
        assert!(
            body.contains("From the section \u{201c}5. What practitioners should do\u{201d}"),
            "{body}"
        );
        assert!(body.contains("Look at the bedroom, the fridge, the bed."));
        assert!(body.contains("aria-describedby=\"q1-error q1-explain\""));
        assert!(body.contains("<input type=\"hidden\" name=\"seen1\" value=\"1\">"));
    }
    assert_eq!(check_answers(&w, "amy").await, [(1, false, 1, false)]);
    assert_eq!(w.acks().await, 0);
    assert_eq!(w.acknowledged_members().await, 0);

    // Right: recorded, with the answer, after a retry.
    let right = send(&app, "POST", &uri, Some("q1=2&seen1=1")).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert!(right.body.contains("We have recorded that you have read"));
    assert_eq!(w.acks().await, 1);
    assert_eq!(w.acknowledged_members().await, 1);
    assert_eq!(check_answers(&w, "amy").await, [(1, false, 2, true)]);
    // The page now is the plain confirmation: nothing more to ask.
    let again = send(&app, "GET", &uri, None).await;
    assert!(!again.body.contains("<fieldset>"));
    // The chain verifies with the answer in it.
    let report = w.store.verify_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Right first time: one POST records the acknowledgement and the answer.
/// A POST made up without the page (no `seen1`) counts only as a first
/// answer; an option that is not one is refused and counts nothing.
#[tokio::test]
async fn a_right_first_answer_records_the_acknowledgement_at_once() {
    let w = World::with_check_questions().await;
    let app = w.app();
    let ben = format!("/ack/{}", w.token("ben"));
    let refused = send(&app, "POST", &ben, Some("q1=9&seen1=0")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(check_answers(&w, "ben").await.is_empty());
    let right = send(&app, "POST", &ben, Some("q1=2")).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert_eq!(check_answers(&w, "ben").await, [(2, true, 1, true)]);
    assert_eq!(w.acks().await, 1);
    // Someone else's link cannot answer for Amy.
    assert!(check_answers(&w, "amy").await.is_empty());
}

/// Queues refresher `number` of rollout r1 for `person` as the scheduler
/// would; its outbox row id.
async fn queue_refresher(w: &World, person: &str, number: u32) -> i64 {
    let now = cascade_engine::delivery::millis(start());
    let key = format!("r1/{person}/refresher-{number}/{person}/0");
    w.store
        .materialise_refreshers(
            &[NewDelivery {
                idempotency_key: key.clone(),
                rollout_id: "r1".to_owned(),
                person_id: person.to_owned(),
                recipient_id: person.to_owned(),
                wave: 0,
                step_kind: StepKind::Refresher,
                step_number: number,
                channel: "email".to_owned(),
                channel_rank: 0,
                due_at: now,
            }],
            &[],
            now,
        )
        .await
        .unwrap();
    w.store
        .outbox_rows()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.idempotency_key == key)
        .unwrap()
        .id
}

/// Issue 19: a refresher's email links to a page that asks its check
/// question (GET records nothing); a wrong answer explains, shows the
/// section and asks again, counted once however often it is posted; the
/// right one thanks, and the answer is kept on the refresher, after a
/// retry, with no acknowledgement. A later post changes nothing. The
/// link of a learning message is no refresher link.
#[tokio::test]
async fn a_refreshers_link_asks_its_question_and_records_the_answer_on_the_refresher() {
    let w = World::with_check_questions().await;
    let app = w.app();
    let delivery = queue_refresher(&w, "amy", 1).await;
    let uri = format!("/refresher/{}", keys().sign(delivery, "amy", start()));
    let page = send(&app, "GET", &uri, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains(&format!("<h1>Refresher: {TITLE}</h1>")),
        "{body}"
    );
    assert!(
        body.contains(&format!("<legend>{QUESTION}</legend>")),
        "{body}"
    );
    assert!(body.contains(
        "<input type=\"radio\" id=\"r-2\" name=\"answer\" value=\"2\"><label for=\"r-2\">"
    ));
    assert!(body.contains("<input type=\"hidden\" name=\"seen\" value=\"0\">"));
    let answers = || async { w.store.refresher_answers().await.unwrap() };
    assert!(answers().await.is_empty());

    let missing = send(&app, "POST", &uri, Some("")).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        missing
            .body
            .contains("<a href=\"#r-1\">Choose an answer</a>")
    );
    for _ in 0..2 {
        let wrong = send(&app, "POST", &uri, Some("answer=1&seen=0")).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong
                .body
                .contains("Seeing the child&#x27;s own space shows their daily life"),
            "{}",
            wrong.body
        );
        assert!(
            wrong
                .body
                .contains("Look at the bedroom, the fridge, the bed.")
        );
        assert!(
            wrong
                .body
                .contains("aria-describedby=\"r-error r-explain\"")
        );
        assert!(
            wrong
                .body
                .contains("<input type=\"hidden\" name=\"seen\" value=\"1\">")
        );
    }
    let right = send(&app, "POST", &uri, Some("answer=2&seen=1")).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert!(
        right.body.contains("<p>Right. Seeing the child"),
        "{}",
        right.body
    );
    let again = send(&app, "POST", &uri, Some("answer=1&seen=0")).await;
    assert!(
        again
            .body
            .contains("You have answered this refresher already")
    );
    let kept = answers().await;
    assert_eq!(kept.len(), 1);
    let a = &kept[0];
    assert_eq!(
        (
            a.person_id.as_str(),
            a.refresher,
            a.delivery_id,
            a.channel.as_str()
        ),
        ("amy", 1, delivery, "web")
    );
    assert_eq!(
        (
            a.first_answer,
            a.right_first_time,
            a.attempts,
            a.answered_at.is_some()
        ),
        (1, false, 2, true)
    );
    assert_eq!(w.acks().await, 0);

    // The acknowledgement link's token opens no refresher.
    let not = send(&app, "GET", &format!("/refresher/{}", w.token("amy")), None).await;
    assert_eq!(not.status, StatusCode::FORBIDDEN);
    // Nor does someone else's refresher.
    let bens = queue_refresher(&w, "ben", 1).await;
    let forged = send(
        &app,
        "POST",
        &format!("/refresher/{}", keys().sign(bens, "amy", start())),
        Some("answer=2&seen=0"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(answers().await.len(), 1);
}

/// Starts rollout r2 of the briefing with a follow-up whose "not used"
/// answers carry a reason, and queues its follow-up for `person`; the
/// outbox row's id.
async fn queue_follow_up(w: &World, person: &str) -> i64 {
    let text = "id = \"r2\"\nitem = \"7mb-neglect-seeing-the-child\"\nstart = 2026-03-02T09:00:00\n\
                channels = [\"email\"]\nack_deadline_days = 10\n[audience]\n[[waves]]\nname = \"All\"\n\
                after_days = 0\n[[follow_ups]]\nafter_days = 90\nquestion = \"Have you used this in practice?\"\n\
                answers = [\"Used it in practice\", \"Not yet\"]\n\
                reasons = [\"Not relevant to my role\", \"No opportunity yet\", \"Need more training\"]\n";
    let definition =
        cascade_model::rollout::parse_definition(std::path::Path::new("r2.toml"), text).unwrap();
    let version = w.store.item_versions(ITEM).await.unwrap()[0]
        .version
        .0
        .clone();
    let now = cascade_engine::delivery::millis(start());
    w.store
        .create_rollout(NewRollout {
            id: "r2",
            item_id: ITEM,
            item_version: &version,
            definition: &serde_json::to_string(&definition).unwrap(),
            members: &[NewMember {
                person_id: person.to_owned(),
                wave: 0,
                first_due_at: now,
            }],
            audience: None,
            now,
            team_posts: &[],
        })
        .await
        .unwrap();
    let key = format!("r2/{person}/follow-up-1/{person}/0");
    w.store
        .materialise(
            &[NewDelivery {
                idempotency_key: key.clone(),
                rollout_id: "r2".to_owned(),
                person_id: person.to_owned(),
                recipient_id: person.to_owned(),
                wave: 0,
                step_kind: StepKind::FollowUp,
                step_number: 1,
                channel: "email".to_owned(),
                channel_rank: 0,
                due_at: now,
            }],
            &[],
            now,
        )
        .await
        .unwrap();
    w.store
        .outbox_rows()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.idempotency_key == key)
        .unwrap()
        .id
}

/// Issue 19, the feedback loop by email: answering "Not yet" from the
/// follow-up's link thanks and offers the follow-up's reasons, each a
/// form posting to the signed `/reason` link; the first reason is kept on
/// the answer, a second changes nothing. "Used it" offers none.
#[tokio::test]
async fn a_not_used_answer_by_email_offers_the_reasons_and_keeps_the_first() {
    let w = World::new().await;
    let app = w.app();
    let delivery = queue_follow_up(&w, "amy").await;
    let token = keys().sign(delivery, "amy", start());
    let answered = send(&app, "POST", &format!("/answer/{token}/2"), Some("")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    let body = &answered.body;
    assert!(body.contains("What is the main reason?"), "{body}");
    for (r, reason) in [(1, "Not relevant to my role"), (3, "Need more training")] {
        assert!(
            body.contains(&format!(
                "<form method=\"post\" action=\"../../reason/{token}/{r}\"><button type=\"submit\">{reason}</button></form>"
            )),
            "{body}"
        );
    }
    let reason = send(&app, "POST", &format!("/reason/{token}/3"), Some("")).await;
    assert_eq!(reason.status, StatusCode::OK, "{}", reason.body);
    assert!(
        reason
            .body
            .contains("We have recorded your reason: <strong>Need more training</strong>")
    );
    let again = send(&app, "POST", &format!("/reason/{token}/1"), Some("")).await;
    assert!(again.body.contains("your first one stands"));
    let no_such = send(&app, "POST", &format!("/reason/{token}/9"), Some("")).await;
    assert_eq!(no_such.status, StatusCode::FORBIDDEN);
    let kept: Vec<(String, Option<String>)> = w
        .store
        .answers()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.answer, a.reason))
        .collect();
    assert_eq!(
        kept,
        [("Not yet".to_owned(), Some("Need more training".to_owned()))]
    );

    let bens = queue_follow_up_for_another(&w, "ben").await;
    let used = send(
        &app,
        "POST",
        &format!("/answer/{}/1", keys().sign(bens, "ben", start())),
        Some(""),
    )
    .await;
    assert!(used.body.contains("We have recorded your answer"));
    assert!(!used.body.contains("main reason"), "{}", used.body);
}

/// Ben's follow-up in rollout r2, which `queue_follow_up` started.
async fn queue_follow_up_for_another(w: &World, person: &str) -> i64 {
    let now = cascade_engine::delivery::millis(start());
    let key = format!("r2/{person}/follow-up-1/{person}/0");
    w.store
        .materialise(
            &[NewDelivery {
                idempotency_key: key.clone(),
                rollout_id: "r2".to_owned(),
                person_id: person.to_owned(),
                recipient_id: person.to_owned(),
                wave: 0,
                step_kind: StepKind::FollowUp,
                step_number: 1,
                channel: "email".to_owned(),
                channel_rank: 0,
                due_at: now,
            }],
            &[],
            now,
        )
        .await
        .unwrap();
    w.store
        .outbox_rows()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.idempotency_key == key)
        .unwrap()
        .id
}
