//! The remote commands through the compiled binary, against a running server's `/v1` API:
//! `jobs list|get|cancel|watch` and `queues`, their `--json` output and their exit statuses
//! (0 succeeded, 3 failed, 4 cancelled, 5 unfinished, 6 not found, 7 not cancellable, 1 error).
//! Jobs are `engine/*` kinds put straight into the store, in the bootstrap admin's tenant.

use crate::helpers::{eventually, TestApp};
use jobline_core::{JobId, JobState, KindSpec, NewJob, QueueKey, TenantId};
use jobline_testkit::{on_both_engines, Engine, TempDir};
use jobline_worker::jobs::noop::NOOP;
use jobline_worker::jobs::sleep::SLEEP;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WITHIN: Duration = Duration::from_secs(20);

fn tenant() -> TenantId {
    TenantId::parse("default").unwrap()
}

fn job(kind: KindSpec, queue: &str, payload: Value) -> NewJob {
    NewJob::new(tenant(), kind, QueueKey::new(&tenant(), "engine", queue), payload)
}

/// `jobline <args>` aimed at `app` through the `JOBLINE_*` variables, with the admin's
/// credentials; nothing else inherited from the developer's shell.
fn jobline(app: &TestApp, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobline"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("JOBLINE_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir)
        .args(args)
        .env("JOBLINE_URL", &app.address)
        .env("JOBLINE_CLIENT_ID", app.admin.client.id.to_string())
        .env("JOBLINE_CLIENT_SECRET", &app.admin.secret)
        .kill_on_drop(true);
    cmd
}

async fn run(app: &TestApp, dir: &Path, args: &[&str]) -> Output {
    tokio::time::timeout(Duration::from_secs(60), jobline(app, dir, args).output())
        .await
        .expect("the command ends in time")
        .expect("the command starts")
}

/// The exit status of `args`, and its stdout.
async fn status(app: &TestApp, dir: &Path, args: &[&str]) -> (i32, String) {
    let out = run(app, dir, args).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    let code = out.status.code().expect("an exit status, not a signal");
    (code, stdout)
}

async fn json_of(app: &TestApp, dir: &Path, args: &[&str]) -> Value {
    let (code, stdout) = status(app, dir, args).await;
    assert_eq!(code, 0, "{args:?}: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

async fn reaches(app: &TestApp, id: JobId, state: JobState) {
    eventually(WITHIN, || async {
        (app.store.get(&tenant(), id).await.unwrap().state == state).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("job {id} reaches {state:?}"));
}

async fn jobs_list_get_cancel_and_queues_answer_with_tables_json_and_exit_statuses(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = TempDir::new();
    let ok = app.store.enqueue(job(NOOP, "quick", json!({}))).await.unwrap().id;
    let bad = app.store.enqueue(job(SLEEP, "quick", json!({"ms": "soon"}))).await.unwrap().id;
    let long = app.store.enqueue(job(SLEEP, "slow", json!({"ms": 600_000}))).await.unwrap().id;
    reaches(&app, ok, JobState::Succeeded).await;
    reaches(&app, bad, JobState::Failed).await;
    reaches(&app, long, JobState::Running).await;
    let (ok, bad, long) = (ok.to_string(), bad.to_string(), long.to_string());

    let all = json_of(&app, &dir.0, &["jobs", "list", "--json"]).await;
    let ids: Vec<&str> =
        all["data"].as_array().unwrap().iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, vec![long.as_str(), bad.as_str(), ok.as_str()], "newest first: {all}");
    let failed = json_of(&app, &dir.0, &["jobs", "list", "--state", "failed", "--json"]).await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed["data"][0]["id"], bad.as_str());
    let (code, table) = status(&app, &dir.0, &["jobs", "list", "--dialect", "engine"]).await;
    assert_eq!(code, 0);
    let header = table.lines().next().unwrap_or_default();
    for column in ["ID", "STATE", "KIND", "TENANT", "QUEUE", "PROGRESS", "CREATED"] {
        assert!(header.contains(column), "{header:?} lacks {column}");
    }
    let row = table.lines().find(|l| l.starts_with(&bad)).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" failed ") && row.contains(" engine/sleep "), "{row:?}");
    let (code, stdout) = status(&app, &dir.0, &["jobs", "list", "--limit", "0"]).await;
    assert_eq!(code, 1, "a limit the API refuses is an error: {stdout}");

    assert_eq!(status(&app, &dir.0, &["jobs", "get", &ok]).await.0, 0, "succeeded");
    let (code, shown) = status(&app, &dir.0, &["jobs", "get", &bad]).await;
    assert_eq!(code, 3, "failed: {shown}");
    assert!(shown.contains("Timeline:") && shown.contains("engine/sleep"), "{shown}");
    assert_eq!(status(&app, &dir.0, &["jobs", "get", &long]).await.0, 5, "still running");
    let missing = JobId::new().to_string();
    assert_eq!(status(&app, &dir.0, &["jobs", "get", &missing]).await.0, 6, "no such job");
    let got = json_of(&app, &dir.0, &["jobs", "get", &ok, "--json"]).await;
    assert_eq!((got["id"].as_str(), got["state"].as_str()), (Some(ok.as_str()), Some("succeeded")));

    let (code, said) = status(&app, &dir.0, &["jobs", "cancel", &long]).await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("cancel"), "{said}");
    reaches(&app, JobId::parse(&long).unwrap(), JobState::Cancelled).await;
    assert_eq!(status(&app, &dir.0, &["jobs", "get", &long]).await.0, 4, "cancelled");
    assert_eq!(status(&app, &dir.0, &["jobs", "cancel", &ok]).await.0, 7, "already finished");
    assert_eq!(status(&app, &dir.0, &["jobs", "cancel", &missing]).await.0, 6);

    let queues = json_of(&app, &dir.0, &["queues", "--json"]).await;
    let names: Vec<&str> =
        queues["data"].as_array().unwrap().iter().filter_map(|q| q["queue"].as_str()).collect();
    assert_eq!(names.len(), 2, "{queues}");
    let (code, table) = status(&app, &dir.0, &["queues"]).await;
    assert_eq!(code, 0);
    assert!(table.lines().next().unwrap_or_default().starts_with("QUEUE"), "{table}");

    let refused = jobline(&app, &dir.0, &["jobs", "list"])
        .env("JOBLINE_CLIENT_SECRET", "wrong")
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused"), "{refused:?}");
    let unset =
        jobline(&app, &dir.0, &["jobs", "list"]).env_remove("JOBLINE_CLIENT_ID").output().await;
    let unset = unset.unwrap();
    assert_eq!(unset.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("--client-id"), "{unset:?}");
}

