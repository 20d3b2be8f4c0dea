//! One send's I/O and what its outcome means: the message goes over one of
//! a small set of SMTP connections kept open between sends (lettre's SMTP
//! client on sockets of our own), and the server's reply becomes a
//! `SendResult` (2xx delivered with the queue id when the reply names one,
//! 4xx and broken connections retried, 5xx failed with the server's words).

use cascade_plugin_api::SendResult;
use lettre::Message;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

use crate::config::{EmailConfig, OAuth2, Security};
use crate::state::{AccessToken, Parked};

/// A parked connection idle longer than this is checked with NOOP before it
/// carries a message, since servers close idle connections after a while.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);

/// The SMTP server of an instance and its open connections. Callers keep at
/// most `max_in_flight` sends going, so at most that many connections exist.
///
/// lettre's own pool (`AsyncSmtpTransport`) is not used because lettre's
/// sockets leave Nagle's algorithm on: the last line of every message
/// (`.`) then waits for the server's delayed ACK, about 40 ms on Linux,
/// which caps each connection at some 25 messages a second. Here plain and
/// STARTTLS connections are made on sockets with `TCP_NODELAY`; implicit TLS
/// (`tls = "tls"`) still connects through lettre and keeps that limit.
pub struct Relay {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    oauth2: Option<TokenSource>,
    hello: ClientId,
    timeout: Duration,
    idle: Parked,
    /// `host:port`, for reasons and logs (never credentials).
    pub server: String,
}

impl Relay {
    pub fn new(config: &EmailConfig) -> Result<Relay, String> {
        let tls = match config.security {
            Security::None => None,
            Security::StartTls | Security::Tls => Some(tls_parameters(config)?),
        };
        Ok(Relay {
            host: config.host.clone(),
            port: config.port,
            security: config.security,
            tls,
            credentials: config
                .credentials
                .as_ref()
                .map(|(user, password)| Credentials::new(user.clone(), password.clone())),
            oauth2: config.oauth2.clone().map(TokenSource::new).transpose()?,
            hello: config
                .helo_name
                .clone()
                .map_or_else(ClientId::default, ClientId::Domain),
            timeout: config.timeout,
            idle: Parked::default(),
            server: format!("{}:{}", config.host, config.port),
        })
    }

    /// Sends one message and says how it went; the whole exchange,
    /// connecting included, gets the configured timeout.
    pub async fn deliver(&self, message: &Message) -> SendResult {
        match tokio::time::timeout(self.timeout, self.exchange(message)).await {
            Ok(result) => result,
            Err(_) => SendResult::Retry {
                reason: format!(
                    "the SMTP server {} did not finish the exchange within {} s",
                    self.server,
                    self.timeout.as_secs_f64()
                ),
                retry_after_ms: None,
            },
        }
    }

