//! Who is calling: an HS256 JWT checked here (the local runner), or claims an API Gateway JWT
//! authorizer already checked, placed in the request's extensions by the Lambda entry point.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::usecases::Caller;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sub_org: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: i64,
}

impl From<Claims> for Caller {
    fn from(c: Claims) -> Caller {
        Caller {
            name: c.name.filter(|n| !n.is_empty()).unwrap_or_else(|| c.sub.clone()),
            user_id: c.sub.into(),
            locale: c.locale.unwrap_or_else(|| "en".into()),
            sub_org: c.sub_org.unwrap_or_default(),
            region: c.region.unwrap_or_default(),
            roles: crate::usecases::known_roles(&c.roles),
        }
    }
}

pub struct JwtVerifier {
    /// `None` when the HTTP API's authorizer checks tokens: then only its claims are trusted.
    key: Option<DecodingKey>,
    validation: Validation,
}

impl JwtVerifier {
    pub fn hs256(secret: &str) -> JwtVerifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtVerifier { key: Some(DecodingKey::from_secret(secret.as_bytes())), validation }
    }

    /// HS256 tokens (the local runner), with their issuer and audience checked when configured
    /// (`AUTH_JWT_ISSUER`, `AUTH_JWT_AUDIENCE`).
    pub fn hs256_for(secret: &str, issuer: Option<&str>, audiences: &[String]) -> JwtVerifier {
        let mut v = JwtVerifier::hs256(secret);
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = issuer {
            v.validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if !audiences.is_empty() {
            v.validation.set_audience(audiences);
            v.validation.validate_aud = true;
            required.push("aud");
        }
        v.validation.set_required_spec_claims(&required);
        v
    }

    /// Refuses every bearer token: on AWS the authorizer's claims are the only identity.
    pub fn authorizer_only() -> JwtVerifier {
        JwtVerifier { key: None, validation: Validation::new(Algorithm::HS256) }
    }

    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let key = self.key.as_ref().ok_or(ApiError::Unauthorized)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|_| ApiError::Unauthorized)?;
        if data.claims.sub.is_empty() {
            return Err(ApiError::Unauthorized);
        }
        Ok(data.claims.into())
    }
}

impl Claims {
    /// The claims that name `caller`, valid until `exp` (Unix seconds): `From<Claims>` back.
    pub fn of(caller: &Caller, exp: i64) -> Claims {
        Claims {
            sub: caller.user_id.to_string(),
            name: Some(caller.name.clone()),
            sub_org: Some(caller.sub_org.clone()),
            region: Some(caller.region.clone()),
            locale: Some(caller.locale.clone()),
            roles: caller.roles.clone(),
            exp,
        }
    }
}

/// A token for `claims` (tests, the README's quick start).
pub fn issue_token(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .unwrap_or_default()
}

/// The caller of a client route, as `admit` let them in.
#[derive(Clone)]
pub struct Identity(pub Caller);

/// The layer in front of every client route (`route_layer(from_fn_with_state(state, admit))`):
/// checks the caller's token (or takes the claims API Gateway's authorizer checked) and admits
/// them through the directory, which records a caller seen for the first time (the contract:
/// a user's first authenticated call records them). This is the one step before a handler
/// that may write; handlers read its answer with the `Identity` extractor, which only reads.
pub async fn admit(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let caller = match req.extensions().get::<Caller>() {
        Some(caller) => caller.clone(),
        None => {
            let header = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            let token = header
                .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                .ok_or(ApiError::Unauthorized)?;
            state.auth.verify(token.trim())?
        }
    };
    let caller = caller.checked().map_err(ApiError::Unidentified)?;
    let caller = match crate::usecases::directory::admit(&state.ports, caller.clone()).await {
        Ok(admitted) => admitted,
        // The first admin: their token carries the role (a Cognito group) and no scope, and
        // no admin is there yet to set one. They may set their own profile, and only that.
        Err(crate::usecases::UseCaseError::Unidentified(crate::usecases::NO_SCOPE))
            if caller.has_role("admin") && sets_own_profile(&req, &caller) =>
        {
            caller
        }
        Err(e) => return Err(e.into()),
    };
    req.extensions_mut().insert(Identity(caller));
    Ok(next.run(req).await)
}

/// Whether `req` is `PUT /directory/users/{id}` of the caller themselves.
fn sets_own_profile(req: &Request, caller: &Caller) -> bool {
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str());
    req.method() == axum::http::Method::PUT
        && route == Some("/directory/users/{id}")
        && req.uri().path().strip_prefix("/directory/users/") == Some(caller.user_id.as_str())
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("a client route without the admit layer".into()))
    }
}

/// Checks RS256 tokens against the keys their issuer publishes (`{issuer}/.well-known/jwks.json`,
/// read once per cold start): what API Gateway's JWT authorizer does for the HTTP API, done by
/// the WebSocket API's Lambda authorizer, which has no built-in JWT check.
pub struct JwksVerifier {
    issuer: String,
    audiences: Vec<String>,
    http: reqwest::Client,
    /// The issuer's keys, and when they were read.
    keys: tokio::sync::RwLock<Option<(jsonwebtoken::jwk::JwkSet, std::time::Instant)>>,
    /// The least time between two reads for a key not known (a rotation: the issuer
    /// publishes the new key before it signs with it).
    unknown_key_gap: std::time::Duration,
}

/// How long the issuer's keys are used before they are read again (a key it withdrew stops
/// being accepted within this).
const KEYS_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);

