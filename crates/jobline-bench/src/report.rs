//! The report: every measurement as a row per engine, then one summary table that lines
//! jobline's figures up with graphile-worker's (`shared/research/queue-peers.md`) and with the
//! ceiling measured in the same run (raw SQL on the same database, or a bare axum router for
//! HTTP), so BENCHMARKS.md can paste it whole.
//!
//! Why a table of its own: the peers' figures were taken in fixed shapes (bulk and single
//! enqueue, drains at C=1 and C=10, idle latency, cancels), and a ratio only means something
//! between figures of one shape. Each summary row is a [`Fig`]; a figure names its peer row
//! and its ceiling, so the pairing lives in one place ([`Fig::peer`], [`Fig::ceiling`]).

use jobline_testkit::Engine;
use std::time::Duration;

/// A measured value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    /// Items (jobs, rows, transactions) per second.
    Rate(f64),
    /// A latency distribution, by its p50 and p99.
    Latency { p50: Duration, p99: Duration },
    /// HTTP requests per second, how many were sent, and each request's latency.
    Load { per_sec: f64, requests: usize, p50: Duration, p99: Duration },
}

impl Value {
    /// `n` items in `took`.
    pub(crate) fn rate(n: usize, took: Duration) -> Self {
        Value::Rate(n as f64 / took.as_secs_f64().max(f64::MIN_POSITIVE))
    }

    /// The p50 and p99 of `samples` (sorted here).
    pub(crate) fn latency(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Value::Latency {
            p50: crate::percentile(&samples, 0.5),
            p99: crate::percentile(&samples, 0.99),
        }
    }

    /// Requests that took `samples` each (sorted here), all sent in `elapsed`.
    pub(crate) fn load(mut samples: Vec<Duration>, elapsed: Duration) -> Self {
        samples.sort();
        Value::Load {
            per_sec: samples.len() as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
            requests: samples.len(),
            p50: crate::percentile(&samples, 0.5),
            p99: crate::percentile(&samples, 0.99),
        }
    }

    /// The number ratios are taken of: the rate, or the p50 in milliseconds.
    fn headline(self) -> f64 {
        match self {
            Value::Rate(r) | Value::Load { per_sec: r, .. } => r,
            Value::Latency { p50, .. } => p50.as_secs_f64() * 1000.0,
        }
    }

    /// The value in a summary cell: short, in the peers table's style (`1.2k`, `83k`).
    fn short(self) -> String {
        match self {
            Value::Rate(r) => short_rate(r),
            Value::Latency { p50, p99 } => {
                format!("{:.2} / {:.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3)
            }
            Value::Load { per_sec, p50, p99, .. } => format!(
                "{}/s ({:.2} / {:.2} ms)",
                short_rate(per_sec),
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            ),
        }
    }
}

/// The value as a row of the per-engine table shows it.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Rate(r) => write!(f, "{r:.0}"),
            Value::Latency { p50, p99 } => write!(f, "{} / {}", crate::ms(p50), crate::ms(p99)),
            Value::Load { per_sec, requests, p50, p99 } => write!(
                f,
                "{per_sec:.0} req/s, p50 / p99 {} / {} ({requests} requests)",
                crate::ms(p50),
                crate::ms(p99)
            ),
        }
    }
}

fn short_rate(r: f64) -> String {
    match r {
        r if r >= 10_000.0 => format!("{:.0}k", r / 1000.0),
        r if r >= 1_000.0 => format!("{:.2}k", r / 1000.0),
        r => format!("{r:.0}"),
    }
}

/// An HTTP call of the `http` suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Create a job.
    Create,
    /// Read one job.
    GetOne,
    /// Cancel one pending job.
    Cancel,
    /// Read a page of jobs.
    List,
}

