//! Who is calling: an HS256 JWT checked here (the local runner), or claims an API Gateway JWT
//! authorizer already checked, placed in the request's extensions by the Lambda entry point.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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
            user_id: c.sub,
            locale: c.locale.unwrap_or_else(|| "en".into()),
            sub_org: c.sub_org.unwrap_or_default(),
            region: c.region.unwrap_or_default(),
            roles: c.roles,
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
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtVerifier { key: Some(DecodingKey::from_secret(secret.as_bytes())), validation }
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

/// A token for `claims` (tests, the README's quick start).
pub fn issue_token(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .unwrap_or_default()
}

/// The authenticated caller of a client route.
pub struct Identity(pub Caller);

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = match parts.extensions.get::<Caller>() {
            Some(caller) => caller.clone(),
            None => {
                let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                let token = header
                    .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                    .ok_or(ApiError::Unauthorized)?;
                state.auth.verify(token.trim())?
            }
        };
        let first_time = state.seen_users.lock().map(|s| !s.contains(&caller.user_id)).unwrap_or(true);
        if first_time {
            crate::usecases::directory::record(&state.ports, &caller).await?;
            if let Ok(mut seen) = state.seen_users.lock() {
                seen.insert(caller.user_id.clone());
            }
        }
        Ok(Identity(caller))
    }
}
