//! Graph API bodies: what `POST /{phone-number-id}/messages` takes and answers.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::message::{FileKind, Location, TemplateSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// E.164 with `+`.
    Phone(String),
    /// A business-scoped user id (sending to one works from July 2026).
    UserId(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundBody {
    Text {
        body: String,
    },
    Template(TemplateSpec),
    /// A file Meta holds (`media_id`): a caption where its kind takes one (not audio or
    /// stickers), and a document's name.
    File {
        kind: FileKind,
        media_id: String,
        caption: Option<String>,
        filename: Option<String>,
    },
    Location(Location),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub to: Recipient,
    pub body: OutboundBody,
    /// Our message id, echoed by Meta in status webhooks as `biz_opaque_callback_data`.
    pub callback: String,
    /// The wamid of the message it answers (`context.message_id`): the contact sees it quoted.
    pub reply_to: Option<String>,
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
    if let Some(wamid) = &req.reply_to {
        v["context"] = json!({ "message_id": wamid });
    }
    match &req.body {
        OutboundBody::Text { body } => {
            v["type"] = json!("text");
            v["text"] = json!({ "preview_url": false, "body": body });
        }
        OutboundBody::File { kind, media_id, caption, filename } => {
            let mut file = json!({ "id": media_id });
            if let (Some(c), FileKind::Image | FileKind::Video | FileKind::Document) = (caption, kind) {
                file["caption"] = json!(c);
            }
            if let (Some(name), FileKind::Document) = (filename, kind) {
                file["filename"] = json!(name);
            }
            v["type"] = json!(kind.as_str());
            v[kind.as_str()] = file;
        }
        OutboundBody::Location(l) => {
            v["type"] = json!("location");
            v["location"] = json!(l);
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

/// Meta's codes after which it may have taken the message all the same: 1 ("An unknown error
/// occurred"), 2 (service temporarily unavailable) and 131000 ("Something went wrong").
const MAYBE_TAKEN: [i64; 3] = [1, 2, 131000];

/// Reads a refusal. A Graph error body names its code; a gateway's 502 or 504 without one means
/// the request may have reached Meta and its answer was lost on the way back. Both may hide a
/// message Meta took, so they are `lost` (never sent again blindly); every other refusal took
/// nothing.
pub fn parse_error(http_status: u16, body: &[u8]) -> GraphError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(e) => GraphError {
            lost: e.error.code.is_some_and(|c| MAYBE_TAKEN.contains(&c)),
            http_status: Some(http_status),
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => GraphError {
            lost: matches!(http_status, 502 | 504),
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

    /// Issue 26, path 6: answers after which Meta may have taken the message are lost answers
    /// (sending again could send twice), however they look.
    #[test]
    fn answers_that_cannot_say_whether_meta_took_the_message_are_lost() {
        let lost = |status: u16, body: &str| parse_send_response(status, body.as_bytes()).unwrap_err().lost;
        assert!(lost(502, "<html>Bad Gateway</html>"), "a proxy's 502 without a Graph body");
        assert!(lost(504, ""), "a proxy's 504 without a Graph body");
        assert!(lost(500, r#"{"error":{"message":"An unknown error occurred","code":1}}"#), "code 1");
        assert!(lost(503, r#"{"error":{"message":"Service temporarily unavailable","code":2}}"#), "code 2");
        assert!(lost(500, r#"{"error":{"message":"Something went wrong","code":131000}}"#), "code 131000");
        // Refusals say nothing was taken.
        assert!(!lost(400, r#"{"error":{"message":"(#131056) Pair rate limit hit","code":131056}}"#));
        assert!(!lost(429, ""), "a bare 429 is a refusal");
        assert!(!lost(503, "<html>Service Unavailable</html>"), "a proxy's 503 refused before Meta");
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
            reply_to: None,
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

    #[test]
    fn files_locations_and_replies_have_the_shape_meta_documents() {
        let req = |body| OutboundRequest {
            to: Recipient::Phone("+447700900123".into()),
            body,
            callback: "c/m".into(),
            reply_to: Some("wamid.THEIRS".into()),
        };
        let file = |kind| OutboundBody::File {
            kind,
            media_id: "77".into(),
            caption: Some("see".into()),
            filename: Some("a.pdf".into()),
        };
        let doc = request_json(&req(file(FileKind::Document)));
        assert_eq!(doc["type"], "document");
        assert_eq!(doc["document"], serde_json::json!({"id": "77", "caption": "see", "filename": "a.pdf"}));
        assert_eq!(doc["context"], serde_json::json!({"message_id": "wamid.THEIRS"}));
        let audio = request_json(&req(file(FileKind::Audio)));
        assert_eq!(audio["audio"], serde_json::json!({"id": "77"}), "audio takes no caption nor name");
        let video = request_json(&req(file(FileKind::Video)));
        assert_eq!(video["video"], serde_json::json!({"id": "77", "caption": "see"}));
        let at = Location {
            latitude: serde_json::Number::from_f64(51.5).unwrap(),
            longitude: serde_json::Number::from_f64(-0.1).unwrap(),
            name: Some("Branch".into()),
            address: None,
        };
        let loc = request_json(&req(OutboundBody::Location(at)));
        assert_eq!(loc["location"], serde_json::json!({"latitude": 51.5, "longitude": -0.1, "name": "Branch"}));
    }
}

#[derive(Deserialize)]
struct TemplatePage {
    #[serde(default)]
    data: Vec<TemplateEntry>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct TemplateEntry {
    name: String,
    language: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    components: Vec<TemplateComponent>,
}

#[derive(Deserialize)]
struct TemplateComponent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<String>,
}

/// One page of `GET /{waba-id}/message_templates`: its approved templates, and the next page's
/// URL. A template's parameters are the distinct `{{...}}` placeholders of its body.
pub fn parse_templates(
    http_status: u16,
    body: &[u8],
) -> Result<(Vec<crate::ports::TemplateInfo>, Option<String>), GraphError> {
    if !(200..300).contains(&http_status) {
        return Err(parse_error(http_status, body));
    }
    let page: TemplatePage = serde_json::from_slice(body).map_err(|e| GraphError {
        lost: false,
        http_status: Some(http_status),
        code: None,
        message: format!("templates answer: {e}"),
    })?;
    let templates = page
        .data
        .into_iter()
        .filter(|t| t.status.eq_ignore_ascii_case("APPROVED"))
        .map(|t| {
            let body = t.components.iter().find(|c| c.kind.eq_ignore_ascii_case("BODY"));
            let mut names: Vec<&str> = Vec::new();
            let mut rest = body.and_then(|c| c.text.as_deref()).unwrap_or("");
            while let Some(start) = rest.find("{{") {
                let Some(len) = rest[start + 2..].find("}}") else { break };
                let name = rest[start + 2..start + 2 + len].trim();
                if !names.contains(&name) {
                    names.push(name);
                }
                rest = &rest[start + 2 + len + 2..];
            }
            crate::ports::TemplateInfo {
                name: t.name,
                language: t.language,
                category: t.category.to_ascii_lowercase(),
                params: names.len(),
            }
        })
        .collect();
    Ok((templates, page.paging.and_then(|p| p.next)))
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn approved_templates_count_their_distinct_body_parameters() {
        let body = br#"{"data": [
            {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
             "components": [{"type": "HEADER", "text": "{{9}}"}, {"type": "BODY", "text": "Order {{1}} ships {{2}}; order {{1}}."}]},
            {"name": "promo", "language": "en", "status": "PAUSED", "category": "MARKETING", "components": []},
            {"name": "hello", "language": "es", "status": "APPROVED", "category": "UTILITY",
             "components": [{"type": "BODY", "text": "Hola {{name}}"}]}],
            "paging": {"cursors": {"after": "x"}, "next": "https://graph/next"}}"#;
        let (list, next) = parse_templates(200, body).unwrap();
        let got: Vec<(&str, &str, &str, usize)> =
            list.iter().map(|t| (t.name.as_str(), t.language.as_str(), t.category.as_str(), t.params)).collect();
        assert_eq!(got, vec![("order_update", "en_US", "utility", 2), ("hello", "es", "utility", 1)]);
        assert_eq!(next.as_deref(), Some("https://graph/next"));
        assert!(parse_templates(400, br#"{"error": {"code": 100, "message": "bad"}}"#).is_err());
    }
}
