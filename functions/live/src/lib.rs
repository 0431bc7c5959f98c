//! The live client API on AWS (CONTRACT.md section 6, docs/aws.md "WebSocket API"): one
//! function is the WebSocket API's `$connect`, `$disconnect` and `$default` routes, and the
//! consumer of the table's stream, which carries each committed change to the connections of
//! those who may see it. `$connect` checks the token itself and answers a refusal as `401`: a
//! Lambda authorizer can refuse with 401 only by failing, and an expired token is no error.

pub mod push;

use std::sync::Arc;

use serde_json::{json, Value};

use shared::error::Report;
use shared::http::{ApiError, JwksVerifier, JwtVerifier};
use shared::live::socket;
use shared::ports::Push;
use shared::usecases::{Caller, Ports};

/// How `$connect` tokens are checked.
pub enum Auth {
    /// Against the issuer's published keys (Cognito, or any OpenID provider): on AWS.
    Jwks(JwksVerifier),
    /// With `AUTH_JWT_SECRET` (HS256), as the local runner does: `cargo lambda watch`, tests.
    Local(JwtVerifier),
}

impl Auth {
    async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        match self {
            Auth::Jwks(v) => v.verify(token).await,
            Auth::Local(v) => v.verify(token),
        }
    }
}

pub struct Live {
    pub ports: Ports,
    pub push: Arc<dyn Push>,
    pub auth: Auth,
    /// The agents' connections this instance read last (`socket::AgentConnections`).
    pub agents: socket::AgentConnections,
}

#[derive(Debug, PartialEq, Eq)]
pub enum HandlerError {
    /// Not an event this function handles.
    Unknown,
    Failed(String),
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Unknown => f.write_str("not an event the live function handles"),
            HandlerError::Failed(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for HandlerError {}

/// Handles one invocation, whichever of the three kinds it is.
pub async fn handle(live: &Live, event: Value) -> Result<Value, HandlerError> {
    if let Some(kind) = event.pointer("/requestContext/eventType").and_then(Value::as_str) {
        return route(live, kind, &event).await;
    }
    if event.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:dynamodb") {
        return Ok(stream(live, &event).await);
    }
    Err(HandlerError::Unknown)
}

/// Browsers cannot set headers on a WebSocket: the token comes as `?token=`.
fn token(event: &Value) -> Option<&str> {
    event.pointer("/queryStringParameters/token").and_then(Value::as_str).filter(|t| !t.is_empty())
}

fn status(code: u16) -> Value {
    json!({"statusCode": code})
}

async fn route(live: &Live, kind: &str, event: &Value) -> Result<Value, HandlerError> {
    let Some(connection_id) = event.pointer("/requestContext/connectionId").and_then(Value::as_str) else {
        return Ok(status(400));
    };
    let failed = |e: shared::usecases::UseCaseError| HandlerError::Failed(Report(&e).to_string());
    match kind {
        "CONNECT" => {
            // A missing, bad or expired token: the client is told 401 (nothing failed here).
            let Some(token) = token(event) else { return Ok(status(401)) };
            let caller = match live.auth.verify(token).await {
                Ok(c) => c,
                Err(ApiError::Unauthorized | ApiError::Unidentified(_)) => return Ok(status(401)),
                Err(e) => return Err(HandlerError::Failed(e.to_string())),
            };
            let caller = match shared::usecases::directory::admit(&live.ports, caller).await {
                Ok(c) => c,
                Err(shared::usecases::UseCaseError::Forbidden(_)) => return Ok(status(403)),
                Err(shared::usecases::UseCaseError::Unidentified(_)) => return Ok(status(401)),
                Err(e) => return Err(failed(e)),
            };
            socket::connect(&live.ports, &caller, connection_id, live.ports.clock.now()).await.map_err(failed)?;
            if caller.is_agent() {
                live.agents.forget();
            }
            Ok(status(200))
        }
        "DISCONNECT" => {
            socket::disconnect(&live.ports, connection_id).await.map_err(failed)?;
            Ok(status(200))
        }
        // The API only speaks: anything a client sends is acknowledged and dropped.
        _ => Ok(status(200)),
    }
}

/// The table's stream: each record's changes go out in order (a change the batch repeats, at
/// its last record: `socket::changes_of_batch`); a record that cannot be handled is reported,
/// so Lambda retries from it and nothing after it is skipped.
async fn stream(live: &Live, event: &Value) -> Value {
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    for (i, change) in socket::changes_of_batch(&records) {
        let seq = records[i].pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or("0");
        if let Err(e) = socket::fan_out(&live.ports, &*live.push, &live.agents, seq, &change).await {
            tracing::warn!(error = %Report(&e), seq, "live: fan-out failed; the batch is retried from here");
            return json!({"batchItemFailures": [{"itemIdentifier": seq}]});
        }
    }
    json!({"batchItemFailures": []})
}
