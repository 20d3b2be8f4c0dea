//! The Bot Framework's check of a request Teams posts to the bot, as
//! Microsoft documents it ("Authenticate requests from the Bot Connector
//! service to your bot"): a bearer JWT signed with RS256 by a key the
//! OpenID metadata's `jwks_uri` publishes (fetched, cached, and fetched
//! again when a token names a key not held), issued by
//! `https://api.botframework.com`, for the bot's app id, within its
//! `nbf`/`exp` with five minutes of clock skew, whose `serviceurl` claim is
//! the activity's `serviceUrl`, and whose key is endorsed for the
//! activity's channel when the key lists endorsements.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Instant;

use crate::format::Activity;
use crate::send::Shared;
use crate::state::SigningKey;

/// The clock skew allowed on `nbf` and `exp`, as the Bot Framework SDKs
/// allow it.
pub const CLOCK_SKEW_SECONDS: u64 = 5 * 60;

/// Why a request was refused: for the log, never for the caller.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("no bearer token in the Authorization header")]
    NoToken,
    #[error("the token is not a JWT: {0}")]
    Malformed(String),
    #[error("the token is signed with {0:?}; only RS256, RS384 and RS512 are accepted")]
    Algorithm(Algorithm),
    #[error("the token names no key id")]
    NoKeyId,
    #[error("the token's key id is not one the Bot Framework publishes")]
    UnknownKey,
    #[error("the signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
    #[error("the token's key is not endorsed for channel {0:?}")]
    NotEndorsed(String),
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token's serviceurl claim is not the activity's serviceUrl")]
    ServiceUrl,
}

/// The claims cascade reads beyond those `jsonwebtoken` checks.
#[derive(Debug, Deserialize)]
struct Claims {
    serviceurl: Option<String>,
}

/// The bearer token of an `Authorization` header.
fn bearer(authorization: Option<&str>) -> Result<&str, AuthError> {
    authorization
        .and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::NoToken)
}

/// The token's algorithm and key id, if it is an RSA-signed JWT.
fn algorithm_and_key_id(token: &str) -> Result<(Algorithm, String), AuthError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
    ) {
        return Err(AuthError::Algorithm(header.alg));
    }
    Ok((header.alg, header.kid.ok_or(AuthError::NoKeyId)?))
}

/// The signature, issuer, audience and times of `token`, by `key`.
fn verified(
    shared: &Shared,
    token: &str,
    algorithm: Algorithm,
    key: &DecodingKey,
) -> Result<Claims, AuthError> {
    let config = &shared.config;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&config.token_issuer]);
    validation.set_audience(&[&config.app_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = CLOCK_SKEW_SECONDS;
    validation.validate_nbf = true;
    jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// The check on the headers alone, before the body is read: a bearer JWT
/// signed with RSA, and, when its key is held, valid by that key. A key
/// not held yet passes here; [`authenticate`] fetches it.
pub fn check_headers(shared: &Shared, authorization: Option<&str>) -> Result<(), AuthError> {
    let token = bearer(authorization)?;
    let (algorithm, kid) = algorithm_and_key_id(token)?;
    match shared.keys.get(&kid, Instant::now()) {
        Some(key) => verified(shared, token, algorithm, &key.key).map(drop),
        None => Ok(()),
    }
}

/// Checks the request's `Authorization` header for `activity`.
pub async fn authenticate(
    shared: &Shared,
    authorization: Option<&str>,
    activity: &Activity,
) -> Result<(), AuthError> {
    let token = bearer(authorization)?;
    let (algorithm, kid) = algorithm_and_key_id(token)?;
    let key = signing_key(shared, &kid).await?;
    if !key.endorsements.is_empty() && !key.endorsements.contains(&activity.channel_id) {
        return Err(AuthError::NotEndorsed(activity.channel_id.clone()));
    }
    let claims = verified(shared, token, algorithm, &key.key)?;
    if claims.serviceurl.as_deref() != Some(activity.service_url.as_str()) {
        return Err(AuthError::ServiceUrl);
    }
    Ok(())
}

/// The key `kid`: held, or after fetching the keys again (at most once a
/// spacing, one fetch at a time).
async fn signing_key(shared: &Shared, kid: &str) -> Result<SigningKey, AuthError> {
    if let Some(key) = shared.keys.get(kid, Instant::now()) {
        return Ok(key);
    }
    let _fetching = shared.keys_fetch.lock().await;
    if let Some(key) = shared.keys.get(kid, Instant::now()) {
        return Ok(key);
    }
    if !shared.keys.may_refresh(Instant::now()) {
        return Err(AuthError::UnknownKey);
    }
    let keys = fetch_keys(shared).await?;
    shared.keys.replace(keys, Instant::now());
    shared
        .keys
        .get(kid, Instant::now())
        .ok_or(AuthError::UnknownKey)
}

/// The OpenID metadata, then the key set its `jwks_uri` names.
async fn fetch_keys(shared: &Shared) -> Result<HashMap<String, SigningKey>, AuthError> {
    let get = |url: String| async move {
        let response = shared
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(AuthError::KeysUnavailable(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        response
            .json::<Value>()
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.without_url().to_string()))
    };
    let metadata = get(shared.config.openid_metadata_url.clone()).await?;
    let jwks_uri = metadata["jwks_uri"]
        .as_str()
        .ok_or_else(|| AuthError::KeysUnavailable("the metadata has no jwks_uri".to_owned()))?
        .to_owned();
    let jwks = get(jwks_uri).await?;
    Ok(keys_of(&jwks))
}

/// The RSA keys of a JWK set, by key id.
fn keys_of(jwks: &Value) -> HashMap<String, SigningKey> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["kty"] == "RSA")
        .filter_map(|k| {
            let kid = k["kid"].as_str()?;
            let key = DecodingKey::from_rsa_components(k["n"].as_str()?, k["e"].as_str()?).ok()?;
            let endorsements = k["endorsements"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Some((kid.to_owned(), SigningKey { key, endorsements }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rsa_keys_with_an_id_are_kept_with_their_endorsements() {
        let jwks = json!({ "keys": [
            { "kty": "RSA", "kid": "k1", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB", "endorsements": ["msteams"] },
            { "kty": "EC", "kid": "k2" },
            { "kty": "RSA", "n": "x", "e": "AQAB" },
        ]});
        let keys = keys_of(&jwks);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["k1"].endorsements, ["msteams"]);
    }
}
