//! Graph API bodies: what `POST /{phone-number-id}/messages` takes and answers.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::message::TemplateSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// E.164 with `+`.
    Phone(String),
    /// A business-scoped user id (sending to one works from July 2026).
    UserId(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundBody {
    Text { body: String },
    Template(TemplateSpec),
    Image { media_id: String, caption: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub to: Recipient,
    pub body: OutboundBody,
    /// Our message id, echoed by Meta in status webhooks as `biz_opaque_callback_data`.
    pub callback: String,
}

/// A refused or unanswered Graph API call. `http_status: None` means no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Graph API error {code:?} (HTTP {http_status:?}): {message}")]
pub struct GraphError {
    /// The request may have reached Meta, but its answer did not reach us (a time-out, a
    /// dropped connection): sending again could send twice.
    pub lost: bool,
    pub http_status: Option<u16>,
    pub code: Option<i64>,
    pub message: String,
}

impl GraphError {
    /// No answer, and the request may have been taken.
    pub fn transport(message: impl Into<String>) -> GraphError {
        GraphError { lost: true, http_status: None, code: None, message: message.into() }
    }

    /// No answer, and the request never left (no connection): safe to try again.
    pub fn unsent(message: impl Into<String>) -> GraphError {
        GraphError { lost: false, http_status: None, code: None, message: message.into() }
    }
}

/// The JSON body Meta's `/messages` endpoint takes for `req`.
pub fn request_json(req: &OutboundRequest) -> Value {
    let mut v = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "biz_opaque_callback_data": req.callback,
    });
    match &req.to {
        Recipient::Phone(p) => v["to"] = json!(p),
        Recipient::UserId(u) => v["recipient"] = json!(u),
    }
    match &req.body {
        OutboundBody::Text { body } => {
            v["type"] = json!("text");
            v["text"] = json!({ "preview_url": false, "body": body });
        }
        OutboundBody::Image { media_id, caption } => {
            v["type"] = json!("image");
            v["image"] = match caption {
                Some(c) => json!({ "id": media_id, "caption": c }),
                None => json!({ "id": media_id }),
            };
        }
        OutboundBody::Template(t) => {
            let mut components = Vec::new();
            if !t.params.is_empty() {
                let params: Vec<Value> = t.params.iter().map(|p| json!({"type": "text", "text": p})).collect();
                components.push(json!({ "type": "body", "parameters": params }));
            }
            for (i, payload) in t.buttons.iter().enumerate() {
                components.push(json!({
                    "type": "button", "sub_type": "quick_reply", "index": i.to_string(),
                    "parameters": [{ "type": "payload", "payload": payload }],
                }));
            }
            v["type"] = json!("template");
            v["template"] = json!({ "name": t.name, "language": { "code": t.language }, "components": components });
        }
    }
    v
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<SentId>,
}
#[derive(Deserialize)]
struct SentId {
    id: String,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

/// Reads Meta's answer: the wamid on success, a typed error otherwise.
pub fn parse_send_response(http_status: u16, body: &[u8]) -> Result<String, GraphError> {
    if (200..300).contains(&http_status) {
        return serde_json::from_slice::<SendResponse>(body)
            .ok()
            .and_then(|r| r.messages.into_iter().next())
            .map(|m| m.id)
            .ok_or_else(|| GraphError {
                lost: false,
                http_status: Some(http_status),
                code: None,
                message: "no message id in answer".into(),
            });
    }
    Err(parse_error(http_status, body))
}

pub fn parse_error(http_status: u16, body: &[u8]) -> GraphError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(e) => {
            GraphError { lost: false, http_status: Some(http_status), code: e.error.code, message: e.error.message }
        }
        Err(_) => GraphError {
            lost: false,
            http_status: Some(http_status),
            code: None,
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/fixtures/meta/graph/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn reads_wamid_and_every_error_fixture() {
        assert!(parse_send_response(200, &fixture("send_text_response.json")).unwrap().starts_with("wamid."));
        assert!(parse_send_response(200, &fixture("send_template_response.json")).is_ok());
        for (name, code) in [
            ("error_100_invalid_parameter.json", 100),
            ("error_130429_rate_limit.json", 130429),
            ("error_131047_reengagement.json", 131047),
            ("error_131056_pair_rate_limit.json", 131056),
            ("error_132001_template_missing.json", 132001),
            ("error_190_token_expired.json", 190),
        ] {
            assert_eq!(parse_send_response(400, &fixture(name)).unwrap_err().code, Some(code), "{name}");
        }
        assert_eq!(parse_send_response(502, b"<html>").unwrap_err().code, None);
    }

    #[test]
    fn template_request_has_the_shape_meta_documents() {
        let req = OutboundRequest {
            to: Recipient::Phone("+447700900123".into()),
            body: OutboundBody::Template(TemplateSpec {
                name: "optin_request".into(),
                language: "en".into(),
                params: vec!["Acme".into()],
                buttons: vec!["OPT_IN_YES:c1".into(), "OPT_IN_NO:c1".into()],
            }),
            callback: "m1".into(),
        };
        let v = request_json(&req);
        let want: Value = serde_json::from_slice(&fixture("send_template_quick_reply_request.json")).unwrap();
        assert_eq!(v["type"], want["type"]);
        assert_eq!(v["template"]["components"][1]["sub_type"], "quick_reply");
        assert_eq!(v["template"]["components"][2]["index"], "1");
        assert_eq!(v["template"]["components"][2]["parameters"][0]["payload"], "OPT_IN_NO:c1");
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
        assert!(keys(&v).is_superset(&keys(&want).into_iter().filter(|k| k != "context").collect()));
    }
}