/// A row of the summary table: one shape, measured on each engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fig {
    /// N jobs in one `enqueue_batch` call.
    EnqueueBulk,
    /// N jobs, 1,000 per `enqueue_batch` call.
    EnqueueChunked,
    /// Jobs enqueued one call (one transaction) each, one caller.
    EnqueueSingle,
    /// An N backlog drained by `slots` = `c` slots, on one queue or on 100 queues of
    /// concurrency 1; `local` when the runtime prefetches into its local queue.
    Drain { c: u32, queues: usize, local: bool },
    /// Idle worker: enqueue → handler starts.
    AddToStart,
    /// Pending jobs cancelled one `request_cancel` call each, one caller.
    CancelSequential,
    /// Pending jobs cancelled one call each by 8 concurrent callers.
    CancelConcurrent,
    /// A running handler: cancel request → the handler returns.
    CancelRunning,
    /// One HTTP call, at `conc` concurrent requests.
    Http { call: Call, conc: usize },
}

/// What a figure is held against: the same work with nothing of jobline in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ceiling {
    /// N job rows by one `INSERT … SELECT` (one transaction).
    InsertSelect,
    /// N rows by one `INSERT … SELECT` into jobline's own `jobs` table (its indexes and
    /// triggers): listed beside the others, in no table column.
    InsertSelectSchema,
    /// N job rows by multi-row INSERTs, 500 rows per transaction.
    InsertChunked,
    /// One-row INSERT transactions, sequential.
    InsertSingle,
    /// One-row conditional UPDATE transactions, sequential (what a cancel of a pending job
    /// costs at least).
    UpdateSingle,
    /// Claim + complete as raw SQL, one transaction each, `c` connections at once on
    /// PostgreSQL (one on SQLite, whose writers take turns anyway).
    ClaimComplete { c: u32 },
    /// A bare axum "hello world" over the same client at `conc` concurrent requests.
    Hello { conc: usize },
}

/// A graphile-worker 0.18 figure from `shared/research/queue-peers.md`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// The row of queue-peers.md's table it is taken from.
    row: &'static str,
    /// The figure as the table states it.
    text: &'static str,
    /// Its range in the unit of [`Value::headline`] (jobs/s, or ms for a latency); `None`
    /// when it is no number ("not supported").
    range: Option<(f64, f64)>,
}

/// A peer figure from `row` of queue-peers.md, stated as `text`, spanning `lo..=hi`.
const fn gw(row: &'static str, text: &'static str, lo: f64, hi: f64) -> Peer {
    Peer { row, text, range: Some((lo, hi)) }
}

/// graphile-worker 0.18's column of queue-peers.md's table: the rows a figure here faces.
#[rustfmt::skip] // one peer a line, as the rows of queue-peers.md
mod graphile {
    use super::{gw, Peer};
    pub(super) const ENQUEUE_BULK: Peer = gw("enqueue, one bulk call of N jobs", "83–85k jobs/s", 83_000.0, 85_000.0);
    pub(super) const ENQUEUE_SINGLE: Peer = gw("enqueue, one call (one tx) per job, sequential", "1.17k/s", 1_170.0, 1_170.0);
    pub(super) const DRAIN_PER_JOB_C10: Peer = gw("drain a 100k backlog, per-job commits, C=10", "3.9–4.7k/s", 3_900.0, 4_700.0);
    pub(super) const DRAIN_BATCHED_C10: Peer = gw("drain a 100k backlog, batched fetch/complete, C=10", "59–62k/s", 59_000.0, 62_000.0);
    pub(super) const DRAIN_C1: Peer = gw("drain 20k, one worker (C=1)", "1.4k/s", 1_400.0, 1_400.0);
    pub(super) const ADD_TO_START: Peer = gw("enqueue → handler start, idle, p50", "1.0–1.9 ms (p50)", 1.0, 1.9);
    pub(super) const CANCEL_SEQUENTIAL: Peer = gw("cancel pending jobs, one call each, sequential", "3.5k/s", 3_500.0, 3_500.0);
    pub(super) const CANCEL_RUNNING: Peer = Peer { row: "cancel a running job → its handler stops", text: "not supported", range: None };
}

