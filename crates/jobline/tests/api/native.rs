//! The native operator API (`/v1`, `/work/notes/v1-api.md`): who sees what, filters and keyset
//! paging, timelines, cancel, and the event stream. On both engines; the cross-process stream
//! test on PostgreSQL only.
//!
//! Most tests run an API-only app on a `FakeClock` (jobs stay where the test puts them, and
//! creation times are set apart by moving the clock); jobs are created through the store, as a
//! dialect would create them.

use crate::helpers::{eventually, TestApp};
use jobline_core::{FakeClock, JobId, NewJob, QueueKey, Role, TenantId};
use jobline_store::NewClient;
use jobline_testkit::{on_both_engines, Engine};
use jobline_worker::jobs::noop::NOOP;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

on_both_engines!(
    an_operator_sees_every_tenant_and_an_admin_only_its_own,
    support_clients_and_bad_tokens_are_refused_on_every_route,
    filters_and_keyset_paging,
    bad_parameters_are_400s_naming_the_parameter,
    a_cancelled_job_tells_who_cancelled_it_and_a_second_cancel_is_refused,
    a_rescued_job_tells_whose_lease_expired,
    queues_count_jobs_by_state,
    the_event_stream_resumes_after_last_event_id,
    errors_and_files_of_a_job,
    an_open_event_stream_does_not_hold_up_a_graceful_stop,
);

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_on_one_process_sees_a_change_made_through_another() {
        super::a_stream_on_one_process_sees_a_change_made_through_another().await;
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

/// A job of `kind` for `tenant`, in the tenant's engine queue, created by `by`.
fn job(t: &str, kind: jobline_core::KindSpec, by: Option<&str>) -> NewJob {
    let t = tenant(t);
    let queue = QueueKey::new(&t, "engine", "q");
    let mut new = NewJob::new(t, kind, queue, serde_json::json!({}));
    new.created_by = by.map(str::to_owned);
    new
}

struct Native {
    app: TestApp,
    clock: FakeClock,
    operator: NewClient,
    op: String,
    admin: String,
}

impl Native {
    async fn spawn(engine: Engine) -> Self {
        let clock = FakeClock::at_default();
        let app = TestApp::spawn_with_clock(engine, &clock, |_| {}).await;
        let operator =
            app.store.create_client(&tenant("default"), Role::Operator, Some("ops")).await.unwrap();
        let op = app.ep_token(&operator).await;
        let admin = app.admin_token().await;
        Native { app, clock, operator, op, admin }
    }

    /// Creates a job one millisecond after the last, so creation order is strict.
    async fn create(&self, new: NewJob) -> JobId {
        self.clock.advance(Duration::from_millis(1));
        self.app.store.enqueue(new).await.unwrap().id
    }

    async fn call(&self, method: Method, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self.app.authed(method, path, token).send().await.unwrap();
        let status = r.status();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, token).await
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn an_operator_sees_every_tenant_and_an_admin_only_its_own(engine: Engine) {
    let n = Native::spawn(engine).await;
    let mine = n.create(job("default", NOOP, None)).await;
    let theirs = n.create(job("other", NOOP, None)).await;

    let (status, all) = n.get("/v1/jobs", &n.op).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(ids(&all), [theirs.to_string(), mine.to_string()], "newest first, every tenant");
    assert_eq!(all["data"][0]["tenant"], "other");
    assert_eq!(all["data"][0]["dialect"], "engine");
    assert_eq!(all["data"][0]["state"], "pending");
    assert_eq!(all["next"], Value::Null);
    let (_, one) = n.get("/v1/jobs?tenant=other", &n.op).await;
    assert_eq!(ids(&one), [theirs.to_string()]);
    let (status, _) = n.get(&format!("/v1/jobs/{theirs}"), &n.op).await;
    assert_eq!(status, StatusCode::OK);

    let (status, own) = n.get("/v1/jobs", &n.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&own), [mine.to_string()], "an admin sees its own tenant only");
    let (status, body) = n.get("/v1/jobs?tenant=other", &n.admin).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(body["error"]["status"], 403);
    let (status, _) = n.get("/v1/jobs?tenant=default", &n.admin).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        format!("/v1/jobs/{theirs}"),
        format!("/v1/jobs/{theirs}/errors"),
        format!("/v1/jobs/{theirs}/files/input"),
    ] {
        let (status, body) = n.get(&path, &n.admin).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"), "{path}");
    }
    let (status, _) = n.call(Method::POST, &format!("/v1/jobs/{theirs}/cancel"), &n.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, still) = n.get(&format!("/v1/jobs/{theirs}"), &n.op).await;
    assert_eq!(still["state"], "pending", "the refused cancel changed nothing");
    let (status, _) = n.get("/v1/events?tenant=other", &n.admin).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn support_clients_and_bad_tokens_are_refused_on_every_route(engine: Engine) {
    let n = Native::spawn(engine).await;
    let id = n.create(job("default", NOOP, None)).await;
    let support = n.app.store.create_client(&tenant("default"), Role::Support, None).await.unwrap();
    let support = n.app.ep_token(&support).await;
    for (method, route) in jobline_http::native::ROUTES {
        let path = route.replace("{id}", &id.to_string()).replace("{name}", "input");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = n.call(method.clone(), &path, &support).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "{path}");
        let (status, body) = n.call(method.clone(), &path, "not-a-token").await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
        let r = n.app.client.request(method, format!("{}{path}", n.app.address)).send().await;
        assert_eq!(r.unwrap().status(), StatusCode::UNAUTHORIZED, "{path} without a token");
    }
    // An operator is not a store admin in the vendor dialects.
    for path in ["/pcm/jobs", "/objects/jobs"] {
        let (status, _) = n.get(path, &n.op).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, body) = n.get("/v1/nothing-here", &n.op).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // The event stream alone takes the token as a parameter (EventSource sets no headers).
    let r = n.app.get(&format!("/v1/events?access_token={support}")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = n.app.get(&format!("/v1/jobs?access_token={}", n.op)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "only /v1/events reads access_token");
}

async fn filters_and_keyset_paging(engine: Engine) {
    let n = Native::spawn(engine).await;
    let pxm = jobline_core::kinds::pxm::PRODUCT_EXPORT;
    let mut made = Vec::new();
    for i in 0..7 {
        let kind = if i % 2 == 0 { NOOP } else { pxm };
        let mut new = job(if i < 5 { "default" } else { "t2" }, kind, None);
        new.subject = Some(format!("s{}", i % 3));
        made.push(n.create(new).await.to_string());
    }
    // Cancel one so states differ.
    let (status, _) = n.call(Method::POST, &format!("/v1/jobs/{}/cancel", made[0]), &n.op).await;
    assert_eq!(status, StatusCode::OK);

    // Keyset pages of 3, newest first, then oldest first: together every job once, in order.
    for (sort, expect) in [
        ("-created_at", made.iter().rev().cloned().collect::<Vec<_>>()),
        ("created_at", made.clone()),
    ] {
        let mut seen = Vec::new();
        let mut path = format!("/v1/jobs?limit=3&sort={sort}");
        loop {
            let (status, page) = n.get(&path, &n.op).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(ids(&page).len() <= 3);
            seen.extend(ids(&page));
            match page["next"].as_str() {
                Some(next) => path = format!("/v1/jobs?limit=3&sort={sort}&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(seen, expect, "{sort}");
    }
    // A job created meanwhile appears on no later page of a list already being paged.
    let (_, first) = n.get("/v1/jobs?limit=2", &n.op).await;
    n.create(job("default", NOOP, None)).await;
    let next = first["next"].as_str().unwrap();
    let (_, second) = n.get(&format!("/v1/jobs?limit=2&cursor={next}"), &n.op).await;
    assert_eq!(ids(&second), [made[4].clone(), made[3].clone()]);

    let (_, page) = n.get("/v1/jobs?dialect=pxm&sort=created_at", &n.op).await;
    assert_eq!(ids(&page), [made[1].clone(), made[3].clone(), made[5].clone()]);
    assert!(page["data"].as_array().unwrap().iter().all(|j| j["dialect"] == "pxm"));
    let (_, page) = n.get("/v1/jobs?kind=engine/noop&tenant=t2", &n.op).await;
    assert_eq!(ids(&page), [made[6].clone()]);
    let (_, page) = n.get("/v1/jobs?state=cancelled,running", &n.op).await;
    assert_eq!(ids(&page), [made[0].clone()]);
    let (_, page) = n.get("/v1/jobs?subject=s1&sort=created_at", &n.op).await;
    assert_eq!(ids(&page), [made[1].clone(), made[4].clone()]);
    let queue = QueueKey::new(&tenant("t2"), "engine", "q");
    let (_, page) =
        n.get(&format!("/v1/jobs?queue={}&sort=created_at", queue.as_str()), &n.op).await;
    assert_eq!(ids(&page), [made[5].clone(), made[6].clone()]);
    // Creation times: the third job was made 3 ms after the clock's start, the fifth 5 ms.
    let (_, third) = n.get(&format!("/v1/jobs/{}", made[2]), &n.op).await;
    let (_, fifth) = n.get(&format!("/v1/jobs/{}", made[4]), &n.op).await;
    let (from, to) = (third["created_at"].as_str().unwrap(), fifth["created_at"].as_str().unwrap());
    let path = format!("/v1/jobs?created_after={from}&created_before={to}&sort=created_at");
    let (status, page) = n.get(&path, &n.op).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), [made[2].clone(), made[3].clone()], "after is inclusive, before not");
}

async fn bad_parameters_are_400s_naming_the_parameter(engine: Engine) {
    let n = Native::spawn(engine).await;
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("cursor=nonsense", "cursor"),
        ("state=done", "state"),
        ("sort=name", "sort"),
        ("dialect=sap", "dialect"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01", "created_before"),
        ("tenant=a%20b", "tenant"),
        ("subject=a%00b", "NUL"),
    ] {
        let (status, body) = n.get(&format!("/v1/jobs?{query}"), &n.op).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{query}"
        );
        assert_eq!(body["error"]["status"], 400);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(name), "{query}: {message}");
    }
    let (status, body) = n.get("/v1/events?job=x", &n.op).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let r = n.app.authed(Method::GET, "/v1/events", &n.op).header("last-event-id", "x").send();
    assert_eq!(r.await.unwrap().status(), StatusCode::BAD_REQUEST);
    let (status, body) = n.get("/v1/jobs/not-a-uuid", &n.op).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = n.call(Method::DELETE, "/v1/jobs", &n.op).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "method_not_allowed");
}

