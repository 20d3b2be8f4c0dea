//! Single sign-on with OpenID Connect (in practice Microsoft Entra ID):
//! the authorization code flow with PKCE, a state and a nonce, through the
//! maintained `openidconnect` crate. The provider's discovery document and
//! keys are read when needed and kept for a few minutes; the ID token's
//! signature, issuer, audience, expiry and nonce are checked by the crate;
//! a role comes from a claim (`roles` or `groups`) through the configured
//! mapping, and someone with no mapped role is refused. The account is the
//! one linked to the provider's subject (made on first sign-in, or an
//! account an administrator made with the same name, e.g. a champion's
//! with their directory person); a disabled account stays disabled.

use crate::Console;
use crate::auth::{Role, SESSION_COOKIE, clear_cookie, cookie, same, set_cookie};
use crate::html::{self, esc, page};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use cascade_model::time::millis;
use cascade_store::{Accounts, AllStores, SsoRefusal};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The client `CoreClient::from_provider_metadata` makes: authorization
/// endpoint set, token and user-info endpoints as the provider says.
type SsoClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The cookie that carries a sign-in's state, nonce and PKCE verifier to
/// the callback. SameSite=Lax: the provider's redirect back is a
/// top-level navigation from another site.
const SSO_COOKIE: &str = "cascade_console_sso";
/// How long a sign-in at the provider may take.
const SSO_COOKIE_SECONDS: u64 = 600;
/// How long the provider's discovery document (and so its keys) is kept.
const METADATA_KEPT: Duration = Duration::from_secs(300);

/// Single sign-on as configured in `[console.sso]`.
pub struct Sso {
    issuer: IssuerUrl,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    role_claim: String,
    name_claim: String,
    roles: Vec<(String, Role)>,
    /// The sign-in page's button.
    pub label: String,
    redirect: RedirectUrl,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

impl std::fmt::Debug for Sso {
    /// Never the client secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field("role_claim", &self.role_claim)
            .finish_non_exhaustive()
    }
}

/// What `[console.sso]` says, with the secret already read.
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub role_claim: String,
    pub name_claim: String,
    pub roles: BTreeMap<String, String>,
    pub label: String,
}

