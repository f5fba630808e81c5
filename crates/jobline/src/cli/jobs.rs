//! The remote commands: `jobline jobs list|get|cancel|watch` and `jobline queues`, which talk
//! to a running server's `/v1` API through [`crate::remote`].
//!
//! Output is a table (or a few labelled lines) for people and the API's own JSON with `--json`
//! for scripts. `jobs get` and `jobs watch` exit with a status that says how the job ended
//! ([`JobExit`]), so a script can branch on it without parsing anything.

use crate::config::FileConfig;
use crate::remote::{Remote, RemoteArgs, RemoteError};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

pub(super) const JOBS_EXAMPLES: &str = "Examples:
  export JOBLINE_URL=http://127.0.0.1:8080 JOBLINE_CLIENT_ID=… JOBLINE_CLIENT_SECRET=…
  jobline jobs list --state running,pending --dialect pxm
  jobline jobs list --tenant store-1 --json | jq -r '.data[].id'
  jobline jobs get 0193b7a2-7c1e-7d4a-9f10-2a9c3e5b6d7f
  jobline jobs cancel 0193b7a2-7c1e-7d4a-9f10-2a9c3e5b6d7f
  jobline jobs watch 0193b7a2-7c1e-7d4a-9f10-2a9c3e5b6d7f && echo done

`jobs get` and `jobs watch` exit with how the job ended:
  0 succeeded, 3 failed, 4 cancelled, 5 not finished yet (get only), 6 no such job,
  1 any other error (server unreachable, credentials refused).
`jobs cancel` exits 0 when the cancel was accepted (the job is cancelled or cancelling),
  7 when the job's state does not allow it (already finished, or running for a kind that
  can only be cancelled while pending), 6 when there is no such job.";

pub(super) const QUEUES_EXAMPLES: &str = "Examples:
  jobline queues
  jobline queues --tenant store-1 --json";

/// How `jobs get`, `jobs watch` and `jobs cancel` exit; anything else that fails exits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobExit {
    /// The job succeeded (or, for `cancel`, the cancel was accepted).
    Succeeded = 0,
    /// The job failed.
    Failed = 3,
    /// The job was cancelled.
    Cancelled = 4,
    /// The job has not finished yet.
    Unfinished = 5,
    /// No such job (or not one this client may see).
    NotFound = 6,
    /// `cancel` was refused by the job's state.
    NotCancellable = 7,
}

impl JobExit {
    /// The exit status for a job in `state`.
    pub fn of_state(state: &str) -> Self {
        match state {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => Self::Unfinished,
        }
    }
}

