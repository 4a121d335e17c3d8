//! The shared engine: PostgreSQL, for replicas that share one store.
//!
//! ```sql
//! kv     (tree text, key bytea, value bytea, PRIMARY KEY (tree, key))
//! events (seq bigint PRIMARY KEY, record bytea)   -- numbered by event_seq
//! schema_migrations (version int PRIMARY KEY, applied_at timestamptz)
//! ```
//!
//! Every tree of the embedded engine is a range of `kv`, so the registry,
//! the Helm chart repository and the webhooks run unchanged on it, and the
//! same suite checks both engines (`kv/tests.rs`).
//!
//! - **Transactions** run at `SERIALIZABLE`; a serialization failure or a
//!   deadlock anywhere (a read, the commit) runs the closure again. A
//!   transaction's writes are buffered and sent at commit as two
//!   statements (upserts, deletes), so a manifest push costs its reads plus
//!   a handful of round trips (counted: [`PgDb::round_trips`]).
//! - **Event order**: events are numbered under a transaction-scoped
//!   advisory lock taken just before commit, so sequence numbers follow
//!   commit order across replicas and a reader tailing the log by sequence
//!   never skips a late commit. A rolled-back transaction leaves a gap,
//!   which readers do not mind.
//! - **Wake-ups**: a commit with events notifies `berth_events`; every
//!   replica listens (one connection of its own) and moves its durable
//!   watermark, which wakes its webhook dispatcher.
//! - **Leases**: session advisory locks on a connection of their own (see
//!   [`super::Lease`]); they end with that connection, so a replica that
//!   dies or loses its database gives up its work.
//! - **Migrations** are numbered and run at start-up, one replica at a time.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::tx::TxBackend;
use super::{Entry, Write};
use crate::Error;

/// The versioned schema; each entry runs once, in order.
const MIGRATIONS: [&str; 1] = [
    "CREATE TABLE kv (tree text NOT NULL, key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (tree, key));
     CREATE TABLE events (seq bigint PRIMARY KEY, record bytea NOT NULL);
     CREATE SEQUENCE event_seq;",
];

/// The channel commits with events notify.
pub(super) const EVENTS_CHANNEL: &str = "berth_events";

/// Connections in the pool.
const POOL_SIZE: usize = 16;

/// Attempts of a transaction that keeps losing to concurrent ones.
const ATTEMPTS: u32 = 50;

/// One PostgreSQL database, shared by replicas.
pub(super) struct PgDb {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The highest event sequence number known committed: this replica's
    /// commits, and other replicas' as their notifications arrive.
    pub(super) durable: tokio::sync::watch::Sender<u64>,
    /// Notifications of every channel, as (channel, payload).
    pub(super) notices: tokio::sync::broadcast::Sender<super::Notice>,
    /// Statements sent (a round trip each).
    round_trips: AtomicU64,
    /// The connection that holds this replica's leases.
    leases: tokio::sync::Mutex<Option<LeaseConn>>,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb").finish_non_exhaustive()
    }
}

/// The connection session advisory locks live on.
struct LeaseConn {
    client: tokio_postgres::Client,
    /// Cleared when the connection ends: every lease on it is gone.
    alive: Arc<AtomicBool>,
}