/// `jobs watch` prints the job's state, then each change as it happens, and exits with how the
/// job ended: held at its first step, the job is released (or cancelled) only once the watch
/// has printed its first line, so the later changes reach it live.
async fn jobs_watch_follows_a_job_to_its_end_and_exits_with_its_status(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let dir = TempDir::new();
    for (queue, cancel, exit) in [("a", false, 0), ("b", true, 4)] {
        let hold = app.breakpoints.arm("engine/sleep:step");
        let id = app.store.enqueue(job(SLEEP, queue, json!({"ms": 30}))).await.unwrap().id;
        hold.reached().await;
        let mut watch = jobline(&app, &dir.0, &["jobs", "watch", &id.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().expect("the watch's first line");
        assert!(first.contains(&id.to_string()) && first.ends_with("running"), "{first:?}");
        if cancel {
            let (code, said) = status(&app, &dir.0, &["jobs", "cancel", &id.to_string()]).await;
            assert_eq!(code, 0, "{said}");
        }
        hold.release();
        let mut rest = Vec::new();
        while let Some(line) =
            tokio::time::timeout(WITHIN, lines.next_line()).await.unwrap().unwrap()
        {
            rest.push(line);
        }
        let status = tokio::time::timeout(WITHIN, watch.wait()).await.unwrap().unwrap();
        let end = if cancel { "cancelled" } else { "succeeded" };
        assert_eq!(status.code(), Some(exit), "{rest:?}");
        assert!(rest.iter().any(|l| l.contains(&format!("-> {end}"))), "{rest:?}");
        if cancel {
            // The cause comes only with the event stream's timeline events, not from polling.
            let change = rest.iter().find(|l| l.contains("running -> cancelling"));
            assert!(change.is_some_and(|l| l.contains("cancel requested")), "{rest:?}");
        }
        assert_eq!(rest.last().map(String::as_str), Some(format!("Job {id} {end}.").as_str()));
    }
}

on_both_engines!(
    jobs_list_get_cancel_and_queues_answer_with_tables_json_and_exit_statuses,
    jobs_watch_follows_a_job_to_its_end_and_exits_with_its_status,
);
