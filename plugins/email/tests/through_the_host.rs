//! The real plugin library, loaded by the real plugin host, sending to a
//! real SMTP server process (aiosmtpd): what reached the server, parsed by
//! Python's email package, and what each send reported.

mod support;

use cascade_plugin_api::{
    Format, MailingList, Message, MessagePart, Recipient, SendRequest, SendResult,
};
use cascade_plugin_host::{ChannelConfig, PluginFile, PluginHost, PluginsConfig, SecretSource};
use cascade_test_support::plugin_library;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use support::{
    CLIENT_ID, CLIENT_SECRET, Issue, SmtpServer, TOKEN_KEY, TokenEndpoint, header, part, private_ca,
};
use tokio::sync::mpsc;

async fn start_host(server: &SmtpServer, config: serde_json::Value) -> PluginHost {
    start_host_with_secrets(config, BTreeMap::new(), server.dir.path()).await
}

/// A host with an `email` instance whose `secrets` are read from `base`.
async fn start_host_with_secrets(
    config: serde_json::Value,
    secrets: BTreeMap<String, SecretSource>,
    base: &Path,
) -> PluginHost {
    try_start(config, secrets, base).await.unwrap()
}

/// The host, or why the channel would not start.
async fn try_start(
    config: serde_json::Value,
    secrets: BTreeMap<String, SecretSource>,
    base: &Path,
) -> Result<PluginHost, cascade_plugin_host::PluginError> {
    let (events, _) = mpsc::unbounded_channel();
    let report = PluginHost::load(
        &[PluginFile {
            path: plugin_library("cascade-plugin-email"),
        }],
        &PluginsConfig::default(),
        events,
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let host = report.host;
    let channel = ChannelConfig {
        name: "email".to_owned(),
        plugin: "email".to_owned(),
        config,
        secrets,
        identity: None,
        formats: None,
        per_second: None,
        max_per_minute: None,
        max_per_day: None,
        team_channels: Default::default(),
        retry: None,
        carries: Default::default(),
        secure_domains: Vec::new(),
        spread_over: Vec::new(),
    };
    host.start(&channel, base).await?;
    Ok(host)
}

const ACK: &str = "https://learning.northbridge.example/ack/v1.k1.AbC-123_xyz";

fn request(n: usize, address: &str) -> SendRequest {
    SendRequest {
        delivery_id: format!("d{n}"),
        idempotency_key: format!("now/p-{n}/initial-1/p-{n}/0"),
        channel: "email".to_owned(),
        recipient: Recipient {
            person_id: format!("p-{n}"),
            display_name: "Zoë Brontë".to_owned(),
            address: address.to_owned(),
        },
        message: Message {
            subject: Some("Neglect — seeing the child: Zoë’s story".to_owned()),
            parts: vec![
                MessagePart {
                    format: Format::EmailHtml,
                    chunks: vec![format!(
                        "<h1>Neglect</h1>\n<p>Zoë’s story.</p>\n<p><a href=\"{ACK}\">Acknowledge</a></p>"
                    )],
                },
                MessagePart {
                    format: Format::EmailText,
                    chunks: vec![format!("Neglect\n\nZoë’s story.\n\n{ACK}\n")],
                },
            ],
        },
        actions: Vec::new(),
        reply: None,
        list: None,
        post: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_arrives_as_multipart_alternative_with_a_decoded_utf8_subject() {
    let server = SmtpServer::start();
    let host = start_host(&server, server.channel_config(4)).await;
    let result = host
        .send("email", &request(1, "zoe@agency.example"))
        .await
        .unwrap();
    host.stop().await;

    let received = server.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(
        result,
        SendResult::Delivered {
            provider_id: Some(message["queue_id"].as_str().unwrap().to_owned())
        },
        "the queue id the server gave is the provider id"
    );
    assert_eq!(message["helo"], "cascade.test");
    assert_eq!(message["mail_from"], "learning@northbridge.example");
    assert_eq!(
        message["rcpt_tos"],
        serde_json::json!(["zoe@agency.example"])
    );
    assert_eq!(
        header(message, "Subject"),
        Some("Neglect — seeing the child: Zoë’s story")
    );
    let raw_subject = message["raw_headers"]["Subject"].as_str().unwrap();
    assert!(
        raw_subject.is_ascii() && raw_subject.contains("=?utf-8?"),
        "{raw_subject}"
    );
    assert_eq!(
        header(message, "From"),
        Some("Northbridge Learning <learning@northbridge.example>")
    );
    assert_eq!(
        header(message, "To"),
        Some("Zoë Brontë <zoe@agency.example>")
    );
    assert_eq!(
        header(message, "Reply-To"),
        Some("Safeguarding Business Unit <sbu@northbridge.example>")
    );
    assert!(header(message, "Date").is_some());
    assert_eq!(
        header(message, "List-Id"),
        None,
        "no list unless the rollout allows opting out"
    );

    let types: Vec<&str> = message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["multipart/alternative", "text/plain", "text/html"]);
    let text = part(message, "text/plain");
    assert!(
        text.contains("Zoë’s story.") && text.contains(ACK),
        "{text}"
    );
    let html = part(message, "text/html");
    assert!(html.contains(&format!("<a href=\"{ACK}\">")), "{html}");
    for part in message["parts"].as_array().unwrap().iter().skip(1) {
        assert_eq!(part["charset"], "utf-8");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_id_is_the_same_for_every_attempt_of_a_delivery_and_differs_between_deliveries()
{
    let server = SmtpServer::start();
    let host = start_host(&server, server.channel_config(4)).await;
    let first = request(1, "a@agency.example");
    host.send("email", &first).await.unwrap();
    host.send("email", &first).await.unwrap();
    host.send("email", &request(2, "a@agency.example"))
        .await
        .unwrap();
    host.stop().await;

    let ids: Vec<String> = server
        .received()
        .iter()
        .map(|m| header(m, "Message-ID").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        ids[0], ids[1],
        "a resend of the same delivery keeps its Message-ID"
    );
    assert_ne!(ids[0], ids[2]);
    assert_eq!(
        ids[0],
        cascade_plugin_email::message_id(&first.idempotency_key, "northbridge.example")
    );
    assert!(!ids[0].contains("p-1"), "no person id in the header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_list_adds_list_id_and_list_unsubscribe() {
    let server = SmtpServer::start();
    let host = start_host(&server, server.channel_config(1)).await;
    let mut with_list = request(1, "a@agency.example");
    with_list.list = Some(MailingList {
        id: "newsletter.northbridge.example".to_owned(),
        name: Some("Northbridge newsletter".to_owned()),
        unsubscribe_url: "https://learning.northbridge.example/unsubscribe/t0k3n".to_owned(),
    });
    host.send("email", &with_list).await.unwrap();
    host.stop().await;

    let message = &server.received()[0];
    assert_eq!(
        header(message, "List-Id"),
        Some("\"Northbridge newsletter\" <newsletter.northbridge.example>")
    );
    assert_eq!(
        header(message, "List-Unsubscribe"),
        Some("<https://learning.northbridge.example/unsubscribe/t0k3n>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_answer_becomes_the_right_result() {
    let server = SmtpServer::start();
    let host = start_host(&server, server.channel_config(4)).await;
    let send = |n: usize, address: &'static str| {
        let host = &host;
        async move { host.send("email", &request(n, address)).await.unwrap() }
    };
    let (ok, rejected, busy, tempfail, dropped, slow) = tokio::join!(
        send(1, "ok@agency.example"),
        send(2, "reject@agency.example"),
        send(3, "busy@agency.example"),
        send(4, "tempfail@agency.example"),
        send(5, "drop@agency.example"),
        send(6, "slow@agency.example"),
    );
    host.stop().await;

    assert!(
        matches!(
            ok,
            SendResult::Delivered {
                provider_id: Some(_)
            }
        ),
        "{ok:?}"
    );
    assert!(
        matches!(
            slow,
            SendResult::Delivered {
                provider_id: Some(_)
            }
        ),
        "{slow:?}"
    );
    match rejected {
        SendResult::Failed {
            reason,
            unreachable,
        } => {
            assert!(reason.contains("550"), "{reason}");
            assert!(
                reason.contains(
                    "5.1.1 <reject@agency.example>: Recipient address rejected: User unknown"
                ),
                "{reason}"
            );
            assert!(unreachable, "5.1.1 says the mailbox does not exist");
        }
        other => panic!("a 550 fails the send, got {other:?}"),
    }
    for (result, code) in [(busy, "421"), (tempfail, "451")] {
        match result {
            SendResult::Retry { reason, .. } => assert!(reason.contains(code), "{reason}"),
            other => panic!("a {code} is retried, got {other:?}"),
        }
    }
    match dropped {
        SendResult::Retry { reason, .. } => {
            assert!(reason.contains("127.0.0.1"), "names the server: {reason}")
        }
        other => panic!("a dropped connection is retried, got {other:?}"),
    }
    let mut kept: Vec<String> = server
        .received()
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap().to_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, ["ok@agency.example", "slow@agency.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_address_or_an_unreachable_server_is_reported_not_lost() {
    let server = SmtpServer::start();
    let host = start_host(&server, server.channel_config(2)).await;
    match host
        .send("email", &request(1, "not an address"))
        .await
        .unwrap()
    {
        SendResult::Failed { unreachable, .. } => assert!(unreachable),
        other => panic!("{other:?}"),
    }
    host.stop().await;

    // A port nobody listens on: connection refused is transient.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = server.channel_config(2);
    config["port"] = port.into();
    // Not checked at start, so the send finds it.
    config["check_at_start"] = false.into();
    let host = start_host(&server, config).await;
    match host
        .send("email", &request(2, "a@agency.example"))
        .await
        .unwrap()
    {
        SendResult::Retry { reason, .. } => {
            assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_auth_use_the_password_and_ca_from_the_hosts_secrets() {
    let secrets_dir = tempfile::tempdir().unwrap();
    let dir = secrets_dir.path();
    private_ca(dir);
    let server = SmtpServer::start_with(&[
        OsStr::new("--starttls"),
        dir.join("cert.pem").as_os_str(),
        dir.join("key.pem").as_os_str(),
        OsStr::new("--auth"),
        OsStr::new("cascade"),
        OsStr::new("correct horse battery"),
    ]);
    std::fs::write(dir.join("smtp-password"), "correct horse battery\n").unwrap();
    std::fs::write(dir.join("wrong-password"), "tr0ub4dor\n").unwrap();
    let mut config = server.channel_config(2);
    config["host"] = "localhost".into();
    config["tls"] = "starttls".into();
    config["username"] = "cascade".into();
    let secrets = |password: &str| {
        BTreeMap::from([
            ("password".to_owned(), SecretSource::File(password.into())),
            (
                "ca_certificate".to_owned(),
                SecretSource::File("ca.pem".into()),
            ),
        ])
    };

    let host = start_host_with_secrets(config.clone(), secrets("smtp-password"), dir).await;
    let result = host
        .send("email", &request(1, "a@agency.example"))
        .await
        .unwrap();
    host.stop().await;
    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    let received = server.received();
    assert_eq!(received[0]["tls"], true, "sent after STARTTLS");
    assert_eq!(received[0]["auth_login"], "cascade");

    // Checked at start: refused, saying what to change.
    let error = match try_start(config.clone(), secrets("wrong-password"), dir).await {
        Ok(_) => panic!("started with a wrong password"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("535"), "{error}");
    assert!(
        error.contains("refused the username and password"),
        "{error}"
    );
    assert!(!error.contains("tr0ub4dor"), "{error}");
    // Not checked at start: the send finds it.
    config["check_at_start"] = false.into();
    let host = start_host_with_secrets(config, secrets("wrong-password"), dir).await;
    let result = host
        .send("email", &request(2, "a@agency.example"))
        .await
        .unwrap();
    host.stop().await;
    match result {
        SendResult::Failed { reason, .. } => {
            assert!(reason.contains("535"), "{reason}");
            assert!(
                !reason.contains("tr0ub4dor"),
                "never the password: {reason}"
            );
        }
        other => panic!("wrong credentials fail the send, got {other:?}"),
    }
    assert_eq!(server.received().len(), 1);
}

/// Found against a real SMTP server: a channel set up for STARTTLS against
/// a plain relay, or pointing where nothing listens, "started and stopped
/// cleanly" and then failed every message for minutes. Starting now
/// connects as a send would and refuses with what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_cannot_use_its_server_refuses_to_start_and_says_what_to_change() {
    let server = SmtpServer::start();
    let refused = |config: serde_json::Value| {
        let base = server.dir.path().to_owned();
        async move {
            match try_start(config, BTreeMap::new(), &base).await {
                Ok(_) => panic!("started"),
                Err(error) => error.to_string(),
            }
        }
    };

    let mut starttls = server.channel_config(1);
    starttls["tls"] = "starttls".into();
    let error = refused(starttls).await;
    assert!(error.contains("STARTTLS is not supported"), "{error}");
    assert!(error.contains("help: "), "{error}");
    assert!(error.contains("use tls = \"tls\""), "{error}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut nowhere = server.channel_config(1);
    nowhere["port"] = port.into();
    let error = refused(nowhere).await;
    assert!(
        error.contains(&format!("nothing answered at 127.0.0.1:{port}")),
        "{error}"
    );

    // The right settings start, and the check sent no message.
    let host = start_host(&server, server.channel_config(1)).await;
    host.stop().await;
    assert!(server.received().is_empty());
}

/// Microsoft 365's SMTP AUTH with OAuth: a STARTTLS submission server that
/// takes only XOAUTH2 with a token the (fake) Entra ID token endpoint
/// issued, and the channel set up with the client secret from a file.
struct Microsoft365 {
    server: SmtpServer,
    tokens: TokenEndpoint,
    secrets_dir: tempfile::TempDir,
}

const MAILBOX: &str = "learning@northbridge.example";

impl Microsoft365 {
    async fn start() -> Microsoft365 {
        let secrets_dir = tempfile::tempdir().unwrap();
        let dir = secrets_dir.path();
        private_ca(dir);
        let server = SmtpServer::start_with(&[
            OsStr::new("--starttls"),
            dir.join("cert.pem").as_os_str(),
            dir.join("key.pem").as_os_str(),
            OsStr::new("--xoauth2"),
            OsStr::new(MAILBOX),
            OsStr::new(TOKEN_KEY),
        ]);
        std::fs::write(dir.join("client-secret"), format!("{CLIENT_SECRET}\n")).unwrap();
        std::fs::write(dir.join("wrong-secret"), "not-the-secret\n").unwrap();
        Microsoft365 {
            server,
            tokens: TokenEndpoint::start().await,
            secrets_dir,
        }
    }

    fn config(&self) -> serde_json::Value {
        let mut config = self.server.channel_config(2);
        config["host"] = "localhost".into();
        config["tls"] = "starttls".into();
        config["username"] = MAILBOX.into();
        config["oauth2_client_id"] = CLIENT_ID.into();
        config["oauth2_token_url"] = self.tokens.url.clone().into();
        config
    }

    fn secrets(&self, secret_file: &str) -> BTreeMap<String, SecretSource> {
        BTreeMap::from([
            (
                "oauth2_client_secret".to_owned(),
                SecretSource::File(secret_file.into()),
            ),
            (
                "ca_certificate".to_owned(),
                SecretSource::File("ca.pem".into()),
            ),
        ])
    }

    async fn start_host(
        &self,
        config: serde_json::Value,
        secret_file: &str,
    ) -> Result<PluginHost, cascade_plugin_host::PluginError> {
        try_start(config, self.secrets(secret_file), self.secrets_dir.path()).await
    }

    fn auth_answers(&self) -> Vec<String> {
        self.server
            .events()
            .into_iter()
            .map(|(_, answer)| answer)
            .filter(|a| a.starts_with("XOAUTH2"))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_365_signs_in_with_xoauth2_using_one_token_from_the_token_endpoint() {
    let m365 = Microsoft365::start().await;
    let host = m365
        .start_host(m365.config(), "client-secret")
        .await
        .unwrap();
    for n in 1..=3 {
        let result = host
            .send("email", &request(n, &format!("p{n}@agency.example")))
            .await
            .unwrap();
        assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    }
    host.stop().await;

    let received = m365.server.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[0]["tls"], true, "after STARTTLS");
    assert_eq!(
        received[0]["auth_login"], MAILBOX,
        "signed in as the mailbox"
    );
    assert!(
        m365.auth_answers().iter().all(|a| a == "XOAUTH2 accepted"),
        "{:?}",
        m365.auth_answers()
    );
    assert_eq!(
        m365.tokens.requests(),
        1,
        "the check at start and every send share one token, kept until near expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_or_client_secret_is_a_clear_error_that_never_shows_a_secret() {
    let m365 = Microsoft365::start().await;

    // The token endpoint refuses a wrong secret: start says what to check.
    let error = match m365.start_host(m365.config(), "wrong-secret").await {
        Ok(_) => panic!("started with a wrong client secret"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("HTTP 401 (invalid_client)"), "{error}");
    assert!(error.contains("help: check oauth2_client_id"), "{error}");
    assert!(!error.contains("not-the-secret"), "{error}");

    // The server refuses an expired token: start says what to check.
    m365.tokens.issue(Issue::Expired);
    let error = match m365.start_host(m365.config(), "client-secret").await {
        Ok(_) => panic!("started with an expired token"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("refused the OAuth token for learning@northbridge.example"),
        "{error}"
    );
    assert!(error.contains("535 5.7.3"), "{error}");
    assert!(error.contains("SMTP.SendAsApp"), "{error}");
    assert!(
        !error.contains(CLIENT_SECRET) && !error.contains(TOKEN_KEY),
        "{error}"
    );

    // Not checked at start: the send fails with the same words, nothing
    // is sent, and the token is fetched again rather than reused.
    let mut config = m365.config();
    config["check_at_start"] = false.into();
    let host = m365.start_host(config, "client-secret").await.unwrap();
    let before = m365.tokens.requests();
    let result = host
        .send("email", &request(1, "a@agency.example"))
        .await
        .unwrap();
    match &result {
        SendResult::Failed {
            reason,
            unreachable: false,
        } => {
            assert!(reason.contains("refused the OAuth token"), "{reason}");
        }
        other => panic!("a refused token fails the send, got {other:?}"),
    }
    m365.tokens.issue(Issue::Valid);
    let result = host
        .send("email", &request(2, "a@agency.example"))
        .await
        .unwrap();
    host.stop().await;
    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    assert_eq!(
        m365.tokens.requests(),
        before + 2,
        "a refused token is not kept"
    );
    assert_eq!(m365.server.received().len(), 1);
}