impl From<JobExit> for ExitCode {
    fn from(exit: JobExit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// The `jobs` commands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing buys nothing here
pub enum JobsCommand {
    /// List jobs, newest first, with the API's filters
    List(ListJobsArgs),
    /// Show one job: state, progress, timeline, errors, files; exits with how it ended
    Get(JobIdArgs),
    /// Ask a job to stop: pending jobs are cancelled at once, running ones stop at their next
    /// checkpoint (if their kind allows it)
    Cancel(JobIdArgs),
    /// Follow a job with a progress bar, printing each state change, until it ends; exits
    /// with how it ended
    Watch(JobIdArgs),
}

/// Arguments of `jobs list`.
#[derive(Debug, clap::Args)]
pub struct ListJobsArgs {
    /// Only this tenant's jobs
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Only this dialect's jobs: pxm, promotions, zuora or engine
    #[arg(long, value_name = "DIALECT")]
    pub dialect: Option<String>,
    /// Only jobs of this kind, for example pxm/product_import
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only jobs in these states (comma-separated): awaiting_input, pending, running,
    /// cancelling, succeeded, failed, cancelled
    #[arg(long, value_name = "STATES")]
    pub state: Option<String>,
    /// Only jobs of this queue
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<String>,
    /// Only jobs about this subject (a promotion id, say)
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
    /// Only jobs created at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub created_after: Option<String>,
    /// Only jobs created before this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub created_before: Option<String>,
    /// Order: -created_at (newest first, the default) or created_at
    #[arg(long, value_name = "ORDER", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Jobs per page, 1 to 200 [default: 50]
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// The page after the one that printed this cursor
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Print the API's page as JSON: {"data": [job…], "next": cursor or null}
    #[arg(long)]
    pub json: bool,
    /// Where the server is and who to be.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Arguments of the commands about one job.
#[derive(Debug, clap::Args)]
pub struct JobIdArgs {
    /// The job's id
    #[arg(value_name = "JOB_ID")]
    pub id: String,
    /// Print JSON: the job (get, cancel), or one line per event and the final job (watch)
    #[arg(long)]
    pub json: bool,
    /// Where the server is and who to be.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Arguments of `jobline queues`.
#[derive(Debug, clap::Args)]
#[command(after_help = QUEUES_EXAMPLES)]
pub struct QueuesArgs {
    /// Only this tenant's queues
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Print the API's answer as JSON: {"data": [queue…]}
    #[arg(long)]
    pub json: bool,
    /// Where the server is and who to be.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Runs a `jobs` command.
pub(super) async fn run(command: &JobsCommand, file: &FileConfig) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::List(args) => list(args, file).await,
        JobsCommand::Get(args) => get(args, file).await,
        JobsCommand::Cancel(args) => cancel(args, file).await,
        JobsCommand::Watch(args) => watch(args, file).await,
    }
}

async fn connect(args: &RemoteArgs, file: &FileConfig) -> Result<Remote, RemoteError> {
    Remote::connect(&args.resolve(file)?).await
}

/// `jobs list`.
async fn list(args: &ListJobsArgs, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let remote = connect(&args.remote, file).await?;
    let mut query: Vec<(&str, String)> = Vec::new();
    let filters = [
        ("tenant", &args.tenant),
        ("dialect", &args.dialect),
        ("kind", &args.kind),
        ("state", &args.state),
        ("queue", &args.queue),
        ("subject", &args.subject),
        ("created_after", &args.created_after),
        ("created_before", &args.created_before),
        ("sort", &args.sort),
        ("cursor", &args.cursor),
    ];
    for (name, value) in filters {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    let page = remote.list_jobs(&query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = page["data"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut rows = vec![["ID", "STATE", "KIND", "TENANT", "QUEUE", "PROGRESS", "CREATED"]
        .map(String::from)
        .to_vec()];
    for job in jobs {
        rows.push(vec![
            text(&job["id"]),
            text(&job["state"]),
            text(&job["kind"]),
            text(&job["tenant"]),
            text(&job["queue"]),
            progress(&job["progress"]),
            text(&job["created_at"]),
        ]);
    }
    print!("{}", table(&rows));
    if jobs.is_empty() {
        println!("(no jobs)");
    }
    if let Some(next) = page["next"].as_str() {
        println!("More: add --cursor {next}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `jobs get`.
async fn get(args: &JobIdArgs, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let remote = connect(&args.remote, file).await?;
    let job = match remote.get_job(&args.id).await {
        Ok(job) => job,
        Err(e) if e.is_not_found() => return Ok(not_found(&args.id)),
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        print!("{}", describe(&job));
    }
    Ok(JobExit::of_state(job["state"].as_str().unwrap_or_default()).into())
}

/// `jobs cancel`.
async fn cancel(args: &JobIdArgs, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let remote = connect(&args.remote, file).await?;
    match remote.cancel_job(&args.id).await {
        Ok(job) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else if job["state"] == "cancelling" {
                println!(
                    "Job {} is cancelling: it stops at its next checkpoint (follow it with \
                     `jobline jobs watch {}`).",
                    args.id, args.id
                );
            } else {
                println!("Job {} is {}.", args.id, text(&job["state"]));
            }
            Ok(JobExit::Succeeded.into())
        }
        Err(e) if e.is_not_found() => Ok(not_found(&args.id)),
        Err(RemoteError::Api { status: 409, message, state, .. }) => {
            let state = state.map(|s| format!(" (the job is {s})")).unwrap_or_default();
            eprintln!("error: job {} cannot be cancelled: {message}{state}", args.id);
            Ok(JobExit::NotCancellable.into())
        }
        Err(e) => Err(e.into()),
    }
}

fn not_found(id: &str) -> ExitCode {
    eprintln!("error: no job {id} (or not one this client may see)");
    JobExit::NotFound.into()
}

/// `jobs watch`: the job's current state, then each later event until a final state.
///
/// The stream is opened after the job's last timeline event (`last_event_id`), so the server
/// replays whatever happened between the first read and the subscription: no change is missed.
/// Progress is not an event, so the job is also re-read every second for the bar. If the
/// stream drops, it is reopened after the last event seen.
async fn watch(args: &JobIdArgs, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let remote = connect(&args.remote, file).await?;
    let mut job = match remote.get_job(&args.id).await {
        Ok(job) => job,
        Err(e) if e.is_not_found() => return Ok(not_found(&args.id)),
        Err(e) => return Err(e.into()),
    };
    let bar = progress_bar();
    let say = |line: String| bar.suspend(|| println!("{line}"));
    let mut state = text(&job["state"]);
    if args.json {
        say(serde_json::to_string(&serde_json::json!({"job": summary(&job)}))?);
    } else {
        say(format!("{}  {}  {}", text(&job["kind"]), args.id, state));
    }
    let mut last_event = job["timeline"]
        .as_array()
        .and_then(|t| t.iter().filter_map(|e| e["event_id"].as_i64()).max());
    while !is_final(&state) {
        update_bar(&bar, &job);
        let mut query = vec![("job", args.id.clone())];
        if let Some(id) = last_event {
            query.push(("last_event_id", id.to_string()));
        }
        let mut stream = match remote.events(&query).await {
            Ok(stream) => Some(stream),
            // A server without the event stream (or a proxy that drops it) still gets watched,
            // by reading the job every second.
            Err(RemoteError::Api { status: 404 | 501 | 502 | 503, .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let event = tokio::select! {
                event = next_event(stream.as_mut()) => event,
                _ = tick.tick() => {
                    job = remote.get_job(&args.id).await?;
                    update_bar(&bar, &job);
                    let now = text(&job["state"]);
                    if stream.is_none() && now != state {
                        // Without events, report the change as the job shows it.
                        if args.json {
                            say(serde_json::to_string(&serde_json::json!({"job": summary(&job)}))?);
                        } else {
                            say(format!("{}  {state} -> {now}", text(&job["updated_at"])));
                        }
                        state = now;
                    }
                    if is_final(&state) { break; }
                    continue;
                }
            };
            let Some(event) = event? else { break };
            if event.event != "job" {
                continue;
            }
            let Ok(data) = serde_json::from_str::<Value>(&event.data) else { continue };
            if let Some(id) =
                data["event_id"].as_i64().or_else(|| event.id.as_deref()?.parse().ok())
            {
                last_event = Some(id);
            }
            if args.json {
                say(serde_json::to_string(&data)?);
            } else {
                let from = data["from"].as_str().unwrap_or("(new)");
                say(format!(
                    "{}  {from} -> {}  {}",
                    text(&data["at"]),
                    text(&data["to"]),
                    data["cause"].as_str().unwrap_or_default()
                ));
            }
            if !data["job"].is_null() {
                job = data["job"].clone();
                update_bar(&bar, &job);
            }
            state = data["to"].as_str().map_or_else(|| text(&job["state"]), str::to_owned);
            if is_final(&state) {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let exit = JobExit::of_state(&state);
    if !args.json {
        println!("Job {} {state}.", args.id);
    }
    Ok(exit.into())
}

async fn next_event(
    stream: Option<&mut crate::remote::EventStream>,
) -> Result<Option<crate::remote::SseEvent>, RemoteError> {
    match stream {
        Some(stream) => stream.next().await,
        // No stream: only the ticks move the watch on.
        None => std::future::pending().await,
    }
}

fn is_final(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

/// A bar on stderr, drawn only when stderr is a terminal (indicatif hides it otherwise, so
/// scripts and logs get the plain lines alone).
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn update_bar(bar: &ProgressBar, job: &Value) {
    let done = job["progress"]["done"].as_u64().unwrap_or(0);
    match job["progress"]["total"].as_u64() {
        Some(total) => bar.set_length(total),
        None => bar.unset_length(),
    }
    bar.set_position(done);
    bar.set_message(text(&job["state"]));
}

/// The job without its long parts (timeline, errors), for `watch --json`'s first line.
fn summary(job: &Value) -> Value {
    let mut job = job.clone();
    if let Some(map) = job.as_object_mut() {
        for key in ["timeline", "errors", "files", "result"] {
            map.remove(key);
        }
    }
    job
}

/// `jobline queues`.
pub(super) async fn queues(args: &QueuesArgs, file: &FileConfig) -> anyhow::Result<ExitCode> {
    let remote = connect(&args.remote, file).await?;
    let query: Vec<(&str, String)> =
        args.tenant.iter().map(|tenant| ("tenant", tenant.clone())).collect();
    let answer = remote.queues(&query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let queues = answer["data"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut rows = vec![[
        "QUEUE",
        "TENANT",
        "CONCURRENCY",
        "RUNNING",
        "PENDING",
        "AWAITING",
        "OLDEST PENDING",
        "DONE/MIN",
        "FAILED",
    ]
    .map(String::from)
    .to_vec()];
    for q in queues {
        let count = |state: &str| q["counts"][state].as_u64().unwrap_or(0).to_string();
        rows.push(vec![
            text(&q["queue"]),
            text(&q["tenant"]),
            q["concurrency"].as_u64().map_or_else(|| "default".into(), |c| c.to_string()),
            q["running"].as_u64().unwrap_or(0).to_string(),
            count("pending"),
            count("awaiting_input"),
            q["oldest_pending_age_secs"]
                .as_f64()
                .map_or_else(|| "-".into(), |s| format!("{s:.0}s")),
            q["finished_last_minute"].as_u64().unwrap_or(0).to_string(),
            count("failed"),
        ]);
    }
    print!("{}", table(&rows));
    if queues.is_empty() {
        println!("(no queues)");
    }
    Ok(ExitCode::SUCCESS)
}

/// A job for people: its fields, then its timeline, errors and files.
fn describe(job: &Value) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<10} {value}\n"));
    field("id", text(&job["id"]));
    field("state", text(&job["state"]));
    field("kind", text(&job["kind"]));
    field("tenant", text(&job["tenant"]));
    field("queue", text(&job["queue"]));
    if !job["subject"].is_null() {
        field("subject", text(&job["subject"]));
    }
    field("progress", progress(&job["progress"]));
    field("attempt", format!("{} of {}", text(&job["attempt"]), text(&job["max_attempts"])));
    field("created", text(&job["created_at"]));
    field("started", text(&job["started_at"]));
    field("finished", text(&job["completed_at"]));
    if !job["error"].is_null() {
        field("error", text(&job["error"]));
    }
    if !job["result"].is_null() {
        field("result", job["result"].to_string());
    }
    if let Some(timeline) = job["timeline"].as_array().filter(|t| !t.is_empty()) {
        out.push_str("\nTimeline:\n");
        let mut rows = vec![["AT", "FROM", "TO", "NODE", "CAUSE"].map(String::from).to_vec()];
        for e in timeline {
            rows.push(vec![
                text(&e["at"]),
                text(&e["from"]),
                text(&e["to"]),
                text(&e["node"]),
                text(&e["cause"]),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }
    let total = job["errors"]["total"].as_u64().unwrap_or(0);
    if total > 0 {
        let shown = job["errors"]["data"].as_array().map(Vec::as_slice).unwrap_or_default();
        out.push_str(&format!("\nErrors ({total}, first {} shown):\n", shown.len()));
        let mut rows = vec![["ROW", "CODE", "MESSAGE"].map(String::from).to_vec()];
        for e in shown {
            rows.push(vec![text(&e["row"]), text(&e["code"]), text(&e["message"])]);
        }
        out.push_str(&indent(&table(&rows)));
    }
    if let Some(files) = job["files"].as_array().filter(|f| !f.is_empty()) {
        out.push_str("\nFiles:\n");
        for f in files {
            out.push_str(&format!(
                "  {}  {}  {}\n",
                text(&f["name"]),
                text(&f["content_type"]),
                text(&f["url"])
            ));
        }
    }
    out
}

/// A JSON value as a table cell: strings bare, null as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `done/total` (or `done` with no total, `-` with neither).
fn progress(value: &Value) -> String {
    match (value["done"].as_u64(), value["total"].as_u64()) {
        (Some(done), Some(total)) if total > 0 => {
            format!("{done}/{total} ({}%)", done.saturating_mul(100) / total)
        }
        (Some(done), _) if done > 0 => done.to_string(),
        _ => "-".into(),
    }
}

/// Rows as aligned columns (two spaces apart), the first row being the header.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exit_statuses_are_distinct_and_name_the_end_state() {
        let cases = [
            ("succeeded", 0),
            ("failed", 3),
            ("cancelled", 4),
            ("running", 5),
            ("cancelling", 5),
            ("awaiting_input", 5),
        ];
        for (state, code) in cases {
            assert_eq!(JobExit::of_state(state) as u8, code, "{state}");
        }
        assert_eq!(JobExit::NotFound as u8, 6);
        assert_eq!(JobExit::NotCancellable as u8, 7);
    }

    #[test]
    fn tables_align_columns_and_progress_shows_a_fraction() {
        let rows = vec![
            vec!["ID".to_owned(), "STATE".to_owned()],
            vec!["a-long-id".to_owned(), "running".to_owned()],
        ];
        assert_eq!(table(&rows), "ID         STATE\na-long-id  running\n");
        assert_eq!(progress(&json!({"done": 5, "total": 20})), "5/20 (25%)");
        assert_eq!(progress(&json!({"done": 0, "total": null})), "-");
    }
}
