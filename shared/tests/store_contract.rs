//! One contract for every `Store`: the embedded SQLite adapter, the in-memory one (the
//! simulation's) and the DynamoDB adapter (on moto, started by `scripts/test`, whose address
//! arrives in `MOTO_ENDPOINT`) pass the same tests.

use std::sync::Arc;

use shared::adapters::aws::DynamoStore;
use shared::adapters::embedded::{Db, SqliteStore};
use shared::ports::{Cond, Item, Key, Store, StoreError, Write};
use time::{Duration, OffsetDateTime};

mod support;
use support::{aws_clients, unique};

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(SqliteStore::new(Db::open(dir.path()).unwrap())), dir)
}

async fn dynamo() -> Option<Arc<dyn Store>> {
    let clients = aws_clients().await?;
    let table = unique("items");
    DynamoStore::create_table(&clients.dynamodb, &table).await.unwrap();
    // moto's transactions are not isolated from each other (store contract run, 2026-11-22):
    // serialize writes there. Real DynamoDB needs no such thing.
    Some(Arc::new(DynamoStore::new(clients.dynamodb, table).with_serial_writes(true)))
}

fn link(conv: &str, user: &str) -> Item {
    Item::Membership { user_id: user.into(), conversation_id: conv.into() }
}

fn mark(id: &str, expires_at: OffsetDateTime) -> Item {
    Item::Dedupe { id: id.into(), expires_at }
}

async fn first_write_wins_once(store: Arc<dyn Store>) {
    let item = link("c1", "u1");
    store.transact(vec![Write::Put { item: item.clone(), cond: Cond::NotExists }]).await.unwrap();
    let again = store.transact(vec![Write::Put { item: item.clone(), cond: Cond::NotExists }]).await;
    assert!(matches!(again, Err(StoreError::Conflict { index: 0 })), "{again:?}");
    let got = store.get(&item.key()).await.unwrap().unwrap();
    assert_eq!((got.item, got.version), (item, 1));
}

async fn a_stale_version_conflicts(store: Arc<dyn Store>) {
    let item = link("c2", "u1");
    store.transact(vec![Write::Put { item: item.clone(), cond: Cond::NotExists }]).await.unwrap();
    store.transact(vec![Write::Put { item: item.clone(), cond: Cond::Version(1) }]).await.unwrap();
    assert_eq!(store.get(&item.key()).await.unwrap().unwrap().version, 2);
    let stale = store.transact(vec![Write::Put { item: item.clone(), cond: Cond::Version(1) }]).await;
    assert!(matches!(stale, Err(StoreError::Conflict { index: 0 })));
    let missing = store.transact(vec![Write::Put { item: link("nope", "u"), cond: Cond::Version(1) }]).await;
    assert!(matches!(missing, Err(StoreError::Conflict { .. })));
    store.transact(vec![Write::Put { item: item.clone(), cond: Cond::Always }]).await.unwrap();
    assert_eq!(store.get(&item.key()).await.unwrap().unwrap().version, 3);
}

async fn transactions_are_all_or_nothing_and_name_the_failed_write(store: Arc<dyn Store>) {
    let a = link("c3", "a");
    let b = link("c3", "b");
    store.transact(vec![Write::Put { item: b.clone(), cond: Cond::NotExists }]).await.unwrap();
    let r = store
        .transact(vec![
            Write::Put { item: a.clone(), cond: Cond::NotExists },
            Write::Check { key: b.key(), cond: Cond::Version(7) },
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict { index: 1 })), "{r:?}");
    assert!(store.get(&a.key()).await.unwrap().is_none(), "nothing of a failed transaction is written");
    store
        .transact(vec![
            Write::Put { item: a.clone(), cond: Cond::NotExists },
            Write::Delete { key: b.key(), cond: Cond::Version(1) },
        ])
        .await
        .unwrap();
    assert!(store.get(&a.key()).await.unwrap().is_some());
    assert!(store.get(&b.key()).await.unwrap().is_none());
}

async fn queries_follow_sort_order_prefix_after_and_limit(store: Arc<dyn Store>) {
    for u in ["u1", "u2", "u3", "u4"] {
        store
            .transact(vec![Write::Put {
                item: Item::Membership { user_id: u.into(), conversation_id: "x".into() },
                cond: Cond::Always,
            }])
            .await
            .unwrap();
        store.transact(vec![Write::Put { item: link(&format!("c{u}"), "q"), cond: Cond::Always }]).await.unwrap();
    }
    let keys = |v: Vec<shared::ports::Versioned<Item>>| v.into_iter().map(|x| x.item.key().sk).collect::<Vec<_>>();
    let all = store.query("USER#q", "CONV#", None, 10, true).await.unwrap();
    assert_eq!(keys(all), vec!["CONV#cu1", "CONV#cu2", "CONV#cu3", "CONV#cu4"]);
    let page = store.query("USER#q", "CONV#", Some("CONV#cu1"), 2, true).await.unwrap();
    assert_eq!(keys(page), vec!["CONV#cu2", "CONV#cu3"]);
    let back = store.query("USER#q", "CONV#", Some("CONV#cu3"), 5, false).await.unwrap();
    assert_eq!(keys(back), vec!["CONV#cu2", "CONV#cu1"]);
    assert!(store.query("USER#q", "MSG#", None, 5, true).await.unwrap().is_empty());
    let many = store
        .get_many(&[
            Key::membership(&"q".into(), &"cu2".into()),
            Key::membership(&"q".into(), &"none".into()),
            Key::membership(&"q".into(), &"cu1".into()),
        ])
        .await
        .unwrap();
    assert_eq!(many.iter().map(|m| m.is_some()).collect::<Vec<_>>(), vec![true, false, true]);
    assert_eq!(many[0].as_ref().unwrap().item.key().sk, "CONV#cu2");
}

