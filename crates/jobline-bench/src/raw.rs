//! The engine suite's ceilings: the same work as raw SQL on the same database, through the
//! same driver, with nothing of jobline in the way, in the shapes of the peers table's "raw SQL
//! on the same DB" column (`shared/research/queue-peers.md`):
//!
//! - bulk insert of N job rows by one `INSERT … SELECT` (`generate_series` on PostgreSQL, a
//!   recursive CTE on SQLite) in one transaction;
//! - the same `INSERT … SELECT` into jobline's own migrated `jobs` table (its indexes and its
//!   timeline trigger): what the schema costs, between the bare table and `enqueue_batch`;
//! - multi-row INSERTs, 500 rows per transaction (the ceiling of the 1,000-per-call enqueue);
//! - one-row INSERT transactions, sequential;
//! - one-row conditional UPDATE transactions, sequential (what cancelling a pending job costs
//!   at least);
//! - a drain: claim (`UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id`) and
//!   complete as raw SQL, one transaction each, by C connections at once on PostgreSQL; on
//!   SQLite by one connection, since its writers take turns anyway.
//!
//! The table has the columns a job row needs and the one index a claim needs (jobline's has
//! ten), so these are upper bounds, not like-for-like rows. Each scenario runs on a fresh
//! database. The bodies are macros so one text serves both engines' pool types.

use crate::report::{Ceiling, Report, Value};
use crate::Args;
use anyhow::Result;
use jobline_testkit::{Engine, TestDb};
use std::time::{Duration, Instant};

/// The raw job table and the partial index a claim walks.
const TABLE: [&str; 2] = [
    "CREATE TABLE raw_jobs (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, \
     queue TEXT NOT NULL, state TEXT NOT NULL, payload TEXT NOT NULL, lease_owner TEXT, \
     created_at BIGINT NOT NULL, completed_at BIGINT)",
    "CREATE INDEX raw_jobs_pending ON raw_jobs (queue, created_at, id) WHERE state = 'pending'",
];

/// N pending rows in one statement (`$1` = N), ids zero-padded to a UUID's length and in
/// creation order, as jobline's UUIDv7 ids are.
fn insert_select(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "INSERT INTO raw_jobs (id, tenant_id, kind, queue, state, payload, created_at) \
             SELECT lpad(g::text, 36, '0'), 't0', 'engine/noop', 'q0', 'pending', '{}', g \
             FROM generate_series(1, $1) AS g"
        }
        Engine::Sqlite => {
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1) \
             INSERT INTO raw_jobs (id, tenant_id, kind, queue, state, payload, created_at) \
             SELECT printf('%036d', g), 't0', 'engine/noop', 'q0', 'pending', '{}', g FROM s"
        }
    }
}

/// The same N rows by one `INSERT … SELECT` into jobline's own `jobs` table, as migrated
/// (its indexes, and its creation trigger writing the timeline): what the schema alone costs,
/// the bound of `enqueue_batch` below the bare-table ceiling.
fn insert_select_jobs(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "INSERT INTO jobs (id, tenant_id, kind, queue, state, max_attempts, cancel_mask, \
               payload, available_at, created_at, updated_at) \
             SELECT lpad(g::text, 36, '0'), 't0', 'engine/noop', 'q0', 'pending', 3, 1, '{}', \
               g, g, g FROM generate_series(1, $1) AS g"
        }
        Engine::Sqlite => {
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1) \
             INSERT INTO jobs (id, tenant_id, kind, queue, state, max_attempts, cancel_mask, \
               payload, available_at, created_at, updated_at) \
             SELECT printf('%036d', g), 't0', 'engine/noop', 'q0', 'pending', 3, 1, '{}', \
               g, g, g FROM s"
        }
    }
}

/// Claims the oldest pending row of queue `q0` for owner `$1`.
fn claim(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => {
            "UPDATE raw_jobs SET state = 'running', lease_owner = $1 WHERE id = \
             (SELECT id FROM raw_jobs WHERE state = 'pending' AND queue = 'q0' \
              ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
        }
        Engine::Sqlite => {
            "UPDATE raw_jobs SET state = 'running', lease_owner = $1 WHERE id = \
             (SELECT id FROM raw_jobs WHERE state = 'pending' AND queue = 'q0' \
              ORDER BY created_at, id LIMIT 1) RETURNING id"
        }
    }
}

const COMPLETE: &str = "UPDATE raw_jobs SET state = 'succeeded', completed_at = $2 \
                        WHERE id = $1 AND state = 'running'";

/// `n` fresh job ids, as text.
fn job_ids(n: usize) -> Vec<String> {
    (0..n).map(|_| jobline_core::JobId::new().to_string()).collect()
}

/// Creates the table on `$pool`.
macro_rules! raw_table {
    ($pool:expr) => {
        for ddl in TABLE {
            sqlx::query(ddl).execute($pool).await?;
        }
    };
}

/// One `INSERT … SELECT` of `$n` rows: its time.
macro_rules! raw_bulk {
    ($pool:expr, $engine:expr, $n:expr) => {{
        let pool = $pool;
        raw_table!(&pool);
        let t = Instant::now();
        sqlx::query(insert_select($engine)).bind($n as i64).execute(&pool).await?;
        t.elapsed()
    }};
}