fn pg(e: tokio_postgres::Error) -> Error {
    // The error's Display says only "db error" for what the server refused.
    match e.as_db_error() {
        Some(db) => Error::internal(format_args!(
            "postgres: {} ({}): {}",
            db.message(),
            db.code().code(),
            db.detail().unwrap_or_default()
        )),
        None => Error::internal(format_args!("postgres: {e}")),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    Error::internal(format_args!("postgres pool: {e}"))
}

/// Whether running the transaction again may succeed.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// The wait before attempt `attempt + 1` of what lost a conflict: random,
/// longer with each attempt, so the contenders spread out.
fn pause(attempt: u32) -> Duration {
    Duration::from_millis(fastrand::u64(1..=u64::from(attempt) * 4))
}

/// The advisory lock key of `name`.
pub(super) fn lock_key(name: &str) -> i64 {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(format!("berth:{name}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    i64::from_be_bytes(first)
}

impl PgDb {
    /// Connects to `url` (`postgres://user:password@host:port/database`),
    /// runs the migrations not run yet, and starts listening.
    pub(super) async fn connect(url: &str) -> Result<Arc<Self>, Error> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("metadata_url: {e}")))?;
        // Every statement, also outside an explicit transaction, is
        // serializable with respect to the transactions.
        config.options("-c default_transaction_isolation=serializable");
        config.application_name("berth");
        config.connect_timeout(Duration::from_secs(10));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| Error::Config(format!("metadata_url: {e}")))?;
        let db = Arc::new(Self {
            pool,
            config,
            durable: tokio::sync::watch::channel(0).0,
            notices: tokio::sync::broadcast::channel(1024).0,
            round_trips: AtomicU64::new(0),
            leases: tokio::sync::Mutex::default(),
        });
        db.migrate().await?;
        let last = db.log_last().await?;
        db.durable.send_replace(last);
        tokio::spawn(listen(Arc::downgrade(&db)));
        Ok(db)
    }

    async fn client(&self) -> Result<Object, Error> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Statements sent so far.
    pub(super) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn count(&self, n: u64) {
        self.round_trips.fetch_add(n, Ordering::Relaxed);
    }

    /// Runs the migrations this database has not had, under a lock so that
    /// replicas starting together run each once.
    async fn migrate(&self) -> Result<(), Error> {
        let client = self.client().await?;
        let key = lock_key("migrations");
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .await
            .map_err(pg)?;
        let result = async {
            client
                .batch_execute(
                    // Quietly: the server's notice that it exists is no news.
                    "SET client_min_messages = warning; \
                     CREATE TABLE IF NOT EXISTS schema_migrations \
                     (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now()); \
                     RESET client_min_messages",
                )
                .await?;
            let row = client
                .query_one(
                    "SELECT COALESCE(max(version), 0) FROM schema_migrations",
                    &[],
                )
                .await?;
            let done: i32 = row.get(0);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
                let version = i as i32 + 1;
                client.batch_execute("BEGIN").await?;
                client.batch_execute(sql).await?;
                client
                    .execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)",
                        &[&version],
                    )
                    .await?;
                client.batch_execute("COMMIT").await?;
                tracing::info!(version, "metadata schema migrated");
            }
            Ok::<_, tokio_postgres::Error>(())
        }
        .await;
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await;
        result.map_err(pg)?;
        unlocked.map_err(pg)?;
        Ok(())
    }

    pub(super) async fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let rows = self.query(GET, &[&tree, &key]).await?;
        Ok(rows.into_iter().next().map(|r| r.get(0)))
    }

    pub(super) async fn insert(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.execute(
            "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
            &[&tree, &key, &value],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn remove(&self, tree: &str, key: &[u8]) -> Result<bool, Error> {
        let sql = "DELETE FROM kv WHERE tree = $1 AND key = $2";
        Ok(self.execute(sql, &[&tree, &key]).await? == 1)
    }

    pub(super) async fn compare_and_swap(
        &self,
        tree: &str,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        let n = match (old, new) {
            (None, Some(new)) => {
                self.execute(
                    "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&tree, &key, &new],
                )
                .await?
            }
            (Some(old), Some(new)) => {
                self.execute(
                    "UPDATE kv SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3",
                    &[&tree, &key, &old, &new],
                )
                .await?
            }
            (Some(old), None) => {
                self.execute(
                    "DELETE FROM kv WHERE tree = $1 AND key = $2 AND value = $3",
                    &[&tree, &key, &old],
                )
                .await?
            }
            (None, None) => return Ok(self.get(tree, key).await?.is_none()),
        };
        Ok(n == 1)
    }

    pub(super) async fn range(
        &self,
        tree: &str,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        let mut sql = String::from("SELECT key, value FROM kv WHERE tree = $1");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tree];
        bound(&mut sql, &mut params, &start, ">");
        bound(&mut sql, &mut params, &end, "<");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        params.push(&limit);
        sql.push_str(&format!(" ORDER BY key LIMIT ${}", params.len()));
        let rows = self.query(&sql, &params).await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(super) async fn count_range(
        &self,
        tree: &str,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<usize, Error> {
        let rows = match end {
            Some(end) => {
                self.query(
                    "SELECT count(*) FROM kv WHERE tree = $1 AND key >= $2 AND key < $3",
                    &[&tree, &start, &end],
                )
                .await?
            }
            None => {
                self.query(
                    "SELECT count(*) FROM kv WHERE tree = $1 AND key >= $2",
                    &[&tree, &start],
                )
                .await?
            }
        };
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Runs `f` as a serializable transaction, again when it loses to a
    /// concurrent one, and commits what it buffered.
    pub(super) async fn transaction<'a, T, E, F>(
        self: &Arc<Self>,
        f: &F,
        location: Option<Arc<str>>,
    ) -> Result<T, E>
    where
        F: for<'t> Fn(&'t super::Tx<'a>) -> super::BoxFuture<'t, Result<T, E>>,
        E: From<Error>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.client().await?;
            self.count(1);
            client
                .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                .await
                .map_err(pg)?;
            let tx = super::Tx::new(
                TxBackend::Pg(Box::new(PgTx {
                    db: self.clone(),
                    client: Some(client),
                    conflicted: AtomicBool::new(false),
                })),
                location.clone(),
            );
            let result = f(&tx).await;
            let (backend, writes, events) = tx.into_parts();
            let TxBackend::Pg(mut pgtx) = backend else {
                unreachable!("a PostgreSQL transaction")
            };
            let conflicted = pgtx.conflicted();
            let outcome = match result {
                Ok(value) => match pgtx.commit(&writes, &events).await {
                    Ok(last) => {
                        if let Some(seq) = last {
                            self.mark(seq);
                        }
                        return Ok(value);
                    }
                    Err(e) if retryable(&e) => None,
                    Err(e) => Some(Err(pg(e).into())),
                },
                Err(_) if conflicted => None,
                Err(e) => Some(Err(e)),
            };
            pgtx.rollback().await;
            match outcome {
                Some(result) => return result,
                None if attempt >= ATTEMPTS => {
                    return Err(Error::internal("postgres: a transaction kept conflicting").into())
                }
                None => tokio::time::sleep(pause(attempt)).await,
            }
        }
    }

    /// Records that every event up to `seq` is committed.
    fn mark(&self, seq: u64) {
        self.durable.send_if_modified(|d| {
            let moved = seq > *d;
            *d = (*d).max(seq);
            moved
        });
    }

    pub(super) async fn log_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT seq, record FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (u64::try_from(r.get::<_, i64>(0)).unwrap_or(0), r.get(1)))
            .collect())
    }

    /// Adds log entries with the sequence numbers they had elsewhere (a
    /// store being moved here), keeping those already present; new events
    /// are numbered after them.
    pub(super) async fn log_import(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), Error> {
        let seqs: Vec<i64> = entries
            .iter()
            .map(|(seq, _)| i64::try_from(*seq).unwrap_or(i64::MAX))
            .collect();
        let records: Vec<&[u8]> = entries.iter().map(|(_, r)| r.as_slice()).collect();
        self.execute(
            "INSERT INTO events (seq, record) SELECT * FROM unnest($1::bigint[], $2::bytea[]) \
             ON CONFLICT (seq) DO NOTHING",
            &[&seqs, &records],
        )
        .await?;
        self.execute(
            "SELECT setval('event_seq', GREATEST((SELECT max(seq) FROM events), \
             (SELECT last_value FROM event_seq)))",
            &[],
        )
        .await?;
        Ok(())
    }

    /// The names of the trees that hold entries.
    pub(super) async fn tree_names(&self) -> Result<Vec<String>, Error> {
        let rows = self
            .query("SELECT DISTINCT tree FROM kv ORDER BY tree", &[])
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn log_trim(&self, upto: u64) -> Result<usize, Error> {
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        let n = self
            .execute("DELETE FROM events WHERE seq <= $1", &[&upto])
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) async fn log_last(&self) -> Result<u64, Error> {
        let rows = self
            .query("SELECT COALESCE(max(seq), 0) FROM events", &[])
            .await?;
        Ok(rows
            .first()
            .map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    /// Sends `payload` to every replica listening on `channel` (itself too).
    pub(super) async fn notify(&self, channel: &str, payload: &str) -> Result<(), Error> {
        self.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .await?;
        Ok(())
    }

    /// Runs one statement that returns rows, as a transaction of its own.
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        self.statement(sql, params).await
    }

    /// Runs one statement, as a transaction of its own; the rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        self.statement(sql, params).await
    }

    /// Runs one statement again when it loses a serialization conflict
    /// (every statement is serializable, see [`PgDb::connect`]), as
    /// transactions are.
    async fn statement<T: Answer>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<T, Error> {
        let client = self.client().await?;
        let mut attempt = 1;
        loop {
            self.count(1);
            match T::run(&client, sql, params).await {
                Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                    tokio::time::sleep(pause(attempt)).await;
                    attempt += 1;
                }
                answer => return answer.map_err(pg),
            }
        }
    }

    /// Takes the lease `name` unless a replica holds it; the flag says
    /// whether it still holds (it is lost with its connection).
    pub(super) async fn try_lease(
        &self,
        name: &str,
    ) -> Result<Option<(i64, Arc<AtomicBool>)>, Error> {
        let mut conn = self.leases.lock().await;
        if conn
            .as_ref()
            .is_none_or(|c| !c.alive.load(Ordering::Relaxed))
        {
            *conn = Some(self.lease_connection().await?);
        }
        let Some(c) = conn.as_ref() else {
            return Ok(None);
        };
        let key = lock_key(name);
        self.count(1);
        let row = c
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(pg)?;
        let taken: bool = row.get(0);
        Ok(taken.then(|| (key, c.alive.clone())))
    }

    /// Gives the lease `key` back, if the connection it was taken on still
    /// lives (otherwise it is gone already: at shutdown, the connection
    /// may close first, which releases every lease on it).
    pub(super) async fn release_lease(&self, key: i64, alive: &Arc<AtomicBool>) {
        let conn = self.leases.lock().await;
        let Some(c) = conn.as_ref() else { return };
        if Arc::ptr_eq(&c.alive, alive) && alive.load(Ordering::Relaxed) {
            match c
                .client
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await
            {
                Err(e) if !e.is_closed() => tracing::warn!(error = %e, "cannot release a lease"),
                _ => {}
            }
        }
    }

    async fn lease_connection(&self) -> Result<LeaseConn, Error> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(pg)?;
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the lease connection ended; leases are lost");
            }
            flag.store(false, Ordering::Relaxed);
        });
        Ok(LeaseConn { client, alive })
    }

    /// Waits until no replica holds `name`, even shared, and holds it
    /// alone until the returned connection is dropped.
    pub(super) async fn exclusive(&self, name: &str) -> Result<tokio_postgres::Client, Error> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(pg)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.count(1);
        client
            .execute("SELECT pg_advisory_lock($1)", &[&lock_key(name)])
            .await
            .map_err(pg)?;
        Ok(client)
    }
}