async fn a_cancelled_job_tells_who_cancelled_it_and_a_second_cancel_is_refused(engine: Engine) {
    let n = Native::spawn(engine).await;
    let creator = n.app.admin.client.id.to_string();
    let id = n.create(job("default", NOOP, Some(&creator))).await;
    let (status, summary) = n.call(Method::POST, &format!("/v1/jobs/{id}/cancel"), &n.op).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["state"], "cancelled");
    assert_eq!(summary["id"], id.to_string());

    let (status, body) = n.call(Method::POST, &format!("/v1/jobs/{id}/cancel"), &n.op).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "not_cancellable"));
    assert_eq!(body["error"]["state"], "cancelled");
    assert_eq!(body["error"]["status"], 409);

    let (status, detail) = n.get(&format!("/v1/jobs/{id}"), &n.op).await;
    assert_eq!(status, StatusCode::OK);
    let timeline = detail["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    assert_eq!(timeline[0]["from"], Value::Null);
    assert_eq!(timeline[0]["to"], "pending");
    assert_eq!(timeline[0]["cause"], format!("created by client {creator}"));
    assert_eq!(timeline[1]["from"], "pending");
    assert_eq!(timeline[1]["to"], "cancelled");
    assert_eq!(
        timeline[1]["cause"],
        format!("cancel requested by client {}", n.operator.client.id)
    );
    assert!(timeline[0]["event_id"].as_i64() < timeline[1]["event_id"].as_i64());
    assert_eq!(detail["errors"], serde_json::json!({"total": 0, "data": []}));
    assert_eq!(detail["files"], serde_json::json!([]));

    // An admin cancels its own tenant's jobs through /v1 too, recorded under its own id.
    let other = n.create(job("default", NOOP, None)).await;
    let (status, _) = n.call(Method::POST, &format!("/v1/jobs/{other}/cancel"), &n.admin).await;
    assert_eq!(status, StatusCode::OK);
    let (_, detail) = n.get(&format!("/v1/jobs/{other}"), &n.admin).await;
    let cause = &detail["timeline"][1]["cause"];
    assert_eq!(cause, &format!("cancel requested by client {}", n.app.admin.client.id));

    // A dialect's cancel records its client too.
    let t = tenant("default");
    let pxm_kind = jobline_core::kinds::pxm::PRODUCT_EXPORT;
    let new = NewJob::new(t.clone(), pxm_kind, jobline_core::kinds::pxm::queue(&t), Value::Null);
    let queued = n.create(new).await;
    let r = n.app.authed(Method::POST, &format!("/pcm/jobs/{queued}/cancel"), &n.admin).send();
    assert!(r.await.unwrap().status().is_success());
    let (_, detail) = n.get(&format!("/v1/jobs/{queued}"), &n.op).await;
    let cause = &detail["timeline"][1]["cause"];
    assert_eq!(cause, &format!("cancel requested by client {}", n.app.admin.client.id));

    // The kind's own rule: a running PXM job is not cancellable.
    let pxm = n.create(job("default", jobline_core::kinds::pxm::PRODUCT_EXPORT, None)).await;
    let claimed = n.app.store.claim("node-a", 10, Duration::from_secs(30), 5).await.unwrap();
    assert!(claimed.iter().any(|c| c.job().id == pxm));
    let (status, body) = n.call(Method::POST, &format!("/v1/jobs/{pxm}/cancel"), &n.op).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "not_cancellable"));
    assert_eq!(body["error"]["state"], "running");
}

