//! Copying one database into another, for `berth migrate`: every tree the
//! source's users made, entry for entry, then the event log with its
//! sequence numbers. Both copies can run again (after an interruption, or
//! once more to catch up): the target ends up holding what the source
//! holds.

use std::collections::HashSet;

use futures_util::TryStreamExt;

use super::{embedded, Backend, Db, Tree};
use crate::Error;

/// Entries written per transaction of the target.
const BATCH: usize = 500;

/// What a copy did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    /// Trees copied.
    pub trees: usize,
    /// Entries written to the target.
    pub entries: u64,
    /// Target entries the source lacks, removed.
    pub removed: u64,
    /// Log entries the target lacked, added.
    pub events: u64,
}

impl Db {
    /// The names of the trees that users of this view made (relative to
    /// its prefix), sorted.
    pub(crate) async fn tree_names(&self) -> Result<Vec<String>, Error> {
        let all = match &self.backend {
            Backend::Sled(db) => db.tree_names(),
            Backend::Pg(db) => db.tree_names().await?,
        };
        let mut names: Vec<String> = all
            .iter()
            .filter_map(|n| n.strip_prefix(&*self.prefix))
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Makes each tree of this database but those in `skip` hold, in
    /// `target`, exactly what it holds here.
    pub(crate) async fn copy_trees(
        &self,
        target: &Db,
        skip: &[&str],
        copied: &mut Copied,
    ) -> Result<(), Error> {
        for name in self.tree_names().await? {
            if skip.contains(&name.as_str()) {
                continue;
            }
            let (from, to) = (self.tree(&name)?, target.tree(&name)?);
            copy_tree(&from, target, &to, copied).await?;
            copied.trees += 1;
        }
        Ok(())
    }

    /// Adds to `target` (PostgreSQL) the entries of this database's event
    /// log that it lacks, with their sequence numbers.
    pub(crate) async fn copy_log(&self, target: &Db, copied: &mut Copied) -> Result<(), Error> {
        let Backend::Pg(to) = &target.backend else {
            return Err(Error::Config(
                "the event log can only be copied into PostgreSQL".into(),
            ));
        };
        let mut after = target.log_last().await?;
        loop {
            let page = self.log_raw_after(after, BATCH).await?;
            let Some(&(last, _)) = page.last() else {
                return Ok(());
            };
            to.log_import(&page).await?;
            copied.events += page.len() as u64;
            after = last;
        }
    }
}

/// Writes every entry of `from` into `to` (a tree of `target`), then
/// removes from `to` what `from` lacks.
async fn copy_tree(from: &Tree, target: &Db, to: &Tree, copied: &mut Copied) -> Result<(), Error> {
    let mut entries = std::pin::pin!(from
        .iter(b"")
        .try_filter(|(k, _)| std::future::ready(!embedded::is_engine_key(from.name(), k))));
    let mut keys = HashSet::new();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next = entries.try_next().await?;
        let done = next.is_none();
        if let Some((key, value)) = next {
            keys.insert(key.clone());
            batch.push((key, value));
        }
        if batch.len() == BATCH || (done && !batch.is_empty()) {
            copied.entries += batch.len() as u64;
            write(target, to, std::mem::take(&mut batch), Vec::new()).await?;
        }
        if done {
            break;
        }
    }
    let extra: Vec<Vec<u8>> = to
        .iter(b"")
        .try_filter(|(k, _)| std::future::ready(!keys.contains(k)))
        .map_ok(|(k, _)| k)
        .try_collect()
        .await?;
    for chunk in extra.chunks(BATCH) {
        write(target, to, Vec::new(), chunk.to_vec()).await?;
        copied.removed += chunk.len() as u64;
    }
    Ok(())
}

/// Inserts `puts` into and removes `removes` from `tree` (of `db`) in one
/// transaction.
async fn write(
    db: &Db,
    tree: &Tree,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    removes: Vec<Vec<u8>>,
) -> Result<(), Error> {
    db.transaction(|tx| {
        let (puts, removes) = (&puts, &removes);
        Box::pin(async move {
            for (k, v) in puts {
                tx.insert(tree, k, v.clone());
            }
            for k in removes {
                tx.remove(tree, k);
            }
            Ok::<_, Error>(())
        })
    })
    .await
}