impl Fig {
    /// graphile-worker's figure of the same shape, if queue-peers.md has one. The local-queue
    /// drains at C=10 face its batched mode (`localQueue` + batched completion); the C=1
    /// drain row of the peers is unbatched.
    fn peer(self) -> Option<Peer> {
        match self {
            Fig::EnqueueBulk => Some(graphile::ENQUEUE_BULK),
            Fig::EnqueueSingle => Some(graphile::ENQUEUE_SINGLE),
            Fig::Drain { c: 10, local: false, .. } => Some(graphile::DRAIN_PER_JOB_C10),
            Fig::Drain { c: 10, local: true, .. } => Some(graphile::DRAIN_BATCHED_C10),
            Fig::Drain { c: 1, local: false, .. } => Some(graphile::DRAIN_C1),
            Fig::AddToStart => Some(graphile::ADD_TO_START),
            Fig::CancelSequential => Some(graphile::CANCEL_SEQUENTIAL),
            Fig::CancelRunning => Some(graphile::CANCEL_RUNNING),
            Fig::Drain { .. } | Fig::EnqueueChunked | Fig::CancelConcurrent | Fig::Http { .. } => {
                None
            }
        }
    }

    /// The ceiling of the same shape, if one is measured. A batched drain has none: the raw
    /// claim + complete is per job, so a batch may pass it.
    fn ceiling(self) -> Option<Ceiling> {
        match self {
            Fig::EnqueueBulk => Some(Ceiling::InsertSelect),
            Fig::EnqueueChunked => Some(Ceiling::InsertChunked),
            Fig::EnqueueSingle => Some(Ceiling::InsertSingle),
            Fig::Drain { c, local: false, .. } => Some(Ceiling::ClaimComplete { c }),
            Fig::CancelSequential => Some(Ceiling::UpdateSingle),
            Fig::Http { conc, .. } => Some(Ceiling::Hello { conc }),
            Fig::Drain { local: true, .. }
            | Fig::AddToStart
            | Fig::CancelConcurrent
            | Fig::CancelRunning => None,
        }
    }
}

impl Ceiling {
    /// How the ceiling was taken, as its summary cell names it.
    fn how(self) -> String {
        match self {
            Ceiling::InsertSelect => "rows/s, `INSERT … SELECT`, one tx".into(),
            Ceiling::InsertSelectSchema => {
                "rows/s, `INSERT … SELECT` into jobline's `jobs`, one tx".into()
            }
            Ceiling::InsertChunked => "rows/s, multi-row INSERT, 500 per tx".into(),
            Ceiling::InsertSingle => "tx/s, one-row INSERT per tx".into(),
            Ceiling::UpdateSingle => "tx/s, one-row UPDATE per tx".into(),
            Ceiling::ClaimComplete { c } => {
                format!("jobs/s, claim + complete, one tx each, C={c} (SQLite: 1 connection)")
            }
            Ceiling::Hello { conc } => format!("bare axum hello world, concurrency {conc}"),
        }
    }
}

/// One measurement: a row of the per-engine table, and, for a figure or a ceiling, its value.
struct Row {
    engine: Engine,
    what: String,
    text: String,
    kind: Option<(Kind, Value)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fig(Fig),
    Ceiling(Ceiling),
}

