//! Parses a webhook delivery into typed events. Lenient by design: every array may be absent,
//! unknown kinds become `Other`/`Ignored`, and one malformed item never loses its siblings.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::message::{FileKind, Location};
use crate::domain::ReceiptStatus;

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    Inbound(InboundMessage),
    Status(StatusEvent),
    /// `user_preferences`: the contact stopped (or resumed) marketing messages in WhatsApp.
    MarketingPreference {
        wa_id: String,
        stop: bool,
        at: OffsetDateTime,
    },
    /// `value.errors[]`: not tied to a message; logged.
    AccountError {
        code: i64,
        title: String,
    },
    /// A field, kind or item the connector does not act on (logged and acknowledged).
    Ignored {
        what: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub wamid: String,
    /// `wa_id` / `from`: digits; absent for users Meta knows only by username.
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub profile_name: Option<String>,
    pub timestamp: OffsetDateTime,
    /// The wamid of our message this one replies to.
    pub context_id: Option<String>,
    pub content: InboundContent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InboundContent {
    Text {
        body: String,
    },
    /// A picture, document, audio (`voice` for a voice note), video or sticker: Meta's id of
    /// the file, to fetch while its link lasts, and what Meta says of it.
    File {
        kind: FileKind,
        media_id: String,
        mime_type: Option<String>,
        sha256: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
        voice: bool,
        url: Option<String>,
    },
    Location(Location),
    /// Shared contact cards, as Meta sent them.
    Contacts(Vec<Value>),
    /// A template quick-reply button.
    Button {
        payload: String,
        text: String,
    },
    /// An interactive reply button (`button_reply`) or list row (`list_reply`).
    Reply {
        kind: String,
        id: String,
        title: String,
    },
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    System {
        kind: String,
        body: String,
        new_wa_id: Option<String>,
        new_user_id: Option<String>,
    },
    /// Meta's `unsupported`, or a kind the connector does not know (a poll, one Meta adds next
    /// year): its name (`unsupported.type` when Meta gives one) and what Meta sent of it.
    Unsupported {
        kind: String,
        code: Option<i64>,
        content: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub wamid: String,
    pub status: ReceiptStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub recipient_id: Option<String>,
    pub errors: Vec<MetaError>,
    /// `biz_opaque_callback_data`: our message id, when Meta echoes it.
    pub callback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaError {
    pub code: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: String,
}

#[derive(Debug, thiserror::Error)]
#[error("webhook body is not a WhatsApp delivery: {0}")]
pub struct ParseError(String);

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: ChangeValue,
}

#[derive(Deserialize, Default)]
struct ChangeValue {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<ContactBlock>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<Value>,
    #[serde(default)]
    errors: Vec<Value>,
    #[serde(default)]
    user_preferences: Vec<Value>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    phone_number_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct ContactBlock {
    wa_id: Option<String>,
    user_id: Option<String>,
    #[serde(default)]
    profile: Profile,
}

#[derive(Deserialize, Default)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    id: String,
    from: Option<String>,
    from_user_id: Option<String>,
    timestamp: Value,
    #[serde(rename = "type")]
    kind: String,
    context: Option<RawContext>,
    text: Option<RawText>,
    image: Option<RawFile>,
    document: Option<RawFile>,
    audio: Option<RawFile>,
    video: Option<RawFile>,
    sticker: Option<RawFile>,
    location: Option<Location>,
    contacts: Option<Vec<Value>>,
    button: Option<RawButton>,
    interactive: Option<RawInteractive>,
    reaction: Option<RawReaction>,
    unsupported: Option<RawUnsupported>,
    system: Option<RawSystem>,
    #[serde(default)]
    errors: Vec<MetaError>,
}

#[derive(Deserialize)]
struct RawContext {
    id: Option<String>,
}
#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    body: String,
}
#[derive(Deserialize)]
struct RawFile {
    id: String,
    mime_type: Option<String>,
    sha256: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    #[serde(default)]
    voice: bool,
    url: Option<String>,
}
#[derive(Deserialize)]
struct RawButton {
    #[serde(default)]
    payload: String,
    #[serde(default)]
    text: String,
}
#[derive(Deserialize)]
struct RawInteractive {
    #[serde(rename = "type", default)]
    kind: String,
    button_reply: Option<RawReply>,
    list_reply: Option<RawReply>,
}
#[derive(Deserialize)]
struct RawReply {
    id: String,
    #[serde(default)]
    title: String,
}
#[derive(Deserialize)]
struct RawReaction {
    message_id: String,
    emoji: Option<String>,
}
#[derive(Deserialize)]
struct RawUnsupported {
    #[serde(rename = "type", default)]
    kind: String,
}
#[derive(Deserialize)]
struct RawSystem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    body: String,
    wa_id: Option<String>,
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    timestamp: Value,
    recipient_id: Option<String>,
    #[serde(default)]
    errors: Vec<MetaError>,
    biz_opaque_callback_data: Option<String>,
}

