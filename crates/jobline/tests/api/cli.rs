//! The compiled `jobline` binary as a user runs it: `serve` with no arguments in an empty
//! directory, `clients create --json`, `migrate`, `--help`, and a `serve` killed with SIGKILL
//! mid-job. Mostly SQLite: the engines are covered by the in-process tests; these check the
//! process (arguments, stdout, signals), and the kill test runs on both engines.

use crate::helpers::eventually;
use jobline_core::SystemClock;
use jobline_store::{Store, StoreConfig};
use jobline_testkit::TempDir;
use serde_json::Value;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;

/// The `jobline` binary, with no `JOBLINE_*` setting inherited from the developer's shell and
/// plain-text logs.
fn jobline(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobline"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("JOBLINE_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir).env("RUST_LOG", "info").kill_on_drop(true);
    cmd
}

async fn run(cmd: &mut Command) -> Output {
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command ends in time")
        .expect("the command starts");
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A port that was free a moment ago (bound, then released for the child to take).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a random port");
    listener.local_addr().expect("a local address").port()
}

/// The value after `label` on the line that has it, e.g. `client_id:     <value>`.
fn field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines().find_map(|line| line.trim().strip_prefix(label)).map(str::trim)
}

#[tokio::test]
async fn serve_with_no_arguments_bootstraps_an_admin_serves_and_stops_cleanly_on_sigterm() {
    let dir = TempDir::new();
    let port = free_port();
    let stdout = std::fs::File::create(dir.0.join("stdout.txt")).unwrap();
    let stderr = std::fs::File::create(dir.0.join("stderr.txt")).unwrap();
    let mut child = jobline(&dir.0)
        .arg("serve")
        .env("JOBLINE_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start jobline serve");
    let logs = || std::fs::read_to_string(dir.0.join("stderr.txt")).unwrap_or_default();

    let client = reqwest::Client::new();
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    let up = eventually(Duration::from_secs(30), || async {
        let response = client.get(&healthz).send().await.ok()?;
        (response.status() == reqwest::StatusCode::OK).then_some(())
    })
    .await;
    assert!(up.is_some(), "/healthz never answered; logs:\n{}", logs());

    let pid = child.id().expect("the child is running").to_string();
    let kill = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!("jobline did not stop within 20 s of SIGTERM; logs:\n{}", logs())
        })
        .unwrap();
    assert!(status.success(), "exit status {status:?}; logs:\n{}", logs());

    let out = std::fs::read_to_string(dir.0.join("stdout.txt")).unwrap();
    let id = field(&out, "client_id:").unwrap_or_else(|| panic!("no client id in {out:?}"));
    let secret = field(&out, "client_secret:").unwrap_or_else(|| panic!("no secret in {out:?}"));
    assert_eq!(id.len(), 36, "{id:?}");
    assert!(!secret.is_empty() && secret.len() <= 42, "{secret:?}");
    let curl = format!(
        "curl -s -X POST http://127.0.0.1:{port}/oauth/access_token -d grant_type=client_credentials -d client_id={id} -d client_secret={secret}"
    );
    assert!(out.contains(&curl), "{out:?} should contain {curl:?}");
    assert!(logs().contains(&format!("listening on 127.0.0.1:{port}")), "{}", logs());
    assert!(dir.0.join("data/jobline.db").exists(), "the default database is ./data/jobline.db");
}

#[tokio::test]
async fn clients_create_json_prints_the_new_client_id_and_secret() {
    let dir = TempDir::new();
    let url = format!("sqlite:{}", dir.0.join("clients.db").display());
    let output = run(jobline(&dir.0).args([
        "clients",
        "create",
        "--tenant",
        "t1",
        "--role",
        "admin",
        "--json",
        "--database-url",
        &url,
    ]))
    .await;
    let printed: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    let id = printed["client_id"].as_str().expect("a client_id string");
    let secret = printed["client_secret"].as_str().expect("a client_secret string");
    assert_eq!(id.len(), 36, "{id:?}");
    assert!(!secret.is_empty() && secret.len() <= 42, "{secret:?}");
    assert_eq!(printed["tenant"], "t1");
    assert_eq!(printed["role"], "admin");

    let store = Store::connect(&StoreConfig::new(&url), Arc::new(SystemClock)).await.unwrap();
    let client = store.verify_client(id, secret).await.expect("the printed credentials work");
    assert_eq!(client.tenant.as_str(), "t1");
    store.close().await;
}

