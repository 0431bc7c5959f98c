//! `Store` and `Vault` in memory: the same conditional semantics as SQLite and DynamoDB, for the
//! deterministic simulation and fast tests. Nothing survives the process; not for running the
//! connector.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::archive::Position;
use crate::ports::{
    ArchiveError, ChangeStream, Clock, Item, Key, Store, StoreError, StreamEntry, Transaction, Vault, Versioned, Write,
    IDEMPOTENCY_WINDOW,
};

pub struct MemoryStore {
    items: Mutex<BTreeMap<(String, String), Versioned<Item>>>,
    /// Tokens of committed transactions and when they committed: a resubmission within
    /// `IDEMPOTENCY_WINDOW` answers `Ok` and writes nothing, as DynamoDB's does.
    tokens: Mutex<BTreeMap<String, OffsetDateTime>>,
    /// What expiring items (TTLs) and tokens are measured against.
    clock: Arc<dyn Clock>,
    /// The change stream, as DynamoDB Streams has it: one entry per item write that carried
    /// archive events, numbered in commit order.
    stream: Mutex<Vec<StreamEntry>>,
    archivable: Arc<tokio::sync::Notify>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::with_clock(Arc::new(super::clock::SystemClock))
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store whose items expire by `clock` (the simulation's), as TTLs do by the wall clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> MemoryStore {
        MemoryStore {
            items: Mutex::default(),
            tokens: Mutex::default(),
            clock,
            stream: Mutex::default(),
            archivable: Arc::default(),
        }
    }
}