/// Everything measured in one run, in the order measured.
#[derive(Default)]
pub(crate) struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// A measurement with no place in the summary table (the dialect suites, rescue).
    pub(crate) fn add(&mut self, engine: Engine, what: &str, text: String) {
        self.push(engine, what, text, None);
    }

    /// A figure of the summary table; `what` names it (the first engine's name is the
    /// summary row's).
    pub(crate) fn figure(&mut self, engine: Engine, fig: Fig, what: &str, value: Value) {
        self.push(engine, what, value.to_string(), Some((Kind::Fig(fig), value)));
    }

    /// A ceiling, shown beside every figure that names it.
    pub(crate) fn ceiling(&mut self, engine: Engine, ceiling: Ceiling, what: &str, value: Value) {
        self.push(engine, what, value.to_string(), Some((Kind::Ceiling(ceiling), value)));
    }

    fn push(&mut self, engine: Engine, what: &str, text: String, kind: Option<(Kind, Value)>) {
        println!("  {engine:?}: {what}: {text}");
        self.rows.push(Row { engine, what: what.to_owned(), text, kind });
    }

    fn value(&self, engine: Engine, kind: Kind) -> Option<Value> {
        self.rows
            .iter()
            .find(|r| r.engine == engine && r.kind.map(|k| k.0) == Some(kind))?
            .kind
            .map(|k| k.1)
    }

    /// Prints every row, then the summary table.
    pub(crate) fn print(&self) {
        println!("\n| engine | measurement | figure |\n|---|---|---|");
        for r in &self.rows {
            println!("| {:?} | {} | {} |", r.engine, r.what, r.text);
        }
        self.print_summary();
    }

    /// The summary table: one row per figure, in the order first measured, named as the
    /// first engine named it; then which peer row each figure faces.
    fn print_summary(&self) {
        let mut figs: Vec<(Fig, &str)> = Vec::new();
        for r in &self.rows {
            if let Some((Kind::Fig(f), _)) = r.kind {
                if !figs.iter().any(|(g, _)| *g == f) {
                    figs.push((f, &r.what));
                }
            }
        }
        if figs.is_empty() {
            return;
        }
        println!(
            "\n| figure | SQLite | PostgreSQL | peer: graphile-worker 0.18 | ceiling (SQLite / \
             PostgreSQL) | ratio: jobline ÷ peer, jobline ÷ ceiling |\n|---|---|---|---|---|---|"
        );
        for (fig, what) in &figs {
            println!("| {what} | {} |", self.summary_cells(*fig).join(" | "));
        }
        println!(
            "\nPeer figures: graphile-worker 0.18, `shared/research/queue-peers.md` (PostgreSQL \
             15, this machine class), rows:"
        );
        let mut peer_rows: Vec<(&str, Vec<&str>)> = Vec::new();
        for (fig, what) in &figs {
            let Some(p) = fig.peer() else { continue };
            match peer_rows.iter_mut().find(|(row, _)| *row == p.row) {
                Some((_, figures)) => figures.push(what),
                None => peer_rows.push((p.row, vec![what])),
            }
        }
        for (row, figures) in peer_rows {
            println!("- \"{row}\": {}", figures.join("; "));
        }
        println!(
            "\nLatency ratios are of the p50 (lower is better); every other ratio is of a rate \
             (higher is better)."
        );
    }

    /// A figure's cells after its name: each engine's value, the peer's, the ceiling's, and
    /// the ratios.
    fn summary_cells(&self, fig: Fig) -> [String; 5] {
        const ENGINES: [(Engine, &str); 2] = [(Engine::Sqlite, "SQLite"), (Engine::Postgres, "PG")];
        let cell = |v: Option<Value>| v.map_or("–".to_owned(), Value::short);
        let values = ENGINES.map(|(e, _)| self.value(e, Kind::Fig(fig)));
        let peer = fig.peer();
        let ceiling = fig.ceiling();
        let ceilings = ENGINES.map(|(e, _)| ceiling.and_then(|c| self.value(e, Kind::Ceiling(c))));
        let ceiling_cell = match ceiling {
            Some(c) if ceilings.iter().any(Option::is_some) => {
                format!("{} / {} ({})", cell(ceilings[0]), cell(ceilings[1]), c.how())
            }
            _ => "–".to_owned(),
        };
        let mut ratios = Vec::new();
        for (i, (_, name)) in ENGINES.iter().enumerate() {
            let Some(x) = values[i].map(Value::headline) else { continue };
            let mut parts = Vec::new();
            if let Some((lo, hi)) = peer.and_then(|p| p.range) {
                parts.push(format!("{} peer", ratio(x / hi, x / lo)));
            }
            if let Some(c) = ceilings[i].map(Value::headline) {
                parts.push(format!("{} ceiling", ratio(x / c, x / c)));
            }
            if !parts.is_empty() {
                ratios.push(format!("{name}: {}", parts.join(", ")));
            }
        }
        [
            cell(values[0]),
            cell(values[1]),
            peer.map_or("–", |p| p.text).to_owned(),
            ceiling_cell,
            if ratios.is_empty() { "–".to_owned() } else { ratios.join("; ") },
        ]
    }
}

/// `lo–hi×`, or one number when both round alike; two significant digits below 1, so a
/// small ratio does not read as zero.
fn ratio(lo: f64, hi: f64) -> String {
    let digits = |x: f64| match x {
        x if x >= 0.1 => format!("{x:.2}"),
        x if x >= 0.01 => format!("{x:.3}"),
        x => format!("{x:.4}"),
    };
    let (lo, hi) = (digits(lo), digits(hi));
    if lo == hi {
        format!("{lo}×")
    } else {
        format!("{lo}–{hi}×")
    }
}