/// `AND key {op}[=] $n` for a bound.
fn bound<'p>(
    sql: &mut String,
    params: &mut Vec<&'p (dyn ToSql + Sync)>,
    bound: &'p Bound<&'p [u8]>,
    op: &str,
) {
    let (value, inclusive) = match bound {
        Bound::Included(v) => (v, true),
        Bound::Excluded(v) => (v, false),
        Bound::Unbounded => return,
    };
    params.push(value);
    let eq = if inclusive { "=" } else { "" };
    sql.push_str(&format!(" AND key {op}{eq} ${}", params.len()));
}

/// What a single statement answers: its rows, or how many it changed.
trait Answer: Sized {
    fn run(
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl std::future::Future<Output = Result<Self, tokio_postgres::Error>> + Send;
}

impl Answer for Vec<Row> {
    fn run(
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl std::future::Future<Output = Result<Self, tokio_postgres::Error>> + Send {
        client.query(sql, params)
    }
}

impl Answer for u64 {
    fn run(
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl std::future::Future<Output = Result<Self, tokio_postgres::Error>> + Send {
        client.execute(sql, params)
    }
}

/// Reads one key's value.
const GET: &str = "SELECT value FROM kv WHERE tree = $1 AND key = $2";

async fn get(
    client: &tokio_postgres::Client,
    db: &PgDb,
    tree: &str,
    key: &[u8],
) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
    db.count(1);
    let row = client.query_opt(GET, &[&tree, &key]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// A transaction on a pooled connection.
pub(super) struct PgTx {
    db: Arc<PgDb>,
    /// `None` once committed or rolled back.
    client: Option<Object>,
    /// A statement failed because a concurrent transaction won.
    conflicted: AtomicBool,
}

impl PgTx {
    pub(super) fn conflicted(&self) -> bool {
        self.conflicted.load(Ordering::Relaxed)
    }

    pub(super) async fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| Error::internal("postgres: the transaction has ended"))?;
        get(client, &self.db, tree, key).await.map_err(|e| {
            if retryable(&e) {
                self.conflicted.store(true, Ordering::Relaxed);
            }
            pg(e)
        })
    }