fn live(v: &Versioned<Item>, now: OffsetDateTime) -> bool {
    v.item.expires_at().is_none_or(|t| t > now)
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &Key) -> Result<Option<Versioned<Item>>, StoreError> {
        let items = self.items.lock().map_err(|_| unavailable())?;
        let now = self.clock.now();
        Ok(items.get(&(key.pk.clone(), key.sk.clone())).filter(|v| live(v, now)).cloned())
    }

    async fn query(
        &self,
        pk: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Versioned<Item>>, StoreError> {
        let items = self.items.lock().map_err(|_| unavailable())?;
        let now = self.clock.now();
        let range = items
            .range((pk.to_string(), prefix.to_string())..)
            .take_while(|((p, s), _)| p == pk && s.starts_with(prefix));
        let matching = range.filter(|((_, s), v)| {
            live(v, now) && after.is_none_or(|a| if ascending { s.as_str() > a } else { s.as_str() < a })
        });
        let mut out: Vec<Versioned<Item>> = matching.map(|(_, v)| v.clone()).collect();
        if !ascending {
            out.reverse();
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Versioned<Item>>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    async fn submit(&self, tx: &Transaction) -> Result<(), StoreError> {
        tx.check_limits()?;
        let now = self.clock.now();
        let mut items = self.items.lock().map_err(|_| unavailable())?;
        let mut tokens = self.tokens.lock().map_err(|_| unavailable())?;
        tokens.retain(|_, at| *at + IDEMPOTENCY_WINDOW > now);
        if tokens.contains_key(&tx.token) {
            return Ok(());
        }
        let current = |items: &BTreeMap<(String, String), Versioned<Item>>, key: &Key| {
            items.get(&(key.pk.clone(), key.sk.clone())).filter(|v| live(v, now)).map(|v| v.version)
        };
        for (index, w) in tx.writes.iter().enumerate() {
            let (key, cond) = match w {
                Write::Put { item, cond } => (item.key(), *cond),
                Write::Delete { key, cond } | Write::Check { key, cond } => (key.clone(), *cond),
            };
            if !cond.holds(current(&items, &key)) {
                return Err(StoreError::Conflict { index });
            }
        }
        for w in &tx.writes {
            match w {
                Write::Put { item, .. } => {
                    let key = item.key();
                    let version = current(&items, &key).unwrap_or(0) + 1;
                    items.insert((key.pk, key.sk), Versioned { item: item.clone(), version });
                }
                Write::Delete { key, .. } => {
                    items.remove(&(key.pk.clone(), key.sk.clone()));
                }
                Write::Check { .. } => {}
            }
        }
        tokens.insert(tx.token.clone(), now);
        if !tx.entry.records.is_empty() {
            let mut stream = self.stream.lock().map_err(|_| unavailable())?;
            // One entry per carrying item, in the order the items were written.
            for w in &tx.writes {
                let Write::Put { item, .. } = w else { continue };
                let key = item.key();
                let records: Vec<_> = tx
                    .entry
                    .records
                    .iter()
                    .filter(|j| key.pk == Key::conversation(&j.event.conversation_id).pk && key.sk == j.source.item)
                    .cloned()
                    .collect();
                if !records.is_empty() {
                    let position = Position::of(stream.len() as u64 + 1);
                    stream.push(StreamEntry { position, records });
                }
            }
            self.archivable.notify_one();
        }
        Ok(())
    }
}

#[async_trait]
impl ChangeStream for MemoryStore {
    async fn entries_after(&self, position: Option<&Position>, limit: usize) -> Result<Vec<StreamEntry>, StoreError> {
        let stream = self.stream.lock().map_err(|_| unavailable())?;
        let from = position.and_then(Position::number).unwrap_or(0) as usize;
        Ok(stream.iter().skip(from).take(limit).cloned().collect())
    }

    fn archive_notify(&self) -> Arc<tokio::sync::Notify> {
        self.archivable.clone()
    }
}

/// Write-once objects: a name is put once; putting it again with other bytes is refused, as
/// a locked S3 object cannot be changed (S3 would keep both versions; the first one counts).
#[derive(Default)]
pub struct MemoryVault {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

#[async_trait]
impl Vault for MemoryVault {
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), ArchiveError> {
        let mut objects = self.objects.lock().map_err(|_| ArchiveError("vault lock poisoned".into()))?;
        match objects.get(name) {
            Some(old) if *old != body => Err(ArchiveError(format!("{name} is locked").into())),
            _ => {
                objects.insert(name.to_string(), body);
                Ok(())
            }
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        Ok(self.objects.lock().map_err(|_| ArchiveError("vault lock poisoned".into()))?.get(name).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let objects = self.objects.lock().map_err(|_| ArchiveError("vault lock poisoned".into()))?;
        Ok(objects.keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }

    async fn erase(&self, name: &str) -> Result<(), ArchiveError> {
        self.objects.lock().map_err(|_| ArchiveError("vault lock poisoned".into()))?.remove(name);
        Ok(())
    }
}

/// The record's search index as a list: every hit kept once, matched by `search::holds_all`.
#[derive(Default)]
pub struct MemoryIndex {
    hits: Mutex<BTreeMap<(crate::domain::ConversationId, u64), crate::domain::search::Hit>>,
}

#[async_trait]
impl crate::ports::RecordIndex for MemoryIndex {
    async fn add(&self, records: &[crate::archive::ArchiveRecord]) -> Result<(), crate::ports::IndexError> {
        let mut hits = self.hits.lock().map_err(|_| crate::ports::IndexError("index lock poisoned".into()))?;
        for h in records.iter().filter_map(crate::archive::hit) {
            hits.entry((h.conversation_id.clone(), h.seq)).or_insert(h);
        }
        Ok(())
    }

    async fn search(
        &self,
        filter: &crate::domain::search::Filter,
        threads: Option<&[crate::domain::ConversationId]>,
    ) -> Result<Vec<crate::domain::search::Hit>, crate::ports::IndexError> {
        use crate::domain::search::{holds_all, Hit};
        let hits = self.hits.lock().map_err(|_| crate::ports::IndexError("index lock poisoned".into()))?;
        let mut found: Vec<Hit> = hits
            .values()
            .filter(|h| threads.is_none_or(|t| t.contains(&h.conversation_id)))
            .filter(|h| filter.admits(h) && holds_all(h.text.as_deref().unwrap_or(""), &filter.words))
            .cloned()
            .collect();
        found.sort_by(Hit::order);
        found.truncate(filter.limit + 1);
        Ok(found)
    }

    async fn forget(&self, records: &[crate::archive::ArchiveRecord]) -> Result<(), crate::ports::IndexError> {
        let mut hits = self.hits.lock().map_err(|_| crate::ports::IndexError("index lock poisoned".into()))?;
        for r in records {
            hits.remove(&(r.event.conversation_id.clone(), r.seq));
        }
        Ok(())
    }
}
