//! Champions who work by email: their emails about an item carry a signed
//! link to the cascade confirmation form for the teams they cover (nobody
//! else's do), the link records a team briefing through the real server
//! routes, the acknowledgement page leads a champion on to it, and after
//! the rollout's deadline champions whose teams have no briefing recorded
//! are reminded. Every email goes through the real plugin library to a
//! real SMTP server process (aiosmtpd).

mod support;

use cascade_store::Inspect;
use cascade_test_support::DemoProject;
use cascade_test_support::outbox::rows;
use cascade_test_support::utc;
use serde_json::Value;
use support::{SmtpServer, TITLE, email_channel, header, part, start};

const ITEM: &str = "7mb-neglect-seeing-the-child";
const BASE: &str = "http://localhost:8080";

/// A project of two teams: `people` as (id, name, email, team) and
/// `champions` as champions.csv rows, imported.
async fn project(
    server: &SmtpServer,
    people: &[(&str, &str, &str, &str)],
    champions: &str,
) -> tempfile::TempDir {
    let mut rows =
        String::from("person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n");
    for (id, name, email, team) in people {
        rows.push_str(&format!("{id},{name},{email},ag,{team},practitioner,,\n"));
    }
    DemoProject::new()
        .without_check_questions()
        .channels(&email_channel(&server.channel_config(2)))
        .edit(&format!("content/{ITEM}.md"), |text| {
            text.replacen(
                "title = \"Neglect: seeing the child\"",
                &format!("title = \"{TITLE}\""),
                1,
            )
        })
        .write(
            "directory/agencies.csv",
            "agency_id,name,kind\nag,Test Agency,local-authority\n",
        )
        .write(
            "directory/teams.csv",
            "team_id,agency_id,name\nteam,ag,Test Team\nteam-2,ag,Second Team\n",
        )
        .write("directory/people.csv", rows)
        .write(
            "directory/champions.csv",
            format!("person_id,theme,teams\n{champions}"),
        )
        .import_directory()
        .await
        .into_dir()
}

/// Everyone, one wave, now (urgent: no quiet hours), a 10-day deadline
/// and `extra` lines.
fn rollout(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("rollouts/now.toml");
    std::fs::write(
        &path,
        format!(
            "id = \"now\"\nitem = \"{ITEM}\"\nstart = 2026-03-27T09:00:00\n\
             urgent = true\nchannels = [\"email\"]\nfallback = false\nack_deadline_days = 10\n\
             {extra}\n[audience]\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n"
        ),
    )
    .unwrap();
    path
}

/// The link pages, as `cascade serve` routes them, at a fixed time.
fn pages(
    dir: &std::path::Path,
    store: std::sync::Arc<cascade_store::SqliteStore>,
    now: chrono::DateTime<chrono::Utc>,
) -> axum::Router {
    let project = cascade_engine::project::Project::open(dir).unwrap();
    let keys =
        cascade_engine::ack::AckKeys::load(project.config.ack.as_ref().unwrap(), dir).unwrap();
    let clock: cascade_server::Clock = std::sync::Arc::new(move || now);
    cascade_server::ack_router(cascade_server::ServerState::new(
        store,
        std::sync::Arc::new(keys),
        project.taxonomy.clone(),
        chrono_tz::Europe::London,
        clock,
    ))
}

