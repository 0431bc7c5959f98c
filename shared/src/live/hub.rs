//! The local runner's fan-out: one task takes in the committed changes from the feed, works
//! out once who may hear of each (the audience), keeps the recent ones in a ring and wakes only
//! the streams of that audience. A stream renders its caller's events itself (`render`), so
//! what it sends is checked against what the caller may see at that moment.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::UserId;
use crate::error::Report;
use crate::ports::Feed;
use crate::usecases::{Caller, Ports, Result};

use super::render::{events_for, Event};
use super::{audience, Audience, Change};

/// Recent changes kept in memory; a stream further behind reads the feed.
const RING: usize = 8192;
/// Changes taken from the feed per read.
const BATCH: usize = 256;
/// How often the feed is read when no commit in this process said it changed.
const POLL: Duration = Duration::from_secs(1);

/// A change, its position in the feed, and who may hear of it.
#[derive(Debug)]
pub struct Entry {
    pub seq: u64,
    pub change: Change,
    pub audience: Audience,
}

/// Where a stream is: every event of changes up to `done` was sent, and the first `skip` events
/// of change `partial` (a change with several events, cut off mid-way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub done: u64,
    pub partial: Option<(u64, usize)>,
}

impl Cursor {
    /// From an event id (`Last-Event-ID`): `12` (change 12 complete) or `12.0` (its first event).
    pub fn parse(id: &str) -> Option<Cursor> {
        match id.trim().split_once('.') {
            None => Some(Cursor { done: id.trim().parse().ok()?, partial: None }),
            Some((seq, i)) => {
                let (seq, i): (u64, usize) = (seq.parse().ok()?, i.parse().ok()?);
                Some(Cursor { done: seq.saturating_sub(1), partial: Some((seq, i + 1)) })
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// Every change after `ring_from` up to `head`, oldest first (positions have gaps).
    ring: VecDeque<Arc<Entry>>,
    ring_from: u64,
    /// The newest change taken in.
    head: u64,
    users: HashMap<UserId, Vec<Weak<Notify>>>,
    agents: Vec<Weak<Notify>>,
}

impl State {
    /// Forgets closed streams; whether none is left.
    fn idle(&mut self) -> bool {
        self.users.retain(|_, l| {
            l.retain(|w| w.strong_count() > 0);
            !l.is_empty()
        });
        self.agents.retain(|w| w.strong_count() > 0);
        self.users.is_empty() && self.agents.is_empty()
    }
}

pub struct Hub {
    ports: Ports,
    feed: Arc<dyn Feed>,
    state: Mutex<State>,
}

/// A stream's registration: notified when a change may concern its caller.
pub struct Listener {
    pub wake: Arc<Notify>,
}

impl Hub {
    /// Starts taking in changes committed from now on; the task doing it is returned too.
    pub async fn start(ports: Ports, feed: Arc<dyn Feed>) -> Result<(Arc<Hub>, tokio::task::JoinHandle<()>)> {
        let head = feed.head().await?;
        let hub = Arc::new(Hub { ports, feed, state: Mutex::new(State { head, ring_from: head, ..State::default() }) });
        let tail = hub.clone();
        let task = tokio::spawn(async move { tail.tail().await });
        Ok((hub, task))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn tail(self: Arc<Self>) {
        let changed = self.feed.notify();
        loop {
            if let Err(e) = self.take_in().await {
                tracing::warn!(error = %Report(&e), "live events: reading the change feed failed");
            }
            tokio::select! {
                _ = changed.notified() => {},
                _ = tokio::time::sleep(POLL) => {},
            }
        }
    }

    /// Reads what the feed has after the head, works out each change's audience, and wakes it.
    async fn take_in(&self) -> Result<()> {
        loop {
            let head = {
                let mut st = self.lock();
                if st.idle() {
                    // Nobody listens: the feed is not even read (`listen` catches up).
                    return Ok(());
                }
                st.head
            };
            let batch = self.feed.after(head, BATCH).await?;
            let Some(&(last, _)) = batch.last() else { return Ok(()) };
            let mut entries = Vec::with_capacity(batch.len());
            for (seq, change) in batch.iter().cloned() {
                entries.push(Arc::new(self.resolve(seq, change).await?));
            }
            let mut st = self.lock();
            // `listen` may have moved the head on meanwhile: the ring stays gap-free.
            let from = st.head;
            for e in entries.into_iter().filter(|e| e.seq > from) {
                for u in &e.audience.users {
                    if let Some(list) = st.users.get_mut(u) {
                        wake_all(list);
                    }
                }
                if e.audience.agents {
                    wake_all(&mut st.agents);
                }
                st.ring.push_back(e);
                if st.ring.len() > RING {
                    if let Some(old) = st.ring.pop_front() {
                        st.ring_from = old.seq;
                    }
                }
            }
            st.head = st.head.max(last);
        }
    }

    async fn resolve(&self, seq: u64, change: Change) -> Result<Entry> {
        let audience = audience(&self.ports, &change).await?;
        Ok(Entry { seq, change, audience })
    }

    /// Registers a stream of `caller`'s, to be woken by the changes that may concern them, and
    /// returns it with the newest change's position (where a new stream starts). The first
    /// stream after an idle spell brings the hub up to the feed's head.
    pub async fn listen(&self, caller: &Caller) -> Result<(Listener, u64)> {
        if self.lock().idle() {
            let head = self.feed.head().await?;
            let mut st = self.lock();
            if head > st.head {
                st.ring.clear();
                st.head = head;
                st.ring_from = head;
            }
        }
        let wake = Arc::new(Notify::new());
        let mut st = self.lock();
        st.users.entry(caller.user_id.clone()).or_default().push(Arc::downgrade(&wake));
        if caller.is_agent() {
            st.agents.push(Arc::downgrade(&wake));
        }
        Ok((Listener { wake }, st.head))
    }

    /// The caller's events after `cursor` (a batch; empty when caught up), each with its id, and
    /// the cursor after them.
    pub async fn next(&self, caller: &Caller, cursor: Cursor) -> Result<(Vec<(String, Event)>, Cursor)> {
        let first = cursor.partial.map_or(cursor.done + 1, |(seq, _)| seq);
        let from_ring = {
            let st = self.lock();
            if st.head < first {
                return Ok((Vec::new(), cursor));
            }
            match first > st.ring_from {
                true => {
                    let start = st.ring.partition_point(|e| e.seq < first);
                    let picked: Vec<Arc<Entry>> = st
                        .ring
                        .iter()
                        .skip(start)
                        .take(BATCH)
                        .filter(|e| e.audience.reaches(caller))
                        .cloned()
                        .collect();
                    let last = (start + BATCH).min(st.ring.len()).checked_sub(1);
                    let end = last.and_then(|i| st.ring.get(i)).map_or(st.head, |e| e.seq.max(cursor.done));
                    Some((picked, end))
                }
                false => None,
            }
        };
        let (entries, end) = match from_ring {
            Some(found) => found,
            None => {
                // Further back than the ring: read the feed and work the audiences out again.
                let batch = self.feed.after(first - 1, BATCH).await?;
                let end = batch.last().map_or(cursor.done, |(s, _)| *s);
                let mut picked = Vec::new();
                for (seq, change) in batch {
                    let e = self.resolve(seq, change).await?;
                    if e.audience.reaches(caller) {
                        picked.push(Arc::new(e));
                    }
                }
                (picked, end)
            }
        };
        let mut out = Vec::new();
        for e in entries {
            let events = events_for(&self.ports, caller, &e.change, &e.audience.threads).await?;
            let skip = match cursor.partial {
                Some((seq, skip)) if seq == e.seq => skip,
                _ => 0,
            };
            let n = events.len();
            for (i, ev) in events.into_iter().enumerate().skip(skip) {
                let id = if i + 1 == n { e.seq.to_string() } else { format!("{}.{i}", e.seq) };
                out.push((id, ev));
            }
        }
        Ok((out, Cursor { done: end.max(cursor.done), partial: None }))
    }
}

fn wake_all(list: &mut Vec<Weak<Notify>>) {
    list.retain(|w| match w.upgrade() {
        Some(n) => {
            n.notify_one();
            true
        }
        None => false,
    });
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn event_ids_resume_after_a_whole_change_or_inside_one() {
        assert_eq!(Cursor::parse("12"), Some(Cursor { done: 12, partial: None }));
        assert_eq!(Cursor::parse("12.0"), Some(Cursor { done: 11, partial: Some((12, 1)) }));
        assert_eq!(Cursor::parse("x"), None);
        assert_eq!(Cursor::parse("1.x"), None);
    }
}
