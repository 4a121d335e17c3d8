//! The suite every backend passes.

use std::ops::Bound;

use futures_util::TryStreamExt;

use super::*;
use crate::events::{Action, Event, Request, Target};

fn event(repo: &str) -> Record {
    let target = Target::manifest("m", 1, "sha256:ab", repo);
    Record::from(Event::new(Action::Push, target, Request::default()))
}

/// Runs every check against `db`, which must be empty.
pub(crate) async fn suite(db: &Db) {
    single_keys(db).await;
    ranges_and_walks(db).await;
    transactions_commit_together_or_not_at_all(db).await;
    the_log_numbers_events_in_commit_order(db).await;
}

async fn single_keys(db: &Db) {
    let t = db.tree("single").unwrap();
    assert_eq!(t.name(), "single");
    assert_eq!(t.get(b"k").await.unwrap(), None);
    t.insert(b"k", b"v").await.unwrap();
    assert_eq!(t.get(b"k").await.unwrap().as_deref(), Some(b"v".as_slice()));
    assert!(t.contains(b"k").await.unwrap());
    assert!(!t
        .compare_and_swap(b"k", Some(b"x"), Some(b"y"))
        .await
        .unwrap());
    assert!(t
        .compare_and_swap(b"k", Some(b"v"), Some(b"w"))
        .await
        .unwrap());
    assert!(t.compare_and_swap(b"n", None, Some(b"1")).await.unwrap());
    assert!(!t.compare_and_swap(b"n", None, Some(b"2")).await.unwrap());
    assert!(t.compare_and_swap(b"n", Some(b"1"), None).await.unwrap());
    assert!(t.remove(b"k").await.unwrap());
    assert!(!t.remove(b"k").await.unwrap());
    // Trees are separate namespaces.
    let other = db.tree("single.other").unwrap();
    other.insert(b"k", b"o").await.unwrap();
    assert_eq!(t.get(b"k").await.unwrap(), None);
}

async fn ranges_and_walks(db: &Db) {
    let t = db.tree("walk").unwrap();
    for i in 0..1200u32 {
        let k = key(&[b"a", format!("{i:05}").as_bytes()]);
        t.insert(&k, &i.to_be_bytes()).await.unwrap();
    }
    t.insert(b"b\0x", b"").await.unwrap();
    t.insert(&[0xff, 0xff], b"").await.unwrap();
    assert_eq!(t.count(b"a\0").await.unwrap(), 1200);
    assert_eq!(t.count(b"").await.unwrap(), 1202);
    let page = t.scan_prefix(b"a\0", 3).await.unwrap();
    assert_eq!(page[0].0, b"a\x0000000");
    assert_eq!(page.len(), 3);
    let after = t
        .range(
            Bound::Excluded(b"a\x0001198".as_slice()),
            Bound::Unbounded,
            10,
        )
        .await
        .unwrap();
    let keys: Vec<_> = after.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        [b"a\x0001199".to_vec(), b"b\0x".to_vec(), vec![0xff, 0xff]]
    );
    // A walk crosses page boundaries and stops at the prefix.
    let all: Vec<Entry> = t.iter(b"a\0").try_collect().await.unwrap();
    assert_eq!(all.len(), 1200);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    let everything: Vec<Entry> = t.iter(b"").try_collect().await.unwrap();
    assert_eq!(everything.len(), 1202);
    assert_eq!(t.first(b"b").await.unwrap().unwrap().0, b"b\0x");
    assert_eq!(t.first(b"c").await.unwrap(), None);
    let high: Vec<Entry> = t.iter(&[0xff]).try_collect().await.unwrap();
    assert_eq!(high.len(), 1);
}