/// An HTTP request to `app` (a form body with a POST); status and body.
async fn call(app: &axum::Router, method: &str, uri: &str, form: &str) -> (u16, String) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [192, 0, 2, 1],
            50_000,
        ))))
        .body(axum::body::Body::from(form.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The messages the server accepted for `address`.
fn to(received: &[Value], address: &str) -> Vec<Value> {
    received
        .iter()
        .filter(|m| m["rcpt_tos"][0] == address)
        .cloned()
        .collect()
}

/// The URL on a line of its own in a text part that starts with `prefix`.
fn url_line(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with(prefix))
        .map(str::to_owned)
}

fn path(url: &str) -> String {
    url.strip_prefix(BASE).unwrap().to_owned()
}

async fn confirmations(store: &cascade_store::SqliteStore) -> Vec<(String, String, u32)> {
    let mut found: Vec<(String, String, u32)> = store
        .confirmations()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.champion_id, c.team_id, c.present))
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_champion_on_email_confirms_a_cascade_from_the_link_in_their_email() {
    let server = SmtpServer::start();
    let dir = project(
        &server,
        &[
            ("p-zoe", "Zoë Brontë", "zoe@agency.example", "team"),
            ("p-sam", "Sam Okafor", "sam@agency.example", "team"),
        ],
        "p-zoe,neglect,team;team-2\n",
    )
    .await;
    let runner = start(dir.path(), &rollout(dir.path(), ""), utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.stop().await;
    let received = server.received();
    assert_eq!(received.len(), 2);

    // The non-champion's email has only the acknowledgement link.
    let sam = &to(&received, "sam@agency.example")[0];
    for content_type in ["text/plain", "text/html"] {
        let body = part(sam, content_type);
        assert!(body.contains("/ack/"), "{body}");
        assert!(!body.contains("/confirm/"), "{body}");
        assert!(!body.contains("You are a champion"), "{body}");
    }

    // The champion's has both, and names the teams it is for.
    let zoe = &to(&received, "zoe@agency.example")[0];
    assert_eq!(header(zoe, "Subject"), Some(TITLE));
    let text = part(zoe, "text/plain");
    let ack = url_line(text, &format!("{BASE}/ack/")).expect("an acknowledgement link");
    let confirm = url_line(text, &format!("{BASE}/confirm/"))
        .unwrap_or_else(|| panic!("no confirmation link on a line of its own in:\n{text}"));
    assert!(
        text.contains("You are a champion for Second Team and Test Team."),
        "{text}"
    );
    let html = part(zoe, "text/html");
    let anchor = html
        .find(&format!("<a href=\"{confirm}\""))
        .map(|at| &html[at..at + html[at..].find("</a>").unwrap()])
        .unwrap_or_else(|| panic!("the HTML has no link to {confirm}:\n{html}"));
    assert!(anchor.contains("Record a team briefing"), "{anchor}");
    assert!(
        html.contains("<h2 ") && html.contains("For champions"),
        "{html}"
    );

    let app = pages(dir.path(), runner.store().clone(), utc(2026, 3, 31, 10, 0));
    let store = runner.store().clone();

    // Opening the link (as a mail scanner would) shows the form for her
    // teams and records nothing.
    let (status, page) = call(&app, "GET", &path(&confirm), "").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Record a team briefing</h1>"), "{page}");
    assert!(
        page.contains("You are a champion for these teams"),
        "{page}"
    );
    assert!(
        page.contains("<li>Test Team: no briefing recorded yet</li>"),
        "{page}"
    );
    assert!(
        page.contains("<li>Second Team: no briefing recorded yet</li>"),
        "{page}"
    );
    assert!(confirmations(&store).await.is_empty());

    // A team she does not cover is refused with the form again.
    let (status, page) = call(
        &app,
        "POST",
        &path(&confirm),
        "team=elsewhere&session_date=2026-03-30&present=6&method=team-meeting&note=",
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("Choose one of the teams you cover"), "{page}");
    assert!(confirmations(&store).await.is_empty());

    let (status, page) = call(
        &app,
        "POST",
        &path(&confirm),
        "team=team&session_date=2026-03-30&present=6&method=team-meeting&note=Shared+at+the+team+meeting",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Thank you, this briefing is recorded"),
        "{page}"
    );
    assert!(page.contains("<strong>Test Team</strong>"), "{page}");
    assert_eq!(
        confirmations(&store).await,
        [("p-zoe".to_owned(), "team".to_owned(), 6)]
    );
    let (_, page) = call(&app, "GET", &path(&confirm), "").await;
    assert!(
        page.contains("<li>Test Team: a briefing is recorded</li>"),
        "{page}"
    );
    assert!(
        page.contains("<li>Second Team: no briefing recorded yet</li>"),
        "{page}"
    );

    // Acknowledging leads a champion on to the form; nobody else.
    let (status, page) = call(&app, "POST", &path(&ack), "").await;
    assert_eq!(status, 200, "{page}");
    let token = confirm.rsplit('/').next().unwrap();
    assert!(
        page.contains(&format!(
            "<a href=\"../confirm/{token}\">Record a team briefing</a>"
        )),
        "{page}"
    );
    assert!(
        page.contains("You are a champion for Second Team and Test Team."),
        "{page}"
    );
    let sam_ack = url_line(part(sam, "text/plain"), &format!("{BASE}/ack/")).unwrap();
    let (status, page) = call(&app, "POST", &path(&sam_ack), "").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Thank you") && !page.contains("/confirm/"),
        "{page}"
    );

    // Sam's own token does not open the form: he covers no team.
    let sam_confirm = sam_ack.replace("/ack/", "/confirm/");
    let (status, page) = call(&app, "GET", &path(&sam_confirm), "").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("No teams to confirm for"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_deadline_only_champions_whose_teams_have_no_briefing_are_reminded() {
    let server = SmtpServer::start();
    let dir = project(
        &server,
        &[
            ("p-zoe", "Zoë Brontë", "zoe@agency.example", "team"),
            ("p-ann", "Ann Example", "ann@agency.example", "team-2"),
            ("p-kim", "Kim Example", "kim@agency.example", "team-2"),
            ("p-sam", "Sam Okafor", "sam@agency.example", "team"),
        ],
        // Kim champions a theme the briefing is not about.
        "p-zoe,neglect,team\np-ann,voice-of-the-child,team-2\np-kim,cse,team-2\n",
    )
    .await;
    let path_ = rollout(dir.path(), "champion_reminder_days = [1]\n");
    let runner = start(dir.path(), &path_, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let store = runner.store().clone();
    let app = pages(dir.path(), store.clone(), utc(2026, 3, 31, 10, 0));
    let first = server.received();
    assert_eq!(first.len(), 4);

    // Zoë records her team's briefing from her email; Ann acknowledges,
    // but records nothing.
    let zoe = &to(&first, "zoe@agency.example")[0];
    let confirm = url_line(part(zoe, "text/plain"), &format!("{BASE}/confirm/")).unwrap();
    let (status, page) = call(
        &app,
        "POST",
        &path(&confirm),
        "team=team&session_date=2026-03-30&present=4&method=supervision&note=",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let ann = &to(&first, "ann@agency.example")[0];
    let ann_ack = url_line(part(ann, "text/plain"), &format!("{BASE}/ack/")).unwrap();
    let (status, _) = call(&app, "POST", &path(&ann_ack), "").await;
    assert_eq!(status, 200);

    // The day before the reminder falls due nothing more is sent; the
    // deadline (10 days) was 6 April, the reminder 1 day after.
    runner.tick(utc(2026, 4, 6, 12, 0)).await.unwrap();
    assert_eq!(server.received().len(), 4);
    runner.tick(utc(2026, 4, 7, 12, 0)).await.unwrap();
    runner.stop().await;
    let received = server.received();
    let reminders = &received[4..];
    assert_eq!(
        reminders
            .iter()
            .map(|m| m["rcpt_tos"][0].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ann@agency.example"],
        "only the champion whose team has no briefing"
    );
    let reminder = &reminders[0];
    assert_eq!(
        header(reminder, "Subject"),
        Some(format!("Team briefing not yet recorded: {TITLE}").as_str())
    );
    let text = part(reminder, "text/plain");
    assert!(text.contains("The deadline for"), "{text}");
    assert!(
        text.contains("You are its champion for Second Team"),
        "{text}"
    );
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("Record a team briefing: "))
        .unwrap_or_else(|| panic!("no confirmation link in:\n{text}"))
        .trim()
        .to_owned();
    assert!(link.starts_with(&format!("{BASE}/confirm/")), "{link}");
    assert!(
        part(reminder, "text/html").contains(&format!("<a href=\"{link}\"")),
        "the HTML part links to the form"
    );
    let reminder_rows: Vec<_> = rows(store.as_ref())
        .await
        .into_iter()
        .filter(|r| r.step_kind == cascade_model::rollout::StepKind::ChampionReminder)
        .collect();
    assert_eq!(reminder_rows.len(), 1, "{reminder_rows:?}");
    assert_eq!(reminder_rows[0].recipient_id, "p-ann");

    // The reminder's link opens Ann's form for her team and records it.
    let app = pages(dir.path(), store.clone(), utc(2026, 4, 8, 10, 0));
    let (status, page) = call(&app, "GET", &path(&link), "").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are a champion for one team"), "{page}");
    assert!(
        page.contains("<li>Second Team: no briefing recorded yet</li>"),
        "{page}"
    );
    let (status, page) = call(
        &app,
        "POST",
        &path(&link),
        "team=team-2&session_date=2026-04-08&present=9&method=briefing-session&note=",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        confirmations(&store).await,
        [
            ("p-ann".to_owned(), "team-2".to_owned(), 9),
            ("p-zoe".to_owned(), "team".to_owned(), 4),
        ]
    );
}