    /// Takes the shared side of the lock `name` until the transaction ends.
    pub(super) async fn shared_lock(&self, name: &str) -> Result<(), Error> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| Error::internal("postgres: the transaction has ended"))?;
        self.db.count(1);
        client
            .execute(
                "SELECT pg_advisory_xact_lock_shared($1)",
                &[&lock_key(name)],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    /// Sends the buffered writes and events and commits; the sequence
    /// number of the last event appended, if any.
    async fn commit(
        &mut self,
        writes: &[Write],
        events: &[Vec<u8>],
    ) -> Result<Option<u64>, tokio_postgres::Error> {
        let Some(client) = self.client.as_ref() else {
            return Ok(None);
        };
        // The last write of each key is the one that counts.
        let mut last: BTreeMap<(&str, &[u8]), Option<&[u8]>> = BTreeMap::new();
        for w in writes {
            last.insert((w.tree.name(), &w.key), w.value.as_deref());
        }
        let (mut up_trees, mut up_keys, mut up_values) = (Vec::new(), Vec::new(), Vec::new());
        let (mut del_trees, mut del_keys) = (Vec::new(), Vec::new());
        for ((tree, key), value) in last {
            match value {
                Some(v) => {
                    up_trees.push(tree);
                    up_keys.push(key);
                    up_values.push(v);
                }
                None => {
                    del_trees.push(tree);
                    del_keys.push(key);
                }
            }
        }
        if !up_keys.is_empty() {
            self.db.count(1);
            client
                .execute(
                    "INSERT INTO kv (tree, key, value) \
                     SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[]) \
                     ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
                    &[&up_trees, &up_keys, &up_values],
                )
                .await?;
        }
        if !del_keys.is_empty() {
            self.db.count(1);
            client
                .execute(
                    "DELETE FROM kv USING unnest($1::text[], $2::bytea[]) AS d(tree, key) \
                     WHERE kv.tree = d.tree AND kv.key = d.key",
                    &[&del_trees, &del_keys],
                )
                .await?;
        }
        let mut last_seq = None;
        if !events.is_empty() {
            // Numbered last and under a lock held to the commit: sequence
            // order is commit order.
            self.db.count(1);
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key("events")])
                .await?;
            for record in events {
                self.db.count(1);
                let row = client
                    .query_one(
                        "INSERT INTO events (seq, record) VALUES (nextval('event_seq'), $1) RETURNING seq",
                        &[record],
                    )
                    .await?;
                last_seq = Some(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
            }
            let payload = last_seq.unwrap_or(0).to_string();
            self.db.count(1);
            client
                .execute("SELECT pg_notify($1, $2)", &[&EVENTS_CHANNEL, &payload])
                .await?;
        }
        self.db.count(1);
        client.batch_execute("COMMIT").await?;
        // Back to the pool, outside any transaction.
        drop(self.client.take());
        Ok(last_seq)
    }

