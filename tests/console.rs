//! The web console over real HTTP: its router served by the server's own
//! accept loop on loopback (and, in the last test, by the real `cascade
//! serve`), a real SQLite store and project folder, driven with reqwest
//! and a hand-held clock for session expiry. What it writes is checked
//! with the engine's own `Project::check` and the real `cascade rollout
//! plan`.

mod support;

use cascade_console::{Console, Role, Settings, issue_setup_link};
use cascade_engine::project::Project;
use cascade_store::{Accounts, Inspect, Outbox, RolloutState, SqliteStore, Store};
use cascade_test_support::FakeClock;
use chrono::{Duration, TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use support::{OUTBOX, project, project_with_check_questions};

const ITEM: &str = "7mb-neglect-seeing-the-child";
const PASSWORD: &str = "correct horse battery staple";

/// A console on loopback over an imported demo project.
struct Site {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: FakeClock,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _provider: Option<OidcProvider>,
}

const OIDC_SECRET: &str = "a-client-secret-for-the-test-provider";

/// oidc-provider (npm) on loopback: tests/support/oidc_provider.mjs.
struct OidcProvider {
    child: std::process::Child,
    issuer: String,
    /// Kept open: node fails writing to a closed pipe.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl OidcProvider {
    fn start(redirect: &str, accounts: &serde_json::Value) -> OidcProvider {
        use std::io::BufRead;
        let root = Command::new("npm").args(["root", "-g"]).output().unwrap();
        let module = std::path::PathBuf::from(String::from_utf8(root.stdout).unwrap().trim())
            .join("oidc-provider/lib/index.js");
        assert!(
            module.exists(),
            "{} is missing (scripts/install-test-deps.sh installs oidc-provider)",
            module.display()
        );
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/support/oidc_provider.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .env("OIDC_PROVIDER_MODULE", &module)
            .env("OIDC_CLIENT_ID", "cascade-console")
            .env("OIDC_CLIENT_SECRET", OIDC_SECRET)
            .env("OIDC_REDIRECT_URI", redirect)
            .env("OIDC_ACCOUNTS", accounts.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("node runs the OpenID provider");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let issuer = line
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .trim()
            .to_owned();
        OidcProvider {
            child,
            issuer,
            _stdout: stdout,
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Site {
    async fn new(allow_self_approval: bool) -> Site {
        Site::build(allow_self_approval, None).await
    }

    /// A site whose console signs in through a real OpenID provider
    /// (oidc-provider on loopback) that knows `accounts` (id -> roles).
    async fn with_sso(accounts: serde_json::Value) -> Site {
        Site::build(false, Some(accounts)).await
    }

    async fn build(allow_self_approval: bool, sso: Option<serde_json::Value>) -> Site {
        // The briefing's check question kept: the browser test answers it.
        let dir = project_with_check_questions(OUTBOX);
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let store = Arc::new(
            SqliteStore::open(&Project::open(&root).unwrap().store_path().to_string_lossy())
                .await
                .unwrap(),
        );
        let clock = FakeClock::at(Utc::now());
        let mut settings = Settings::new("http://127.0.0.1", allow_self_approval);
        settings.failure_delay = std::time::Duration::from_millis(300);
        let project = Project::open(&root).unwrap();
        let keys = project.ack_keys().unwrap().expect("the demo signs links");
        let zone: chrono_tz::Tz = project.config.partnership.time_zone.parse().unwrap();
        // The acknowledgement links beside the console, as `cascade serve` has them.
        let links = cascade_server::ack_router(cascade_server::ServerState::new(
            store.clone(),
            Arc::new(keys),
            project.taxonomy.clone(),
            zone,
            clock.as_fn(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let provider = sso.map(|accounts| {
            let provider = OidcProvider::start(&format!("{base}/console/sso/callback"), &accounts);
            let sso = cascade_console::sso::Sso::new(
                cascade_console::sso::SsoSettings {
                    issuer: provider.issuer.clone(),
                    client_id: "cascade-console".into(),
                    client_secret: OIDC_SECRET.into(),
                    scopes: vec!["openid".into(), "profile".into(), "email".into()],
                    role_claim: "roles".into(),
                    name_claim: "preferred_username".into(),
                    roles: [
                        ("Cascade.Editor", "editor"),
                        ("Cascade.Viewer", "viewer"),
                        ("Cascade.Champion", "champion"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                    label: "Sign in with your council account".into(),
                },
                &base,
            )
            .unwrap();
            settings.sso = Some(Arc::new(sso));
            provider
        });
        let console = Console::new(store.clone(), root, clock.as_fn(), settings);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            cascade_server::serve(
                listener,
                cascade_console::router(console).merge(links),
                &cascade_server::ServerConfig::default(),
                async move {
                    let _ = stopped.await;
                },
            )
            .await;
        });
        Site {
            dir,
            store,
            clock,
            base,
            _stop: stop,
            _provider: provider,
        }
    }

    /// A user with the role, set up with `PASSWORD`, signed in.
    async fn signed_in(&self, name: &str, role: Role) -> Browser {
        self.signed_in_as(name, role, None).await
    }

    /// A user with the role, linked to a directory person, signed in.
    async fn signed_in_as(&self, name: &str, role: Role, person: Option<&str>) -> Browser {
        let link = issue_setup_link(
            &*self.store,
            name,
            Some((role, person)),
            &self.base,
            self.clock.now(),
        )
        .await
        .unwrap();
        let mut browser = Browser::new(&self.base);
        browser.set_up(&link.url, PASSWORD).await;
        let response = browser.sign_in(name, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/console");
        browser
    }

    fn path(&self, relative: &str) -> std::path::PathBuf {
        self.dir.path().join(relative)
    }
}

/// A browser without JavaScript: keeps cookies, follows no redirect.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, _) = value.split_once(';').unwrap_or((value, ""));
            let (name, v) = pair.split_once('=').unwrap();
            if v.is_empty() || value.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), v.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(self.url(path))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.unwrap()
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .client
            .post(self.url(path))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Posts the form of the page at `page` (its CSRF token taken from it).
    async fn submit(
        &mut self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.page(page).await;
        let token = csrf(&html);
        let mut form = vec![("csrf", token.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    async fn set_up(&mut self, link: &str, password: &str) {
        let html = self.page(link).await;
        let token = csrf(&html);
        let response = self
            .post(
                link,
                &[
                    ("csrf", &token),
                    ("password", password),
                    ("confirm", password),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "set-up");
    }

    async fn sign_in(&mut self, name: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/console/sign-in",
            "/console/sign-in",
            &[("name", name), ("password", password)],
        )
        .await
    }

    fn session(&self) -> Option<String> {
        self.cookies.get("cascade_console").cloned()
    }
}

/// The first form token on a page.
fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form")
        + 19;
    html[at..at + 64].to_owned()
}

/// The plan text a rollout's page shows, unescaped.
fn plan_shown(html: &str) -> String {
    let start = html.find("<pre class=\"plan\" tabindex=\"0\">").unwrap() + 31;
    let end = start + html[start..].find("</pre>").unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Text as the console escapes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('\n', "<br>")
}

#[tokio::test]
async fn every_console_page_but_sign_in_needs_a_session() {
    let site = Site::new(false).await;
    let mut anonymous = Browser::new(&site.base);
    for path in [
        "/console",
        "/console/content",
        &format!("/console/content/{ITEM}"),
        &format!("/console/content/{ITEM}/edit"),
        &format!("/console/content/{ITEM}/versions/000000"),
        "/console/content/new",
        "/console/rollouts",
        "/console/rollouts/neglect-briefing",
        "/console/audit",
        "/console/audit.csv",
        "/console/account",
        "/console/reports",
        "/console/reports/report.csv",
        "/console/champion/teams/mash",
        "/console/champion/console-rollout/confirm",
        "/console/erase",
    ] {
        let response = anonymous.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "GET {path}");
        assert_eq!(
            response.headers()[LOCATION],
            "/console/sign-in",
            "GET {path}"
        );
    }
    for path in [
        "/console/content/new",
        &format!("/console/content/{ITEM}/edit"),
        &format!("/console/content/{ITEM}/approve"),
        "/console/rollouts/neglect-briefing/start",
        "/console/rollouts/neglect-briefing/pause",
        "/console/sign-out",
        "/console/sign-out-everywhere",
        "/console/champion/console-rollout/confirm",
    ] {
        let response = anonymous.post(path, &[("csrf", "x")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    let response = anonymous.get("/console/sign-in").await;
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("style-src 'self'"));
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let css = anonymous.get("/console/style.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn sign_in_makes_a_new_session_and_sign_out_ends_it() {
    let site = Site::new(false).await;
    let link = issue_setup_link(
        &*site.store,
        "eve",
        Some((Role::Editor, None)),
        &site.base,
        site.clock.now(),
    )
    .await
    .unwrap();
    assert!(
        link.url
            .starts_with(&format!("{}/console/setup/", site.base))
    );
    let mut browser = Browser::new(&site.base);
    // A too-short password is refused with the error linked to its field.
    let html = browser.page(&link.url).await;
    let response = browser
        .post(
            &link.url,
            &[
                ("csrf", &csrf(&html)),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    let html = response.text().await.unwrap();
    assert!(
        html.contains("There is a problem") && html.contains("href=\"#password\""),
        "{html}"
    );
    browser.set_up(&link.url, PASSWORD).await;
    // The set-up link is single use.
    assert_eq!(browser.get(&link.url).await.status(), StatusCode::NOT_FOUND);

    // Session fixation: a session id planted before sign-in is not kept.
    browser
        .cookies
        .insert("cascade_console".into(), "planted".into());
    let response = browser.sign_in("eve", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set: Vec<String> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session_cookie = set
        .iter()
        .find(|c| c.starts_with("cascade_console="))
        .unwrap();
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(
        session_cookie.contains("SameSite=Strict"),
        "{session_cookie}"
    );
    assert!(session_cookie.contains("Path=/console"), "{session_cookie}");
    assert!(
        !session_cookie.contains("Secure"),
        "http, so not Secure: {session_cookie}"
    );
    let first = browser.session().unwrap();
    assert_ne!(first, "planted");
    assert_eq!(first.len(), 64);
    assert!(
        browser
            .page("/console")
            .await
            .contains("Signed in as eve (editor)")
    );

    // Signing in again (another device) gives another session.
    let mut phone = Browser::new(&site.base);
    assert_eq!(
        phone.sign_in("eve", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_ne!(phone.session().unwrap(), first);

    // Sign out ends this session only; the old cookie is worthless.
    let response = browser.submit("/console", "/console/sign-out", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    browser
        .cookies
        .insert("cascade_console".into(), first.clone());
    assert_eq!(
        browser.get("/console").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(phone.get("/console").await.status(), StatusCode::OK);

    // Sign out everywhere ends every session of the account.
    let mut laptop = Browser::new(&site.base);
    laptop.sign_in("eve", PASSWORD).await;
    let response = laptop
        .submit("/console/account", "/console/sign-out-everywhere", &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/console").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/console").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failed_sign_ins_are_slowed_then_refused_and_logged_without_the_name() {
    let site = Site::new(false).await;
    site.signed_in("fay", Role::Viewer).await;
    let mut browser = Browser::new(&site.base);
    for attempt in 1..=5 {
        let started = std::time::Instant::now();
        let response = browser.sign_in("fay", "not the password").await;
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(300),
            "attempt {attempt} was not slowed"
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert!(browser.session().is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("The user name or password is not right"));
        assert!(html.contains("href=\"#name\""));
    }
    // Past five failures in 15 minutes even the right password is refused...
    let response = browser.sign_in("fay", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(browser.session().is_none());
    // ...until the failures age out.
    site.clock.advance(Duration::minutes(16));
    assert_eq!(
        browser.sign_in("fay", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    // An unknown name fails the same way.
    let mut other = Browser::new(&site.base);
    let response = other.sign_in("nobody", PASSWORD).await;
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("The user name or password is not right")
    );
}

#[tokio::test]
async fn a_session_ends_when_idle_and_after_twelve_hours() {
    let site = Site::new(false).await;
    let mut browser = site.signed_in("gus", Role::Viewer).await;
    site.clock.advance(Duration::minutes(29));
    assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
    site.clock.advance(Duration::minutes(31));
    let response = browser.get("/console").await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "idle for 31 minutes"
    );
    assert_eq!(
        browser.sign_in("gus", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    for _ in 0..(12 * 3) {
        site.clock.advance(Duration::minutes(20));
        assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
    }
    site.clock.advance(Duration::minutes(20));
    assert_eq!(
        browser.get("/console").await.status(),
        StatusCode::SEE_OTHER,
        "12 hours after sign-in"
    );
}

#[tokio::test]
async fn a_post_without_its_csrf_token_is_refused_and_writes_nothing() {
    let site = Site::new(false).await;
    let mut editor = site.signed_in("hal", Role::Editor).await;
    let path = site.path(&format!("content/{ITEM}.md"));
    let before = std::fs::read_to_string(&path).unwrap();
    let changed = before.replace("Neglect", "Neglect and");
    for form in [
        vec![("text", changed.as_str())],
        vec![
            ("csrf", "0".repeat(64).leak() as &str),
            ("text", changed.as_str()),
        ],
    ] {
        let response = editor
            .post(&format!("/console/content/{ITEM}/edit"), &form)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let response = editor
        .post("/console/rollouts/neglect-briefing/start", &[])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert!(site.store.rollouts().await.unwrap().is_empty());
    // The sign-in form is checked too (against its cookie).
    let mut browser = Browser::new(&site.base);
    let response = browser
        .post(
            "/console/sign-in",
            &[("name", "hal"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(browser.session().is_none());
}

#[tokio::test]
async fn a_viewer_sees_no_buttons_and_every_change_is_refused() {
    let site = Site::new(false).await;
    let draft = site.path("content/draft-briefing.md");
    let text = std::fs::read_to_string(site.path(&format!("content/{ITEM}.md")))
        .unwrap()
        .replace(&format!("id = \"{ITEM}\""), "id = \"draft-briefing\"")
        .replace("status = \"published\"", "status = \"draft\"");
    std::fs::write(&draft, &text).unwrap();
    let mut viewer = site.signed_in("ivy", Role::Viewer).await;
    let item = viewer.page("/console/content/draft-briefing").await;
    assert!(
        !item.contains("Approve this item")
            && !item.contains("/edit\"")
            && !item.contains("/edit/briefing\""),
        "{item}"
    );
    let plan = viewer.page("/console/rollouts/neglect-briefing").await;
    assert!(!plan.contains("Start this rollout"));
    assert!(
        !viewer
            .page("/console/content")
            .await
            .contains("Write a new item")
    );
    assert_eq!(
        viewer.get("/console/content/new").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer.get("/console/audit").await.status(),
        StatusCode::FORBIDDEN
    );
    let token = csrf(&viewer.page("/console").await);
    for (path, fields) in [
        ("/console/content/draft-briefing/approve".to_owned(), vec![]),
        (
            "/console/content/draft-briefing/edit".to_owned(),
            vec![("text", text.as_str())],
        ),
        (
            "/console/content/new".to_owned(),
            vec![("text", text.as_str())],
        ),
        (
            "/console/rollouts/neglect-briefing/start".to_owned(),
            vec![],
        ),
        (
            "/console/rollouts/neglect-briefing/pause".to_owned(),
            vec![],
        ),
    ] {
        let mut form = vec![("csrf", token.as_str())];
        form.extend(fields);
        let response = viewer.post(&path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
    }
    assert_eq!(std::fs::read_to_string(&draft).unwrap(), text);
    assert!(site.store.rollouts().await.unwrap().is_empty());
    // A champion sees only their own teams' page.
    let mut champion = site.signed_in("jo", Role::Viewer).await;
    drop(champion.get("/console").await);
    let link = issue_setup_link(
        &*site.store,
        "kim",
        Some((Role::Champion, Some("p-aisha-rahman"))),
        &site.base,
        site.clock.now(),
    )
    .await
    .unwrap();
    champion = Browser::new(&site.base);
    champion.set_up(&link.url, PASSWORD).await;
    champion.sign_in("kim", PASSWORD).await;
    assert!(
        champion
            .page("/console")
            .await
            .contains("<h1>Your teams</h1>")
    );
    for path in ["/console/content", "/console/rollouts", "/console/audit"] {
        assert_eq!(
            champion.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_editor_writes_an_item_the_guard_checks_and_an_approver_approves_it() {
    let site = Site::new(false).await;
    let mut editor = site.signed_in("lee", Role::Editor).await;
    let good = std::fs::read_to_string(site.path(&format!("content/{ITEM}.md")))
        .unwrap()
        .replace(&format!("id = \"{ITEM}\""), "id = \"new-briefing\"")
        .replace("status = \"published\"", "status = \"draft\"");
    let bad = good.replacen(
        "\n## 2.",
        "\nThe boy (born 03/04/2019, NHS number 943 476 5919) lived at LS1 4AP.\n\n## 2.",
        1,
    );
    let response = editor
        .submit(
            "/console/content/new",
            "/console/content/new",
            &[("text", &bad)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("There is a problem") && html.contains("href=\"#text\""));
    let path = site.path("content/new-briefing.md");
    assert!(
        !path.exists(),
        "nothing is written while there is a problem"
    );
    // What the console showed is exactly what `cascade check` reports for the file.
    std::fs::write(&path, &bad).unwrap();
    let root = std::fs::canonicalize(site.dir.path()).unwrap();
    let reported: Vec<String> = Project::open(&root)
        .unwrap()
        .check()
        .problems
        .into_iter()
        .filter(|p| p.contains("new-briefing.md"))
        .collect();
    std::fs::remove_file(&path).unwrap();
    assert!(!reported.is_empty());
    for problem in &reported {
        assert!(
            html.contains(&escaped(problem)),
            "the page lacks {problem:?}"
        );
    }
    assert!(
        reported
            .iter()
            .any(|p| p.contains("DOB") || p.contains("date of birth")),
        "{reported:?}"
    );

    let response = editor
        .submit(
            "/console/content/new",
            "/console/content/new",
            &[("text", &good)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/console/content/new-briefing"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), good);
    assert!(Project::open(&root).unwrap().check().problems.is_empty());

    // The editor may not approve (no self-approval here); the approver may.
    let page = editor.page("/console/content/new-briefing").await;
    assert!(!page.contains("Approve this item"));
    let response = editor
        .submit(
            "/console/content/new-briefing",
            "/console/content/new-briefing/approve",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let mut approver = site.signed_in("max", Role::Approver).await;
    let page = approver.page("/console/content/new-briefing").await;
    assert!(page.contains("Approve this item"));
    let response = approver
        .submit(
            "/console/content/new-briefing",
            "/console/content/new-briefing/approve",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let approved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        approved,
        good.replace("status = \"draft\"", "status = \"approved\"")
    );
    assert!(Project::open(&root).unwrap().check().problems.is_empty());
    let item = Project::open(&root)
        .unwrap()
        .check_item(&path, &approved)
        .unwrap();
    let log = site.store.audit_log(10).await.unwrap();
    let approval = log.iter().find(|e| e.action == "item.approve").unwrap();
    assert_eq!(approval.user_name, "max");
    assert_eq!(approval.target, "new-briefing");
    assert_eq!(
        approval.after_hash.as_deref(),
        Some(item.item.version.0.as_str())
    );
    let created = log.iter().find(|e| e.action == "item.create").unwrap();
    assert_eq!(approval.before_hash, created.after_hash);
    // Approving twice changes nothing.
    let response = approver
        .submit(
            "/console/content/new-briefing",
            "/console/content/new-briefing/approve",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // The audit log is the admin's to read.
    let mut admin = site.signed_in("ned", Role::Admin).await;
    let audit = admin.page("/console/audit").await;
    assert!(audit.contains("item.approve") && audit.contains("item.create"));
    let csv = admin.get("/console/audit.csv").await.text().await.unwrap();
    assert!(csv.contains(&format!(
        "item.approve,new-briefing,{}",
        created.after_hash.as_deref().unwrap()
    )));
}

#[tokio::test]
async fn each_version_of_an_item_shows_what_changed_since_the_one_before() {
    let site = Site::new(false).await;
    let mut editor = site.signed_in("lee", Role::Editor).await;
    let first = std::fs::read_to_string(site.path(&format!("content/{ITEM}.md")))
        .unwrap()
        .replace(&format!("id = \"{ITEM}\""), "id = \"changing\"")
        .replace("status = \"published\"", "status = \"draft\"");
    let response = editor
        .submit(
            "/console/content/new",
            "/console/content/new",
            &[("text", &first)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let second = first.replacen(
        "\n## 2.",
        "\nAsk about <school> attendance & who cares for the child.\n\n## 2.",
        1,
    );
    assert_ne!(first, second);
    let response = editor
        .submit(
            "/console/content/changing/edit",
            "/console/content/changing/edit",
            &[("text", &second)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let root = std::fs::canonicalize(site.dir.path()).unwrap();
    let version = |text: &str| {
        Project::open(&root)
            .unwrap()
            .check_item(&site.path("content/changing.md"), text)
            .unwrap()
            .item
            .version
    };
    let (v1, v2) = (version(&first), version(&second));
    // A viewer reads versions too; the item page links each one.
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    let item = viewer.page("/console/content/changing").await;
    for v in [&v1, &v2] {
        assert!(
            item.contains(&format!("/console/content/changing/versions/{}", v.short())),
            "{item}"
        );
    }
    let page = viewer
        .page(&format!(
            "/console/content/changing/versions/{}",
            v2.short()
        ))
        .await;
    assert!(
        page.contains(&format!("What changed since version {}", v1.short())),
        "{page}"
    );
    assert!(page.contains("2 lines added and no line removed"), "{page}");
    assert!(
        page.contains(
            "Added: </span>Ask about &lt;school&gt; attendance &amp; who cares for the child.</ins>"
        ),
        "{page}"
    );
    assert!(!page.contains("<school>"), "escaped");
    // The first version has nothing before it: its whole text.
    let page = viewer
        .page(&format!("/console/content/changing/versions/{}", v1.0))
        .await;
    assert!(page.contains("This is the first version"), "{page}");
    assert!(page.contains("## 2."));
    // An unknown or too short a version is not found.
    for bad in ["0123456789ab", "ab", "zzzzzzzz"] {
        let response = viewer
            .get(&format!("/console/content/changing/versions/{bad}"))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

/// Follows redirects from `response` (got from `url`) until a page.
async fn follow(
    browser: &mut Browser,
    mut response: reqwest::Response,
    mut url: String,
) -> (reqwest::Response, String) {
    for _ in 0..20 {
        if !response.status().is_redirection() {
            return (response, url);
        }
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        url = reqwest::Url::parse(&url)
            .unwrap()
            .join(&location)
            .unwrap()
            .to_string();
        response = browser.get(&url).await;
    }
    panic!("too many redirects, last {url}");
}

/// The action and hidden fields of the provider's form in `html`.
fn provider_form(html: &str) -> String {
    let at = html.find("<form").expect("a form");
    let action = &html[at..];
    let action = &action[action.find("action=\"").unwrap() + 8..];
    action[..action.find('"').unwrap()].replace("&amp;", "&")
}

/// Signs in at the provider as `login` from the console's SSO button; the
/// console's answer at the end.
async fn sso_sign_in(site: &Site, browser: &mut Browser, login: &str) -> (StatusCode, String) {
    let page = browser.page("/console/sign-in").await;
    assert!(
        page.contains("href=\"/console/sso\"")
            && page.contains("Sign in with your council account")
    );
    let start = browser.get("/console/sso").await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let (mut response, mut url) =
        follow(browser, start, format!("{}/console/sso", site.base)).await;
    for _ in 0..4 {
        if url.starts_with(&site.base) {
            let status = response.status();
            return (status, response.text().await.unwrap());
        }
        let html = response.text().await.unwrap();
        let action = reqwest::Url::parse(&url)
            .unwrap()
            .join(&provider_form(&html))
            .unwrap()
            .to_string();
        let posted = if html.contains("name=\"login\"") {
            browser
                .post(
                    &action,
                    &[("prompt", "login"), ("login", login), ("password", "any")],
                )
                .await
        } else {
            browser.post(&action, &[("prompt", "consent")]).await
        };
        (response, url) = follow(browser, posted, action).await;
    }
    panic!("the provider never sent the browser back: {url}");
}

#[tokio::test]
async fn single_sign_on_through_a_real_openid_provider_maps_roles_and_keeps_disabled_accounts_out()
{
    let site = Site::with_sso(serde_json::json!({
        "eve": ["Cascade.Editor", "Other.Role"],
        "nora": ["Other.Role"],
        "chris": ["Cascade.Champion"],
        "amara": ["Cascade.Champion"],
    }))
    .await;

    // An editor by their provider role: signed in, with a new session.
    let mut eve = Browser::new(&site.base);
    let (status, html) = sso_sign_in(&site, &mut eve, "eve").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("You are signed in"), "{html}");
    let home = eve.page("/console").await;
    assert!(
        home.contains("eve@example.test") && home.contains("editor"),
        "{home}"
    );
    assert_eq!(
        eve.get("/console/content/new").await.status(),
        StatusCode::OK
    );
    let user = site
        .store
        .console_user("eve@example.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, "editor");
    assert_eq!(user.password_hash, None, "no password for an SSO account");

    // Someone with no mapped role is refused, with no session.
    let mut nora = Browser::new(&site.base);
    let (status, html) = sso_sign_in(&site, &mut nora, "nora").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("no role in cascade"), "{html}");
    assert_eq!(nora.get("/console").await.status(), StatusCode::SEE_OTHER);
    assert!(
        site.store
            .console_user("nora@example.test")
            .await
            .unwrap()
            .is_none()
    );

    // A champion needs their directory person: refused until an
    // administrator's account with that name links it; then signed in to it.
    let mut chris = Browser::new(&site.base);
    let (status, html) = sso_sign_in(&site, &mut chris, "chris").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("not linked to you in the directory"),
        "{html}"
    );
    issue_setup_link(
        &*site.store,
        "amara@example.test",
        Some((Role::Champion, Some("p-amara-okafor"))),
        &site.base,
        site.clock.now(),
    )
    .await
    .unwrap();
    let mut amara = Browser::new(&site.base);
    let (status, _) = sso_sign_in(&site, &mut amara, "amara").await;
    assert_eq!(status, StatusCode::OK);
    assert!(amara.page("/console").await.contains("Your teams"));

    // A callback whose state is not this browser's sign-in is refused.
    let mut other = Browser::new(&site.base);
    assert_eq!(
        other.get("/console/sso").await.status(),
        StatusCode::SEE_OTHER
    );
    let forged = other
        .get("/console/sso/callback?code=abc&state=not-the-state")
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert_eq!(other.get("/console").await.status(), StatusCode::SEE_OTHER);

    // Disabled by an administrator: signing in at the provider again does
    // not bring the account back, and the old session has ended.
    assert!(
        site.store
            .disable_console_user("eve@example.test")
            .await
            .unwrap()
    );
    assert_eq!(eve.get("/console").await.status(), StatusCode::SEE_OTHER);
    let mut again = Browser::new(&site.base);
    let (status, html) = sso_sign_in(&site, &mut again, "eve").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("has been disabled"), "{html}");
    assert_eq!(again.get("/console").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_editor_writes_a_briefing_with_the_form_and_sees_each_problem_at_its_field() {
    let site = Site::new(false).await;
    let mut editor = site.signed_in("lee", Role::Editor).await;
    let content = editor.page("/console/content").await;
    assert!(content.contains("href=\"/console/content/new/briefing\""));
    let form = editor.page("/console/content/new/briefing").await;
    assert!(
        form.contains("## 1. Background")
            && form.contains("name=\"themes\" type=\"checkbox\" value=\"neglect\"")
    );
    let body = "## 1. Background\r\n\r\nThe boy (NHS number 943 476 5919) was not seen.\r\n\r\n## 2. Why it matters\r\n\r\nSeeing the child matters.\r\n\r\n## 3. Information\r\n\r\nFacts.\r\n\r\n## 4. What to do\r\n\r\nVisit.\r\n\r\n## 5. Questions\r\n\r\nWhat did you see?\r\n\r\n## 6. Resources\r\n\r\nThe toolkit.\r\n\r\n## 7. Reflection\r\n\r\nThink.\r\n";
    let path = site.path("content/7mb-seeing-the-child-at-home.md");

    // No theme: said at the themes; nothing written.
    let response = editor
        .submit(
            "/console/content/new/briefing",
            "/console/content/new/briefing",
            &[
                ("title", "Seeing the child at home"),
                ("issued_by", "Northbridge"),
                ("body", body),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<a href=\"#themes\">Choose at least one theme</a>"),
        "{html}"
    );
    assert!(
        html.contains("value=\"Seeing the child at home\""),
        "what was typed is kept"
    );
    assert!(!path.exists());

    // A child's NHS number: the privacy guard's finding at the briefing.
    let with_themes = [
        ("title", "Seeing the child at home"),
        ("issued_by", "Northbridge"),
        ("themes", "neglect"),
        ("themes", "voice-of-the-child"),
        ("body", body),
    ];
    let response = editor
        .submit(
            "/console/content/new/briefing",
            "/console/content/new/briefing",
            &with_themes,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("href=\"#body\"") && html.contains("NHS number"),
        "{html}"
    );
    assert!(html.contains("id=\"body-error\""), "{html}");
    assert!(!path.exists());

    // Fixed: written as a draft that `cascade check` accepts.
    let fixed = body.replace(
        "The boy (NHS number 943 476 5919) was not seen.",
        "Children were not seen at home.",
    );
    let mut fields = with_themes.to_vec();
    fields[4] = ("body", &fixed);
    let response = editor
        .submit(
            "/console/content/new/briefing",
            "/console/content/new/briefing",
            &fields,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/console/content/7mb-seeing-the-child-at-home"
    );
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.contains("status = \"draft\"")
            && written.contains("themes = [\"neglect\", \"voice-of-the-child\"]"),
        "{written}"
    );
    assert!(!written.contains('\r'));
    let root = std::fs::canonicalize(site.dir.path()).unwrap();
    assert!(Project::open(&root).unwrap().check().problems.is_empty());

    // The item's page offers the form for editing it: a change to the
    // title and briefing keeps the rest of the file as it was.
    let item = editor
        .page("/console/content/7mb-seeing-the-child-at-home")
        .await;
    assert!(item.contains("href=\"/console/content/7mb-seeing-the-child-at-home/edit/briefing\""));
    let form = editor
        .page("/console/content/7mb-seeing-the-child-at-home/edit/briefing")
        .await;
    assert!(
        form.contains("value=\"Seeing the child at home\"")
            && form.contains("Children were not seen at home.")
    );
    let changed = fixed.replace("Visit.", "Visit, and see where the child sleeps.");
    let mut fields = with_themes.to_vec();
    fields[0] = ("title", "Seeing the child where they live");
    fields[4] = ("body", &changed);
    let response = editor
        .submit(
            "/console/content/7mb-seeing-the-child-at-home/edit/briefing",
            "/console/content/7mb-seeing-the-child-at-home/edit/briefing",
            &fields,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let rewritten = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        rewritten,
        written
            .replace(
                "title = \"Seeing the child at home\"",
                "title = \"Seeing the child where they live\""
            )
            .replace("Visit.", "Visit, and see where the child sleeps.")
    );
    assert!(Project::open(&root).unwrap().check().problems.is_empty());

    // A viewer has no form and cannot post one.
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    assert_eq!(
        viewer.get("/console/content/new/briefing").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        viewer
            .get("/console/content/7mb-seeing-the-child-at-home/edit/briefing")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn with_self_approval_allowed_an_editor_approves_their_own_item() {
    let site = Site::new(true).await;
    let text = std::fs::read_to_string(site.path(&format!("content/{ITEM}.md")))
        .unwrap()
        .replace(&format!("id = \"{ITEM}\""), "id = \"own-briefing\"")
        .replace("status = \"published\"", "status = \"draft\"");
    let mut editor = site.signed_in("ola", Role::Editor).await;
    let response = editor
        .submit(
            "/console/content/new",
            "/console/content/new",
            &[("text", &text)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = editor
        .submit(
            "/console/content/own-briefing",
            "/console/content/own-briefing/approve",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        std::fs::read_to_string(site.path("content/own-briefing.md"))
            .unwrap()
            .contains("status = \"approved\"")
    );
}

/// people.csv with one more person, and (`bad`) a second one whose email
/// is not an address.
fn people_upload(dir: &std::path::Path, bad: bool) -> String {
    let mut text = std::fs::read_to_string(dir.join("directory/people.csv")).unwrap();
    text.push_str("p-new-person,New Person,new.person@northbridge-council.example,nb-council,mash,practitioner,,\n");
    if bad {
        text.push_str("p-bad-person,Bad Person,not-an-address,nb-council,mash,practitioner,,\n");
    }
    text
}

#[tokio::test]
async fn a_directory_upload_with_a_bad_row_shows_it_as_the_cli_does_and_writes_nothing() {
    let site = Site::new(false).await;
    let mut editor = site.signed_in("rae", Role::Editor).await;
    let people = site.path("directory/people.csv");
    let before = std::fs::read_to_string(&people).unwrap();
    let stored = site.store.people(false).await.unwrap().len();
    let bad = people_upload(site.dir.path(), true);
    let upload = |text: String, token: String| {
        reqwest::multipart::Form::new().text("csrf", token).part(
            "file",
            reqwest::multipart::Part::text(text)
                .file_name("people.csv")
                .mime_str("text/csv")
                .unwrap(),
        )
    };
    let page = editor.page("/console/directory").await;
    let response = editor
        .client
        .post(format!("{}/console/directory", site.base))
        .header(COOKIE, editor.cookie_header())
        .multipart(upload(bad.clone(), csrf(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("There is a problem") && html.contains("href=\"#file\""));
    // The same file given to `cascade import` is refused with the same words.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("people.csv"), &bad).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["import", "people.csv", "--project"])
        .arg(site.dir.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let cli = String::from_utf8_lossy(&out.stderr);
    let row = cli
        .lines()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .find(|l| l.starts_with("people.csv:"))
        .unwrap_or_else(|| panic!("no row error in {cli}"));
    assert!(
        row.contains("not-an-address") || row.contains("email"),
        "{row}"
    );
    assert!(html.contains(&escaped(row)), "the page lacks {row:?}");
    assert_eq!(
        std::fs::read_to_string(&people).unwrap(),
        before,
        "nothing written"
    );
    assert_eq!(
        site.store.people(false).await.unwrap().len(),
        stored,
        "nothing imported"
    );
    assert!(site.store.person("p-new-person").await.unwrap().is_none());

    // A viewer cannot upload at all.
    let mut viewer = site.signed_in("sol", Role::Viewer).await;
    let page = viewer.page("/console/directory").await;
    assert!(!page.contains("type=\"file\""));
    let response = viewer
        .client
        .post(format!("{}/console/directory", site.base))
        .header(COOKIE, viewer.cookie_header())
        .multipart(upload(people_upload(site.dir.path(), false), csrf(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The fixed file is imported and written.
    let good = people_upload(site.dir.path(), false);
    let page = editor.page("/console/directory").await;
    let response = editor
        .client
        .post(format!("{}/console/directory", site.base))
        .header(COOKIE, editor.cookie_header())
        .multipart(upload(good.clone(), csrf(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("people.csv uploaded and imported: 1 added")
    );
    assert_eq!(std::fs::read_to_string(&people).unwrap(), good);
    assert!(site.store.person("p-new-person").await.unwrap().is_some());
    let root = std::fs::canonicalize(site.dir.path()).unwrap();
    assert!(Project::open(&root).unwrap().check().problems.is_empty());
    let log = site.store.audit_log(5).await.unwrap();
    assert_eq!(log[0].action, "directory.upload");
    assert_eq!(log[0].target, "people.csv");
}

const ROLLOUT: &str = r#"
id = "console-rollout"
item = "7mb-neglect-seeing-the-child"
start = 2027-03-01T09:00:00
channels = ["outbox"]
ack_deadline_days = 10
reminder_days = [3]
[audience]
agencies = ["nb-council"]
[[waves]]
name = "Everyone"
after_days = 0
"#;

#[tokio::test]
async fn the_rollout_page_shows_what_cascade_rollout_plan_prints_then_starts_it() {
    let site = Site::new(false).await;
    let file = site.path("rollouts/console-rollout.toml");
    std::fs::write(&file, ROLLOUT).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["rollout", "plan", "--project"])
        .arg(site.dir.path())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();

    let mut editor = site.signed_in("pat", Role::Editor).await;
    let html = editor.page("/console/rollouts/console-rollout").await;
    let shown = plan_shown(&html);
    assert!(shown.lines().count() > 5, "{shown}");
    assert!(
        printed.starts_with(&shown),
        "console:\n{shown}\ncli:\n{printed}"
    );
    assert!(html.contains("Start this rollout"));
    assert!(
        site.store.rollouts().await.unwrap().is_empty(),
        "planning writes nothing"
    );

    let response = editor
        .submit(
            "/console/rollouts/console-rollout",
            "/console/rollouts/console-rollout/start",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let stored = site
        .store
        .rollout("console-rollout")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, RolloutState::Active);
    let waves = site.store.wave_counts("console-rollout").await.unwrap();
    let members: u64 = waves.iter().map(|w| w.members).sum();
    assert!(
        printed.contains(&members.to_string()),
        "{members} people in:\n{printed}"
    );
    let page = editor.page("/console/rollouts/console-rollout").await;
    assert!(page.contains("<dd id=\"state\">active</dd>") && page.contains(">Pause<"));
    // Started once only.
    let token = csrf(&page);
    let again = editor
        .post(
            "/console/rollouts/console-rollout/start",
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(site.store.rollouts().await.unwrap().len(), 1);

    for (action, state) in [
        ("pause", RolloutState::Paused),
        ("resume", RolloutState::Active),
        ("cancel", RolloutState::Cancelled),
    ] {
        let response = editor
            .post(
                &format!("/console/rollouts/console-rollout/{action}"),
                &[("csrf", &token)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
        assert_eq!(
            site.store
                .rollout("console-rollout")
                .await
                .unwrap()
                .unwrap()
                .state,
            state
        );
    }
    let log = site.store.audit_log(10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        &actions[..4],
        [
            "rollout.cancel",
            "rollout.resume",
            "rollout.pause",
            "rollout.start"
        ]
    );
    assert!(
        log.iter()
            .all(|e| e.user_name == "pat" || e.action.starts_with("user."))
    );
}

/// `console-rollout` (the council's people) written and started.
async fn start_console_rollout(site: &Site) {
    start_rollout(site, ROLLOUT).await;
}

/// `console-rollout` written as `text` and started by an editor.
async fn start_rollout(site: &Site, text: &str) {
    std::fs::write(site.path("rollouts/console-rollout.toml"), text).unwrap();
    let mut editor = site.signed_in("starter", Role::Editor).await;
    let response = editor
        .submit(
            "/console/rollouts/console-rollout",
            "/console/rollouts/console-rollout/start",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn home_names_each_rollouts_item_by_its_title() {
    let site = Site::new(false).await;
    start_console_rollout(&site).await;
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    let home = viewer.page("/console").await;
    let row = &home[home
        .find("href=\"/console/rollouts/console-rollout\"")
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("Neglect: seeing the child"), "{row}");
    assert!(
        !row.contains(ITEM),
        "an id where people read a title: {row}"
    );
}

#[tokio::test]
async fn a_started_rollouts_page_updates_its_figures_from_a_json_endpoint_that_needs_the_session() {
    let site = Site::new(false).await;
    start_console_rollout(&site).await;
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    let page = viewer.page("/console/rollouts/console-rollout").await;
    // The script is the console's own, so the policy needs no 'unsafe-inline'.
    assert!(
        page.contains(
            "<div id=\"progress\" data-source=\"/console/rollouts/console-rollout/progress\">"
        ),
        "{page}"
    );
    assert!(page.contains("<script src=\"/console/progress.js\" defer></script>"));
    assert!(
        page.contains("as they were when the page loaded"),
        "said without the script"
    );
    let script = viewer.get("/console/progress.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    let policy = script.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().await.unwrap().contains("data-source"));

    // The JSON holds the waves as the page shows them.
    let live = viewer
        .get("/console/rollouts/console-rollout/progress")
        .await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers()["cache-control"], "no-store");
    let json: serde_json::Value = serde_json::from_str(&live.text().await.unwrap()).unwrap();
    assert_eq!(json["state"], "active");
    let waves = json["html"].as_str().unwrap();
    let shown = &page[page.find("<div id=\"progress\"").unwrap()..];
    let shown = &shown
        [shown.find(">\n").unwrap() + 2..shown.find("</div>\n<p id=\"progress-updated\"").unwrap()];
    assert_eq!(waves, shown);
    assert!(waves.contains("<h2>Wave 1"), "{waves}");

    // Polling does not keep a session alive: 29 minutes after the page was
    // read a poll still answers, and 2 minutes later (31 after the page,
    // 2 after the poll) the session has ended.
    site.clock.advance(Duration::minutes(29));
    let poll = viewer
        .get("/console/rollouts/console-rollout/progress")
        .await;
    assert_eq!(poll.status(), StatusCode::OK);
    site.clock.advance(Duration::minutes(2));
    let poll = viewer
        .get("/console/rollouts/console-rollout/progress")
        .await;
    assert_eq!(poll.status(), StatusCode::UNAUTHORIZED);
    let said: serde_json::Value = serde_json::from_str(&poll.text().await.unwrap()).unwrap();
    assert!(said["error"].as_str().unwrap().contains("Sign in again"));
    assert_eq!(
        viewer
            .get("/console/rollouts/console-rollout")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    // Without a session, and for an unknown rollout, no figures.
    let mut stranger = Browser::new(&site.base);
    let answer = stranger
        .get("/console/rollouts/console-rollout/progress")
        .await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let mut editor = site.signed_in("eve", Role::Editor).await;
    let answer = editor
        .get("/console/rollouts/no-such-rollout/progress")
        .await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rollout_that_is_not_sending_has_no_live_figures() {
    let site = Site::new(false).await;
    start_console_rollout(&site).await;
    let mut editor = site.signed_in("eve", Role::Editor).await;
    let response = editor
        .submit(
            "/console/rollouts/console-rollout",
            "/console/rollouts/console-rollout/pause",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = editor.page("/console/rollouts/console-rollout").await;
    assert!(page.contains("<div id=\"progress\">"), "{page}");
    assert!(!page.contains("progress.js") && !page.contains("data-source"));
}

#[tokio::test]
async fn the_reports_page_shows_cascade_report_and_downloads_what_the_cli_writes() {
    let site = Site::new(false).await;
    start_console_rollout(&site).await;
    let cli = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["report", "--project"])
            .arg(site.dir.path())
            .args(["console-rollout", "--format", format])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    let html = viewer
        .page("/console/reports?rollout=console-rollout&group=team")
        .await;
    assert!(html.contains("<option value=\"console-rollout\" selected>"));
    assert!(html.contains("id=\"h-team\""), "the team grouping: {html}");
    assert!(
        !html.contains("id=\"h-agency\""),
        "other groupings are left out: {html}"
    );
    assert!(html.contains("Multi-Agency Safeguarding Hub (MASH)"));
    // Every grouping when none is chosen.
    let all = viewer
        .page("/console/reports?rollout=console-rollout")
        .await;
    assert!(all.contains("id=\"h-agency\"") && all.contains("id=\"h-team\""));

    // The downloads are what `cascade report` writes for the same rollout.
    let response = viewer
        .get("/console/reports/report.csv?rollout=console-rollout")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    // The same rows; the notes name the minute each was made in.
    let minute = regex::Regex::new(r"\b\d{1,2}:\d{2}\b").unwrap();
    let any_minute = |text: &str| minute.replace_all(text, "HH:MM").into_owned();
    assert_eq!(
        any_minute(&response.text().await.unwrap()),
        any_minute(&cli("csv"))
    );
    let downloaded = viewer
        .get("/console/reports/report.html?rollout=console-rollout")
        .await
        .text()
        .await
        .unwrap();
    // The same page but for the minute it was generated in.
    let strip = |page: &str| {
        page.lines()
            .filter(|l| !l.starts_with("<p>Figures as at "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        any_minute(&strip(&downloaded)),
        any_minute(&strip(&cli("html")))
    );

    // A bad period is shown at its field; an unknown rollout likewise.
    let response = viewer.get("/console/reports?from=31/03/2027").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("There is a problem") && html.contains("href=\"#from\""));
    let response = viewer.get("/console/reports?rollout=no-such-rollout").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The period report covers the rollout started today.
    let period = viewer.page("/console/reports").await;
    assert!(period.contains("console-rollout"), "{period}");

    // A champion reads no partnership-wide report.
    let mut champion = site
        .signed_in_as("amara", Role::Champion, Some("p-amara-okafor"))
        .await;
    for path in [
        "/console/reports",
        "/console/reports/report.csv?rollout=console-rollout",
    ] {
        assert_eq!(
            champion.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_email_preview_is_a_sandboxed_frame_served_with_its_own_policy() {
    let site = Site::new(false).await;
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    let response = viewer.get(&format!("/console/content/{ITEM}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The item page keeps the console's policy: no inline style or script,
    // framed by nobody, and frames only from the console itself.
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let html = response.text().await.unwrap();
    // One frame, sandboxed with no permission at all (no allow-scripts,
    // no allow-same-origin), with a title for screen readers.
    assert_eq!(html.matches("<iframe").count(), 1, "{html}");
    let frame = format!(
        "<iframe class=\"email-preview\" sandbox=\"\" src=\"/console/content/{ITEM}/email-preview\" title=\"How this item looks by email, sent to Sam Example\"></iframe>"
    );
    assert!(html.contains(&frame), "{html}");
    // The email's HTML is on the page only as escaped text.
    assert!(html.contains("&lt;!DOCTYPE html&gt;"), "{html}");
    assert_eq!(
        html.matches("<!DOCTYPE html>").count(),
        1,
        "only the console page's own doctype is markup: {html}"
    );

    let response = viewer
        .get(&format!("/console/content/{ITEM}/email-preview"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"
    );
    assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    let email = response.text().await.unwrap();
    assert!(email.starts_with("<!DOCTYPE html>"), "{email}");
    assert!(email.contains("Hello Sam Example"), "{email}");
    assert!(email.contains("Neglect: seeing the child"), "{email}");

    // An unknown item has no preview; without a session there is none.
    assert_eq!(
        viewer
            .get("/console/content/no-such-item/email-preview")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let anonymous = Browser::new(&site.base)
        .get(&format!("/console/content/{ITEM}/email-preview"))
        .await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_rollout_page_names_people_to_editors_only_and_an_editor_retries_dead_letters() {
    use cascade_store::{AckMethod, DeliveryOutcome, Evidence, NewAcknowledgement, NewAnswer};
    use cascade_test_support::outbox::send_first_messages;
    let site = Site::new(false).await;
    let text = format!(
        "{ROLLOUT}\n[[follow_ups]]\nafter_days = 90\nquestion = \"Have you used it?\"\nanswers = [\"Used it\", \"Not yet\"]\n"
    );
    start_rollout(&site, &text).await;
    // The first messages go out as the dispatcher records them: Helen's
    // dead-letters, the rest are sent; David acknowledges and answers.
    let at = Utc
        .with_ymd_and_hms(2027, 3, 1, 9, 1, 0)
        .unwrap()
        .timestamp_millis();
    let members = send_first_messages(&*site.store, at, "outbox", |c| {
        if c.person_id == "p-helen-marsh" {
            DeliveryOutcome::Dead {
                reason: "550 5.1.1 mailbox unavailable".to_owned(),
            }
        } else {
            DeliveryOutcome::Sent { provider_id: None }
        }
    })
    .await;
    let stored = site
        .store
        .rollout("console-rollout")
        .await
        .unwrap()
        .unwrap();
    site.store
        .acknowledge_items(&[NewAcknowledgement {
            person_id: "p-david-okonjo".to_owned(),
            item_id: stored.item_id.clone(),
            item_version: stored.item_version.clone(),
            rollout_id: Some(stored.id.clone()),
            delivery_id: None,
            channel: "outbox".to_owned(),
            method: AckMethod::Link,
            at: at + 1000,
        }])
        .await
        .unwrap();
    site.store
        .answer_follow_up(&NewAnswer {
            rollout_id: stored.id.clone(),
            person_id: "p-david-okonjo".to_owned(),
            follow_up: 1,
            answer: "Used it".to_owned(),
            example: None,
            channel: "outbox".to_owned(),
            at: at + 2000,
        })
        .await
        .unwrap();

    let page = "/console/rollouts/console-rollout";
    let mut editor = site.signed_in("ed", Role::Editor).await;
    let html = editor.page(page).await;
    assert!(html.contains("1 message could not be delivered"), "{html}");
    assert!(html.contains("p-helen-marsh") && html.contains("550 5.1.1 mailbox unavailable"));
    assert!(html.contains(&format!("{} people have not acknowledged yet", members - 1)));
    assert!(html.contains("<td>Helen Marsh</td>") && !html.contains("David Okonjo"));
    assert!(html.contains("Have you used it?") && html.contains("<li>Used it: 1</li>"));
    assert!(html.contains("<li>Not yet: 0</li>"));
    assert!(html.contains("Retry the dead letters"));

    // A viewer sees the counts, never a name, an id or a reason.
    let mut viewer = site.signed_in("vic", Role::Viewer).await;
    let html = viewer.page(page).await;
    assert!(html.contains("1 message could not be delivered"));
    assert!(html.contains(&format!("{} people have not acknowledged yet", members - 1)));
    assert!(html.contains("<li>Used it: 1</li>"));
    for hidden in [
        "p-helen-marsh",
        "Helen Marsh",
        "550 5.1.1",
        "Retry the dead letters",
    ] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}");
    }
    let token = csrf(&html);
    let retry = "/console/rollouts/console-rollout/retry";
    assert_eq!(
        viewer.post(retry, &[("csrf", &token)]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        editor.post(retry, &[]).await.status(),
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let dead = |store: Arc<SqliteStore>| async move {
        store
            .delivery_counts("console-rollout")
            .await
            .unwrap()
            .iter()
            .map(|c| (c.dead, c.due))
            .fold((0, 0), |(d, q), (x, y)| (d + x, q + y))
    };
    assert_eq!(dead(site.store.clone()).await, (1, 0));

    // The editor retries: Helen's message is queued again, once, audited.
    let response = editor.submit(page, retry, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(dead(site.store.clone()).await, (0, 1));
    let log = site.store.audit_log(1).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].user_name.as_str()),
        ("rollout.retry", "ed")
    );
    let html = editor.page(page).await;
    assert!(
        html.contains("0 messages could not be delivered")
            && !html.contains("Retry the dead letters")
    );
}

#[tokio::test]
async fn an_editor_finds_a_person_sees_their_channels_and_makes_a_link_code() {
    let site = Site::new(false).await;
    let mut editor = site.signed_in("ed", Role::Editor).await;
    let html = editor.page("/console/directory/people?q=OKAFOR").await;
    assert!(html.contains("href=\"/console/directory/people/p-amara-okafor\">Amara Okafor</a>"));
    assert!(html.contains("1 person found"), "{html}");
    // LIKE's wildcards are matched as themselves.
    let html = editor.page("/console/directory/people?q=%25").await;
    assert!(html.contains("Nobody matches"), "{html}");

    let page = "/console/directory/people/p-amara-okafor";
    let html = editor.page(page).await;
    assert!(
        html.contains("<td>outbox</td><td>email</td><td>Linked</td>"),
        "{html}"
    );
    assert!(
        !html.contains("@northbridge"),
        "addresses are never shown: {html}"
    );
    let response = editor
        .submit(
            page,
            "/console/directory/people/p-amara-okafor/link-code",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let at = html.find("<p class=\"code\" id=\"code\">").unwrap() + 26;
    let code = &html[at..at + 8];
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
    let codes = site.store.link_codes().await.unwrap();
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0].person_id, "p-amara-okafor");
    assert!(
        !format!("{:?}", codes[0]).contains(code),
        "only a keyed hash is kept"
    );
    let log = site.store.audit_log(1).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].target.as_str()),
        ("person.link-code", "p-amara-okafor")
    );
    assert_eq!(
        editor
            .get("/console/directory/people/p-nobody")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Names and codes are the editors' alone.
    let mut viewer = site.signed_in("vi", Role::Viewer).await;
    for path in ["/console/directory/people?q=okafor", page] {
        assert_eq!(
            viewer.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let token = csrf(&viewer.page("/console").await);
    let response = viewer
        .post(
            "/console/directory/people/p-amara-okafor/link-code",
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(site.store.link_codes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_admin_erases_a_person_recorded_as_themselves_and_others_cannot() {
    use cascade_store::Privacy;
    let site = Site::new(false).await;
    let person = "p-amara-okafor";
    // An editor (or anyone not an admin) can neither see the form nor post it.
    let mut editor = site.signed_in("ed", Role::Editor).await;
    assert_eq!(
        editor.get("/console/erase").await.status(),
        StatusCode::FORBIDDEN
    );
    let token = csrf(&editor.page("/console").await);
    let response = editor
        .post(
            "/console/erase",
            &[
                ("csrf", &token),
                ("person", person),
                ("reason", "ref 9"),
                ("force", "yes"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        !site
            .store
            .find_text("Amara Okafor")
            .await
            .unwrap()
            .is_empty()
    );

    let mut admin = site.signed_in("ada", Role::Admin).await;
    let html = admin.page("/console").await;
    assert!(
        html.contains("<a href=\"/console/erase\">Erasure</a>"),
        "{html}"
    );
    // A reason naming them is refused, with the field named; nothing changes.
    let response = admin
        .submit(
            "/console/erase",
            "/console/erase",
            &[("person", person), ("reason", "Amara Okafor asked")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<a href=\"#reason\">the reason names the person"),
        "{html}"
    );
    assert!(
        !site
            .store
            .find_text("Amara Okafor")
            .await
            .unwrap()
            .is_empty()
    );

    let response = admin
        .submit(
            "/console/erase",
            "/console/erase",
            &[("person", person), ("reason", "request ref 2026-77")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("<h1>Person erased</h1>"), "{html}");
    for detail in ["Amara Okafor", "amara.okafor@", person] {
        assert_eq!(
            site.store.find_text(detail).await.unwrap(),
            Vec::<String>::new(),
            "{detail}"
        );
    }
    let Some(cascade_store::SubjectAccess::Erased(record)) =
        site.store.subject_access(person).await.unwrap()
    else {
        panic!("erased");
    };
    assert_eq!(record.erased_by, "console:ada");
    assert_eq!(record.reason, "request ref 2026-77");
    let log = site.store.audit_log(1).await.unwrap();
    assert_eq!(
        (
            log[0].action.as_str(),
            log[0].target.as_str(),
            log[0].user_name.as_str()
        ),
        ("person.erase", record.pseudonym.as_str(), "ada")
    );
}

/// The set-up link a users page shows.
fn shown_link(html: &str) -> String {
    let start = "id=\"link\" type=\"text\" readonly value=\"";
    let at = html.find(start).unwrap() + start.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn an_admin_adds_resets_and_disables_users_and_every_change_is_audited() {
    let site = Site::new(false).await;
    let mut admin = site.signed_in("ada", Role::Admin).await;
    let mut editor = site.signed_in("eli", Role::Editor).await;
    assert_eq!(
        editor.get("/console/users").await.status(),
        StatusCode::FORBIDDEN
    );
    let token = csrf(&editor.page("/console").await);
    let response = editor
        .post(
            "/console/users",
            &[("csrf", &token), ("name", "sneaky"), ("role", "admin")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(site.store.console_user("sneaky").await.unwrap().is_none());

    let list = admin.page("/console/users").await;
    assert!(list.contains("<td>ada</td>") && list.contains("<td>eli</td>"));
    // Bad answers are shown at their fields; nothing is added.
    for (fields, field) in [
        (vec![("name", "kit"), ("role", "champion")], "person"),
        (
            vec![
                ("name", "kit"),
                ("role", "champion"),
                ("person", "p-nobody"),
            ],
            "person",
        ),
        (vec![("name", "eli"), ("role", "viewer")], "name"),
        (vec![("name", "no spaces"), ("role", "viewer")], "name"),
    ] {
        let response = admin
            .submit("/console/users", "/console/users", &fields)
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!("href=\"#{field}\"")),
            "{fields:?}: {html}"
        );
    }
    assert!(site.store.console_user("kit").await.unwrap().is_none());

    // Added: the link is shown once and works.
    let response = admin
        .submit(
            "/console/users",
            "/console/users",
            &[
                ("name", "kit"),
                ("role", "champion"),
                ("person", "p-amara-okafor"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let link = shown_link(&response.text().await.unwrap());
    assert!(
        link.starts_with("http://127.0.0.1/console/setup/"),
        "{link}"
    );
    let token = link.rsplit('/').next().unwrap().to_owned();
    assert!(!admin.page("/console/users").await.contains(&token));
    let mut kit = Browser::new(&site.base);
    kit.set_up(&format!("/console/setup/{token}"), PASSWORD)
        .await;
    assert_eq!(
        kit.sign_in("kit", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(kit.page("/console").await.contains("Your teams"));

    // A new set-up link; then disabled: signed out and unable to sign in.
    let response = admin
        .submit("/console/users", "/console/users/kit/reset", &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("New set-up link made")
    );
    let response = admin
        .submit("/console/users", "/console/users/kit/disable", &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(kit.get("/console").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(kit.sign_in("kit", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(kit.get("/console").await.status(), StatusCode::SEE_OTHER);
    let response = admin
        .submit("/console/users", "/console/users/ada/disable", &[])
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        admin
            .submit("/console/users", "/console/users/nobody/disable", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let log = site.store.audit_log(10).await.unwrap();
    let by_ada: Vec<&str> = log
        .iter()
        .filter(|e| e.user_name == "ada" && e.target == "kit")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(by_ada, ["user.disable", "user.reset", "user.add"]);
}

#[tokio::test]
async fn a_champion_sees_and_confirms_only_their_own_teams() {
    let site = Site::new(false).await;
    start_console_rollout(&site).await;
    // Amara covers cs-north and mash (council teams the rollout reached);
    // Lucy covers youth-justice, which it did not reach.
    let mut amara = site
        .signed_in_as("amara", Role::Champion, Some("p-amara-okafor"))
        .await;
    let mut lucy = site
        .signed_in_as("lucy", Role::Champion, Some("p-lucy-ferris"))
        .await;
    let home = amara.page("/console").await;
    assert!(home.contains("Children&#39;s Social Care North"), "{home}");
    assert!(home.contains("Multi-Agency Safeguarding Hub (MASH)"));
    assert!(!home.contains("Youth Justice Team") && !home.contains("Social Care South"));
    assert!(home.contains("Team briefings to record"));
    assert!(home.contains("href=\"/console/champion/console-rollout/confirm\""));
    let lucys = lucy.page("/console").await;
    assert!(lucys.contains("Youth Justice Team"));
    assert!(
        !lucys.contains("console-rollout") && !lucys.contains("MASH"),
        "{lucys}"
    );

    // Another champion's team and a rollout that missed their teams are not found.
    assert_eq!(
        amara
            .get("/console/champion/teams/youth-justice")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        lucy.get("/console/champion/teams/mash").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        lucy.get("/console/champion/console-rollout/confirm")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let team = amara.page("/console/champion/teams/mash").await;
    assert!(team.contains("console-rollout") && !team.contains("Social Care North"));
    // Partnership-wide pages are refused.
    for path in [
        "/console/rollouts",
        "/console/rollouts/console-rollout",
        "/console/content",
        "/console/directory",
    ] {
        assert_eq!(
            amara.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }

    // A confirmation for a team they do not cover is refused at its field.
    let form = "/console/champion/console-rollout/confirm";
    let today = site
        .clock
        .now()
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
        .to_string();
    let fields = |team: &'static str| {
        vec![
            ("team", team),
            ("present", "12"),
            ("method", "team-meeting"),
            ("note", "Discussed seeing the child in supervision."),
        ]
    };
    let mut posted = fields("youth-justice");
    posted.push(("session_date", &today));
    let response = amara.submit(form, form, &posted).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("Choose one of the teams you cover") && html.contains("href=\"#team\""));
    // The same checks as the emailed form: a child's details in the note.
    let mut posted = fields("mash");
    posted.push(("session_date", &today));
    posted[3] = ("note", "Talked about the boy, NHS number 943 476 5919.");
    let response = amara.submit(form, form, &posted).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("href=\"#note\""));
    // Lucy cannot post one for this rollout at all.
    let response = lucy.submit("/console", form, &posted).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(site.store.confirmations().await.unwrap().len(), 0);

    let mut posted = fields("mash");
    posted.push(("session_date", &today));
    let response = amara.submit(form, form, &posted).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("this briefing is recorded")
    );
    let recorded = site.store.confirmations().await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].team_id, "mash");
    assert_eq!(recorded[0].champion_id, "p-amara-okafor");
    assert_eq!(recorded[0].channel, "console");
    let log = site.store.audit_log(5).await.unwrap();
    assert_eq!(log[0].action, "cascade.confirm");
    assert_eq!(log[0].user_name, "amara");
    // The team no longer waits for a briefing; cs-north still does.
    let home = amara.page("/console").await;
    let due = &home[home.find("id=\"due\"").unwrap()..];
    let due = &due[..due.find("</ul>").unwrap()];
    assert!(
        due.contains("Children&#39;s Social Care North") && !due.contains("MASH"),
        "{due}"
    );
}

#[tokio::test]
async fn home_lists_team_briefings_due_once_a_rollout_is_past_its_deadline() {
    let site = Site::new(false).await;
    start_console_rollout(&site).await;
    let mut editor = site.signed_in("uma", Role::Editor).await;
    let home = editor.page("/console").await;
    assert!(home.contains("Team briefings due"), "{home}");
    assert!(
        home.contains("No rollout past its deadline is waiting"),
        "not before the deadline: {home}"
    );

    site.clock.advance(Duration::days(120));
    let section = |home: &str| {
        let at = home.find("Team briefings due").unwrap();
        let rest = &home[at..];
        rest[..rest.find("Waiting for approval").unwrap()].to_owned()
    };
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    let due = section(&viewer.page("/console").await);
    // Amara champions neglect for cs-north and mash, both reached; Lucy's
    // youth-justice was not reached, so it is not waiting.
    assert!(
        due.contains("href=\"/console/rollouts/console-rollout\""),
        "{due}"
    );
    assert!(
        due.contains("Children&#39;s Social Care North")
            && due.contains("Multi-Agency Safeguarding Hub (MASH)"),
        "{due}"
    );
    assert!(!due.contains("Youth Justice Team"), "{due}");

    // Once Amara records a briefing for MASH, only cs-north waits.
    let mut amara = site
        .signed_in_as("amara", Role::Champion, Some("p-amara-okafor"))
        .await;
    let today = site
        .clock
        .now()
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
        .to_string();
    let form = "/console/champion/console-rollout/confirm";
    let response = amara
        .submit(
            form,
            form,
            &[
                ("team", "mash"),
                ("present", "9"),
                ("method", "team-meeting"),
                ("note", ""),
                ("session_date", &today),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let due = section(&viewer.page("/console").await);
    assert!(
        due.contains("Children&#39;s Social Care North") && !due.contains("MASH"),
        "{due}"
    );
}

#[tokio::test]
async fn the_rollout_form_writes_a_file_cascade_rollout_plan_accepts() {
    let site = Site::new(false).await;
    let mut editor = site.signed_in("uma", Role::Editor).await;
    let page = editor.page("/console/rollouts/new").await;
    let token = csrf(&page);
    // Every problem at once, each linked to its field; nothing written.
    let response = editor
        .post(
            "/console/rollouts/new",
            &[
                ("csrf", &token),
                ("id", "Bad Id"),
                ("start", "soon"),
                ("deadline", "x"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    for field in ["id", "channels", "start", "deadline"] {
        assert!(
            html.contains(&format!("href=\"#{field}\"")),
            "{field}: {html}"
        );
    }
    assert!(!site.path("rollouts/form-rollout.toml").exists());
    let response = editor
        .post(
            "/console/rollouts/new",
            &[
                ("csrf", &token),
                ("id", "form-rollout"),
                ("item", ITEM),
                ("agencies", "nb-council"),
                ("agencies", "nb-hospitals"),
                ("channels", "outbox"),
                ("start", "2027-03-01T09:00"),
                ("deadline", "10"),
                ("reminders", "3, 7"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/console/rollouts/form-rollout"
    );
    let file = site.path("rollouts/form-rollout.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("agencies = [\"nb-council\", \"nb-hospitals\"]"),
        "{text}"
    );
    assert!(text.contains("reminder_days = [3, 7]"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["rollout", "plan", "--project"])
        .arg(site.dir.path())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let html = editor.page("/console/rollouts/form-rollout").await;
    let first_line = printed.lines().next().unwrap();
    assert!(html.contains(&escaped(first_line)), "{first_line}");
    // The same id twice is refused.
    let response = editor
        .post(
            "/console/rollouts/new",
            &[
                ("csrf", &token),
                ("id", "form-rollout"),
                ("item", ITEM),
                ("channels", "outbox"),
                ("start", "2027-03-01T09:00"),
                ("deadline", "10"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

/// The real `cascade serve` serves the console beside /health, and
/// `cascade users add` prints a set-up link that works there.
#[tokio::test]
async fn cascade_serve_serves_the_console_and_users_add_prints_a_working_link() {
    let dir = project(OUTBOX);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("cascade.toml"),
        std::fs::read_to_string(dir.path().join("cascade.toml")).unwrap()
            + &format!("\n[console]\nbase_url = \"{base}\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["users", "add", "quinn", "--role", "editor", "--project"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let link = stdout
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{base}/console/setup/")))
        .unwrap_or_else(|| panic!("no link in {stdout}"))
        .to_owned();
    let again = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["users", "add", "quinn", "--role", "viewer", "--project"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let mut server = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--project",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut browser = Browser::new(&base);
    let mut up = false;
    for _ in 0..200 {
        if let Ok(r) = browser.client.get(format!("{base}/health")).send().await
            && r.status() == StatusCode::OK
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let result = async {
        assert!(up, "cascade serve did not answer /health");
        browser.set_up(&link, PASSWORD).await;
        assert_eq!(
            browser.sign_in("quinn", PASSWORD).await.status(),
            StatusCode::SEE_OTHER
        );
        let home = browser.page("/console").await;
        assert!(home.contains("Signed in as quinn (editor)"));
        assert!(browser.page("/console/content").await.contains(ITEM));
        let anonymous = Browser::new(&base).get("/console/rollouts").await;
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    };
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(120), result).await;
    server.kill().unwrap();
    server.wait().unwrap();
    outcome.expect("the console answered in time");
}

/// Real headless Chromium, driven through chromedriver (WebDriver) with
/// fantoccini, checked on every page with axe-core (WCAG 2.2 AA, zero
/// violations), with a screenshot of each page under
/// `target/console-screenshots/`.
mod browser {
    use super::*;
    use fantoccini::{Client, ClientBuilder, Locator};
    use std::path::PathBuf;

    const AXE_TAGS: &str = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']";

    struct Driver {
        process: std::process::Child,
        client: Client,
        axe: String,
        shots: PathBuf,
    }

    impl Driver {
        async fn start() -> Driver {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let process = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect(
                    "chromedriver runs (scripts/install-test-deps.sh installs chromium-driver)",
                );
            let mut caps = serde_json::Map::new();
            caps.insert(
                "goog:chromeOptions".to_owned(),
                serde_json::json!({
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1280,1000"]
                }),
            );
            let mut client = None;
            for _ in 0..100 {
                match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await
                {
                    Ok(c) => {
                        client = Some(c);
                        break;
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
            let root = Command::new("npm").args(["root", "-g"]).output().unwrap();
            let axe = PathBuf::from(String::from_utf8(root.stdout).unwrap().trim())
                .join("axe-core/axe.min.js");
            let axe = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (scripts/install-test-deps.sh installs axe-core)",
                    axe.display()
                )
            });
            let shots =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
            std::fs::create_dir_all(&shots).unwrap();
            Driver {
                process,
                client: client.expect("chromedriver answers"),
                axe,
                shots,
            }
        }

        async fn goto(&self, url: &str) {
            self.client.goto(url).await.unwrap();
        }

        async fn fill(&self, css: &str, text: &str) {
            let field = self.client.find(Locator::Css(css)).await.unwrap();
            field.clear().await.unwrap();
            field.send_keys(text).await.unwrap();
        }

        /// Sets a large field's value at once (typing 5 KB takes long).
        async fn set(&self, id: &str, text: &str) {
            self.client
                .execute(
                    "document.getElementById(arguments[0]).value = arguments[1];",
                    vec![id.into(), text.into()],
                )
                .await
                .unwrap();
        }

        async fn click(&self, css: &str) {
            self.client
                .find(Locator::Css(css))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }

        async fn source(&self) -> String {
            self.client.source().await.unwrap()
        }

        async fn path(&self) -> String {
            self.client.current_url().await.unwrap().path().to_owned()
        }

        /// Waits (up to 10 s) for the page to hold `text`, and returns it.
        async fn shows(&self, text: &str) -> String {
            for _ in 0..100 {
                let html = self.source().await;
                if html.contains(text) {
                    return html;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("the page never showed {text:?}:\n{}", self.source().await)
        }

        /// Waits (up to 10 s) for the browser to reach `path` after a
        /// submit, and says where it is.
        async fn reaches(&self, path: &str) -> String {
            for _ in 0..100 {
                if self.path().await == path {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            self.path().await
        }

        /// axe-core over the page: no WCAG 2.2 AA violation; then a screenshot.
        async fn check(&self, name: &str) {
            self.client
                .execute(&format!("{}\nreturn true;", self.axe), vec![])
                .await
                .unwrap();
            let found = self
                .client
                .execute_async(
                    &format!(
                        "const done = arguments[arguments.length - 1];
                         axe.run(document, {{ runOnly: {{ type: 'tag', values: {AXE_TAGS} }} }})
                           .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at ' +
                                 v.nodes.map(n => n.target.join(' ')).join(', '))))
                           .catch(e => done(['axe failed: ' + e]));"
                    ),
                    vec![],
                )
                .await
                .unwrap();
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
            let violations: Vec<String> = serde_json::from_value(found).unwrap();
            assert!(violations.is_empty(), "{name}: {violations:#?}");
        }

        async fn stop(mut self) {
            let _ = self.client.close().await;
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }

    async fn sign_in(driver: &Driver, base: &str, name: &str) {
        driver.goto(&format!("{base}/console/sign-in")).await;
        driver.fill("#name", name).await;
        driver.fill("#password", PASSWORD).await;
        driver.click("main button[type=submit]").await;
        assert_eq!(driver.reaches("/console").await, "/console");
    }

    async fn set_up(driver: &Driver, link: &str) {
        driver.goto(link).await;
        driver.fill("#password", PASSWORD).await;
        driver.fill("#confirm", PASSWORD).await;
        driver.click("main button[type=submit]").await;
        // Done only once the sign-in page says so: a page opened before
        // the form's answer arrives would be replaced by it.
        driver.shows("Your password is set").await;
    }

    /// Signs the browser out, then in as a new user with `role`.
    async fn switch_to(driver: &Driver, site: &Site, name: &str, role: Role, person: Option<&str>) {
        driver.click("header button[type=submit]").await;
        assert_eq!(driver.reaches("/console/sign-in").await, "/console/sign-in");
        let link = issue_setup_link(
            &*site.store,
            name,
            Some((role, person)),
            &site.base,
            site.clock.now(),
        )
        .await
        .unwrap();
        set_up(driver, &link.url).await;
        sign_in(driver, &site.base, name).await;
    }

    #[tokio::test]
    async fn editor_approver_and_rollout_in_headless_chromium_pass_axe() {
        let site = Site::new(false).await;
        let base = site.base.clone();
        let now = site.clock.now();
        let eve = issue_setup_link(&*site.store, "eve", Some((Role::Editor, None)), &base, now)
            .await
            .unwrap();
        let amy = issue_setup_link(
            &*site.store,
            "amy",
            Some((Role::Approver, None)),
            &base,
            now,
        )
        .await
        .unwrap();
        let driver = Driver::start().await;
        let flow = async {
            // The editor sets a password and signs in.
            driver.goto(&eve.url).await;
            driver.check("01-set-up").await;
            set_up(&driver, &eve.url).await;
            driver.shows("Your password is set").await;
            driver.check("02-sign-in").await;
            sign_in(&driver, &base, "eve").await;
            driver.check("03-home").await;

            // A directory file with a bad row: the row shown, nothing written.
            let people = site.path("directory/people.csv");
            let before = std::fs::read_to_string(&people).unwrap();
            let uploads = tempfile::tempdir().unwrap();
            let upload = uploads.path().join("people.csv");
            std::fs::write(&upload, people_upload(site.dir.path(), true)).unwrap();
            driver.goto(&format!("{base}/console/directory")).await;
            driver.check("03a-directory").await;
            driver
                .client
                .find(Locator::Css("#file"))
                .await
                .unwrap()
                .send_keys(&upload.display().to_string())
                .await
                .unwrap();
            driver.click("main button[type=submit]").await;
            let html = driver.shows("There is a problem").await;
            assert!(html.contains("not-an-address"));
            assert_eq!(std::fs::read_to_string(&people).unwrap(), before);
            driver.check("03b-directory-bad-row").await;
            std::fs::write(&upload, people_upload(site.dir.path(), false)).unwrap();
            driver
                .client
                .find(Locator::Css("#file"))
                .await
                .unwrap()
                .send_keys(&upload.display().to_string())
                .await
                .unwrap();
            driver.click("main button[type=submit]").await;
            driver.shows("uploaded and imported").await;
            assert!(site.store.person("p-new-person").await.unwrap().is_some());
            driver.check("03c-directory-imported").await;
            driver
                .goto(&format!("{base}/console/directory/people?q=okafor"))
                .await;
            driver.shows("Amara Okafor").await;
            driver.check("03d-people-search").await;
            driver.click("main table a").await;
            driver.shows("Make a link code").await;
            driver.check("03e-person").await;

            // A briefing that trips the privacy guard: every finding shown, nothing written.
            let good = std::fs::read_to_string(site.path(&format!("content/{ITEM}.md")))
                .unwrap()
                .replace(&format!("id = \"{ITEM}\""), "id = \"browser-briefing\"")
                .replace("status = \"published\"", "status = \"draft\"");
            let bad = good.replacen(
                "\n## 2.",
                "\nThe boy (NHS number 943 476 5919) lived at LS1 4AP.\n\n## 2.",
                1,
            );
            driver
                .goto(&format!("{base}/console/content/new/briefing"))
                .await;
            driver.check("04a-briefing-form").await;
            driver.goto(&format!("{base}/console/content/new")).await;
            driver.check("04-new-item").await;
            driver.set("text", &bad).await;
            driver.click("main button[type=submit]").await;
            let html = driver.shows("There is a problem").await;
            assert!(html.contains("NHS number"));
            assert!(!site.path("content/browser-briefing.md").exists());
            driver.check("05-item-problems").await;
            // The error summary's link takes the keyboard to the field.
            driver.click(".error-summary a").await;
            driver.set("text", &good).await;
            driver.click("main button[type=submit]").await;
            assert_eq!(
                driver.reaches("/console/content/browser-briefing").await,
                "/console/content/browser-briefing"
            );
            driver.check("06-item").await;
            // The email preview: a sandboxed frame the page cannot reach
            // into (an origin of its own), showing the email as sent.
            let isolated = driver
                .client
                .execute(
                    "const f = document.querySelector('iframe.email-preview');
                     return [f.getAttribute('sandbox'), f.contentDocument === null];",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(isolated, serde_json::json!(["", true]));
            driver.client.enter_frame(Some(0)).await.unwrap();
            let email = driver.shows("Hello Sam Example").await;
            assert!(email.contains("browser-briefing") || email.contains("Neglect"));
            driver.client.enter_parent_frame().await.unwrap();
            driver
                .goto(&format!(
                    "{base}/console/content/browser-briefing/edit/briefing"
                ))
                .await;
            driver.shows("Everything else in the file").await;
            driver.check("06b-edit-briefing-form").await;
            driver.goto(&format!("{base}/console/content")).await;
            driver.check("07-content").await;
            driver.click("header button[type=submit]").await;
            assert_eq!(driver.reaches("/console/sign-in").await, "/console/sign-in");

            // The approver approves it.
            set_up(&driver, &amy.url).await;
            sign_in(&driver, &base, "amy").await;
            driver
                .goto(&format!("{base}/console/content/browser-briefing"))
                .await;
            driver.click("main form button[type=submit]").await;
            driver.shows("<dd>approved</dd>").await;
            assert!(
                std::fs::read_to_string(site.path("content/browser-briefing.md"))
                    .unwrap()
                    .contains("status = \"approved\"")
            );
            driver.check("08-approved").await;
            // The approval is a new version: what changed is its status line.
            driver.click("main a[href*='/versions/']").await;
            let html = driver.shows("What changed since version").await;
            assert!(
                html.contains("Added: </span>status = \"approved\""),
                "{html}"
            );
            driver.check("08a-version-changes").await;
            driver.click("header button[type=submit]").await;

            // The editor checks a rollout's plan and starts it.
            sign_in(&driver, &base, "eve").await;
            driver.goto(&format!("{base}/console/rollouts")).await;
            driver.check("09-rollouts").await;
            // The editor builds the rollout in the form.
            driver.goto(&format!("{base}/console/rollouts/new")).await;
            driver.check("09a-rollout-form").await;
            driver.fill("#id", "console-rollout").await;
            driver.click(&format!("#item option[value='{ITEM}']")).await;
            driver.click("input[name=agencies][value=nb-council]").await;
            driver.click("input[name=channels][value=outbox]").await;
            driver.set("start", "2027-03-01T09:00").await;
            driver.fill("#deadline", "10").await;
            driver.fill("#reminders", "3").await;
            driver.click("main button[type=submit]").await;
            driver
                .goto(&format!("{base}/console/rollouts/console-rollout"))
                .await;
            let html = driver.shows("Check the plan").await;
            // The same plan `cascade rollout plan` prints for the file the form wrote.
            let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
                .args(["rollout", "plan", "--project"])
                .arg(site.dir.path())
                .arg(site.path("rollouts/console-rollout.toml"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8(out.stdout)
                    .unwrap()
                    .starts_with(&plan_shown(&html))
            );
            driver.check("10-plan").await;
            // Started with the keyboard alone: Tab to the button, then Enter.
            let mut reached = false;
            for _ in 0..40 {
                driver
                    .client
                    .active_element()
                    .await
                    .unwrap()
                    .send_keys("\u{E004}")
                    .await
                    .unwrap();
                let active = driver.client.active_element().await.unwrap();
                if active.text().await.unwrap_or_default() == "Start this rollout" {
                    active.send_keys("\u{E007}").await.unwrap();
                    reached = true;
                    break;
                }
            }
            assert!(reached, "Tab never reached the start button");
            assert_eq!(
                driver.reaches("/console/rollouts/console-rollout").await,
                "/console/rollouts/console-rollout"
            );
            assert!(
                site.store
                    .rollout("console-rollout")
                    .await
                    .unwrap()
                    .is_some()
            );
            driver.check("11-rollout").await;

            // `cascade serve`'s runner sends it through the file channel
            // when it falls due (Monday 1 March 2027, 09:00 in London).
            let due = Utc.with_ymd_and_hms(2027, 3, 1, 9, 1, 0).unwrap();
            site.clock.set(due);
            let root = std::fs::canonicalize(site.dir.path()).unwrap();
            let runner = cascade_engine::engine::Engine::with_store(
                Project::open(&root).unwrap(),
                site.store.clone(),
                true,
            )
            .await
            .unwrap()
            .runner(cascade_engine::delivery::DispatchSettings::default())
            .await
            .unwrap();
            runner.tick(due).await.unwrap();
            let sent: u64 = site
                .store
                .delivery_counts("console-rollout")
                .await
                .unwrap()
                .iter()
                .map(|c| c.sent)
                .sum();
            // The 17 people of nb-council, and the one uploaded above.
            assert_eq!(sent, 18);
            // A recipient acknowledges through the link in their message.
            let message = std::fs::read_dir(site.path("outbox"))
                .unwrap()
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .find(|m| m.contains("/ack/"))
                .expect("a message with an acknowledgement link");
            let at = message.find("/ack/").unwrap();
            let token: String = message[at + 5..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect();
            // The briefing's check question comes first (issue 19): a
            // wrong answer shows the explanation and section, then the
            // right one records the acknowledgement. Every page passes axe.
            driver.goto(&format!("{base}/ack/{token}")).await;
            driver.shows("Question 1 of 1").await;
            driver.check("30-check-question").await;
            driver.click("label[for=q1-1]").await;
            driver.click("button[type=submit]").await;
            driver.shows("Not quite").await;
            driver.check("31-check-question-wrong").await;
            driver.click("label[for=q1-2]").await;
            driver.click("button[type=submit]").await;
            driver.shows("Thank you").await;
            runner.stop().await;

            // The session ended overnight; the rollout page shows the landing.
            sign_in(&driver, &base, "eve").await;
            driver
                .goto(&format!("{base}/console/rollouts/console-rollout"))
                .await;
            let html = driver.source().await;
            assert!(
                html.contains("Acknowledged: <span class=\"count\">1 of 18</span>"),
                "{html}"
            );
            assert!(
                html.contains("<td>outbox</td><td>0</td><td>0</td><td>18</td>"),
                "{html}"
            );
            driver.check("12-rollout-sent-and-acknowledged").await;
            driver.goto(&format!("{base}/console")).await;
            driver.check("13-home-with-progress").await;
            driver.goto(&format!("{base}/console/account")).await;
            driver.check("14-account").await;
            driver
                .goto(&format!("{base}/console/reports?rollout=console-rollout"))
                .await;
            driver.shows("By team").await;
            driver.check("15-reports").await;

            // A champion of two council teams: their coverage and the
            // confirmation form.
            switch_to(
                &driver,
                &site,
                "amara",
                Role::Champion,
                Some("p-amara-okafor"),
            )
            .await;
            driver.shows("Team briefings to record").await;
            driver.check("16-champion-home").await;
            driver
                .goto(&format!("{base}/console/champion/console-rollout/confirm"))
                .await;
            driver.check("17-champion-confirm").await;
            driver.click("#team option[value='mash']").await;
            driver.fill("#present", "9").await;
            driver.click("#method option[value='team-meeting']").await;
            driver.click("main button[type=submit]").await;
            driver.shows("this briefing is recorded").await;
            driver.check("18-champion-recorded").await;
            driver
                .goto(&format!("{base}/console/champion/teams/mash"))
                .await;
            driver.check("19-champion-team").await;

            // An admin adds a user; the set-up link is shown once.
            switch_to(&driver, &site, "ned", Role::Admin, None).await;
            driver.goto(&format!("{base}/console/users")).await;
            driver.check("20-users").await;
            driver.fill("#name", "new.viewer").await;
            driver.click("#role option[value='viewer']").await;
            driver
                .click("form[action='/console/users'] button[type=submit]")
                .await;
            driver.shows("User added").await;
            driver.check("21-user-added").await;

            // An admin erases a person: the form, its error, the result.
            driver.goto(&format!("{base}/console/erase")).await;
            driver.check("22-erase").await;
            driver.fill("#person", "p-tom-reilly").await;
            driver
                .click("form[action='/console/erase'] button[type=submit]")
                .await;
            driver.shows("There is a problem").await;
            driver.check("23-erase-problem").await;
            driver.fill("#reason", "request ref 2026-78").await;
            driver.click("#force").await;
            driver
                .click("form[action='/console/erase'] button[type=submit]")
                .await;
            driver.shows("Person erased").await;
            driver.check("24-erased").await;
        };
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(300), flow).await;
        driver.stop().await;
        outcome.expect("the browser flow finished in time");
    }
}

/// A bulletin file's page shows what `cascade rollout plan` prints; once
/// started (`cascade rollout start`), its page shows its schedule and next
/// occurrence, and the rollouts page lists it with the bulletins.
#[tokio::test]
async fn a_bulletins_page_shows_its_plan_then_its_next_occurrence_once_started() {
    let site = Site::new(false).await;
    let file = site.path("rollouts/practice-bulletin.toml");
    let cascade = |action: &str| {
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["rollout", action, "--project"])
            .arg(site.dir.path())
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = cascade("plan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut viewer = site.signed_in("val", Role::Viewer).await;
    let html = viewer.page("/console/rollouts/practice-bulletin").await;
    let shown = plan_shown(&html);
    assert!(
        shown.starts_with("Bulletin \"practice-bulletin\""),
        "{shown}"
    );
    assert!(
        printed.starts_with(&shown),
        "console:\n{shown}\ncli:\n{printed}"
    );

    let out = cascade("start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = viewer.page("/console/rollouts/practice-bulletin").await;
    assert!(
        html.contains("<h1>Northbridge practice bulletin</h1>"),
        "{html}"
    );
    assert!(
        html.contains("<dd>every month on the first Tuesday at 09:00</dd>"),
        "{html}"
    );
    assert!(html.contains("<dt>Next</dt><dd>next Tue "), "{html}");
    assert!(html.contains("No occurrence has fallen due yet."), "{html}");
    let list = viewer.page("/console/rollouts").await;
    assert!(list.contains("<h2>Recurring bulletins</h2>"), "{list}");
    assert!(
        !list.contains("rollouts/practice-bulletin.toml</a>: check its plan"),
        "a started bulletin is not a file waiting: {list}"
    );
}
