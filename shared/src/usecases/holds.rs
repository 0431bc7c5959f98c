//! Legal holds (CONTRACT.md section 8): on a contact's threads or one thread. Placing and
//! releasing one is on the record; the archive's objects holding what a hold covers carry an
//! S3 legal hold while any hold covers them (the archiver holds new objects as it writes them).

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::json;

use crate::domain::{Caller, Conversation, ConversationId, DomainError, Phone};
use crate::ports::{Item, Key, LegalHold, Versioned, LEGAL_HOLDS};

use super::commit::{execute, Decision, Plan};
use super::search::use_event;
use super::{load, new_ulid, put_new, put_versioned, Ports, Result, UseCaseError};

impl crate::ports::ItemKind for LegalHold {
    fn from_item(item: Item) -> std::result::Result<Self, crate::ports::StoreError> {
        match item {
            Item::LegalHold(h) => Ok(h),
            other => Err(crate::ports::StoreError::Corrupt(format!("not a legal hold: {other:?}").into())),
        }
    }
}

/// `POST /admin/legal-holds`, as asked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldAsk {
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    #[serde(default)]
    pub reason: String,
}

fn invalid(m: &str) -> UseCaseError {
    UseCaseError::Domain(DomainError::Invalid(m.into()))
}

/// Places a hold (admin, compliance): `404` when its contact or thread is unknown. The hold and
/// its record are one commit; then every object holding its threads' records is held.
pub async fn place(ports: &Ports, caller: &Caller, ask: &HoldAsk) -> Result<LegalHold> {
    super::archive::require_record_reader(caller)?;
    let reason = ask.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(invalid("a hold needs a reason (at most 1,000 characters)"));
    }
    let contact = ask.contact.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let contact = contact.map(Phone::parse).transpose().map_err(|e| invalid(&format!("contact: {e}")))?;
    match (&contact, &ask.conversation_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid("a hold covers a contact or a conversation_id: one of them"))
        }
        (Some(phone), None) => {
            if load::<crate::domain::Contact>(&*ports.store, &Key::contact(phone.digits())).await?.is_none() {
                return Err(UseCaseError::NotFound);
            }
        }
        (None, Some(thread)) => {
            if load::<Conversation>(&*ports.store, &Key::conversation(thread)).await?.is_none() {
                return Err(UseCaseError::NotFound);
            }
        }
    }
    let now = ports.clock.now();
    let hold = LegalHold {
        id: new_ulid(),
        contact,
        conversation_id: ask.conversation_id.clone(),
        reason: reason.to_string(),
        by: caller.user_id.clone(),
        created_at: now,
        released_at: None,
        released_by: None,
    };
    let used = use_event(caller, now, json!({ "action": "legal_hold", "hold": hold }));
    execute(ports, || {
        let (hold, used) = (hold.clone(), used.clone());
        async move {
            Ok(Decision::Commit(
                Plan { writes: vec![put_new(Item::LegalHold(hold))], archive: vec![used], ..Plan::default() },
                (),
            ))
        }
    })
    .await?;
    for object in objects_of(ports, &covered(ports, &hold).await?).await? {
        ports.vault.hold(&object, true).await?;
    }
    Ok(hold)
}

/// `GET /admin/legal-holds`: every hold, released ones too, newest first.
pub async fn list(ports: &Ports, caller: &Caller) -> Result<Vec<LegalHold>> {
    super::archive::require_record_reader(caller)?;
    let mut holds = all(ports).await?;
    holds.reverse();
    Ok(holds)
}

/// `DELETE /admin/legal-holds/{id}`: the hold, released (again: as it was). The objects no other
/// hold covers lose their S3 legal hold.
pub async fn release(ports: &Ports, caller: &Caller, id: &str) -> Result<LegalHold> {
    super::archive::require_record_reader(caller)?;
    let now = ports.clock.now();
    let released = execute(ports, || async move {
        let Some(Versioned { item: hold, version }) = load::<LegalHold>(&*ports.store, &Key::legal_hold(id)).await?
        else {
            return Err(UseCaseError::NotFound);
        };
        if hold.released_at.is_some() {
            return Ok(Decision::Done((hold, false)));
        }
        let hold = LegalHold { released_at: Some(now), released_by: Some(caller.user_id.clone()), ..hold };
        let used = use_event(caller, now, json!({ "action": "legal_hold_released", "hold": hold }));
        let plan = Plan {
            writes: vec![put_versioned(Item::LegalHold(hold.clone()), Some(version))],
            archive: vec![used],
            ..Plan::default()
        };
        Ok(Decision::Commit(plan, (hold, true)))
    })
    .await?;
    let (hold, now_released) = released;
    if now_released {
        let still = objects_of(ports, &held_threads(ports).await?).await?;
        for object in objects_of(ports, &covered(ports, &hold).await?).await? {
            if !still.contains(&object) {
                ports.vault.hold(&object, false).await?;
            }
        }
    }
    Ok(hold)
}

/// Every hold, oldest first.
async fn all(ports: &Ports) -> Result<Vec<LegalHold>> {
    let found = ports.store.query(LEGAL_HOLDS, "HOLD#", None, usize::MAX / 2, true).await?;
    Ok(found
        .into_iter()
        .filter_map(|v| match v.item {
            Item::LegalHold(h) => Some(h),
            _ => None,
        })
        .collect())
}

/// The threads `hold` covers now: its thread, or every thread of its contact.
async fn covered(ports: &Ports, hold: &LegalHold) -> Result<BTreeSet<ConversationId>> {
    if let Some(thread) = &hold.conversation_id {
        return Ok(BTreeSet::from([thread.clone()]));
    }
    let Some(phone) = &hold.contact else { return Ok(BTreeSet::new()) };
    let found = super::contact_with_all_threads(&*ports.store, phone.digits()).await?;
    Ok(found.map(|(_, all)| all.into_iter().map(|c| c.item.id).collect()).unwrap_or_default())
}

/// The threads some hold that is not released covers.
pub async fn held_threads(ports: &Ports) -> Result<BTreeSet<ConversationId>> {
    let mut threads = BTreeSet::new();
    for hold in all(ports).await?.into_iter().filter(|h| h.released_at.is_none()) {
        threads.extend(covered(ports, &hold).await?);
    }
    Ok(threads)
}

/// The archive's objects holding records of `threads` (their segments name them).
async fn objects_of(ports: &Ports, threads: &BTreeSet<ConversationId>) -> Result<BTreeSet<String>> {
    let mut objects = BTreeSet::new();
    for thread in threads {
        let segments = ports.store.segments(thread, usize::MAX / 2, true).await?;
        objects.extend(segments.into_iter().map(|s| s.object));
    }
    Ok(objects)
}