/// `$n` one-row INSERT transactions, then `$n` one-row UPDATE transactions of those rows:
/// both times.
macro_rules! raw_singles {
    ($pool:expr, $n:expr) => {{
        let pool = $pool;
        raw_table!(&pool);
        let ids = job_ids($n);
        let t = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            sqlx::query(
                "INSERT INTO raw_jobs (id, tenant_id, kind, queue, state, payload, created_at) \
                 VALUES ($1, 't0', 'engine/noop', 'q0', 'pending', '{}', $2)",
            )
            .bind(id.as_str())
            .bind(i as i64)
            .execute(&pool)
            .await?;
        }
        let insert = t.elapsed();
        let t = Instant::now();
        for id in &ids {
            sqlx::query(
                "UPDATE raw_jobs SET state = 'cancelled' WHERE id = $1 AND state = 'pending'",
            )
            .bind(id.as_str())
            .execute(&pool)
            .await?;
        }
        (insert, t.elapsed())
    }};
}

/// `$n` rows by multi-row INSERTs of 500 rows per transaction: the time.
macro_rules! raw_chunked {
    ($pool:expr, $n:expr) => {{
        let pool = $pool;
        raw_table!(&pool);
        let ids = job_ids($n);
        let t = Instant::now();
        for chunk in ids.chunks(500) {
            let mut tx = pool.begin().await?;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO raw_jobs (id, tenant_id, kind, queue, state, payload, created_at) ",
            );
            qb.push_values(chunk, |mut b, id| {
                b.push_bind(id.as_str())
                    .push_bind("t0")
                    .push_bind("engine/noop")
                    .push_bind("q0")
                    .push_bind("pending")
                    .push_bind("{}")
                    .push_bind(0i64);
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await?;
        }
        t.elapsed()
    }};
}

/// A backlog of `$n` rows drained by `$conns` connections at once, each claiming and
/// completing one row at a time in its own transactions: jobs drained and the time.
macro_rules! raw_drain {
    ($pool:expr, $engine:expr, $n:expr, $conns:expr) => {{
        let pool = $pool;
        raw_table!(&pool);
        sqlx::query(insert_select($engine)).bind($n as i64).execute(&pool).await?;
        let t = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..$conns {
            let pool = pool.clone();
            workers.spawn(async move {
                let owner = format!("w{w}");
                let mut done = 0usize;
                loop {
                    let claimed: Option<(String,)> = sqlx::query_as(claim($engine))
                        .bind(owner.as_str())
                        .fetch_optional(&pool)
                        .await?;
                    let Some((id,)) = claimed else { break };
                    sqlx::query(COMPLETE).bind(id).bind(done as i64).execute(&pool).await?;
                    done += 1;
                }
                Ok::<usize, sqlx::Error>(done)
            });
        }
        let mut done = 0;
        while let Some(worker) = workers.join_next().await {
            done += worker??;
        }
        (done, t.elapsed())
    }};
}

/// Measures every ceiling of the engine suite on `engine`.
pub(crate) async fn bench(engine: Engine, args: &Args, r: &mut Report) -> Result<()> {
    let n = args.jobs;
    let singles = n.min(crate::SEQUENTIAL_MAX);

    let db = TestDb::new(engine).await;
    let took = with_raw_pool!(engine, db, 1, |pool| raw_bulk!(pool, engine, n));
    let what = format!("ceiling: {n} job rows by one `INSERT … SELECT` (one tx), rows/s");
    r.ceiling(engine, Ceiling::InsertSelect, &what, Value::rate(n, took));

    let db = TestDb::new(engine).await;
    let _migrated = db.store().await;
    let took = with_raw_pool!(engine, db, 1, |pool| {
        let t = Instant::now();
        sqlx::query(insert_select_jobs(engine)).bind(n as i64).execute(&pool).await?;
        t.elapsed()
    });
    let what = format!(
        "ceiling on jobline's schema: {n} rows by one `INSERT … SELECT` into its `jobs` table \
         (indexes, timeline trigger), rows/s"
    );
    r.ceiling(engine, Ceiling::InsertSelectSchema, &what, Value::rate(n, took));

    let db = TestDb::new(engine).await;
    let took = with_raw_pool!(engine, db, 1, |pool| raw_chunked!(pool, n));
    let what = format!("ceiling: {n} job rows by multi-row INSERTs, 500 per tx, rows/s");
    r.ceiling(engine, Ceiling::InsertChunked, &what, Value::rate(n, took));

    let db = TestDb::new(engine).await;
    let (insert, update) = with_raw_pool!(engine, db, 1, |pool| raw_singles!(pool, singles));
    let what = format!("ceiling: {singles} one-row INSERT transactions, sequential, tx/s");
    r.ceiling(engine, Ceiling::InsertSingle, &what, Value::rate(singles, insert));
    let what = format!("ceiling: {singles} one-row UPDATE transactions, sequential, tx/s");
    r.ceiling(engine, Ceiling::UpdateSingle, &what, Value::rate(singles, update));

    for c in crate::engine::DRAIN_CONCURRENCY {
        // SQLite serialises writers: more connections only queue on its lock.
        let conns = if engine == Engine::Sqlite { 1 } else { c };
        let db = TestDb::new(engine).await;
        let (done, took): (usize, Duration) =
            with_raw_pool!(engine, db, conns, |pool| raw_drain!(pool, engine, n, conns));
        anyhow::ensure!(done == n, "the raw drain finished {done} of {n} rows");
        let what = format!(
            "ceiling: drain {n} rows at C={c}, claim + complete as raw SQL (one tx each), \
             {conns} connection(s), jobs/s"
        );
        r.ceiling(engine, Ceiling::ClaimComplete { c }, &what, Value::rate(n, took));
    }
    Ok(())
}