impl JwksVerifier {
    pub fn new(issuer: &str, audiences: Vec<String>) -> JwksVerifier {
        JwksVerifier {
            issuer: issuer.trim_end_matches('/').to_string(),
            audiences,
            http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().unwrap_or_default(),
            keys: tokio::sync::RwLock::new(None),
            unknown_key_gap: std::time::Duration::from_secs(10),
        }
    }

    /// Reads the keys again at most this often for an unknown key (tests shorten it).
    pub fn unknown_key_gap(mut self, gap: std::time::Duration) -> JwksVerifier {
        self.unknown_key_gap = gap;
        self
    }

    async fn fetch(&self) -> Result<jsonwebtoken::jwk::JwkSet, ApiError> {
        let url = format!("{}/.well-known/jwks.json", self.issuer);
        let resp = self.http.get(&url).send().await.map_err(|e| ApiError::Internal(Box::new(e)))?;
        resp.json().await.map_err(|e| ApiError::Internal(Box::new(e)))
    }

    /// The issuer's key `kid` (or its first, for a token that names none): from the keys read
    /// last, read again when they are older than `KEYS_KEPT`, or when the key is not among them
    /// and they are older than `unknown_key_gap`. A failed read keeps the keys it had.
    async fn key(&self, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, ApiError> {
        let find = |set: &jsonwebtoken::jwk::JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None => set.keys.first().cloned(),
        };
        if let Some((set, at)) = &*self.keys.read().await {
            let age = at.elapsed();
            match find(set) {
                Some(jwk) if age < KEYS_KEPT => return Ok(jwk),
                None if age < self.unknown_key_gap => return Err(ApiError::Unauthorized),
                _ => {}
            }
        }
        let mut keys = self.keys.write().await;
        let fresh = keys.as_ref().is_some_and(|(_, at)| at.elapsed() < self.unknown_key_gap);
        if !fresh {
            match self.fetch().await {
                Ok(set) => *keys = Some((set, std::time::Instant::now())),
                Err(e) if keys.is_none() => return Err(e),
                Err(e) => {
                    tracing::warn!(error.message = %crate::error::Report(&e), "the issuer's keys could not be read again; the last ones stand");
                    // Asked again after the gap, not at every token meanwhile.
                    if let Some((_, at)) = keys.as_mut() {
                        *at = std::time::Instant::now().checked_sub(KEYS_KEPT - self.unknown_key_gap).unwrap_or(*at);
                    }
                }
            }
        }
        keys.as_ref().and_then(|(set, _)| find(set)).ok_or(ApiError::Unauthorized)
    }

    /// The caller a token names, if its issuer signed it, it is current, and (when audiences
    /// are set) it is for one of them (`aud`, or Cognito access tokens' `client_id`).
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::Unauthorized)?;
        if header.alg != Algorithm::RS256 {
            return Err(ApiError::Unauthorized);
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| ApiError::Unauthorized)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 30;
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let data =
            jsonwebtoken::decode::<std::collections::HashMap<String, serde_json::Value>>(token, &key, &validation)
                .map_err(|_| ApiError::Unauthorized)?;
        let claims = data.claims;
        if !self.audiences.is_empty() {
            let named = |k: &str| match claims.get(k) {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                _ => Vec::new(),
            };
            let mut theirs = named("aud");
            theirs.extend(named("client_id"));
            if !theirs.iter().any(|a| self.audiences.contains(a)) {
                return Err(ApiError::Unauthorized);
            }
        }
        // Roles from the array itself, so a role whose name has a space stays one role.
        let roles = match claims.get("roles").or_else(|| claims.get("cognito:groups")) {
            Some(serde_json::Value::Array(a)) => {
                Some(crate::usecases::known_roles(a.iter().filter_map(|v| v.as_str())))
            }
            _ => None,
        };
        // The same reading of the other claims as for the HTTP API's authorizer.
        let flat = claims
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Array(a) => format!(
                        "[{}]",
                        a.iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect();
        let mut caller = Caller::from_claims(&flat).ok_or(ApiError::Unauthorized)?;
        if let Some(roles) = roles {
            caller.roles = roles;
        }
        caller.checked().map_err(ApiError::Unidentified)
    }
}

#[cfg(test)]
mod tests {
    use super::JwtVerifier;

    fn token(claims: serde_json::Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(b"s3cret");
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
    }

    #[test]
    fn a_configured_issuer_and_audience_are_checked_locally() {
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let claims = |iss: Option<&str>, aud: Option<&str>| {
            let mut c = serde_json::json!({"sub": "u1", "exp": exp});
            if let Some(i) = iss {
                c["iss"] = i.into();
            }
            if let Some(a) = aud {
                c["aud"] = a.into();
            }
            token(c)
        };
        let open = JwtVerifier::hs256("s3cret");
        assert!(open.verify(&claims(None, None)).is_ok(), "nothing configured: neither is needed");
        let strict = JwtVerifier::hs256_for("s3cret", Some("https://idp.example"), &["console".to_string()]);
        assert!(strict.verify(&claims(Some("https://idp.example"), Some("console"))).is_ok());
        for (iss, aud) in [
            (None, Some("console")),
            (Some("https://evil.example"), Some("console")),
            (Some("https://idp.example"), None),
            (Some("https://idp.example"), Some("other-app")),
        ] {
            assert!(strict.verify(&claims(iss, aud)).is_err(), "{iss:?} {aud:?}");
        }
    }
}
