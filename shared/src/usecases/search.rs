//! Search (CONTRACT.md section 8): the officer's over the whole record (`RecordIndex`), and
//! every user's over the threads they may read, as they read them. Every use of the record by
//! an officer is itself on the record (`record_use`), committed before the answer is given.

use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::archive::{ArchiveKind, RECORD_USE};
use crate::domain::search::{holds_all, Ask, Filter, Hit, Page};
use crate::domain::{Caller, ConversationId, Message, Sender};
use crate::ports::Item;

use super::commit::{execute, Decision, Plan};
use super::views::{visible_to, MessageView};
use super::{readable_conversation, Ports, Result, UseCaseError};

/// Threads a user's search reads at once.
const THREADS_AT_ONCE: usize = 16;
/// Messages read per page of one thread.
const PAGE: usize = 500;

/// `GET /admin/search`: the archived messages of every thread that match `ask` (admin,
/// compliance). The search is on the record before its results are given.
pub async fn search_record(ports: &Ports, caller: &Caller, ask: &Ask) -> Result<Page> {
    super::archive::require_record_reader(caller)?;
    let filter = Filter::of(ask, ports.clock.now())?;
    let threads = narrowed_to(ports, &filter).await?;
    let hits = match &threads {
        Some(t) if t.is_empty() => Vec::new(),
        _ => ports.index.search(&filter, threads.as_deref()).await?,
    };
    let page = Page::of(hits, filter.limit);
    let asked = json!({ "action": "search", "filter": filter, "after": ask.after, "results": page.results.len() });
    record_use(ports, caller, asked).await?;
    Ok(page)
}

/// The threads `filter`'s contact and participant narrow it to (both: the threads of both);
/// `None` when it names neither.
async fn narrowed_to(ports: &Ports, filter: &Filter) -> Result<Option<Vec<ConversationId>>> {
    let mut threads: Option<Vec<ConversationId>> = None;
    if let Some(phone) = &filter.contact {
        let found = super::contact_with_all_threads(&*ports.store, phone.digits()).await?;
        threads = Some(found.map(|(_, all)| all.into_iter().map(|c| c.item.id).collect()).unwrap_or_default());
    }
    if let Some(user) = &filter.user {
        let theirs = ports.store.memberships(user, usize::MAX / 2).await?;
        threads = Some(match threads {
            Some(t) => t.into_iter().filter(|id| theirs.contains(id)).collect(),
            None => theirs,
        });
    }
    Ok(threads)
}

/// Puts `what` (an officer's use of the record: the action and its terms) on the `RECORD_USE`
/// chain, as `caller` did it, now.
pub async fn record_use(ports: &Ports, caller: &Caller, what: Value) -> Result<()> {
    record(ports, use_event(caller, ports.clock.now(), what)).await
}

/// Commits `event` (a use of the record) onto the `RECORD_USE` chain.
pub(crate) async fn record(ports: &Ports, event: crate::archive::ArchiveEvent) -> Result<()> {
    execute(ports, || {
        let event = event.clone();
        async move { Ok(Decision::Commit(Plan { archive: vec![event], ..Plan::default() }, ())) }
    })
    .await
}

/// `what` (an action and its terms) as `caller`'s use of the record at `at`, with their roles:
/// the event a commit puts on the `RECORD_USE` chain.
pub(crate) fn use_event(caller: &Caller, at: time::OffsetDateTime, mut what: Value) -> crate::archive::ArchiveEvent {
    if let Some(fields) = what.as_object_mut() {
        fields.insert("roles".into(), json!(caller.roles));
    }
    super::archive::event(&RECORD_USE.into(), ArchiveKind::RecordUse, Sender::User(caller.user_id.clone()), at, what)
}

/// `GET /search`: the messages of the caller's threads that match `ask`, as the caller reads
/// them (their history from when they joined, notices meant for them, text as shown).
pub async fn search_mine(ports: &Ports, caller: &Caller, ask: &Ask) -> Result<Page> {
    if ask.user.is_some() {
        return Err(UseCaseError::Domain(crate::domain::DomainError::Invalid(
            "user is for the compliance search (/admin/search); this one reads your own threads".into(),
        )));
    }
    let filter = Filter::of(ask, ports.clock.now())?;
    let mut threads = ports.store.memberships(&caller.user_id, usize::MAX / 2).await?;
    if let Some(phone) = &filter.contact {
        let theirs = super::contact_with_all_threads(&*ports.store, phone.digits()).await?;
        let theirs: Vec<ConversationId> =
            theirs.map(|(_, all)| all.into_iter().map(|c| c.item.id).collect()).unwrap_or_default();
        threads.retain(|t| theirs.contains(t));
    }
    let filter = &filter;
    let found: Vec<Vec<Hit>> = stream::iter(threads)
        .map(|thread| async move { hits_in(ports, caller, &thread, filter).await })
        .buffer_unordered(THREADS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(Page::of(found.into_iter().flatten().collect(), filter.limit))
}

/// The caller's hits among one thread's messages, newest first, at most `filter.limit + 1`.
async fn hits_in(ports: &Ports, caller: &Caller, thread: &ConversationId, filter: &Filter) -> Result<Vec<Hit>> {
    let conv = match readable_conversation(&*ports.store, caller, thread).await {
        Ok(c) => c.item,
        // Left since the membership was read, or never readable: nothing to find.
        Err(UseCaseError::NotFound | UseCaseError::Forbidden(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let me = conv.participant(&caller.user_id);
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = ports.store.messages(thread, cursor.as_ref(), PAGE, false).await?;
        let full = page.len() == PAGE;
        for v in page {
            let Item::Message(m) = v.item else { continue };
            cursor = Some(m.id.clone());
            if m.created_at < filter.from {
                return Ok(out);
            }
            if !visible_to(&m, &caller.user_id) || !me.is_none_or(|p| p.may_see(&m.id)) {
                continue;
            }
            if let Some(hit) = shown(&m, caller).filter(|h| filter.admits(h) && matches(h, filter)) {
                out.push(hit);
                if out.len() > filter.limit {
                    return Ok(out);
                }
            }
        }
        if !full {
            return Ok(out);
        }
    }
}

fn matches(hit: &Hit, filter: &Filter) -> bool {
    holds_all(hit.text.as_deref().unwrap_or(""), &filter.words)
}

/// `m` as a hit, its text as `caller` reads it.
fn shown(m: &Message, caller: &Caller) -> Option<Hit> {
    let view = MessageView::new(m, &caller.locale);
    Some(Hit {
        conversation_id: m.conversation_id.clone(),
        message_id: m.id.clone(),
        at: m.created_at,
        sender: m.sender.to_string(),
        kind: serde_json::to_value(view.kind).ok()?.as_str()?.to_string(),
        text: view.text,
        seq: 0,
    })
}