    async fn exchange(&self, message: &Message) -> SendResult {
        let mut connection = match self.reuse().await {
            Some(connection) => connection,
            None => match self.connect().await {
                Ok(connection) => connection,
                Err(result) => return result,
            },
        };
        let result = connection
            .send(message.envelope(), &message.formatted())
            .await;
        // lettre closes a connection on any error; one that is still
        // whole is parked for the next send.
        if !connection.has_broken() {
            self.idle.park(connection);
        }
        outcome(result, &self.server)
    }

    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut connection, since) = self.idle.take()?;
            if since.elapsed() < CHECK_AFTER_IDLE || connection.test_connected().await {
                return Some(connection);
            }
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendResult> {
        let failed = |error: SmtpError| outcome(Err(error), &self.server);
        let mut connection = match self.security {
            Security::Tls => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                self.tls.clone(),
                None,
            )
            .await
            .map_err(failed)?,
            Security::StartTls | Security::None => {
                let socket = TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .and_then(|socket| socket.set_nodelay(true).map(|()| socket))
                    .map_err(|error| SendResult::Retry {
                        reason: format!(
                            "could not connect to the SMTP server {}: {error}",
                            self.server
                        ),
                        retry_after_ms: None,
                    })?;
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(socket), &self.hello)
                        .await
                        .map_err(failed)?;
                if let Some(tls) = &self.tls {
                    connection
                        .starttls(tls.clone(), &self.hello)
                        .await
                        .map_err(failed)?;
                }
                connection
            }
        };
        if let Some(credentials) = &self.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(failed)?;
        }
        if let Some(oauth2) = &self.oauth2 {
            self.auth_with_token(&mut connection, oauth2).await?;
        }
        Ok(connection)
    }

    /// AUTH XOAUTH2 with the kept token; when the server refuses a kept
    /// one (revoked, or expired early), once more with a fresh one. A
    /// fresh token refused is a failure that says what to check.
    async fn auth_with_token(
        &self,
        connection: &mut AsyncSmtpConnection,
        oauth2: &TokenSource,
    ) -> Result<(), SendResult> {
        loop {
            let (token, fresh) = oauth2.token().await.map_err(|reason| SendResult::Retry {
                reason,
                retry_after_ms: None,
            })?;
            let credentials = Credentials::new(oauth2.config.mailbox.clone(), token.clone());
            let Err(error) = connection.auth(&[Mechanism::Xoauth2], &credentials).await else {
                return Ok(());
            };
            oauth2.tokens.forget(&token);
            let Some(code) = error.status() else {
                return Err(outcome(Err(error), &self.server));
            };
            if !fresh && !connection.has_broken() {
                continue;
            }
            return Err(SendResult::Failed {
                reason: format!(
                    "the SMTP server {} refused the OAuth token for {}: {code} {}",
                    self.server,
                    oauth2.config.mailbox,
                    server_text(&error)
                ),
                unreachable: false,
            });
        }
    }

    /// Connects as a send would (TLS or STARTTLS, AUTH) and says QUIT:
    /// whether the server can be used, and if not what to change.
    pub async fn check(&self) -> Result<(), String> {
        let connected = tokio::time::timeout(self.timeout, self.connect()).await;
        let reason = match connected {
            Ok(Ok(mut connection)) => {
                let _ = connection.quit().await;
                return Ok(());
            }
            Ok(Err(SendResult::Retry { reason, .. } | SendResult::Failed { reason, .. })) => reason,
            Ok(Err(SendResult::Delivered { .. })) => return Ok(()),
            Err(_) => format!(
                "the SMTP server {} did not answer within {} s",
                self.server,
                self.timeout.as_secs_f64()
            ),
        };
        Err(format!("{reason}\n  help: {}", self.fix_for(&reason)))
    }

    /// What to change for a failed check, from the failure's words.
    fn fix_for(&self, reason: &str) -> String {
        if reason.contains("STARTTLS is not supported") {
            return format!(
                "{} does not offer STARTTLS: use tls = \"tls\" if it takes TLS from the first byte (usually port 465), or tls = \"none\" only for a relay on this machine or a trusted network",
                self.server
            );
        }
        if reason.contains("refused the OAuth token") {
            return "the token was issued but the mailbox refused it: check that the app (oauth2_client_id) has the SMTP.SendAsApp permission with admin consent, that Exchange Online knows its service principal with access to the mailbox `username`, and that SMTP AUTH is on for that mailbox".to_owned();
        }
        if reason.contains("token endpoint") {
            return "check oauth2_client_id, oauth2_tenant_id (or oauth2_token_url) and the client secret in [channels.secrets]".to_owned();
        }
        if reason.contains(" 535") || reason.contains(" 530") || reason.contains(" 534") {
            return "the server refused the username and password: check `username` and the password secret".to_owned();
        }
        if reason.contains("could not connect") {
            return format!(
                "nothing answered at {}: check `host` and `port`, and that the server is running and reachable from here",
                self.server
            );
        }
        "check `host`, `port`, `tls` and the credentials; set check_at_start = false to start without connecting".to_owned()
    }

    /// Says QUIT on every parked connection.
    pub async fn close(&self) {
        for (mut connection, _) in self.idle.take_all() {
            let _ = connection.quit().await;
        }
    }
}

/// Access tokens for SMTP AUTH from the Entra ID token endpoint, by the
/// OAuth 2.0 client-credentials grant, kept until shortly before expiry.
struct TokenSource {
    config: OAuth2,
    client: reqwest::Client,
    tokens: AccessToken,
    /// Held while a token is fetched, so a burst of connections fetches one.
    fetching: tokio::sync::Mutex<()>,
}