impl Sso {
    /// Checks the settings; the error says what is wrong and how to fix it.
    pub fn new(settings: SsoSettings, base_url: &str) -> Result<Sso, String> {
        let issuer = IssuerUrl::new(settings.issuer.trim_end_matches('/').to_owned())
            .map_err(|e| format!("[console.sso] issuer is not a URL ({e})\n  help: use the provider's issuer, e.g. https://login.microsoftonline.com/<tenant id>/v2.0"))?;
        let redirect = RedirectUrl::new(format!("{}/console/sso/callback", base_url.trim_end_matches('/')))
            .map_err(|e| format!("the console's base URL {base_url} does not make a redirect URL ({e})\n  help: set [console] base_url"))?;
        if settings.roles.is_empty() {
            return Err("[console.sso] roles is empty, so nobody could sign in\n  help: map a value of the role claim to a role, e.g. \"Cascade.Editor\" = \"editor\"".into());
        }
        let mut roles = Vec::new();
        for (value, role) in &settings.roles {
            let Some(parsed) = Role::parse(role) else {
                return Err(format!(
                    "[console.sso] roles: \"{value}\" = \"{role}\" is not a console role\n  help: use one of admin, editor, approver, viewer, champion"
                ));
            };
            roles.push((value.clone(), parsed));
        }
        let http = reqwest::Client::builder()
            // Following redirects would open the client to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot make an HTTP client for single sign-on: {e}"))?;
        let mut scopes = settings.scopes;
        scopes.retain(|s| s != "openid");
        Ok(Sso {
            issuer,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            scopes,
            role_claim: settings.role_claim,
            name_claim: settings.name_claim,
            roles,
            label: settings.label,
            redirect,
            http,
            metadata: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's metadata, read again when older than a few minutes
    /// or when `fresh` (a token signed with a key not yet seen).
    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, String> {
        let mut kept = self.metadata.lock().await;
        if !fresh
            && let Some((metadata, at)) = kept.as_ref()
            && at.elapsed() < METADATA_KEPT
        {
            return Ok(metadata.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| format!("{e}"))?;
        *kept = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    /// The OpenID client for `metadata`, sending people back to the callback.
    fn client(&self, metadata: CoreProviderMetadata) -> SsoClient {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// The console role a set of claim values gives: the most powerful
    /// mapped one, or none.
    fn role(&self, values: &[String]) -> Option<Role> {
        let mapped: Vec<Role> = self
            .roles
            .iter()
            .filter(|(value, _)| values.contains(value))
            .map(|(_, role)| *role)
            .collect();
        Role::ALL.into_iter().find(|r| mapped.contains(r))
    }
}

/// `/console/sso`: off to the provider.
pub(crate) async fn start<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
) -> Response {
    let Some(sso) = console.settings.sso.as_ref() else {
        return html::not_found(None, "Single sign-on is not set up for this console.");
    };
    let metadata = match sso.metadata(false).await {
        Ok(m) => m,
        Err(e) => return provider_unreachable(&e),
    };
    let client = sso.client(metadata);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in &sso.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    let value = format!(
        "{}.{}.{}",
        state.secret(),
        nonce.secret(),
        verifier.secret()
    );
    let mut response = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, url.as_str())
        .header(header::CACHE_CONTROL, "no-store")
        .body(axum::body::Body::empty())
        .expect("a redirect");
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{SSO_COOKIE}={value}; Path=/console/sso; HttpOnly; SameSite=Lax; Max-Age={SSO_COOKIE_SECONDS}{}",
        if console.settings.secure {
            "; Secure"
        } else {
            ""
        }
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize, Default)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `/console/sso/callback`: back from the provider with a code.
pub(crate) async fn callback<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Query(query): Query<Callback>,
) -> Response {
    let Some(sso) = console.settings.sso.as_ref() else {
        return html::not_found(None, "Single sign-on is not set up for this console.");
    };
    let secure = console.settings.secure;
    if let Some(error) = query.error.as_deref() {
        tracing::warn!(error = %error.chars().take(64).collect::<String>(), "console single sign-on refused by the provider");
        return refused(
            StatusCode::FORBIDDEN,
            "Your organisation's sign-in service did not sign you in (it was cancelled or refused). Try again, or sign in with your cascade user name and password.",
            secure,
        );
    }
    let kept = cookie(&headers, SSO_COOKIE).unwrap_or_default();
    let mut parts = kept.splitn(3, '.');
    let (Some(state), Some(nonce), Some(verifier)) = (parts.next(), parts.next(), parts.next())
    else {
        return expired(secure);
    };
    let (Some(code), Some(returned)) = (query.code, query.state) else {
        return expired(secure);
    };
    if state.is_empty() || !same(state, &returned) {
        tracing::warn!("console single sign-on with a state that does not match refused");
        return expired(secure);
    }
    let signed_in = match verify(sso, code, nonce, verifier).await {
        Ok(s) => s,
        Err(Problem::Provider(e)) => return provider_unreachable(&e),
        Err(Problem::Refused(why)) => {
            tracing::warn!(reason = why, "console single sign-on refused");
            return refused(
                StatusCode::FORBIDDEN,
                "Your sign-in could not be checked, so you are not signed in. Try again; if it keeps happening, tell your cascade administrator.",
                secure,
            );
        }
    };
    let Some(role) = sso.role(&signed_in.roles) else {
        tracing::warn!("console single sign-on refused: no mapped role");
        return refused(
            StatusCode::FORBIDDEN,
            "You signed in, but your account has no role in cascade. Ask your cascade administrator to give you one.",
            secure,
        );
    };
    let now = console.now();
    let user = match console
        .store
        .sso_console_user(
            &signed_in.subject,
            &signed_in.name,
            role.as_str(),
            millis(now),
        )
        .await
    {
        Ok(Ok(user)) => user,
        Ok(Err(SsoRefusal::Disabled)) => {
            tracing::warn!("console single sign-on refused: the account is disabled");
            return refused(
                StatusCode::FORBIDDEN,
                "Your cascade account has been disabled. Ask your cascade administrator if you need it again.",
                secure,
            );
        }
        Err(e) => return html::failed(None, "cannot find or make the account", &e),
    };
    if role == Role::Champion && user.person_id.is_none() {
        tracing::warn!(
            user = user.id,
            "console single sign-on refused: a champion account without its person"
        );
        return refused(
            StatusCode::FORBIDDEN,
            "You are a champion, but your cascade account is not linked to you in the directory yet. Ask your cascade administrator to add your account with your directory person.",
            secure,
        );
    }
    let id = match crate::account::start_session(&console, &headers, user.id, now).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    tracing::info!(
        user = user.id,
        role = role.as_str(),
        "console sign-in by single sign-on"
    );
    // A page of the console's own rather than a redirect: the session
    // cookie is SameSite=Strict, and a redirect chain that began at the
    // provider would not carry it to the first page.
    let mut response = page(
        StatusCode::OK,
        "Signed in",
        None,
        "<h1>You are signed in</h1>\n<p><a class=\"button\" href=\"/console\">Continue to cascade</a></p>",
    );
    if let Ok(refresh) = HeaderValue::from_str("0; url=/console") {
        response.headers_mut().insert("refresh", refresh);
    }
    for value in [
        set_cookie(SESSION_COOKIE, &id, secure),
        clear_sso_cookie(secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Who the provider says signed in.
struct SignedIn {
    /// The issuer and subject: stable for the person at this provider.
    subject: String,
    name: String,
    roles: Vec<String>,
}

enum Problem {
    /// The provider did not answer or answered with an error.
    Provider(String),
    /// The answer did not pass the checks (reason for the log, no values).
    Refused(&'static str),
}

async fn verify(sso: &Sso, code: String, nonce: &str, verifier: &str) -> Result<SignedIn, Problem> {
    let client = sso.client(sso.metadata(false).await.map_err(Problem::Provider)?);
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Problem::Provider(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
        .request_async(&sso.http)
        .await
        .map_err(|e| Problem::Provider(token_error(&e)))?;
    let id_token = token.id_token().ok_or(Problem::Refused("no ID token"))?;
    let nonce = Nonce::new(nonce.to_owned());
    let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
        Ok(c) => c.clone(),
        Err(_) => {
            // Perhaps the provider rolled its keys: read them again once.
            let client = sso.client(sso.metadata(true).await.map_err(Problem::Provider)?);
            id_token
                .claims(&client.id_token_verifier(), &nonce)
                .map_err(|_| Problem::Refused("the ID token did not verify"))?
                .clone()
        }
    };
    if let Some(expected) = claims.access_token_hash() {
        let verifier = client.id_token_verifier();
        let actual = AccessTokenHash::from_token(
            token.access_token(),
            id_token
                .signing_alg()
                .map_err(|_| Problem::Refused("unknown signing algorithm"))?,
            id_token
                .signing_key(&verifier)
                .map_err(|_| Problem::Refused("no signing key"))?,
        )
        .map_err(|_| Problem::Refused("cannot hash the access token"))?;
        if actual != *expected {
            return Err(Problem::Refused(
                "the access token does not match the ID token",
            ));
        }
    }
    // The token verified, so its payload is the provider's: read the
    // claims the standard set does not model (roles, groups) from it.
    let payload = id_token
        .to_string()
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).ok()
        })
        .ok_or(Problem::Refused("the ID token's claims cannot be read"))?;
    let name = payload
        .get(&sso.name_claim)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(claims.subject().as_str())
        .chars()
        .take(64)
        .collect();
    let roles = match payload.get(&sso.role_claim) {
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        Some(serde_json::Value::Array(many)) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(SignedIn {
        subject: format!("{} {}", claims.issuer().as_str(), claims.subject().as_str()),
        name,
        roles,
    })
}

/// A token endpoint's error, worded without the response body's secrets.
fn token_error<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn clear_sso_cookie(secure: bool) -> String {
    format!(
        "{SSO_COOKIE}=; Path=/console/sso; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

fn refused(status: StatusCode, text: &str, secure: bool) -> Response {
    let mut response = page(
        status,
        "Not signed in",
        None,
        &format!(
            "<h1>You are not signed in</h1>\n<p>{}</p>\n<p><a href=\"/console/sign-in\">Back to sign in</a></p>",
            esc(text)
        ),
    );
    for value in [
        clear_sso_cookie(secure),
        clear_cookie(SESSION_COOKIE, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn expired(secure: bool) -> Response {
    tracing::warn!("console single sign-on callback without a matching sign-in refused");
    refused(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired or was started in another browser. Start again from the sign-in page.",
        secure,
    )
}

fn provider_unreachable(error: &str) -> Response {
    tracing::warn!(%error, "console single sign-on: the provider did not answer as expected");
    page(
        StatusCode::BAD_GATEWAY,
        "Sign-in service unavailable",
        None,
        "<h1>Your organisation's sign-in service is not answering</h1>\n<p>Try again in a few minutes, or sign in with your cascade user name and password.</p>\n<p><a href=\"/console/sign-in\">Back to sign in</a></p>",
    )
}