    /// Rolls back what is open; a connection whose state is unknown is
    /// closed rather than returned to the pool.
    async fn rollback(&mut self) {
        if let Some(client) = self.client.take() {
            self.db.count(1);
            if client.batch_execute("ROLLBACK").await.is_err() {
                drop(Object::take(client));
            }
        }
    }
}

impl Drop for PgTx {
    /// A transaction dropped half-way (its request was cancelled) closes
    /// its connection, which rolls it back; it never returns to the pool
    /// inside a transaction.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// Listens for notifications on a connection of its own, for as long as
/// the database is open; reconnects when the connection ends.
async fn listen(db: std::sync::Weak<PgDb>) {
    loop {
        let Some(strong) = db.upgrade() else { return };
        let config = strong.config.clone();
        let notices = strong.notices.clone();
        drop(strong);
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if tx.send(message).is_err() {
                            break;
                        }
                    }
                });
                let listening = client
                    .batch_execute(&format!(
                        "LISTEN {EVENTS_CHANNEL}; LISTEN berth_deliveries; LISTEN berth_webhooks"
                    ))
                    .await;
                if let Err(e) = listening {
                    tracing::warn!(error = %e, "cannot listen for notifications");
                } else {
                    // Whatever was notified while not listening is re-read
                    // by the receivers' polls; a reconnect is a notice too.
                    let _ = notices.send((String::new(), String::new()));
                    while let Some(message) = rx.recv().await {
                        let AsyncMessage::Notification(n) = message else {
                            continue;
                        };
                        let Some(db) = db.upgrade() else { return };
                        if n.channel() == EVENTS_CHANNEL {
                            if let Ok(seq) = n.payload().parse() {
                                db.mark(seq);
                            }
                        }
                        let _ = db
                            .notices
                            .send((n.channel().to_owned(), n.payload().to_owned()));
                    }
                }
                driver.abort();
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to listen for notifications"),
        }
        if db.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Tests against a real server: `BERTH_TEST_POSTGRES` names a database
/// (`scripts/test.sh` starts one); without it they fail, never skip.
#[cfg(test)]
pub(crate) mod testing {
    /// A fresh, empty schema on the test server, as a URL.
    pub(crate) async fn database() -> String {
        let base = std::env::var("BERTH_TEST_POSTGRES")
            .expect("BERTH_TEST_POSTGRES names a PostgreSQL database for the tests (scripts/test.sh starts one)");
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect to BERTH_TEST_POSTGRES");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => base,
        }
    }
}