impl TokenSource {
    fn new(config: OAuth2) -> Result<TokenSource, String> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|error| format!("could not set up the HTTP client for OAuth: {error}"))?;
        Ok(TokenSource {
            config,
            client,
            tokens: AccessToken::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The kept token, or a new one; and whether it is new. An error says
    /// what the endpoint answered, never the secret or the token.
    async fn token(&self) -> Result<(String, bool), String> {
        if let Some(token) = self.tokens.current(Instant::now()) {
            return Ok((token, false));
        }
        let _fetching = self.fetching.lock().await;
        if let Some(token) = self.tokens.current(Instant::now()) {
            return Ok((token, false));
        }
        let endpoint = self
            .config
            .token_url
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let response = self
            .client
            .post(&self.config.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.config.client_id.as_str()),
                ("client_secret", self.config.client_secret.as_str()),
                ("scope", self.config.scope.as_str()),
            ])
            .send()
            .await
            .map_err(|error| {
                format!(
                    "could not reach the token endpoint {endpoint}: {}",
                    error.without_url()
                )
            })?;
        let status = response.status().as_u16();
        let json: serde_json::Value = response.json().await.unwrap_or_default();
        if status != 200 {
            // OAuth's error code only: its description may echo the request.
            let code = json["error"].as_str().unwrap_or("no error code");
            return Err(format!(
                "the token endpoint {endpoint} answered HTTP {status} ({code})"
            ));
        }
        let token = json["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("the token endpoint {endpoint} gave no access_token"))?
            .to_owned();
        let lifetime = json["expires_in"]
            .as_u64()
            .or_else(|| json["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(3600);
        self.tokens.keep(
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime),
        );
        Ok((token, true))
    }
}

fn tls_parameters(config: &EmailConfig) -> Result<TlsParameters, String> {
    let mut parameters = TlsParameters::builder(config.host.clone());
    if let Some(pem) = &config.ca_certificate {
        let certificate = Certificate::from_pem(pem.as_bytes())
            .map_err(|error| format!("`ca_certificate` is not a PEM certificate: {error}"))?;
        // Only the private CA: a relay of one's own has no business
        // presenting a certificate from a public one.
        parameters = parameters
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certificate);
    }
    parameters
        .build()
        .map_err(|error| format!("could not set up TLS for `host` {}: {error}", config.host))
}

/// What a reply (or the lack of one) means for the delivery.
pub fn outcome(result: Result<Response, SmtpError>, server: &str) -> SendResult {
    match result {
        Ok(response) => SendResult::Delivered {
            provider_id: queue_id(&response),
        },
        Err(error) => match error.status() {
            Some(code) if error.is_permanent() => {
                let text = server_text(&error);
                SendResult::Failed {
                    unreachable: bad_mailbox(&text),
                    reason: format!("the SMTP server {server} refused the message: {code} {text}"),
                }
            }
            Some(code) => SendResult::Retry {
                reason: format!(
                    "the SMTP server {server} deferred the message: {code} {}",
                    server_text(&error)
                ),
                retry_after_ms: None,
            },
            // No reply code: the connection failed, broke or timed out, or
            // TLS failed. The message may or may not have landed; a retry
            // carries the same Message-ID, so a duplicate is recognisable.
            None => SendResult::Retry {
                reason: format!("could not complete the SMTP exchange with {server}: {error}"),
                retry_after_ms: None,
            },
        },
    }
}

/// The server's own words of a negative reply, one line.
fn server_text(error: &SmtpError) -> String {
    std::error::Error::source(error)
        .map(|source| source.to_string().replace(['\r', '\n'], " "))
        .unwrap_or_default()
}

/// An enhanced status code 5.1.x (RFC 3463: bad destination mailbox or
/// domain) says the address itself cannot be reached, not this message.
fn bad_mailbox(text: &str) -> bool {
    text.split_whitespace()
        .next()
        .is_some_and(|first| first.starts_with("5.1.") && first.len() > 4)
}

/// The queue id in a 2xx reply, as the common servers word it: Postfix
/// "queued as 4F1x2Y", Exim "OK id=1rAbCd-000123-AB", Sendmail
/// "Message accepted for delivery" (none), aiosmtpd-based relays as Postfix.
pub fn queue_id(response: &Response) -> Option<String> {
    let text: Vec<&str> = response.message().collect();
    let text = text.join(" ");
    let after = |marker: &str| {
        let start = text.find(marker)? + marker.len();
        let id: String = text[start..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
            .collect();
        let id = id.trim_end_matches('.');
        (!id.is_empty()).then(|| id.to_owned())
    };
    after("queued as").or_else(|| after("id="))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-line reply as lettre parses it off the wire.
    fn reply(code: &str, text: &str) -> Response {
        format!("{code} {text}\r\n").parse().unwrap()
    }

    #[test]
    fn a_postfix_reply_gives_its_queue_id() {
        let response = reply("250", "2.0.0 Ok: queued as 4F1x2Y3Z");
        assert_eq!(queue_id(&response).as_deref(), Some("4F1x2Y3Z"));
        assert!(response.code().is_positive());
    }

    #[test]
    fn an_exim_reply_gives_its_message_id() {
        let response = reply("250", "OK id=1rAbCd-000123-AB");
        assert_eq!(queue_id(&response).as_deref(), Some("1rAbCd-000123-AB"));
    }

    #[test]
    fn a_reply_without_an_id_is_delivered_without_one() {
        let result = outcome(Ok(reply("250", "OK")), "smtp.example:587");
        assert_eq!(result, SendResult::Delivered { provider_id: None });
    }

    #[test]
    fn mailbox_codes_mark_the_address_unreachable() {
        assert!(bad_mailbox("5.1.1 <x@y>: Recipient address rejected"));
        assert!(!bad_mailbox("5.7.1 Message rejected as spam"));
        assert!(!bad_mailbox("Requested action not taken"));
    }
}