async fn transactions_commit_together_or_not_at_all(db: &Db) {
    let (a, b) = (db.tree("tx.a").unwrap(), db.tree("tx.b").unwrap());
    let before = db.log_last().await.unwrap();
    let failed: Result<(), Error> = db
        .transaction(|tx| {
            let (a, b) = (&a, &b);
            Box::pin(async move {
                tx.insert(a, b"k", b"1".to_vec());
                tx.insert(b, b"k", b"1".to_vec());
                tx.append_event(event("failed"))?;
                // Reads see the transaction's own writes.
                assert_eq!(tx.get(a, b"k").await?.as_deref(), Some(b"1".as_slice()));
                Err(Error::NameUnknown)
            })
        })
        .await;
    assert!(matches!(failed, Err(Error::NameUnknown)));
    assert_eq!(a.get(b"k").await.unwrap(), None);
    assert_eq!(b.get(b"k").await.unwrap(), None);
    assert_eq!(db.log_last().await.unwrap(), before);

    a.insert(b"gone", b"x").await.unwrap();
    let n: u32 = db
        .transaction(|tx| {
            let (a, b) = (&a, &b);
            Box::pin(async move {
                tx.insert_json(a, b"k", &7u32)?;
                tx.remove(a, b"gone");
                assert_eq!(tx.get(a, b"gone").await?, None);
                tx.insert(b, b"k", b"2".to_vec());
                tx.append_event(event("ok"))?;
                Ok::<_, Error>(7)
            })
        })
        .await
        .unwrap();
    assert_eq!(n, 7);
    assert_eq!(a.get_json::<u32>(b"k").await.unwrap(), Some(7));
    assert_eq!(a.get(b"gone").await.unwrap(), None);
    assert_eq!(b.get(b"k").await.unwrap().as_deref(), Some(b"2".as_slice()));
    // Durable when the transaction returns.
    assert_eq!(db.log_last().await.unwrap(), before + 1);
    assert!(db.log_durable().await.unwrap() > before);
}