#[derive(Deserialize)]
struct RawPreference {
    wa_id: String,
    #[serde(default)]
    category: String,
    value: String,
    timestamp: Value,
}

/// Meta sends Unix seconds as a string (messages) or a number (user preferences).
fn unix_time(v: &Value) -> Option<OffsetDateTime> {
    let secs = match v {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// Parses one delivery. Only a body that is not a JSON object of `whatsapp_business_account`
/// is an error; anything inside that the connector cannot use becomes `Ignored`.
/// The events of a delivery for our business number `phone_number_id`: a change addressed to
/// another number of the same app (its `metadata.phone_number_id`) is `Ignored` whole.
pub fn parse(body: &[u8], phone_number_id: &str) -> Result<Vec<WebhookEvent>, ParseError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    if env.object != "whatsapp_business_account" {
        return Err(ParseError(format!("object {:?}", env.object)));
    }
    let mut out = Vec::new();
    for change in env.entry.into_iter().flat_map(|e| e.changes) {
        let to = change.value.metadata.as_ref().and_then(|m| m.phone_number_id.as_deref());
        if let Some(other) = to.filter(|to| *to != phone_number_id) {
            out.push(WebhookEvent::Ignored { what: format!("change for another phone number id {other}") });
            continue;
        }
        match change.field.as_str() {
            "messages" => parse_messages_value(change.value, &mut out),
            "user_preferences" => {
                for raw in change.value.user_preferences {
                    out.push(parse_preference(raw));
                }
            }
            other => out.push(WebhookEvent::Ignored { what: format!("field {other}") }),
        }
    }
    Ok(out)
}

fn parse_messages_value(value: ChangeValue, out: &mut Vec<WebhookEvent>) {
    for raw in value.messages {
        out.push(match RawMessage::deserialize(&raw) {
            Ok(m) => inbound(m, raw, &value.contacts),
            Err(e) => WebhookEvent::Ignored { what: format!("malformed message: {e}") },
        });
    }
    for raw in value.statuses {
        out.push(match serde_json::from_value::<RawStatus>(raw) {
            Ok(s) => status(s),
            Err(e) => WebhookEvent::Ignored { what: format!("malformed status: {e}") },
        });
    }
    for raw in value.errors {
        out.push(match serde_json::from_value::<MetaError>(raw) {
            Ok(e) => WebhookEvent::AccountError { code: e.code, title: e.title },
            Err(e) => WebhookEvent::Ignored { what: format!("malformed error: {e}") },
        });
    }
}

/// What Meta sent of a message beyond who, when and what it answers: the raw content an
/// unsupported kind is kept with.
fn raw_content(mut raw: Value) -> Value {
    if let Some(o) = raw.as_object_mut() {
        for envelope in ["id", "from", "from_user_id", "timestamp", "type", "context"] {
            o.remove(envelope);
        }
    }
    raw
}

fn inbound(mut m: RawMessage, raw: Value, contacts: &[ContactBlock]) -> WebhookEvent {
    let Some(timestamp) = unix_time(&m.timestamp) else {
        return WebhookEvent::Ignored { what: format!("message {} without a timestamp", m.id) };
    };
    let contact = contacts
        .iter()
        .find(|c| (m.from.is_some() && c.wa_id == m.from) || (m.from_user_id.is_some() && c.user_id == m.from_user_id))
        .or(if contacts.len() == 1 { contacts.first() } else { None });
    let wa_id = m.from.clone().or_else(|| contact.and_then(|c| c.wa_id.clone()));
    let user_id = m.from_user_id.clone().or_else(|| contact.and_then(|c| c.user_id.clone()));
    let wamid = m.id.clone();
    let context_id = m.context.as_ref().and_then(|c| c.id.clone());
    let kind = std::mem::take(&mut m.kind);
    let file = FileKind::named(&kind).and_then(|k| {
        let f = match k {
            FileKind::Image => m.image.take(),
            FileKind::Document => m.document.take(),
            FileKind::Audio => m.audio.take(),
            FileKind::Video => m.video.take(),
            FileKind::Sticker => m.sticker.take(),
        }?;
        Some(InboundContent::File {
            kind: k,
            media_id: f.id,
            mime_type: f.mime_type,
            sha256: f.sha256,
            caption: f.caption,
            filename: f.filename,
            voice: f.voice,
            url: f.url,
        })
    });
    let named_unsupported = m.unsupported.take().map(|u| u.kind).filter(|k| !k.is_empty());
    let code = m.errors.first().map(|e| e.code);
    let known = file.or(match (kind.as_str(), m) {
        ("text", RawMessage { text: Some(t), .. }) => Some(InboundContent::Text { body: t.body }),
        ("location", RawMessage { location: Some(l), .. }) => Some(InboundContent::Location(l)),
        ("contacts", RawMessage { contacts: Some(c), .. }) => Some(InboundContent::Contacts(c)),
        ("button", RawMessage { button: Some(b), .. }) => {
            Some(InboundContent::Button { payload: b.payload, text: b.text })
        }
        ("interactive", RawMessage { interactive: Some(i), .. }) => {
            let kind = if i.kind.is_empty() { "button_reply".to_string() } else { i.kind };
            i.button_reply.or(i.list_reply).map(|r| InboundContent::Reply { kind, id: r.id, title: r.title })
        }
        ("reaction", RawMessage { reaction: Some(r), .. }) => {
            Some(InboundContent::Reaction { message_id: r.message_id, emoji: r.emoji.filter(|e| !e.is_empty()) })
        }
        ("system", RawMessage { system: Some(s), .. }) => {
            Some(InboundContent::System { kind: s.kind, body: s.body, new_wa_id: s.wa_id, new_user_id: s.user_id })
        }
        _ => None,
    });
    // Anything else is kept whole: Meta's `unsupported`, an interactive reply of a kind not
    // known here, or a type Meta adds later.
    let content = known.unwrap_or_else(|| InboundContent::Unsupported {
        kind: named_unsupported.unwrap_or(kind),
        code,
        content: raw_content(raw),
    });
    WebhookEvent::Inbound(InboundMessage {
        wamid,
        wa_id,
        user_id,
        profile_name: contact.and_then(|c| c.profile.name.clone()),
        timestamp,
        context_id,
        content,
    })
}

fn status(s: RawStatus) -> WebhookEvent {
    let status = match s.status.as_str() {
        "sent" => ReceiptStatus::Sent,
        "delivered" => ReceiptStatus::Delivered,
        "read" => ReceiptStatus::Read,
        "played" => ReceiptStatus::Played,
        "failed" => ReceiptStatus::Failed,
        other => return WebhookEvent::Ignored { what: format!("status {other}") },
    };
    let Some(timestamp) = unix_time(&s.timestamp) else {
        return WebhookEvent::Ignored { what: format!("status of {} without a timestamp", s.id) };
    };
    WebhookEvent::Status(StatusEvent {
        wamid: s.id,
        status,
        timestamp,
        recipient_id: s.recipient_id,
        errors: s.errors,
        callback: s.biz_opaque_callback_data,
    })
}

fn parse_preference(raw: Value) -> WebhookEvent {
    match serde_json::from_value::<RawPreference>(raw) {
        Ok(p) if p.category == "marketing_messages" => match unix_time(&p.timestamp) {
            Some(at) => WebhookEvent::MarketingPreference { wa_id: p.wa_id, stop: p.value == "stop", at },
            None => WebhookEvent::Ignored { what: "user preference without a timestamp".into() },
        },
        Ok(p) => WebhookEvent::Ignored { what: format!("user preference {}", p.category) },
        Err(e) => WebhookEvent::Ignored { what: format!("malformed user preference: {e}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OURS: &str = "106540352242922";

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/fixtures/meta/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn one(name: &str) -> WebhookEvent {
        let mut events = parse(&fixture(name), OURS).unwrap();
        assert_eq!(events.len(), 1, "{name}: {events:?}");
        events.remove(0)
    }

    fn inbound_of(name: &str) -> InboundMessage {
        match one(name) {
            WebhookEvent::Inbound(m) => m,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn text_with_contact() {
        let m = inbound_of("inbound_text.json");
        assert_eq!(m.wa_id.as_deref(), Some("447700900123"));
        assert_eq!(m.profile_name.as_deref(), Some("Olivia Bennett"));
        assert_eq!(m.content, InboundContent::Text { body: "Hi, is my order ready for collection?".into() });
        assert_eq!(m.timestamp.unix_timestamp(), 1789905605);
        assert!(m.wamid.starts_with("wamid."));
    }

    #[test]
    fn non_ascii_text_is_unescaped() {
        let InboundContent::Text { body } = inbound_of("inbound_text_non_ascii.json").content else { panic!() };
        assert!(!body.is_ascii());
        assert!(!body.contains("\\u"));
    }

    #[test]
    fn image_button_reply_reaction_unsupported_system() {
        assert!(matches!(
            inbound_of("inbound_image_caption.json").content,
            InboundContent::File { kind: FileKind::Image, sha256: Some(_), url: Some(_), .. }
        ));
        let b = inbound_of("inbound_template_button_opt_in_yes.json");
        assert_eq!(b.content, InboundContent::Button { payload: "OPT_IN_YES".into(), text: "Yes, opt me in".into() });
        assert!(b.context_id.is_some());
        assert!(
            matches!(inbound_of("inbound_template_button_resume.json").content, InboundContent::Button { ref payload, .. } if payload == "RESUME")
        );
        assert!(matches!(inbound_of("inbound_interactive_button_reply.json").content, InboundContent::Reply { .. }));
        assert!(matches!(inbound_of("inbound_reaction.json").content, InboundContent::Reaction { emoji: Some(_), .. }));
        assert!(matches!(
            inbound_of("inbound_reaction_removed.json").content,
            InboundContent::Reaction { emoji: None, .. }
        ));
        assert!(matches!(
            inbound_of("inbound_unsupported.json").content,
            InboundContent::Unsupported { code: Some(131051), .. }
        ));
        let s = inbound_of("inbound_system_user_changed_number.json");
        assert!(matches!(s.content, InboundContent::System { ref kind, .. } if kind == "user_changed_number"));
    }

    #[test]
    fn every_kind_a_contact_sends_keeps_its_content() {
        let file = |name| match inbound_of(name).content {
            InboundContent::File { kind, media_id, mime_type, sha256, caption, filename, voice, .. } => {
                assert!(!media_id.is_empty() && sha256.is_some(), "{name}");
                (kind, mime_type.unwrap(), caption, filename, voice)
            }
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(
            file("inbound_document.json"),
            (
                FileKind::Document,
                "application/pdf".into(),
                Some("Signed mandate".into()),
                Some("mandate-signed.pdf".into()),
                false
            )
        );
        assert_eq!(
            file("inbound_audio_voice.json"),
            (FileKind::Audio, "audio/ogg; codecs=opus".into(), None, None, true)
        );
        assert_eq!(
            file("inbound_video.json"),
            (FileKind::Video, "video/mp4".into(), Some("The crack in the wall".into()), None, false)
        );
        assert_eq!(file("inbound_sticker.json"), (FileKind::Sticker, "image/webp".into(), None, None, false));

        let InboundContent::Location(l) = inbound_of("inbound_location.json").content else { panic!() };
        assert_eq!((l.latitude.as_f64(), l.longitude.as_f64()), (Some(51.501364), Some(-0.14189)));
        assert_eq!(
            (l.name.as_deref(), l.address.as_deref()),
            (Some("Branch office"), Some("1 Example Street, London SW1A 1AA"))
        );

        let InboundContent::Contacts(cards) = inbound_of("inbound_contacts.json").content else { panic!() };
        assert_eq!(cards[0]["name"]["formatted_name"], "Harry Patel");
        assert_eq!(cards[0]["phones"][0]["wa_id"], "447700900456");

        let list = inbound_of("inbound_interactive_list_reply.json");
        assert_eq!(
            list.content,
            InboundContent::Reply { kind: "list_reply".into(), id: "branch-london".into(), title: "London".into() }
        );
        assert!(list.context_id.is_some());
        let reply = inbound_of("inbound_text_reply.json");
        assert_eq!(reply.context_id.as_deref(), Some("wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSN0ExQzlFMEI1RDNGMkE0QzZFAA=="));
    }

    #[test]
    fn what_the_connector_does_not_know_is_kept_whole_with_metas_name_for_it() {
        let InboundContent::Unsupported { kind, code, content } = inbound_of("inbound_unsupported_poll.json").content
        else {
            panic!()
        };
        assert_eq!((kind.as_str(), code), ("poll_creation", Some(131051)));
        assert_eq!(content["unsupported"]["type"], "poll_creation");
        assert!(content.get("from").is_none() && content.get("id").is_none(), "who and when are the message's own");
        let InboundContent::Unsupported { kind, code, content } = inbound_of("inbound_unknown_type.json").content
        else {
            panic!()
        };
        assert_eq!((kind.as_str(), code), ("hologram", None));
        assert_eq!(content["hologram"]["label"], "A type Meta adds next year");
        // An interactive reply of a kind not known here is kept too, not dropped.
        let body = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
            "messages":[{"id":"w","from":"1","timestamp":"1","type":"interactive",
                "interactive":{"type":"nfm_reply","nfm_reply":{"response_json":"{}"}}}]}}]}]}"#;
        let [WebhookEvent::Inbound(m)] = &parse(body, OURS).unwrap()[..] else { panic!() };
        assert!(matches!(&m.content, InboundContent::Unsupported { kind, .. } if kind == "interactive"));
    }

    #[test]
    fn business_scoped_user_without_phone() {
        let m = inbound_of("inbound_text_bsuid_no_phone.json");
        assert_eq!(m.wa_id, None);
        assert_eq!(m.user_id.as_deref(), Some("GB.13491208655302741918"));
    }

    #[test]
    fn statuses_of_every_shape() {
        for (name, want) in [
            ("status_sent.json", ReceiptStatus::Sent),
            ("status_sent_legacy_conversation.json", ReceiptStatus::Sent),
            ("status_delivered.json", ReceiptStatus::Delivered),
            ("status_delivered_bsuid.json", ReceiptStatus::Delivered),
            ("status_read.json", ReceiptStatus::Read),
        ] {
            let WebhookEvent::Status(s) = one(name) else { panic!("{name}") };
            assert_eq!(s.status, want, "{name}");
        }
        for (name, code) in [
            ("status_failed_131026.json", 131026),
            ("status_failed_131047.json", 131047),
            ("status_failed_131049.json", 131049),
            ("status_failed_131050.json", 131050),
        ] {
            let WebhookEvent::Status(s) = one(name) else { panic!("{name}") };
            assert_eq!((s.status, s.errors[0].code), (ReceiptStatus::Failed, code), "{name}");
        }
    }

    #[test]
    fn a_voice_notes_first_play_is_a_status() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
            "statuses":[{"id":"wamid.V","status":"played","timestamp":"1789905700","recipient_id":"447700900123"}]}}]}]}"#;
        let [WebhookEvent::Status(s)] = &parse(body, OURS).unwrap()[..] else { panic!() };
        assert_eq!(s.status, ReceiptStatus::Played);
    }

    #[test]
    fn batch_walks_every_entry_and_change() {
        let events = parse(&fixture("batch_two_entries_3_messages_2_statuses.json"), OURS).unwrap();
        let inbound = events.iter().filter(|e| matches!(e, WebhookEvent::Inbound(_))).count();
        let statuses = events.iter().filter(|e| matches!(e, WebhookEvent::Status(_))).count();
        assert_eq!((inbound, statuses), (3, 2));
    }

    #[test]
    fn account_errors_and_preferences() {
        assert!(matches!(one("value_errors.json"), WebhookEvent::AccountError { code: 130429, .. }));
        assert!(matches!(one("user_preferences_stop.json"), WebhookEvent::MarketingPreference { stop: true, .. }));
    }

    #[test]
    fn a_malformed_item_does_not_lose_its_siblings() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
            "messages":[{"id":"bad"},{"id":"w2","from":"1555","timestamp":"1","type":"text","text":{"body":"hi"}}],
            "statuses":[{"id":"w3","status":"deleted","timestamp":"1"}]}},{"field":"account_update","value":{}}]}]}"#;
        let events = parse(body, OURS).unwrap();
        assert_eq!(events.len(), 4);
        assert!(matches!(&events[1], WebhookEvent::Inbound(m) if m.wamid == "w2"));
        assert!(matches!(&events[2], WebhookEvent::Ignored { .. }));
    }

    #[test]
    fn not_a_delivery_is_an_error() {
        assert!(parse(b"not json", OURS).is_err());
        assert!(parse(br#"{"object":"page","entry":[]}"#, OURS).is_err());
        assert!(parse(b"[]", OURS).is_err());
    }

    #[test]
    fn a_change_for_another_business_number_is_ignored_whole() {
        let body = String::from_utf8(fixture("inbound_text_stop.json")).unwrap().replace(OURS, "999999999999999");
        let events = parse(body.as_bytes(), OURS).unwrap();
        assert!(matches!(events.as_slice(), [WebhookEvent::Ignored { what }] if what.contains("999999999999999")));
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes, OURS);
        }

        #[test]
        fn parser_never_panics_on_arbitrary_json_shapes(
            kind in "[a-z]{0,12}", body in ".{0,40}", ts in prop_oneof![Just(serde_json::json!("17")), Just(serde_json::json!(17)), Just(serde_json::json!(null)), Just(serde_json::json!("x"))],
        ) {
            let v = serde_json::json!({"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{
                "contacts":[{"wa_id":"1"}],
                "messages":[{"id":"w","from":"1","timestamp":ts,"type":kind,"text":{"body":body}, kind.clone(): {"id": body}}],
                "statuses":[{"id":"w","status":kind,"timestamp":ts}]}}]}]});
            let events = parse(serde_json::to_vec(&v).unwrap().as_slice(), OURS).unwrap();
            prop_assert_eq!(events.len(), 2);
        }
    }
}