async fn expired_items_are_absent(store: Arc<dyn Store>) {
    let past = OffsetDateTime::now_utc() - Duration::seconds(5);
    store.transact(vec![Write::Put { item: mark("old", past), cond: Cond::Always }]).await.unwrap();
    assert!(store.get(&Key::dedupe("old")).await.unwrap().is_none());
    store
        .transact(vec![Write::Put { item: mark("old", past + Duration::days(9)), cond: Cond::NotExists }])
        .await
        .unwrap();
    assert!(store.get(&Key::dedupe("old")).await.unwrap().is_some(), "an expired mark may be written again");
}

/// 50 concurrent read-modify-writes of one item, each retried on conflict: none is lost.
async fn concurrent_conditional_updates_lose_none(store: Arc<dyn Store>) {
    let key = Key::contact("race");
    let mut contact = shared::domain::Contact::new("race".into(), None, None);
    contact.name = Some(String::new());
    store.transact(vec![Write::Put { item: Item::Contact(contact), cond: Cond::NotExists }]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let v = store.get(&key).await.unwrap().unwrap();
                let Item::Contact(mut c) = v.item else { panic!() };
                c.name = Some(format!("{}{i},", c.name.unwrap_or_default()));
                match store.transact(vec![Write::Put { item: Item::Contact(c), cond: Cond::Version(v.version) }]).await
                {
                    Ok(()) => return,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = store.get(&key).await.unwrap().unwrap();
    let Item::Contact(c) = v.item else { panic!() };
    let mut seen: Vec<u32> = c.name.unwrap().split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    assert_eq!(v.version, 51);
}

/// 20 concurrent two-item transactions on one item, each retried on conflict: none is lost,
/// and a lost race is always a conflict, never an error.
async fn concurrent_transactions_lose_none(store: Arc<dyn Store>) {
    let key = Key::contact("tx-race");
    store
        .transact(vec![Write::Put {
            item: Item::Contact(shared::domain::Contact::new("tx-race".into(), None, None)),
            cond: Cond::NotExists,
        }])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let v = store.get(&key).await.unwrap().unwrap();
                let writes = vec![
                    Write::Put { item: v.item.clone(), cond: Cond::Version(v.version) },
                    Write::Put { item: link("tx", &format!("u{i}")), cond: Cond::NotExists },
                ];
                match store.transact(writes).await {
                    Ok(()) => return,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.get(&key).await.unwrap().unwrap().version, 21);
    let links: Vec<Key> = (0..20).map(|i| Key::membership(&format!("u{i}").into(), &"tx".into())).collect();
    let found = store.get_many(&links).await.unwrap();
    assert!(found.iter().all(|f| f.is_some()), "every committed transaction's new item is stored");
}

/// 64 transactions at once, every other one failing its last condition after a write of its
/// own: the failed ones leave nothing, and the ones committed beside them (the embedded store
/// commits concurrent callers together) keep everything.
async fn a_failed_transaction_undoes_only_itself(store: Arc<dyn Store>) {
    let missing = Key::contact("nobody");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (store, missing) = (store.clone(), missing.clone());
        tasks.push(tokio::spawn(async move {
            let mut writes = vec![Write::Put { item: link("grp", &format!("u{i}")), cond: Cond::NotExists }];
            if i % 2 == 1 {
                writes.push(Write::Check { key: missing, cond: Cond::Version(1) });
            }
            (i, store.transact(writes).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match i % 2 {
            0 => assert!(r.is_ok(), "{i}: {r:?}"),
            _ => assert!(matches!(r, Err(StoreError::Conflict { index: 1 })), "{i}: {r:?}"),
        }
    }
    let links: Vec<Key> = (0..64).map(|i| Key::membership(&format!("u{i}").into(), &"grp".into())).collect();
    for (i, found) in store.get_many(&links).await.unwrap().iter().enumerate() {
        assert_eq!(found.is_some(), i % 2 == 0, "u{i}");
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let (s, _dir) = super::sqlite().await;
                super::$name(s).await;
            })*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                super::$name(std::sync::Arc::new(shared::adapters::memory::MemoryStore::new())).await;
            })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                if let Some(s) = super::dynamo().await { super::$name(s).await; }
            })*
        }
    };
}

contract!(
    first_write_wins_once,
    a_stale_version_conflicts,
    transactions_are_all_or_nothing_and_name_the_failed_write,
    queries_follow_sort_order_prefix_after_and_limit,
    expired_items_are_absent,
    concurrent_conditional_updates_lose_none,
    concurrent_transactions_lose_none,
    a_failed_transaction_undoes_only_itself,
);