async fn the_log_numbers_events_in_commit_order(db: &Db) {
    let before = db.log_last().await.unwrap();
    let mut watch = db.watch_durable();
    for repo in ["one", "two", "three"] {
        db.transaction(|tx| {
            Box::pin(async move {
                tx.append_event(event(repo))?;
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
    }
    assert!(watch.has_changed().unwrap());
    let read = db.log_after(before, 10, false).await.unwrap();
    let seqs: Vec<u64> = read.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [before + 1, before + 2, before + 3]);
    assert_eq!(read[1].1.event.target.repository, "two");
    assert_eq!(db.log_trim(before + 2).await.unwrap() as u64, before + 2);
    let left = db.log_after(0, 10, false).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        db.log_last().await.unwrap(),
        before + 3,
        "numbering goes on"
    );
    watch.borrow_and_update();
}

#[tokio::test]
async fn the_embedded_engine_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    suite(&db).await;
}

#[test]
fn keys_join_and_split_on_nul() {
    let k = key(&[b"a/b", b"sha256:x"]);
    assert_eq!(k, b"a/b\0sha256:x");
    assert_eq!(
        split(&k).collect::<Vec<_>>(),
        [b"a/b".as_slice(), b"sha256:x"]
    );
    assert_eq!(prefix_end(b"a\0"), Some(b"a\x01".to_vec()));
    assert_eq!(prefix_end(&[0x61, 0xff]), Some(vec![0x62]));
    assert_eq!(prefix_end(&[0xff]), None);
    assert_eq!(decode_u64(Some(&5u64.to_be_bytes())), 5);
    assert_eq!(decode_u64(Some(b"bad")), 0);
}

#[tokio::test]
async fn postgres_passes_the_suite() {
    let db = Db::connect(&super::testing::database().await)
        .await
        .unwrap();
    suite(&db).await;
}

/// Two transactions that read what the other writes: one of them runs
/// again, so neither's write is lost, and events keep commit order.
#[tokio::test]
async fn postgres_transactions_serialize_across_connections() {
    let url = super::testing::database().await;
    let (a, b) = (
        Db::connect(&url).await.unwrap(),
        Db::connect(&url).await.unwrap(),
    );
    let tree = a.tree("counter").unwrap();
    let mut tasks = Vec::new();
    for db in [a.clone(), b.clone(), a.clone(), b.clone()] {
        tasks.push(tokio::spawn(async move {
            let tree = db.tree("counter").unwrap();
            for _ in 0..25 {
                db.transaction(|tx| {
                    let tree = &tree;
                    Box::pin(async move {
                        let n = decode_u64(tx.get(tree, b"n").await?.as_deref());
                        tx.insert(tree, b"n", (n + 1).to_be_bytes().to_vec());
                        tx.append_event(event(&format!("n{}", n + 1)))?;
                        Ok::<_, Error>(())
                    })
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(decode_u64(tree.get(b"n").await.unwrap().as_deref()), 100);
    // Sequence order is commit order: the counter the events name rises.
    let log = a.log_after(0, 1000, false).await.unwrap();
    let named: Vec<u64> = log
        .iter()
        .map(|(_, r)| r.event.target.repository[1..].parse().unwrap())
        .collect();
    assert_eq!(named, (1..=100).collect::<Vec<_>>());
    // Leases: one holder across "replicas", released on drop.
    let held = a.try_lease("job").await.unwrap().unwrap();
    assert!(held.held());
    assert!(b.try_lease("job").await.unwrap().is_none());
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(b.try_lease("job").await.unwrap().is_some());
    // Notices reach every replica.
    let mut rx = b.subscribe();
    a.notify("berth_webhooks", "changed").await.unwrap();
    loop {
        let (channel, payload) = rx.recv().await.unwrap();
        if channel == "berth_webhooks" {
            assert_eq!(payload, "changed");
            break;
        }
    }
}

/// `berth migrate`'s copy: sled's trees and log into PostgreSQL, again
/// after changes, with what the source lost removed and the engine's own
/// counter left behind.
#[tokio::test]
async fn copies_a_sled_database_into_postgres_and_again_after_changes() {
    let dir = tempfile::tempdir().unwrap();
    let source = Db::open(dir.path()).unwrap();
    let target = Db::connect(&testing::database().await).await.unwrap();
    let tags = source.tree("tags").unwrap();
    for i in 0..1100u32 {
        let k = format!("r\0t{i:04}");
        source
            .transaction(|tx| {
                let (tags, k) = (&tags, &k);
                Box::pin(async move {
                    tx.insert(tags, k.as_bytes(), i.to_be_bytes().to_vec());
                    if i % 100 == 0 {
                        tx.append_event(event(k))?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .await
            .unwrap();
    }
    source
        .tree("counters")
        .unwrap()
        .insert(b"mine", b"7")
        .await
        .unwrap();
    source
        .tree("uploads")
        .unwrap()
        .insert(b"u", b"s")
        .await
        .unwrap();

    let mut copied = Copied::default();
    source
        .copy_trees(&target, &["uploads"], &mut copied)
        .await
        .unwrap();
    source.copy_log(&target, &mut copied).await.unwrap();
    assert_eq!((copied.entries, copied.events), (1101, 11));
    let counters = target.tree("counters").unwrap();
    assert_eq!(
        counters.iter(b"").try_collect::<Vec<_>>().await.unwrap(),
        [(b"mine".to_vec(), b"7".to_vec())]
    );
    assert_eq!(target.tree("uploads").unwrap().count(b"").await.unwrap(), 0);
    let moved = target.log_after(0, 100, true).await.unwrap();
    let original = source.log_after(0, 100, true).await.unwrap();
    assert_eq!(
        moved
            .iter()
            .map(|(s, r)| (*s, r.event.id.clone()))
            .collect::<Vec<_>>(),
        original
            .iter()
            .map(|(s, r)| (*s, r.event.id.clone()))
            .collect::<Vec<_>>()
    );

    // The source changes; a second copy catches up.
    tags.remove(b"r\0t0001").await.unwrap();
    source
        .transaction(|tx| Box::pin(async move { tx.append_event(event("late")) }))
        .await
        .unwrap();
    let mut again = Copied::default();
    source
        .copy_trees(&target, &["uploads"], &mut again)
        .await
        .unwrap();
    source.copy_log(&target, &mut again).await.unwrap();
    assert_eq!((again.removed, again.events), (1, 1));
    let target_tags = target.tree("tags").unwrap();
    assert_eq!(target_tags.count(b"").await.unwrap(), 1099);
    // New events are numbered after the copied ones.
    target
        .transaction(|tx| Box::pin(async move { tx.append_event(event("new")) }))
        .await
        .unwrap();
    assert_eq!(
        target.log_last().await.unwrap(),
        source.log_last().await.unwrap() + 1
    );
}