async fn a_rescued_job_tells_whose_lease_expired(engine: Engine) {
    let n = Native::spawn(engine).await;
    let id = n.create(job("default", NOOP, None)).await;
    let claimed = n.app.store.claim("node-a", 1, Duration::from_secs(5), 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    n.clock.advance(Duration::from_secs(6));
    let rescued = n.app.store.rescue_expired().await.unwrap();
    assert_eq!(rescued.requeued.len(), 1);
    let claimed = n.app.store.claim("node-b", 1, Duration::from_secs(5), 1).await.unwrap();
    n.app.store.complete(&claimed[0], None).await.unwrap();

    let (_, detail) = n.get(&format!("/v1/jobs/{id}"), &n.op).await;
    let causes: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cause"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        [
            "created",
            "claimed by node node-a (attempt 1)",
            "lease of node node-a expired; rescued",
            "claimed by node node-b (attempt 2)",
            "succeeded",
        ]
    );
    assert_eq!(detail["timeline"][2]["node"], "node-a");
    assert_eq!(detail["timeline"][3]["attempt"], 2);
    assert_eq!(detail["state"], "succeeded");
    assert_eq!(detail["attempt"], 2);
}

async fn queues_count_jobs_by_state(engine: Engine) {
    let n = Native::spawn(engine).await;
    for _ in 0..3 {
        n.create(job("default", NOOP, None)).await;
    }
    let claimed = n.app.store.claim("node-a", 1, Duration::from_secs(30), 1).await.unwrap();
    n.app.store.complete(&claimed[0], None).await.unwrap();
    n.app.store.claim("node-a", 1, Duration::from_secs(30), 1).await.unwrap();
    // Another tenant's queue, made after the claims so they all came from `default`'s.
    n.create(job("t2", NOOP, None)).await;
    n.clock.advance(Duration::from_secs(2));

    let (status, body) = n.get("/v1/queues?tenant=default", &n.op).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = &body["data"][0];
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(q["tenant"], "default");
    assert_eq!(q["concurrency"], Value::Null);
    assert_eq!(q["running"], 1);
    assert_eq!(q["counts"]["pending"], 1);
    assert_eq!(q["counts"]["running"], 1);
    assert_eq!(q["counts"]["succeeded"], 1);
    assert_eq!(q["counts"]["awaiting_input"], 0);
    assert_eq!(q["finished_last_minute"], 1);
    let age = q["oldest_pending_age_secs"].as_f64().unwrap();
    assert!(age >= 2.0, "{age}");
    let (_, all) = n.get("/v1/queues", &n.op).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let (_, own) = n.get("/v1/queues", &n.admin).await;
    assert_eq!(own["data"].as_array().unwrap().len(), 1, "an admin sees its own queues");
}