#[tokio::test]
async fn migrate_applies_the_schema_and_says_so() {
    let dir = TempDir::new();
    let url = format!("sqlite:{}", dir.0.join("m.db").display());
    let output = run(jobline(&dir.0).args(["migrate", "--database-url", &url])).await;
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("Migrations applied"), "{out:?}");
    let store = Store::connect_without_migrating(&StoreConfig::new(&url), Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(store.count_clients().await.unwrap(), 0, "the tables exist and are empty");
    store.close().await;
}

#[tokio::test]
async fn help_explains_every_setting_and_gives_examples() {
    let dir = TempDir::new();
    let output = run(jobline(&dir.0).args(["serve", "--help"])).await;
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "JOBLINE_DATABASE_URL",
        "JOBLINE_DATA_DIR",
        "JOBLINE_LISTEN",
        "JOBLINE_WORKERS",
        "JOBLINE_CONFIG",
        "--lease-secs",
        "--heartbeat-ms",
        "--cancel-deadline-secs",
        "--shutdown-grace-secs",
        "--queue-concurrency",
        "--max-connections",
        "--log-format",
        "Examples:",
    ] {
        assert!(help.contains(expected), "serve --help lacks {expected:?}");
    }
}

/// A `jobline serve` process killed with SIGKILL while it runs a job: its lease expires, another
/// worker rescues the job and completes it (attempt 2). Nothing is left stuck.
async fn a_job_of_a_process_killed_mid_job_is_rescued_and_completed_by_another(
    engine: jobline_testkit::Engine,
) {
    use jobline_core::{JobState, NewJob, QueueKey, TenantId};
    use jobline_worker::jobs::sleep::SLEEP;
    use jobline_worker::{Registry, Runtime, RuntimeConfig};

    let db = jobline_testkit::TestDb::new(engine).await;
    let dir = TempDir::new();
    let store = db.store_with_clock(Arc::new(SystemClock)).await;
    let tenant = TenantId::parse("t1").unwrap();
    let queue = QueueKey::new(&tenant, "engine", "q");
    let job = NewJob::new(tenant.clone(), SLEEP, queue, serde_json::json!({"ms": 1500}));
    let id = store.enqueue(job).await.unwrap().id;

    let mut child = jobline(&dir.0)
        .args(["serve", "--database-url", &db.url, "--workers", "1", "--lease-secs", "1"])
        .args(["--heartbeat-ms", "200", "--listen", &format!("127.0.0.1:{}", free_port())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start jobline serve");
    let running = eventually(Duration::from_secs(30), || async {
        let j = store.get(&tenant, id).await.ok()?;
        (j.state == JobState::Running && j.progress.done > 0).then_some(j)
    })
    .await
    .expect("the child process runs the job");
    assert_eq!(running.attempt, 1);

    // kill -9: no shutdown hook, no release; the lease is simply no longer renewed.
    child.start_kill().expect("SIGKILL the child");
    child.wait().await.expect("reap the child");
    assert_eq!(store.get(&tenant, id).await.unwrap().state, JobState::Running, "still held");

    let cfg = RuntimeConfig {
        slots: 1,
        lease: Duration::from_secs(1),
        heartbeat: Duration::from_millis(200),
        poll_interval: Duration::from_millis(100),
        ..RuntimeConfig::default()
    };
    let rescuer =
        Runtime::new(store.clone(), jobline_worker::jobs::engine_kinds(Registry::new()), cfg);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let (r, s) = (rescuer.clone(), stop.clone());
        async move { r.run(s).await }
    });
    let done = eventually(Duration::from_secs(30), || async {
        let j = store.get(&tenant, id).await.ok()?;
        (j.state == JobState::Succeeded).then_some(j)
    })
    .await
    .expect("the job is rescued and completed by the other worker");
    assert_eq!(done.attempt, 2, "run again after the rescue");
    stop.cancel();
    task.await.unwrap();
    store.close().await;
}

jobline_testkit::on_both_engines!(
    a_job_of_a_process_killed_mid_job_is_rescued_and_completed_by_another
);
