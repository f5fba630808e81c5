//! The compiled `jobline` binary as a user runs it: `serve` with no arguments in an empty
//! directory, `clients create --json`, `clients list|rotate|revoke` against a running server's
//! database, `migrate`, `--help`, and a `serve` killed with SIGKILL mid-job. Mostly SQLite: the
//! engines are covered by the in-process tests; these check the process (arguments, stdout,
//! signals), and the kill and `clients` tests run on both engines.

use crate::helpers::{eventually, TestApp};
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

/// Runs `jobline clients <args> --database-url <the app's database>`, successful or not.
async fn clients(app: &TestApp, dir: &Path, args: &[&str]) -> Output {
    let output = jobline(dir)
        .arg("clients")
        .args(args)
        .args(["--database-url", app.database_url()])
        .output();
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the command ends in time")
        .expect("the command starts")
}

/// `clients <args>` that must succeed; its stdout.
async fn clients_ok(app: &TestApp, dir: &Path, args: &[&str]) -> String {
    let output = clients(app, dir, args).await;
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// `clients <args>` that must fail; its stderr.
async fn clients_err(app: &TestApp, dir: &Path, args: &[&str]) -> String {
    let output = clients(app, dir, args).await;
    assert!(!output.status.success(), "{args:?} should fail: {:?}", output.stdout);
    String::from_utf8(output.stderr).unwrap()
}

/// The status of `GET /pcm/jobs` with a fresh Elastic Path token for `id` and `secret`, and the
/// token; or the token endpoint's status and no token when it refuses them.
async fn ep_status(app: &TestApp, id: &str, secret: &str) -> (u16, Option<String>) {
    let r = app.request_token("/oauth/access_token", id, secret).await;
    if r.status() != 200 {
        return (r.status().as_u16(), None);
    }
    let token = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    (jobs_status(app, &token).await, Some(token))
}

/// The status of `GET /pcm/jobs` with `token`.
async fn jobs_status(app: &TestApp, token: &str) -> u16 {
    let r = app.authed(reqwest::Method::GET, "/pcm/jobs", token).send().await.unwrap();
    r.status().as_u16()
}

/// `clients list`, `rotate` and `revoke` run as separate processes on a serving app's
/// database: the app honours a rotation and a revocation on the very next request, tokens it
/// issued before included; unknown ids exit non-zero and say so.
async fn clients_list_rotate_and_revoke_take_effect_on_a_running_server(
    engine: jobline_testkit::Engine,
) {
    let app = TestApp::spawn(engine).await;
    let dir = TempDir::new();
    let created = clients_ok(
        &app,
        &dir.0,
        &["create", "--tenant", "t1", "--role", "admin", "--name", "ci", "--json"],
    )
    .await;
    let created: Value = serde_json::from_str(&created).unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (status, old_token) = ep_status(&app, &id, &secret).await;
    assert_eq!(status, 200);
    let old_token = old_token.unwrap();

    let listed: Value =
        serde_json::from_str(&clients_ok(&app, &dir.0, &["list", "--json"]).await).unwrap();
    let listed = listed.as_array().expect("a JSON array");
    assert_eq!(listed.len(), 2, "the bootstrap admin and the new client: {listed:?}");
    let mine = listed.iter().find(|c| c["client_id"] == id.as_str()).expect("listed");
    assert_eq!((mine["tenant"].as_str(), mine["role"].as_str()), (Some("t1"), Some("admin")));
    assert_eq!(mine["name"], "ci");
    assert!(mine["created_at"].as_str().unwrap().ends_with('Z'), "{mine}");
    assert!(mine["revoked_at"].is_null());
    let t1: Value = serde_json::from_str(
        &clients_ok(&app, &dir.0, &["list", "--tenant", "t1", "--json"]).await,
    )
    .unwrap();
    assert_eq!(t1.as_array().unwrap().len(), 1);

    let rotated = clients_ok(&app, &dir.0, &["rotate", &id, "--json"]).await;
    let rotated: Value = serde_json::from_str(&rotated).unwrap();
    assert_eq!(rotated["client_id"], id.as_str(), "rotation keeps the id");
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(jobs_status(&app, &old_token).await, 401, "the old secret's token is gone");
    assert_eq!(ep_status(&app, &id, &secret).await.0, 401, "the old secret is refused");
    let (status, token) = ep_status(&app, &id, &new_secret).await;
    assert_eq!(status, 200, "the new secret works");
    let token = token.unwrap();

    let out = clients_ok(&app, &dir.0, &["revoke", &id]).await;
    assert!(out.contains(&id) && out.contains("revoked"), "{out:?}");
    assert_eq!(jobs_status(&app, &token).await, 401, "an issued token stops at once");
    assert_eq!(ep_status(&app, &id, &new_secret).await.0, 401, "no new token either");
    let again = clients_ok(&app, &dir.0, &["revoke", &id]).await;
    assert!(again.contains("revoked"), "revoking twice is not an error: {again:?}");
    let table = clients_ok(&app, &dir.0, &["list"]).await;
    let header = table.lines().next().unwrap_or_default();
    for column in ["CLIENT ID", "TENANT", "ROLE", "NAME", "CREATED", "REVOKED"] {
        assert!(header.contains(column), "{header:?} lacks {column}");
    }
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains(" t1 ") && row.contains(" ci ") && row.trim_end().ends_with('Z'),
        "{row:?}"
    );
    let admin_row =
        table.lines().find(|l| l.starts_with(&app.admin.client.id.to_string())).unwrap();
    assert!(
        admin_row.trim_end().ends_with('-'),
        "an active client's REVOKED is `-`: {admin_row:?}"
    );

    let unknown = jobline_core::ClientId::new().to_string();
    let err = clients_err(&app, &dir.0, &["revoke", &unknown]).await;
    assert!(err.contains(&format!("no client with id {unknown}")), "{err}");
    let err = clients_err(&app, &dir.0, &["rotate", &unknown]).await;
    assert!(err.contains(&format!("no active client with id {unknown}")), "{err}");
    let err = clients_err(&app, &dir.0, &["rotate", &id]).await;
    assert!(err.contains("revoked"), "a revoked client cannot be rotated: {err}");
    let err = clients_err(&app, &dir.0, &["revoke", "not-a-uuid"]).await;
    assert!(err.contains("36-character uuid"), "{err}");
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
        "--token-lifetime-secs",
        "--retention-days",
        "JOBLINE_RETENTION_DAYS",
        "--metrics",
        "JOBLINE_METRICS",
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
    a_job_of_a_process_killed_mid_job_is_rescued_and_completed_by_another,
    clients_list_rotate_and_revoke_take_effect_on_a_running_server,
);