/// Reads server-sent events from `response` until `n` have come (or fails after a generous
/// bound, so a broken stream fails the test instead of hanging it).
async fn read_events(response: &mut reqwest::Response, n: usize) -> Vec<(i64, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(20), response.chunk())
            .await
            .expect("the stream sends the events")
            .expect("the stream stays open")
            .expect("the stream does not end");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut data, mut kind) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")) {
                    id = v.trim().parse::<i64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str::<Value>(v.trim()).ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = Some(v.trim().to_owned());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                assert_eq!(kind.as_deref(), Some("job"));
                out.push((id, data));
            }
        }
    }
    out
}

async fn the_event_stream_resumes_after_last_event_id(engine: Engine) {
    let n = Native::spawn(engine).await;
    let a = n.create(job("default", NOOP, None)).await;
    let b = n.create(job("other", NOOP, None)).await;
    n.call(Method::POST, &format!("/v1/jobs/{a}/cancel"), &n.op).await;

    // From the start: all three events, in order, each with the job as it is now.
    let mut all =
        n.app.authed(Method::GET, "/v1/events?last_event_id=0", &n.op).send().await.unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    let ct = all.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let events = read_events(&mut all, 3).await;
    let seen: Vec<(String, &str)> = events
        .iter()
        .map(|(_, e)| (e["job_id"].as_str().unwrap().to_owned(), e["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [(a.to_string(), "pending"), (b.to_string(), "pending"), (a.to_string(), "cancelled")]
    );
    assert_eq!(events[0].1["job"]["state"], "cancelled", "the job as it is now");
    assert_eq!(events[0].0, events[0].1["event_id"].as_i64().unwrap());

    // Resuming after the first: exactly the later ones, then what happens live.
    let first = events[0].0;
    let mut resumed = n
        .app
        .authed(Method::GET, "/v1/events", &n.op)
        .header("last-event-id", first.to_string())
        .send()
        .await
        .unwrap();
    let c = n.create(job("default", NOOP, None)).await;
    let later = read_events(&mut resumed, 3).await;
    let later_ids: Vec<i64> = later.iter().map(|(id, _)| *id).collect();
    assert_eq!(later_ids[..2], [events[1].0, events[2].0]);
    assert_eq!(later[2].1["job_id"], c.to_string());
    assert_eq!(later[2].1["cause"], "created");
    // The live stream saw the new job too.
    let live = read_events(&mut all, 1).await;
    assert_eq!(live[0].1["job_id"], c.to_string());

    // Filters: an admin's stream, or one for a single job, sees only its jobs; a token may
    // come as a parameter.
    let path = format!("/v1/events?last_event_id=0&access_token={}", n.admin);
    let mut own = n.app.get(&path).await;
    assert_eq!(own.status(), StatusCode::OK);
    let mine = read_events(&mut own, 3).await;
    assert!(mine.iter().all(|(_, e)| e["tenant"] == "default"), "{mine:?}");
    let mut one = n
        .app
        .authed(Method::GET, &format!("/v1/events?last_event_id=0&job={b}"), &n.op)
        .send()
        .await
        .unwrap();
    n.call(Method::POST, &format!("/v1/jobs/{b}/cancel"), &n.op).await;
    let only_b = read_events(&mut one, 2).await;
    assert!(only_b.iter().all(|(_, e)| e["job_id"] == b.to_string()), "{only_b:?}");
    assert_eq!(only_b[1].1["to"], "cancelled");
}

async fn errors_and_files_of_a_job(engine: Engine) {
    let n = Native::spawn(engine).await;
    let id = n.create(job("default", NOOP, None)).await;
    let claimed = n.app.store.claim("node-a", 1, Duration::from_secs(30), 1).await.unwrap();
    let fence = claimed[0].fence();
    let errors: Vec<jobline_core::JobErrorEntry> = (0..5)
        .map(|i| jobline_core::JobErrorEntry {
            row: Some(i + 2),
            code: Some(400),
            message: format!("bad row {i}"),
            record: Some(serde_json::json!({"i": i})),
        })
        .collect();
    n.app.store.append_errors(fence, &errors).await.unwrap();
    let file = jobline_store::JobFile {
        name: "out.csv".into(),
        content_type: "text/csv".into(),
        bytes: b"a,b\n1,2\n".to_vec(),
    };
    n.app.store.put_file(fence, &file).await.unwrap();

    let (_, detail) = n.get(&format!("/v1/jobs/{id}"), &n.op).await;
    assert_eq!(detail["errors"]["total"], 5);
    assert_eq!(detail["errors"]["data"][0]["row"], 2);
    assert_eq!(detail["errors"]["data"][0]["record"], serde_json::json!({"i": 0}));
    assert_eq!(
        detail["files"],
        serde_json::json!([{"name": "out.csv", "content_type": "text/csv",
                            "url": format!("/v1/jobs/{id}/files/out.csv")}])
    );

    let mut seen = Vec::new();
    let mut path = format!("/v1/jobs/{id}/errors?limit=2");
    loop {
        let (status, page) = n.get(&path, &n.op).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for e in page["data"].as_array().unwrap() {
            seen.push(e["message"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/jobs/{id}/errors?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..5).map(|i| format!("bad row {i}")).collect::<Vec<_>>());

    // A file name holding NUL never reaches the store (PostgreSQL would answer it with a 500).
    let (status, body) = n.get(&format!("/v1/jobs/{id}/files/a%00b"), &n.op).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"), "{body}");

    let r = n.app.authed(Method::GET, &format!("/v1/jobs/{id}/files/out.csv"), &n.op).send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv");
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"out.csv\"");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"a,b\n1,2\n");
    let (status, body) = n.get(&format!("/v1/jobs/{id}/files/nope"), &n.op).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
}

async fn a_stream_on_one_process_sees_a_change_made_through_another() {
    let n = Native::spawn(Engine::Postgres).await;
    let second = n.app.spawn_api_node().await;
    let id = n.create(job("default", NOOP, None)).await;
    let mut stream = n.app.authed(Method::GET, "/v1/events", &n.op).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    // The stream is live once its handler answered; the cancel goes through the other node.
    let r = second.authed(Method::POST, &format!("/v1/jobs/{id}/cancel"), &n.op).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::OK);
    let got = read_events(&mut stream, 1).await;
    assert_eq!(got[0].1["job_id"], id.to_string());
    assert_eq!(got[0].1["to"], "cancelled");
    assert_eq!(got[0].1["job"]["state"], "cancelled");
    // And the other node's own stream replays it from the log.
    let ok = eventually(Duration::from_secs(5), || async {
        let (_, detail) = n.get(&format!("/v1/jobs/{id}"), &n.op).await;
        (detail["timeline"].as_array()?.len() == 2).then_some(())
    });
    assert!(ok.await.is_some());
}

async fn an_open_event_stream_does_not_hold_up_a_graceful_stop(engine: Engine) {
    let clock = FakeClock::at_default();
    // A grace far longer than `stop` waits: the stop can only finish in time if the stream ends.
    let tune = |c: &mut jobline::config::Config| c.shutdown_grace = Duration::from_secs(600);
    let mut app = TestApp::spawn_with_clock(engine, &clock, tune).await;
    let token = app.admin_token().await;
    let mut stream = app.authed(Method::GET, "/v1/events", &token).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    app.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    });
    assert!(end.await.is_ok(), "the stream ended with the app");
}
