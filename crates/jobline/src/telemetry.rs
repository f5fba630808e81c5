//! Logging: `tracing` events and spans to stderr, as text or JSON lines.
//!
//! Logs never go to stdout, which carries the commands' own output (the bootstrap credentials,
//! `clients create --json`), so that output can be piped and parsed. Installed once, by the CLI;
//! tests install their own (silent unless `TEST_LOG=1`).

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset: our info, and only warnings from sqlx's query logging.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber. A second call (or one after another subscriber was set)
/// changes nothing and is not an error.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into files or log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    // A subscriber set earlier (by a test harness, say) stays; that is fine.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Upper bounds (seconds) of every `_seconds` histogram's buckets: from a fast HTTP answer
/// (5 ms) to an hour-long import.
const SECONDS_BUCKETS: [f64; 17] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    1800.0, 3600.0,
];

/// How often the recorder drains its histogram buffers when nobody scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's Prometheus recorder, installed as the `metrics` facade's global recorder on
/// the first call (later calls return the same handle). `None` if another recorder was
/// installed first, which leaves `/metrics` out rather than serving someone else's figures.
///
/// `_seconds` histograms render as Prometheus histograms with [`SECONDS_BUCKETS`]. The figures
/// are the process's own (a test binary's servers share them): counters count what this
/// process did, while the queue-depth gauge is read from the database at each scrape.
pub fn metrics_recorder() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS);
            let handle = match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => handle,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "metrics recorder not installed; /metrics is off");
                    return None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "bad metrics buckets; /metrics is off");
                    return None;
                }
            };
            // `install_recorder` leaves upkeep to the caller. A thread, not a task: the handle
            // outlives any one tokio runtime (each API test runs its own).
            let upkeep = handle.clone();
            let spawned =
                std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "no metrics upkeep thread; scrapes still drain");
            }
            describe_metrics();
            Some(handle)
        })
        .clone()
}

/// The `# HELP` line of each figure (units are in the names).
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("jobline_jobs_created_total", "Jobs created, by kind.");
    describe_counter!("jobline_jobs_finished_total", "Jobs that ended, by kind and end state.");
    describe_counter!(
        "jobline_lease_rescues_total",
        "Jobs whose lease expired (worker lost), by kind and what the rescue did."
    );
    describe_counter!(
        "jobline_fenced_writes_total",
        "Worker writes refused because the job was no longer held at their attempt, by write."
    );
    describe_counter!("jobline_jobs_deleted_total", "Finished jobs deleted by retention.");
    describe_counter!(
        "jobline_http_requests_total",
        "HTTP requests, by method, route template and status."
    );
    describe_gauge!(
        "jobline_queue_depth",
        "Unfinished jobs in the database, by state and kind (the same on every node)."
    );
    describe_histogram!(
        "jobline_claim_latency_seconds",
        "Time from a job becoming available to its claim, by kind."
    );
    describe_histogram!(
        "jobline_job_run_duration_seconds",
        "Time a handler ran, by kind and outcome."
    );
    describe_histogram!(
        "jobline_cancel_stop_seconds",
        "Time from a worker tripping a job's cancel to its handler stopping, by kind."
    );
    describe_histogram!(
        "jobline_http_request_duration_seconds",
        "HTTP request durations, by method, route template and status."
    );
}
