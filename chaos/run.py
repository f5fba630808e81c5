#!/usr/bin/env python3
"""jobline chaos suite: three `jobline serve` nodes on one fresh PostgreSQL database, a mixed
load of every bulk job kind through the public APIs, a random node killed with SIGKILL every
few seconds (and restarted on its port), random cancels; then every job must end, no queue may
have run two jobs at once, and every job's effects must be exactly what it reports.

Standard library only. See chaos/README.md for what is checked and RELIABILITY.md for figures.

    python3 chaos/run.py                       # short run, about 90 s, target/{release,debug}/jobline
    python3 chaos/run.py --long                # ten minutes
    python3 chaos/run.py --binary target/debug/jobline --duration 120 --seed 7

Exit status: 0 when no violation was found (violations of the exactness checks are only
reported under --known-failures), 1 on any violation, 2 when the run could not be set up.
"""

import argparse
import collections
import csv
import hashlib
import http.client
import io
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

TERMINAL = ("succeeded", "failed", "cancelled")

# A node log line's level, and what varies between lines of one kind (ids, numbers, spans).
LOG_LEVEL = re.compile(r"\s(WARN|ERROR)\s")
LOG_INFO = re.compile(r"\s(INFO)\s")
LOG_NOISE = re.compile(r"job\{[^}]*\}:\s*|request\{[^}]*\}:\s*|[0-9a-f]{8}-[0-9a-f-]{27}|\d+")
ACTIVE = ("running", "cancelling")

# Evidence for "one job at a time per queue" that no clock skew blurs: a trigger on the test
# database (not part of jobline) records every state change of a job with PostgreSQL's own
# clock_timestamp() as the row is changed, i.e. after any lock wait. A queue's next claim can
# only see the previous job's end once that change has committed, so in a correct run the
# changes of one queue alternate: into running, out of running, into running, ...
AUDIT_SQL = """
CREATE TABLE chaos_audit (
    seq BIGSERIAL PRIMARY KEY, ts TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    job_id TEXT NOT NULL, queue TEXT NOT NULL, old_state TEXT, new_state TEXT NOT NULL,
    attempt BIGINT, lease_owner TEXT);
CREATE FUNCTION chaos_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chaos_audit (job_id, queue, old_state, new_state, attempt, lease_owner)
    VALUES (NEW.id, NEW.queue, OLD.state, NEW.state, NEW.attempt, NEW.lease_owner);
    RETURN NULL;
END $$;
CREATE TRIGGER chaos_audit AFTER UPDATE ON jobs FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION chaos_audit_fn()"""

# Codes asked of one promotion before a fresh promotion takes its place (see submit_promo).
PROMOTION_CODES = 30_000

# Each dialect's words for the canonical states (shared/spec/DECISIONS.md).
PXM_STATES = {"pending": "pending", "started": "running", "success": "succeeded",
              "failed": "failed", "cancelled": "cancelled"}
PROMO_STATES = {"pending": "pending", "processing": "running", "cancelling": "cancelling",
                "completed": "succeeded", "failed": "failed", "cancelled": "cancelled"}
ZUORA_STATES = {"pending": "awaiting_input", "accepted": "pending", "in_progress": "running",
                "completed": "succeeded", "failed": "failed", "cancelled": "cancelled"}

# Violation categories. "exactness" is what the exactly-once work (checkpoints per batch) is
# about: duplicated effects or errors, counts that a rerun changed. --known-failures reports
# those without failing the run; every other category always fails it.
EXACTNESS = "exactness"
INVARIANT = "invariant"

PRESETS = {
    # Total wall time target, share of it spent loading (the rest drains), seconds between
    # kills (min, max), seconds a killed node stays down (min, max), sizes of the inputs.
    "short": dict(duration=90, load_share=0.72, kill_every=(3.5, 6.5), down=(0.3, 2.0),
                  import_rows=(500, 1500), price_objects=(60, 200), codes=(1000, 4000),
                  zuora_rows=(300, 1200)),
    "long": dict(duration=600, load_share=0.85, kill_every=(3.0, 8.0), down=(0.3, 3.0),
                 import_rows=(1500, 4000), price_objects=(100, 400), codes=(2000, 8000),
                 zuora_rows=(500, 2500)),
}


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def sql_str(s):
    return "'" + str(s).replace("'", "''") + "'"


class ConnError(Exception):
    """The request may or may not have reached the node (refused, reset, timed out)."""


class PsqlSession:
    """One long-lived psql process: a query costs a round trip, not a process start and a
    connection (which take most of a second on a busy machine)."""

    def __init__(self, db):
        cmd = ["psql", "-h", db.host, "-p", str(db.port), "-U", db.user, "-d", db.name, "-X",
               "-q", "-A", "-t", "-P", "pager=off", "-v", "ON_ERROR_STOP=0"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)

    def query(self, sql):
        sentinel = f"__chaos_{uuid.uuid4().hex}__"
        self.proc.stdin.write(f"{sql};\n\\echo {sentinel}\n")
        self.proc.stdin.flush()
        lines = []
        for line in self.proc.stdout:
            if line.rstrip("\n") == sentinel:
                break
            lines.append(line)
        else:
            raise RuntimeError(f"psql ended: {''.join(lines)[-500:]}")
        if lines and lines[0].startswith(("ERROR", "psql:", "FATAL")):
            raise RuntimeError(f"psql: {''.join(lines).strip()[:500]} -- {sql[:300]}")
        return "".join(lines)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


class Db:
    """The run's own PostgreSQL database, read through psql (one JSON document per query), one
    psql session per thread."""

    def __init__(self, host, port, user, name):
        self.host, self.port, self.user, self.name = host, port, user, name
        self.url = f"postgres://{user}@{host}:{port}/{name}"
        self.local = threading.local()
        self.sessions = []
        self.lock = threading.Lock()

    def admin(self, sql):
        cmd = ["psql", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "test",
               "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}): {r.stderr.strip()} -- {sql}")

    def session(self):
        s = getattr(self.local, "session", None)
        if s is None or s.proc.poll() is not None:
            s = PsqlSession(self)
            self.local.session = s
            with self.lock:
                self.sessions.append(s)
        return s

    def rows(self, sql):
        """The rows of a SELECT as a list of dicts."""
        out = self.session().query(
            f"SELECT coalesce(json_agg(chaos_row), '[]'::json) FROM ({sql}) chaos_row")
        return json.loads(out.strip() or "[]")

    def execute(self, sql):
        """Statements whose output does not matter (DDL)."""
        return self.session().query(sql)

    def value(self, sql):
        rows = self.rows(sql)
        if not rows:
            return None
        return next(iter(rows[0].values()))

    def close(self):
        with self.lock:
            for s in self.sessions:
                s.close()
            self.sessions = []


class Node:
    def __init__(self, run, idx, port):
        self.run, self.idx, self.port = run, idx, port
        self.proc = None
        self.log_path = os.path.join(run.workdir, f"node{idx}.log")
        self.starts = 0

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        a = self.run.args
        cmd = [a.binary, "serve", "--database-url", self.run.db.url,
               "--listen", f"127.0.0.1:{self.port}",
               "--lease-secs", str(a.lease_secs), "--heartbeat-ms", str(a.heartbeat_ms),
               "--workers", str(a.workers),
               "--cancel-deadline-secs", "5", "--shutdown-grace-secs", "2"] + a.serve_arg
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== chaos: start #{self.starts + 1} at {time.time():.3f} =====\n".encode())
        logf.flush()
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info,sqlx=warn"),
                   NO_COLOR="1")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        logf.close()
        self.starts += 1
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.idx} exited at start ({self.proc.returncode}); "
                                   f"see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                time.sleep(0.1)
        raise RuntimeError(f"node {self.idx} did not answer /healthz within 30 s")

    def kill(self):
        """SIGKILL, as a crash: no graceful release of its jobs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class JobRec:
    """A job this run submitted, with what it must have done."""

    def __init__(self, kind, tenant, dialect, ctx):
        self.kind, self.tenant, self.dialect, self.ctx = kind, tenant, dialect, ctx
        self.id = None
        self.request_id = None
        self.submitted_at = time.time()
        self.cancels = []  # (answer, status word or None)
        self.final = None  # the job row from the database after the drain
        self.api_state = None


class Run:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.t0 = time.time()
        self.workdir = tempfile.mkdtemp(prefix="jobline-chaos-")
        name = f"jobline_chaos_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.db = Db(args.pg_host, args.pg_port, args.pg_user, name)
        self.db_created = False
        self.nodes = []
        self.lock = threading.RLock()
        self.jobs = []
        self.by_id = {}
        self.violations = []  # (category, message)
        self.notes = []
        self.kills = []  # dicts: t, node, pid, held
        self.restarts = 0
        self.rescues = []  # seconds from kill to the job running elsewhere (or ending)
        self.pending_rescues = []  # [job id, kill time, dead owner prefix]
        self.unrescued = []
        self.cache = {}  # job id -> latest row seen by the watcher
        self.cache_time = 0.0
        self.samples = 0
        self.overlap_seen = set()
        self.stop_load = threading.Event()
        self.stop_watch = threading.Event()
        self.busy_targets = set()
        self.tokens = {}
        self.tenants = {}
        self.promotions = []  # (tenant, promotion id) that take jobs
        self.promo_codes = collections.Counter()  # codes asked of each promotion
        self.seq = 0
        self.counters = collections.Counter()
        self.http_5xx = []
        self.zuora_assigned = set()  # create jobs whose records an update or delete took
        self.keep_logs = False
        self.log_lines = collections.Counter()  # node log warnings and errors, by message
        self.audit_events = 0
        self.overlaps_explained = []  # ms of timestamp overlaps that the audit shows as skew

    # ---- bookkeeping -------------------------------------------------------------------

    def violation(self, category, msg):
        with self.lock:
            self.violations.append((category, msg))
        log(f"VIOLATION [{category}] {msg}")

    def next_tag(self, prefix):
        with self.lock:
            self.seq += 1
            return f"{prefix}{self.seq}"

    def elapsed(self):
        return time.time() - self.t0

    # ---- HTTP --------------------------------------------------------------------------

    def alive_nodes(self):
        return [n for n in self.nodes if n.alive]

    def pick(self):
        with self.lock:
            alive = self.alive_nodes()
            return self.rng.choice(alive) if alive else self.rng.choice(self.nodes)

    def http(self, node, method, path, body=None, ctype=None, token=None, headers=None,
             timeout=60):
        url = f"http://127.0.0.1:{node.port}{path}"
        req = urllib.request.Request(url, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            raise ConnError(f"{method} {path} on node {node.idx}: {e}") from None
        if status >= 500:
            with self.lock:
                self.http_5xx.append((node.idx, method, path, status, data[:300]))
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return status, doc

    def call(self, method, path, body=None, ctype=None, token=None, headers=None, tries=8,
             timeout=60):
        """A request that is safe to repeat, sent to a random live node, again elsewhere when
        the connection fails."""
        last = None
        for _ in range(tries):
            node = self.pick()
            try:
                return self.http(node, method, path, body, ctype, token, headers, timeout)
            except ConnError as e:
                last = e
                with self.lock:
                    self.counters["requests sent again after a connection failure"] += 1
                time.sleep(0.3)
        raise last

    def jcall(self, method, path, doc, token, headers=None):
        return self.call(method, path, json.dumps(doc).encode(), "application/json", token,
                         headers)

    def create_job(self, method, path, body, ctype, token, headers=None):
        """Sends a job-creating request once, to a random live node; when the connection fails
        the job is looked up by its X-Request-ID (recorded as the job's x_request_id) and the
        request sent again elsewhere only if it did not land. Returns (status, doc, request
        id), status "recovered" with doc = the job id when the answer was lost."""
        rid = f"chaos-{uuid.uuid4()}"
        hdrs = dict(headers or {})
        hdrs["X-Request-ID"] = rid
        tries, waits = 0, 0
        while tries < 8:
            node = self.pick()
            try:
                status, doc = self.http(node, method, path, body, ctype, token, hdrs)
                # The key's first request died with its node before it settled the key: the
                # key stays reserved (409) until it goes stale. Its job may have landed.
                if (status == 409 and isinstance(doc, dict)
                        and "still being processed" in str(doc.get("message", ""))
                        and waits < 60):
                    waits += 1
                    found = self.db.value(
                        f"SELECT id FROM jobs WHERE x_request_id = {sql_str(rid)}")
                    if found:
                        with self.lock:
                            self.counters["creates recovered after a lost answer"] += 1
                        return "recovered", found, rid
                    if waits == 1:
                        with self.lock:
                            self.counters["creates that waited for a dead request's key"] += 1
                    time.sleep(1)
                    continue
                return status, doc, rid
            except ConnError:
                tries += 1
                time.sleep(0.4)
                found = self.db.value(f"SELECT id FROM jobs WHERE x_request_id = {sql_str(rid)}")
                if found:
                    with self.lock:
                        self.counters["creates recovered after a lost answer"] += 1
                    return "recovered", found, rid
        return None, None, rid

    # ---- setup -------------------------------------------------------------------------

    def free_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def setup(self):
        a = self.args
        self.db.admin(f"CREATE DATABASE {self.db.name}")
        self.db_created = True
        log(f"database {self.db.name}; binary {a.binary}; work dir {self.workdir}")
        r = subprocess.run([a.binary, "migrate", "--database-url", self.db.url],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"jobline migrate failed: {r.stderr}")
        self.db.execute(AUDIT_SQL)
        tenants = {"pxm": ["chaos-pxm-1", "chaos-pxm-2"],
                   "promo": ["chaos-promo-1", "chaos-promo-2"],
                   "zuora": ["chaos-zuora-1", "chaos-zuora-2"]}
        self.tenants = tenants
        creds = {}
        for group in tenants.values():
            for t in group:
                r = subprocess.run([a.binary, "clients", "create", "--tenant", t, "--role",
                                    "admin", "--json", "--name", "chaos",
                                    "--database-url", self.db.url],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    raise RuntimeError(f"jobline clients create failed: {r.stderr}")
                creds[t] = json.loads(r.stdout)
        for i in range(a.nodes):
            self.nodes.append(Node(self, i, self.free_port()))
        for n in self.nodes:
            n.start()
        log("nodes up: " + ", ".join(f"#{n.idx} :{n.port} pid {n.pid}" for n in self.nodes))
        for t, c in creds.items():
            form = urllib.parse.urlencode({"grant_type": "client_credentials",
                                           "client_id": c["client_id"],
                                           "client_secret": c["client_secret"]}).encode()
            path = "/oauth/token" if t.startswith("chaos-zuora") else "/oauth/access_token"
            status, doc = self.call("POST", path, form, "application/x-www-form-urlencoded")
            if status != 200:
                raise RuntimeError(f"token for {t}: {status} {doc}")
            self.tokens[t] = doc["access_token"]
        for t in tenants["promo"]:
            for _ in range(2):
                self.promotions.append((t, self.new_promotion(t)))
        for t in tenants["zuora"]:
            status, doc = self.jcall("POST", "/objects/definitions/default", ZUORA_DEFINITIONS,
                                     self.tokens[t])
            if status != 200:
                raise RuntimeError(f"define zuora objects: {status} {doc}")

    # ---- the watcher: the jobs table, four times a second ----------------------------------

    def watch(self):
        while not self.stop_watch.is_set():
            try:
                rows = self.db.rows("SELECT id, kind, queue, state, attempt, lease_owner, "
                                    "started_at, completed_at FROM jobs")
            except Exception as e:  # the database itself is not under test; keep going
                log(f"watcher: {e}")
                time.sleep(0.5)
                continue
            now = time.time()
            active = collections.defaultdict(list)
            with self.lock:
                self.samples += 1
                self.cache = {r["id"]: r for r in rows}
                self.cache_time = now
                for r in rows:
                    if r["state"] in ACTIVE:
                        active[r["queue"]].append(r)
                still = []
                for jid, t_kill, prefix in self.pending_rescues:
                    r = self.cache.get(jid)
                    if r is None:
                        continue
                    owner = r["lease_owner"] or ""
                    if r["state"] in TERMINAL or (r["state"] in ACTIVE
                                                  and not owner.startswith(prefix)):
                        self.rescues.append(now - t_kill)
                    else:
                        still.append([jid, t_kill, prefix])
                self.pending_rescues = still
            for queue, rs in active.items():
                if len(rs) > 1:
                    key = (queue, tuple(sorted(r["id"] for r in rs)))
                    if key not in self.overlap_seen:
                        self.overlap_seen.add(key)
                        self.violation(INVARIANT, f"queue {queue} had {len(rs)} jobs running at "
                                       f"once (sampled): " + ", ".join(
                                           f"{r['id']} {r['kind']} {r['state']} owner "
                                           f"{r['lease_owner']}" for r in rs))
            time.sleep(0.25)

    def state_of(self, rec):
        with self.lock:
            r = self.cache.get(rec.id) if rec.id else None
            return r["state"] if r else None

    def unfinished(self, pred):
        with self.lock:
            return [j for j in self.jobs
                    if pred(j) and (j.id is None or self.state_of(j) not in TERMINAL)]

    # ---- chaos: kill a random node, restart it on its port -------------------------------

    def chaos(self):
        p = self.preset
        while not self.stop_load.wait(self.rng.uniform(*p["kill_every"])):
            with self.lock:
                alive = self.alive_nodes()
            if len(alive) < 2:
                continue
            node = self.rng.choice(alive)
            pid = node.pid
            t_kill = time.time()
            node.kill()
            held = self.db.rows(f"SELECT id, kind, state FROM jobs WHERE state IN "
                                f"('running', 'cancelling') AND lease_owner LIKE '{pid}-%'")
            with self.lock:
                self.kills.append({"t": t_kill - self.t0, "node": node.idx, "pid": pid,
                                   "held": [h["id"] for h in held]})
                for h in held:
                    self.pending_rescues.append([h["id"], t_kill, f"{pid}-"])
            log(f"killed node #{node.idx} (pid {pid}) holding {len(held)} job(s): "
                + ", ".join(f"{h['kind']} {h['state']}" for h in held))
            time.sleep(self.rng.uniform(*p["down"]))
            try:
                node.start()
                with self.lock:
                    self.restarts += 1
            except Exception as e:
                self.violation(INVARIANT, f"node #{node.idx} did not restart: {e}")

    # ---- cancels -----------------------------------------------------------------------

    def canceller(self):
        while not self.stop_load.wait(self.rng.uniform(1.0, 3.0)):
            candidates = self.unfinished(lambda j: j.id is not None)
            if not candidates:
                continue
            running_promos = [j for j in candidates if j.dialect == "promo"
                              and self.state_of(j) == "running"]
            if running_promos and self.rng.random() < 0.35:
                job = self.rng.choice(running_promos)
            else:
                job = self.rng.choice(candidates)
            try:
                self.cancel(job)
            except Exception as e:
                log(f"cancel of {job.id}: {e}")

    def cancel(self, job):
        token = self.tokens[job.tenant]
        if job.dialect == "pxm":
            path, method = f"/pcm/jobs/{job.id}/cancel", "POST"
        elif job.dialect == "promo":
            path, method = f"/v2/promotions/{job.ctx['promotion']}/jobs/{job.id}/cancel", "POST"
        else:
            path, method = f"/objects/jobs/{job.id}/cancel", "PATCH"
        body = b"{}" if method == "POST" else None
        try:
            status, doc = self.call(method, path, body, "application/json" if body else None,
                                    token)
        except ConnError:
            with self.lock:
                job.cancels.append(("lost", None))
            raise
        word = None
        if status == 200 and isinstance(doc, dict):
            if job.dialect == "pxm":
                word = PXM_STATES.get(doc["data"]["attributes"]["status"])
            elif job.dialect == "promo":
                word = PROMO_STATES.get(doc["data"]["status"])
            else:
                word = ZUORA_STATES.get(doc["status"])
        with self.lock:
            job.cancels.append((status, word))
            self.counters[f"cancel answers {status}"] += 1
        log(f"cancel {job.kind} {job.id}: {status} {word or ''}")

    # ---- load --------------------------------------------------------------------------

    def submitter(self):
        while not self.stop_load.is_set():
            target = self.choose_target()
            if target is None:
                self.stop_load.wait(0.3)
                continue
            try:
                target[1]()
            except ConnError as e:
                log(f"submit gave up: {e}")
            except Exception:
                self.violation(INVARIANT, "submit raised: " + traceback.format_exc(limit=3))
            finally:
                with self.lock:
                    self.busy_targets.discard(target[0])
            self.stop_load.wait(self.rng.uniform(0.1, 0.6))

    def choose_target(self):
        """A (key, action) whose queue has room, reserved so two submitters never act on the
        same queue or promotion at once."""
        options = []
        with self.lock:
            busy = set(self.busy_targets)
        for t in self.tenants["pxm"]:
            key = ("pxm", t)
            if key not in busy and len(self.unfinished(lambda j: j.tenant == t)) < 2:
                options.append((key, lambda t=t: self.submit_pxm(t), 3))
        for t, pid in self.promotions:
            key = ("promo", pid)
            if key not in busy and not self.unfinished(
                    lambda j: j.dialect == "promo" and j.ctx["promotion"] == pid):
                options.append((key, lambda t=t, pid=pid: self.submit_promo(t, pid), 1))
        for t in self.tenants["zuora"]:
            key = ("zuora", t)
            if key not in busy and len(self.unfinished(lambda j: j.tenant == t)) < 3:
                options.append((key, lambda t=t: self.submit_zuora(t), 2))
        if not options:
            return None
        key, action, _ = self.rng.choices(options, weights=[o[2] for o in options])[0]
        with self.lock:
            if key in self.busy_targets:
                return None
            self.busy_targets.add(key)
        return key, action

    def register(self, rec, status, doc, rid, id_of):
        rec.request_id = rid
        if status == "recovered":
            rec.id = doc
        elif status in (200, 201):
            rec.id = id_of(doc)
        else:
            with self.lock:
                self.counters[f"{rec.kind} create refused {status}"] += 1
            what = "no node answered" if status is None else f"answered {status}: {doc}"
            self.violation(INVARIANT, f"{rec.kind} create {what}")
            return False
        with self.lock:
            self.jobs.append(rec)
            self.by_id[rec.id] = rec
        return True

    def submit_pxm(self, tenant):
        p = self.preset
        token = self.tokens[tenant]
        if self.rng.random() < 0.55:
            tag = self.next_tag("i")
            n = self.rng.randint(*p["import_rows"])
            with_bad = self.rng.random() < 0.5
            body, expect = product_csv(self.rng, tag, n, with_bad)
            form, ctype = multipart({}, [("file", "products.csv", "text/csv", body)])
            rec = JobRec("pxm/product-import", tenant, "pxm", dict(tag=tag, **expect))
            status, doc, rid = self.create_job("POST", "/pcm/products/import", form, ctype, token)
        else:
            tag = self.next_tag("b")
            n = self.rng.randint(*p["price_objects"])
            bad = self.rng.random() < 0.3
            body, expect = price_file(tag, n, bad)
            form, ctype = multipart({"file_compression": "none"},
                                    [("file", "prices.jsonl", "application/jsonl", body)])
            rec = JobRec("pxm/price-import", tenant, "pxm", dict(tag=tag, **expect))
            status, doc, rid = self.create_job("POST", "/pcm/pricebooks/import", form, ctype,
                                               token)
        if self.register(rec, status, doc, rid, lambda d: d["data"]["id"]):
            log(f"submitted {rec.kind} {rec.id} ({rec.ctx['tag']}) to {tenant}")

    def new_promotion(self, tenant):
        data = {"type": "promotion", "name": f"chaos {tenant} {self.next_tag('p')}",
                "promotion_type": "fixed_discount", "max_codes": 100_000_000}
        status, doc = self.jcall("POST", "/v2/promotions", {"data": data}, self.tokens[tenant])
        if status != 201:
            raise RuntimeError(f"create promotion: {status} {doc}")
        return doc["data"]["id"]

    def submit_promo(self, tenant, pid):
        token = self.tokens[tenant]
        if self.promo_codes[pid] >= PROMOTION_CODES:
            # An export reads every code of its promotion: keep promotions small enough for
            # an export to end within seconds, so a long run does not turn into a queue of
            # ever longer exports.
            new = self.new_promotion(tenant)
            with self.lock:
                self.promotions[self.promotions.index((tenant, pid))] = (tenant, new)
            log(f"promotion {pid} has {self.promo_codes[pid]} codes asked; {new} takes its place")
            pid = new
        path = f"/v2/promotions/{pid}/jobs"
        if self.rng.random() < 0.75:
            tag = self.next_tag("g")
            n = self.rng.randint(*self.preset["codes"])
            self.promo_codes[pid] += n
            params = {"number_of_codes": n, "code_length": 10, "code_prefix": f"{tag}-"}
            data = {"type": "promotion_job", "job_type": "code_generate", "name": tag,
                    "parameters": params}
            rec = JobRec("promotions/code_generate", tenant, "promo",
                         dict(tag=tag, promotion=pid, codes=n))
        else:
            tag = self.next_tag("x")
            data = {"type": "promotion_job", "job_type": "code_export", "name": tag}
            rec = JobRec("promotions/code_export", tenant, "promo", dict(tag=tag, promotion=pid))
        status, doc, rid = self.create_job("POST", path, json.dumps({"data": data}).encode(),
                                           "application/json", token)
        if status == 400:  # "Too many jobs": the watcher had not seen the last job end yet
            with self.lock:
                self.counters["promotion job refused: one per promotion"] += 1
            return
        if self.register(rec, status, doc, rid, lambda d: d["data"]["id"]):
            log(f"submitted {rec.kind} {rec.id} ({tag}) to {pid}")

    def submit_zuora(self, tenant):
        token = self.tokens[tenant]
        p = self.preset
        roll = self.rng.random()
        done_creates = [j for j in self.jobs if j.tenant == tenant and j.kind == "zuora/create"
                        and j.ctx["object"] == "chaos_item" and self.state_of(j) == "succeeded"
                        and j.id not in self.zuora_assigned]
        if roll < 0.2 and done_creates:
            source = self.rng.choice(done_creates)
            self.zuora_assigned.add(source.id)
            tag = self.next_tag("u")
            ids = [r["id"] for r in self.db.rows(
                f"SELECT id FROM zuora_records WHERE tenant_id = {sql_str(tenant)} AND object = "
                f"'chaos_item' AND fields::jsonb->>'job__c' = {sql_str(source.ctx['tag'])} "
                f"ORDER BY id")]
            body, expect = zuora_update_csv(self.rng, tag, ids)
            rec = JobRec("zuora/update", tenant, "zuora",
                         dict(tag=tag, object="chaos_item", source=source.ctx["tag"], **expect))
            payload = {"namespace": "default", "object": "chaos_item", "operation": "update"}
        elif roll < 0.35 and done_creates:
            source = self.rng.choice(done_creates)
            self.zuora_assigned.add(source.id)
            tag = self.next_tag("d")
            snap = self.db.rows(f"SELECT * FROM ({ZUORA_CREATED_SQL}) s WHERE tenant_id = "
                                f"{sql_str(tenant)} AND object = 'chaos_item' AND tag = "
                                f"{sql_str(source.ctx['tag'])}")
            snap = snap[0] if snap else {"n": 0, "keys": 0, "digest": None}
            source.ctx["snapshot"] = snap
            present = snap["n"]
            body = None
            rec = JobRec("zuora/delete", tenant, "zuora",
                         dict(tag=tag, object="chaos_item", source=source.ctx["tag"],
                              matching=present))
            payload = {"namespace": "default", "object": "chaos_item", "operation": "delete",
                       "filter": {"conditions": [{"field": "job__c", "operator": "EQ",
                                                  "value": source.ctx["tag"]}]}}
        else:
            obj = "chaos_item" if self.rng.random() < 0.65 else "chaos_log"
            tag = self.next_tag("z")
            n = self.rng.randint(*p["zuora_rows"])
            body, expect = zuora_create_csv(self.rng, tag, obj, n)
            rec = JobRec("zuora/create", tenant, "zuora", dict(tag=tag, object=obj, **expect))
            payload = {"namespace": "default", "object": obj, "operation": "create"}
        headers = {"Idempotency-Key": f"chaos-create-{tag}"}
        status, doc, rid = self.create_job("POST", "/objects/jobs",
                                           json.dumps(payload).encode(), "application/json",
                                           token, headers)
        if status == 400 and isinstance(doc, dict) and doc.get("code") == 71013070:
            with self.lock:
                self.counters["zuora job refused: five active per tenant"] += 1
            if rec.kind != "zuora/create":
                self.zuora_assigned.discard(source.id)
            return
        if not self.register(rec, status, doc, rid, lambda d: d["Id"]):
            return
        log(f"submitted {rec.kind} {rec.id} ({tag}) to {tenant}")
        if body is not None:
            self.upload_zuora(rec, body, token)

    def upload_zuora(self, rec, body, token):
        path = f"/objects/jobs/{rec.id}/files"
        headers = {"Idempotency-Key": f"chaos-upload-{rec.ctx['tag']}"}
        try:
            status, doc = self.call("POST", path, body, "text/csv", token, headers)
        except ConnError:
            status, doc = None, None
        if status == 200:
            return
        state = self.db.value(f"SELECT state FROM jobs WHERE id = {sql_str(rec.id)}")
        if state != "awaiting_input":
            return  # an earlier try landed and the answer was lost
        log(f"upload for {rec.id} failed ({status} {doc}); cancelling the job")
        with self.lock:
            self.counters["zuora uploads abandoned"] += 1
        self.cancel(rec)

    # ---- the run -----------------------------------------------------------------------

    def main(self):
        a = self.args
        self.preset = dict(PRESETS["long" if a.long else "short"])
        if a.duration:
            self.preset["duration"] = a.duration
        duration = self.preset["duration"]
        load_secs = max(10.0, duration * self.preset["load_share"])
        self.setup()
        watcher = threading.Thread(target=self.watch, daemon=True)
        watcher.start()
        threads = [threading.Thread(target=self.submitter, daemon=True) for _ in range(3)]
        threads.append(threading.Thread(target=self.canceller, daemon=True))
        if not a.no_kill:
            threads.append(threading.Thread(target=self.chaos, daemon=True))
        log(f"load and chaos for {load_secs:.0f} s")
        for t in threads:
            t.start()
        self.stop_load.wait(load_secs)
        self.stop_load.set()
        for t in threads:
            t.join(timeout=120)
        for n in self.nodes:
            if not n.alive:
                n.start()
                self.restarts += 1
        # A Zuora job still waiting for its file would wait for ever: the client gave up.
        for j in self.unfinished(lambda j: j.dialect == "zuora"):
            if self.state_of(j) == "awaiting_input":
                self.cancel(j)
        drain_until = self.t0 + duration + a.drain_slack
        log(f"load stopped at {self.elapsed():.0f} s with {len(self.jobs)} jobs; draining until "
            f"{drain_until - self.t0:.0f} s")
        while time.time() < drain_until:
            left = self.db.value(f"SELECT count(*) AS n FROM jobs WHERE state NOT IN "
                                 f"('succeeded', 'failed', 'cancelled')")
            if left == 0:
                break
            time.sleep(0.5)
        time.sleep(0.6)  # one more watcher pass for the rescue times
        self.stop_watch.set()
        watcher.join(timeout=10)
        log(f"drained at {self.elapsed():.0f} s; checking")
        Checker(self).check_all()
        return self.report()

    def report(self):
        a = self.args
        by = collections.Counter()
        for j in self.jobs:
            state = j.final["state"] if j.final else "unknown"
            by[(j.kind, state)] += 1
        kinds = sorted({k for k, _ in by})
        states = ["succeeded", "failed", "cancelled", "other"]
        print()
        print(f"jobline chaos run: seed {a.seed}, {len(self.nodes)} nodes, lease "
              f"{a.lease_secs} s, heartbeat {a.heartbeat_ms} ms, {self.elapsed():.0f} s wall time")
        print(f"{'kind':28}" + "".join(f"{s:>11}" for s in states) + f"{'total':>8}")
        for k in kinds:
            row = [by[(k, s)] for s in states[:3]]
            other = sum(v for (kk, s), v in by.items() if kk == k and s not in states[:3])
            print(f"{k:28}" + "".join(f"{v:>11}" for v in row + [other])
                  + f"{sum(row) + other:>8}")
        print(f"{'all':28}" + "".join(
            f"{sum(v for (k, s), v in by.items() if s == st):>11}" for st in states[:3])
            + f"{sum(v for (k, s), v in by.items() if s not in states[:3]):>11}"
            + f"{len(self.jobs):>8}")
        held = sum(len(k["held"]) for k in self.kills)
        print(f"kills: {len(self.kills)} (SIGKILL), restarts: {self.restarts}, jobs held by a "
              f"killed node: {held}")
        if self.rescues:
            print(f"time to rescue (kill -> running on another node or ended): n={len(self.rescues)}"
                  f" p50={percentile(self.rescues, 50):.1f} s p90={percentile(self.rescues, 90):.1f}"
                  f" s max={max(self.rescues):.1f} s")
        else:
            print("time to rescue: no killed node held a job")
        cancels = collections.Counter()
        for j in self.jobs:
            for status, word in j.cancels:
                cancels[f"{status} {word}" if word else str(status)] += 1
        print("cancels sent: " + (", ".join(f"{v} x {k}" for k, v in sorted(cancels.items()))
                                  or "none"))
        for k, v in sorted(self.counters.items()):
            print(f"{k}: {v}")
        print(f"watcher samples of the jobs table: {self.samples}; state changes audited: "
              f"{self.audit_events}")
        if self.overlaps_explained:
            print(f"started_at/completed_at overlaps that the audit shows as clock skew: "
                  f"{len(self.overlaps_explained)}, max {max(self.overlaps_explained)} ms")
        for line, n in self.log_lines.most_common(8):
            print(f"node logs: {n} x {line}")
        for n in self.notes:
            print(f"note: {n}")
        strict = [v for v in self.violations if not (a.known_failures and v[0] == EXACTNESS)]
        known = [v for v in self.violations if a.known_failures and v[0] == EXACTNESS]
        if known:
            print(f"\nKNOWN FAILURES ({len(known)}, exactness checks, --known-failures):")
            for c, m in known:
                print(f"  [{c}] {m}")
        if strict:
            print(f"\nVIOLATIONS ({len(strict)}):")
            for c, m in strict:
                print(f"  [{c}] {m}")
            self.keep_logs = True
            print(f"\nnode logs kept in {self.workdir}")
            return 1
        print("\nno violations" + (" (beyond the known failures above)" if known else ""))
        return 0

    def cleanup(self):
        for n in self.nodes:
            try:
                n.kill()
            except Exception:
                pass
        self.db.close()
        if self.db_created and not self.args.keep:
            try:
                self.db.admin(f"DROP DATABASE IF EXISTS {self.db.name} WITH (FORCE)")
            except Exception as e:
                log(f"could not drop {self.db.name}: {e}")
        if self.args.keep:
            log(f"kept database {self.db.name} and logs in {self.workdir}")
        elif not self.keep_logs:
            for f in os.listdir(self.workdir):
                os.unlink(os.path.join(self.workdir, f))
            os.rmdir(self.workdir)


ZUORA_KEY_SQL = "coalesce(fields::jsonb->>'key__c', fields::jsonb->>'row__c')"

# Per (tenant, object, job__c): records, distinct row keys, and a digest of the sorted keys.
ZUORA_CREATED_SQL = f"""
SELECT tenant_id, object, tag, sum(c) AS n, count(*) AS keys,
       md5(string_agg(k, ',' ORDER BY k COLLATE "C")) AS digest
FROM (SELECT tenant_id, object, fields::jsonb->>'job__c' AS tag, {ZUORA_KEY_SQL} AS k,
             count(*) AS c
      FROM zuora_records GROUP BY 1, 2, 3, 4) t
GROUP BY 1, 2, 3"""


def digest(items):
    return hashlib.md5(",".join(sorted(items)).encode()).hexdigest()


class Checker:
    """Every check after the drain: the API and the database agree, every job ended, no queue
    ran two jobs at once, and each job's effects are what it reports. The database is read in
    a few aggregate queries, not per job."""

    def __init__(self, run):
        self.run = run
        self.db = run.db

    def v(self, category, msg):
        self.run.violation(category, msg)

    def load(self):
        db = self.db
        self.errors = collections.defaultdict(list)
        for e in db.rows("SELECT job_id, row_num, message FROM job_errors ORDER BY id"):
            self.errors[e["job_id"]].append(e)
        self.products = {(r["tenant_id"], r["tag"]): r for r in db.rows(
            "SELECT tenant_id, split_part(coalesce(external_ref, slug), '-', 1) AS tag, "
            "count(*) AS n, count(*) FILTER (WHERE external_ref LIKE '%-bad%' OR slug LIKE "
            "'%-bad%') AS bad, md5(string_agg(coalesce(external_ref, '') || '=' || name, ',' "
            "ORDER BY (coalesce(external_ref, '') || '=' || name) COLLATE \"C\")) AS digest "
            "FROM products GROUP BY 1, 2")}
        self.books = {(r["tenant_id"], r["book"]): r for r in db.rows(
            "SELECT b.tenant_id, b.external_ref AS book, count(*) AS books, "
            "(SELECT count(*) FROM prices p WHERE p.pricebook_id = min(b.id)) AS prices "
            "FROM pricebooks b GROUP BY 1, 2")}
        self.codes = {r["job"]: r for r in db.rows(
            "SELECT c.created_by_job AS job, count(*) AS n, count(*) FILTER (WHERE NOT "
            "starts_with(c.code, j.payload::jsonb->'parameters'->>'code_prefix') OR "
            "c.promotion_id IS DISTINCT FROM j.subject) AS wrong FROM promotion_codes c "
            "JOIN jobs j ON j.id = c.created_by_job GROUP BY 1")}
        orphans = db.value("SELECT count(*) AS n FROM promotion_codes c WHERE NOT EXISTS "
                           "(SELECT 1 FROM jobs j WHERE j.id = c.created_by_job)")
        if orphans:
            self.v(INVARIANT, f"{orphans} promotion code(s) that no job made")
        self.exports = {r["id"]: r for r in db.rows(
            "SELECT x.id, count(c.code) AS n, md5(string_agg(c.code, ',' ORDER BY c.code "
            "COLLATE \"C\")) AS digest FROM jobs x JOIN jobs g ON g.subject = x.subject AND "
            "g.kind = 'promotions/code_generate' AND g.created_at < x.created_at JOIN "
            "promotion_codes c ON c.created_by_job = g.id WHERE x.kind = "
            "'promotions/code_export' GROUP BY x.id")}
        self.zuora = {(r["tenant_id"], r["object"], r["tag"]): r
                      for r in db.rows(ZUORA_CREATED_SQL)}
        self.updated = collections.defaultdict(dict)
        for r in db.rows("SELECT fields::jsonb->>'upd__c' AS tag, id, "
                         "(fields::jsonb->>'n__c')::bigint AS n FROM zuora_records "
                         "WHERE fields::jsonb ? 'upd__c'"):
            self.updated[r["tag"]][r["id"]] = r["n"]

    def check_all(self):
        run = self.run
        rows = {r["id"]: r for r in self.db.rows(
            "SELECT id, tenant_id, kind, queue, subject, state, attempt, result, error, "
            "progress_done, progress_total, started_at, completed_at, created_at FROM jobs")}
        for j in run.jobs:
            j.final = rows.get(j.id)
            if j.final is None:
                self.v(INVARIANT, f"{j.kind} {j.id}: created, but not in the jobs table")
        for r in rows.values():
            if r["state"] not in TERMINAL:
                self.v(INVARIANT, f"stuck: {r['kind']} {r['id']} is {r['state']} (attempt "
                       f"{r['attempt']}) after the drain")
        ours = {j.id for j in run.jobs}
        for r in rows.values():
            if r["id"] not in ours:
                self.v(INVARIANT, f"a job nobody submitted: {r['kind']} {r['id']}")
        self.load()
        self.check_api_states()
        self.check_audit()
        self.check_queues(rows.values())
        self.check_cancels()
        self.check_logs()
        for j in run.jobs:
            if j.final is None or j.final["state"] not in TERMINAL:
                continue  # already reported as stuck
            try:
                getattr(self, "effects_" + j.kind.replace("/", "_").replace("-", "_"))(j)
            except Exception:
                self.v(INVARIANT, f"checking {j.kind} {j.id} raised: "
                       + traceback.format_exc(limit=4))
        for node, method, path, status, body in run.http_5xx:
            self.v(INVARIANT, f"HTTP {status} from live node #{node} on {method} {path}: {body!r}")
        for jid, t_kill, _ in run.pending_rescues:
            self.v(INVARIANT, f"job {jid} held by a killed node was never seen running elsewhere "
                   f"or ended ({time.time() - t_kill:.0f} s after the kill)")

    def check_api_states(self):
        run = self.run
        promo_lists = {}
        for j in run.jobs:
            if j.final is None:
                continue
            token = run.tokens[j.tenant]
            if j.dialect == "pxm":
                status, doc = run.call("GET", f"/pcm/jobs/{j.id}", token=token)
                word = doc["data"]["attributes"]["status"] if status == 200 else None
                state = PXM_STATES.get(word)
            elif j.dialect == "zuora":
                status, doc = run.call("GET", f"/objects/jobs/{j.id}", token=token)
                word = doc.get("status") if status == 200 else None
                state = ZUORA_STATES.get(word)
                j.ctx["api"] = doc if status == 200 else None
            else:
                pid = j.ctx["promotion"]
                if pid not in promo_lists:
                    found, offset = {}, 0
                    while True:
                        status, doc = run.call(
                            "GET", f"/v2/promotions/{pid}/jobs?page[limit]=100&page[offset]="
                                   f"{offset}", token=token)
                        if status != 200:
                            break
                        for d in doc["data"]:
                            found[d["id"]] = d
                        offset += 100
                        if offset >= doc["meta"]["results"]["total"]:
                            break
                    promo_lists[pid] = found
                d = promo_lists[pid].get(j.id)
                status, word = (200, d["status"]) if d else (404, None)
                state = PROMO_STATES.get(word)
                j.ctx["api"] = d
            j.api_state = state
            if status != 200:
                self.v(INVARIANT, f"{j.kind} {j.id}: the API answered {status} for the job")
            elif state != j.final["state"]:
                self.v(INVARIANT, f"{j.kind} {j.id}: the API says {word}, the database "
                       f"{j.final['state']}")

    def check_audit(self):
        """The state changes the trigger recorded (AUDIT_SQL), per queue in the order
        PostgreSQL made them: a job entering running/cancelling while another job of its
        queue is in one of them is two jobs at once."""
        events = self.db.rows("SELECT to_char(ts, 'HH24:MI:SS.US') AS t, job_id, queue, "
                              "old_state, new_state, attempt FROM chaos_audit ORDER BY ts, seq")
        self.run.audit_events = len(events)
        self.entered, self.left = {}, {}  # job id -> (order, time) of its last entry, exit
        active = collections.defaultdict(dict)  # queue -> job id -> event that made it active
        for k, e in enumerate(events):
            was = e["old_state"] in ACTIVE
            now = e["new_state"] in ACTIVE
            if now and not was:
                self.entered[e["job_id"]] = (k, e["t"])
            elif was and not now:
                self.left[e["job_id"]] = (k, e["t"])
            jobs = active[e["queue"]]
            if now and not was:
                for other, since in jobs.items():
                    if other != e["job_id"]:
                        self.v(INVARIANT, f"queue {e['queue']}: job {e['job_id']} became "
                               f"{e['new_state']} at {e['t']} (attempt {e['attempt']}) while "
                               f"job {other} had been {since['new_state']} since {since['t']}")
                jobs[e["job_id"]] = e
            elif was and not now:
                jobs.pop(e["job_id"], None)

    def check_queues(self, rows):
        """One job at a time per queue (every queue here has concurrency 1), from the jobs
        table: the last attempt's [started_at, completed_at] of the jobs of one queue never
        overlap. Those two are stamped with the time each process read before its statement
        ran, which may then wait for locks (on a busy machine, for a good part of a second):
        an overlap is a violation unless the audit (check_audit) saw the earlier job leave
        before the later one entered, which makes it that skew; overlaps under
        --overlap-tolerance-ms are only noted."""
        skew_ms = self.run.args.overlap_tolerance_ms
        by_queue = collections.defaultdict(list)
        for r in rows:
            if r["started_at"] is not None and r["completed_at"] is not None:
                by_queue[r["queue"]].append(r)
        for queue, rs in by_queue.items():
            rs.sort(key=lambda r: r["started_at"])
            prev = None
            for r in rs:
                if r["completed_at"] < r["started_at"]:
                    self.v(INVARIANT, f"{r['kind']} {r['id']}: completed_at before started_at")
                if prev is not None and r["started_at"] < prev["completed_at"]:
                    gap = prev["completed_at"] - r["started_at"]
                    msg = (f"queue {queue}: {r['kind']} {r['id']} started {gap} ms before "
                           f"{prev['kind']} {prev['id']} completed")
                    left, entered = self.left.get(prev["id"]), self.entered.get(r["id"])
                    if left and entered and left[0] < entered[0]:
                        self.run.overlaps_explained.append(gap)
                        if gap > skew_ms:
                            self.run.notes.append(
                                f"{msg}, by their timestamps; the audit saw the first end at "
                                f"{left[1]} and the second start at {entered[1]}: clock skew")
                    elif gap > skew_ms:
                        self.v(INVARIANT, msg)
                    else:
                        self.run.notes.append(msg + " (within the clock tolerance)")
                if prev is None or r["completed_at"] > prev["completed_at"]:
                    prev = r

    def check_cancels(self):
        for j in self.run.jobs:
            if j.final is None:
                continue
            final = j.final["state"]
            for status, word in j.cancels:
                if word == "cancelled" and final != "cancelled":
                    self.v(INVARIANT, f"{j.kind} {j.id}: the cancel answered cancelled, the "
                           f"job ended {final}")
                if word == "cancelling" and final not in ("cancelled", "succeeded"):
                    self.v(INVARIANT, f"{j.kind} {j.id}: the cancel answered cancelling, the "
                           f"job ended {final}")
            if final == "cancelled" and not j.cancels:
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled, but nobody asked")

    def check_logs(self):
        """Panics are violations; warnings and errors are counted for the summary."""
        for n in self.run.nodes:
            try:
                with open(n.log_path, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            for line in text.splitlines():
                if "panicked" in line:
                    self.v(INVARIANT, f"node #{n.idx} log: {line.strip()[:300]}")
                m = LOG_LEVEL.search(line)
                if m is None and "lease lost" in line:  # a live node lost a job: not a kill
                    m = LOG_INFO.search(line)
                if m:
                    what = LOG_NOISE.sub("…", line[m.end():].strip())[:140]
                    self.run.log_lines[f"{m.group(1)} {what}"] += 1

    # -- helpers --

    def result(self, job):
        res = job.final["result"]
        return json.loads(res) if res else None

    def exhausted(self, job):
        err = job.final["error"] or ""
        return job.final["state"] == "failed" and err.startswith("worker lost")

    def expect_errors(self, job, expected_rows):
        """The job's errors name exactly the expected rows, each once."""
        errors = self.errors[job.id]
        rows = [e["row_num"] for e in errors]
        counts = collections.Counter(rows)
        dups = sorted(r for r, c in counts.items() if c > 1)
        if dups:
            self.v(EXACTNESS, f"{job.kind} {job.id}: {len(dups)} row(s) reported more than once "
                   f"in the job's errors (e.g. rows {dups[:5]}; {len(rows)} entries for "
                   f"{len(expected_rows)} bad rows)")
        missing = sorted(set(expected_rows) - set(rows))
        extra = sorted(set(rows) - set(expected_rows), key=lambda r: (r is None, r or 0))
        if missing:
            self.v(EXACTNESS, f"{job.kind} {job.id}: bad rows not reported: {missing[:5]} "
                   f"({len(missing)})")
        if extra:
            msgs = [e["message"] for e in errors if e["row_num"] in extra][:2]
            self.v(EXACTNESS, f"{job.kind} {job.id}: good rows reported as errors: {extra[:5]} "
                   f"({len(extra)}), e.g. {msgs}")

    def no_errors(self, job):
        errors = self.errors[job.id]
        if errors:
            self.v(INVARIANT, f"{job.kind} {job.id}: {job.final['state']} with {len(errors)} "
                   f"error(s) listed, e.g. {errors[0]}")

    def note_exhausted(self, job):
        self.run.notes.append(f"{job.kind} {job.id} failed: {job.final['error']} "
                              f"(killed on each of its attempts); its partial effects are not "
                              f"checked for exactness")

    def unexpected_failure(self, job):
        self.v(INVARIANT, f"{job.kind} {job.id}: ended {job.final['state']}: "
               f"{job.final['error']}")

    # -- PXM --

    def effects_pxm_product_import(self, j):
        c, state = j.ctx, j.final["state"]
        got = self.products.get((j.tenant, c["tag"]), {"n": 0, "bad": 0, "digest": None})
        errors = self.errors[j.id]
        if state == "cancelled":
            if got["n"] or errors:
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled (only pending jobs cancel) but "
                       f"{got['n']} product(s) and {len(errors)} error(s) exist")
            return
        if got["bad"]:
            self.v(INVARIANT, f"{j.kind} {j.id}: {got['bad']} product(s) of bad rows exist")
        if self.exhausted(j):
            self.note_exhausted(j)
            return
        want = digest(f"{ref}={name}" for ref, name in c["good"].items())
        if got["n"] != len(c["good"]) or got["digest"] != want:
            self.v(EXACTNESS, f"{j.kind} {j.id} ({state}): {got['n']} products, expected "
                   f"{len(c['good'])}" + ("" if got["n"] != len(c["good"]) else
                                          ", some not as their last row left them"))
        if c["bad_rows"]:
            if state != "failed":
                self.v(INVARIANT, f"{j.kind} {j.id}: {len(c['bad_rows'])} bad rows but the job "
                       f"ended {state}")
            self.expect_errors(j, c["bad_rows"])
        else:
            if state != "succeeded":
                return self.unexpected_failure(j)
            self.no_errors(j)
            res = self.result(j) or {}
            want_res = {"created": len(c["good"]), "updated": c["updates"]}
            if {k: res.get(k) for k in want_res} != want_res:
                self.v(EXACTNESS, f"{j.kind} {j.id}: result {res}, the file makes {want_res}")

    def effects_pxm_price_import(self, j):
        c, state = j.ctx, j.final["state"]
        got = self.books.get((j.tenant, c["book"]), {"books": 0, "prices": 0})
        errors = self.errors[j.id]
        if state == "cancelled":
            if got["books"] or errors:
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled while pending but wrote "
                       f"{got['books']} book(s), {got['prices']} price(s), {len(errors)} "
                       f"error(s)")
            return
        if self.exhausted(j):
            self.note_exhausted(j)
            return
        if got["books"] != 1 or got["prices"] != c["prices"]:
            self.v(EXACTNESS, f"{j.kind} {j.id} ({state}): {got['books']} book(s) and "
                   f"{got['prices']} price(s), expected 1 and {c['prices']}")
        if c["bad_object"]:
            if state != "failed":
                self.v(INVARIANT, f"{j.kind} {j.id}: a file with a bad object ended {state}")
            self.expect_errors(j, [c["bad_object"]])
        else:
            if state != "succeeded":
                return self.unexpected_failure(j)
            self.no_errors(j)
            want = {"pricebooks": {"created": 1, "updated": 0},
                    "prices": {"created": c["prices"], "updated": 0}}
            if self.result(j) != want:
                self.v(EXACTNESS, f"{j.kind} {j.id}: result {self.result(j)}, expected {want}")

    # -- Promotions --

    def effects_promotions_code_generate(self, j):
        c, state = j.ctx, j.final["state"]
        got = self.codes.get(j.id, {"n": 0, "wrong": 0})
        n = got["n"]
        if got["wrong"]:
            self.v(INVARIANT, f"{j.kind} {j.id}: {got['wrong']} code(s) of another shape or "
                   f"promotion")
        res = self.result(j) or {}
        if state == "succeeded":
            if n != c["codes"] or res.get("generated") != c["codes"]:
                self.v(EXACTNESS, f"{j.kind} {j.id}: {n} codes in the database, result "
                       f"{res}, {c['codes']} requested")
        elif state == "cancelled":
            if n:
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled but {n} of its codes remain "
                       f"(result {res})")
            if res and res.get("deleted") != res.get("generated"):
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled with result {res}")
        elif self.exhausted(j):
            self.note_exhausted(j)
            if n > c["codes"]:
                self.v(EXACTNESS, f"{j.kind} {j.id}: {n} codes, more than {c['codes']} asked")
        else:
            self.unexpected_failure(j)

    def effects_promotions_code_export(self, j):
        c, state = j.ctx, j.final["state"]
        if state != "succeeded":
            if self.exhausted(j):
                self.note_exhausted(j)
            elif state == "failed":
                self.unexpected_failure(j)
            return
        run = self.run
        token = run.tokens[j.tenant]
        status, doc = run.call("GET", f"/v2/promotions/{c['promotion']}/jobs/{j.id}/file",
                               token=token)
        if status != 200:
            self.v(INVARIANT, f"{j.kind} {j.id}: file link answered {status}: {doc}")
            return
        href = doc["href"]
        path = href[href.index("/", len("http://")):]
        status, text = run.call("GET", path)
        if status != 200:
            self.v(INVARIANT, f"{j.kind} {j.id}: download answered {status}")
            return
        if isinstance(text, (bytes, bytearray)):
            text = text.decode()
        lines = list(csv.reader(io.StringIO(text)))
        codes = [row[0] for row in lines[1:] if row]
        if len(codes) != len(set(codes)):
            self.v(INVARIANT, f"{j.kind} {j.id}: a code twice in the export file")
        res = self.result(j) or {}
        if res.get("exported") != len(codes):
            self.v(EXACTNESS, f"{j.kind} {j.id}: result {res}, the file has {len(codes)} codes")
        # A promotion has one unfinished job at most: the jobs created before the export had
        # ended when it was created, those after were created once it had ended. So the file
        # holds exactly the codes that the earlier jobs left.
        want = self.exports.get(j.id, {"n": 0, "digest": None})
        if want["n"] != len(codes) or (codes and want["digest"] != digest(codes)):
            self.v(INVARIANT, f"{j.kind} {j.id}: the file has {len(codes)} codes, the earlier "
                   f"jobs left {want['n']}" + ("" if want["n"] != len(codes) else
                                               " (other codes)"))

    # -- Zuora --

    def zuora_processed(self, j):
        api = j.ctx.get("api") or {}
        if api.get("recordsProcessed") != j.ctx["rows"]:
            self.v(EXACTNESS, f"{j.kind} {j.id}: recordsProcessed {api.get('recordsProcessed')},"
                   f" the file has {j.ctx['rows']} rows")

    def effects_zuora_create(self, j):
        c, state = j.ctx, j.final["state"]
        # A create whose records a delete job took was measured when the delete was sent.
        got = c.get("snapshot") or self.zuora.get((j.tenant, c["object"], c["tag"]),
                                                  {"n": 0, "keys": 0, "digest": None})
        errors = self.errors[j.id]
        if state == "cancelled":
            if got["n"] or errors:
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled before it ran but {got['n']} "
                       f"record(s) and {len(errors)} error(s) exist")
            return
        if self.exhausted(j):
            self.note_exhausted(j)
            return
        if state != "succeeded":
            return self.unexpected_failure(j)
        self.zuora_processed(j)
        if got["n"] != got["keys"]:
            self.v(EXACTNESS, f"{j.kind} {j.id}: {got['n'] - got['keys']} row(s) written twice "
                   f"as records ({got['n']} records of {got['keys']} distinct rows; "
                   f"{c['object']})")
        if got["n"] != c["rows"] - len(errors):
            self.v(EXACTNESS, f"{j.kind} {j.id}: {got['n']} records, but {c['rows']} rows - "
                   f"{len(errors)} reported errors = {c['rows'] - len(errors)}")
        if got["keys"] != len(c["good_keys"]) or got["digest"] != digest(c["good_keys"]):
            self.v(EXACTNESS, f"{j.kind} {j.id}: records of {got['keys']} distinct rows, the "
                   f"file has {len(c['good_keys'])} good rows")
        self.expect_errors(j, c["bad_rows"])

    def effects_zuora_update(self, j):
        c, state = j.ctx, j.final["state"]
        got = self.updated.get(c["tag"], {})
        errors = self.errors[j.id]
        if state == "cancelled":
            if got or errors:
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled before it ran but {len(got)} "
                       f"record(s) updated, {len(errors)} error(s)")
            return
        if self.exhausted(j):
            self.note_exhausted(j)
            return
        if state != "succeeded":
            return self.unexpected_failure(j)
        self.zuora_processed(j)
        if got != c["updates"]:
            wrong = sum(1 for rid, n in got.items() if c["updates"].get(rid) != n)
            self.v(EXACTNESS, f"{j.kind} {j.id}: {len(got)} records updated ({wrong} not as the "
                   f"file says), expected {len(c['updates'])}")
        self.expect_errors(j, c["bad_rows"])

    def effects_zuora_delete(self, j):
        c, state = j.ctx, j.final["state"]
        left = self.zuora.get((j.tenant, c["object"], c["source"]), {"n": 0})["n"]
        if state == "cancelled":
            if left != c["matching"]:
                self.v(INVARIANT, f"{j.kind} {j.id}: cancelled before it ran, but "
                       f"{c['matching'] - left} of {c['matching']} records are gone")
            return
        if self.exhausted(j):
            self.note_exhausted(j)
            return
        if state != "succeeded":
            return self.unexpected_failure(j)
        if left:
            self.v(EXACTNESS, f"{j.kind} {j.id}: completed, but {left} of the {c['matching']} "
                   f"matching records are still there")
        api = j.ctx.get("api") or {}
        if api.get("recordsProcessed") != c["matching"]:
            self.v(EXACTNESS, f"{j.kind} {j.id}: recordsProcessed {api.get('recordsProcessed')}, "
                   f"{c['matching']} records matched")
        self.no_errors(j)


# ---- inputs ----------------------------------------------------------------------------

ZUORA_DEFINITIONS = {"definitions": {
    "chaos_item": {
        "object": "chaos_item", "label": "Chaos item", "type": "object",
        "properties": {
            "key__c": {"type": "string", "label": "Key", "maxLength": 64},
            "n__c": {"type": "integer", "label": "N"},
            "job__c": {"type": "string", "label": "Job", "maxLength": 64},
            "upd__c": {"type": "string", "label": "Updated by", "maxLength": 64}},
        "required": ["key__c"], "filterable": ["key__c", "job__c"], "unique": ["key__c"],
        "enableCreateRecordAuditing": False, "enableDeleteRecordAuditing": False},
    # No unique field: a row written twice shows as two records.
    "chaos_log": {
        "object": "chaos_log", "label": "Chaos log", "type": "object",
        "properties": {
            "row__c": {"type": "integer", "label": "Row"},
            "n__c": {"type": "integer", "label": "N"},
            "job__c": {"type": "string", "label": "Job", "maxLength": 64}},
        "required": ["row__c"], "filterable": ["job__c"],
        "enableCreateRecordAuditing": False, "enableDeleteRecordAuditing": False},
}}


def multipart(fields, files):
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                  f"{v}\r\n".encode())
    for name, filename, ctype, data in files:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                  f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def product_csv(rng, tag, n, with_bad):
    """A product import file of n rows: fresh products (external_ref, sku and slug
    `<tag>-<i>`), a few rows updating a product of an earlier row (a new name), and with_bad:
    rows with exactly one problem each. Rows are numbered by file line (header = 1)."""
    lines = ["name,description,slug,status,commodity_type,sku,external_ref"]
    good = {}
    bad_rows = []
    updates = 0
    for i in range(n):
        row = len(lines) + 1
        roll = rng.random()
        if with_bad and roll < 0.03:
            ref = f"{tag}-bad{i}"
            kind = rng.randrange(3)
            if kind == 0:
                lines.append(f"Bad {ref},d,{ref},live,banana,{ref},{ref}")
            elif kind == 1:
                lines.append(f"Bad {ref},d,{ref}")  # too few fields
            else:
                lines.append(f",d,{ref},live,physical,{ref},{ref}")  # no name
            bad_rows.append(row)
        elif good and roll > 0.98:
            ref = rng.choice(sorted(good))
            name = f"P {ref} v{row}"
            lines.append(f"{name},updated,{ref},live,physical,{ref},{ref}")
            good[ref] = name
            updates += 1
        else:
            ref = f"{tag}-{i}"
            name = f"P {ref}"
            lines.append(f"{name},d,{ref},live,physical,{ref},{ref}")
            good[ref] = name
    return ("\n".join(lines) + "\n").encode(), dict(good=good, bad_rows=bad_rows,
                                                    updates=updates)


def price_file(tag, n, bad):
    """A price import file: one new price book and n prices in it; when bad, a last price for
    a book that does not exist, which fails the job after the others are written."""
    book = f"{tag}-book"
    objs = [{"data": {"type": "pricebook",
                      "attributes": {"name": f"Book {tag}", "external_ref": book}}}]
    for i in range(n):
        objs.append({"data": {"type": "product-price", "pricebook_external_ref": book,
                              "attributes": {"sku": f"{tag}-s{i}", "external_ref": f"{tag}-p{i}",
                                             "currencies": {"USD": {"amount": 100 + i,
                                                                    "includes_tax": False}}}}})
    bad_object = None
    if bad:
        objs.append({"data": {"type": "product-price", "pricebook_external_ref": f"{tag}-nope",
                              "attributes": {"sku": f"{tag}-sx", "currencies": {
                                  "USD": {"amount": 1, "includes_tax": False}}}}})
        bad_object = len(objs)
    body = "\n".join(json.dumps(o) for o in objs) + "\n"
    return body.encode(), dict(book=book, prices=n, bad_object=bad_object)


def zuora_create_csv(rng, tag, obj, n):
    """A create file of n rows (row 1 is the header, data from row 2), some of them bad with
    exactly one problem each."""
    good_keys, bad_rows = [], []
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if obj == "chaos_item":
        w.writerow(["key__c", "n__c", "job__c"])
        for i in range(n):
            row = i + 2
            roll = rng.random()
            if roll < 0.01:
                w.writerow([f"{tag}-{i}", "abc", tag])  # not an integer
                bad_rows.append(row)
            elif roll < 0.02:
                w.writerow(["", i, tag])  # the required key missing
                bad_rows.append(row)
            elif roll < 0.03 and good_keys:
                w.writerow([rng.choice(good_keys), i, tag])  # a unique value again
                bad_rows.append(row)
            else:
                key = f"{tag}-{i}"
                w.writerow([key, i, tag])
                good_keys.append(key)
    else:
        w.writerow(["row__c", "n__c", "job__c"])
        for i in range(n):
            row = i + 2
            if rng.random() < 0.02:
                w.writerow(["x", i, tag])  # not an integer
                bad_rows.append(row)
            else:
                w.writerow([row, i, tag])
                good_keys.append(str(row))
    return out.getvalue().encode(), dict(rows=n, good_keys=good_keys, bad_rows=bad_rows)


def zuora_update_csv(rng, tag, ids):
    """An update file over (most of) the records `ids`, plus bad rows: an id that is not a
    UUID, an unknown id, a value of the wrong type."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["Id", "n__c", "upd__c"])
    updates, bad_rows = {}, []
    row = 1
    for k, rid in enumerate(ids):
        if rng.random() < 0.1:
            continue
        row += 1
        roll = rng.random()
        if roll < 0.01:
            w.writerow(["nope", 1, tag])
            bad_rows.append(row)
        elif roll < 0.02:
            w.writerow([str(uuid.uuid4()), 1, tag])
            bad_rows.append(row)
        elif roll < 0.03:
            w.writerow([rid, "abc", tag])
            bad_rows.append(row)
        else:
            w.writerow([rid, 100000 + k, tag])
            updates[rid] = 100000 + k
    return out.getvalue().encode(), dict(rows=row - 1, updates=updates, bad_rows=bad_rows)


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    for profile in ("release", "debug"):
        path = os.path.join(target, profile, "jobline")
        if os.path.exists(path):
            return path
    return os.path.join(target, "debug", "jobline")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=None,
                   help="the jobline binary (default: target/release/jobline if present, else "
                        "target/debug/jobline; CARGO_TARGET_DIR is honoured)")
    p.add_argument("--duration", type=float, default=None,
                   help="wall time target in seconds, drain included (default 90; 600 with "
                        "--long); the load and kills take the first 72%% of it (85%% with --long)")
    p.add_argument("--long", action="store_true", help="the long preset: ten minutes, bigger "
                   "inputs")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    p.add_argument("--known-failures", action="store_true",
                   help="report violations of the exactness checks (duplicated effects or "
                        "errors, counts changed by a rerun) without failing the run")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--workers", type=int, default=4, help="--workers of each node")
    p.add_argument("--lease-secs", type=int, default=3)
    p.add_argument("--heartbeat-ms", type=int, default=500)
    p.add_argument("--drain-slack", type=float, default=10.0,
                   help="seconds past --duration the drain may wait for the last jobs")
    p.add_argument("--overlap-tolerance-ms", type=int, default=250,
                   help="clock skew allowed between one job's completion and the next claim "
                        "of its queue on another node")
    p.add_argument("--no-kill", action="store_true", help="no kills (a baseline run)")
    p.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for every `jobline serve` (repeatable), e.g. "
                        "--serve-arg=--queue-concurrency=2 to see the one-at-a-time checks fail")
    p.add_argument("--keep", action="store_true",
                   help="keep the database and the node logs (printed at the end)")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=5432)
    p.add_argument("--pg-user", default="postgres")
    args = p.parse_args(argv)
    if args.binary is None:
        args.binary = default_binary()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 30)
    return args


def main(argv):
    args = parse_args(argv)
    if not os.access(args.binary, os.X_OK):
        print(f"chaos: no jobline binary at {args.binary} (build it, or pass --binary)",
              file=sys.stderr)
        return 2
    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # A CI timeout's SIGTERM still kills the nodes and drops the database (the finally below).
    signal.signal(signal.SIGTERM, stop)
    run = Run(args)
    log(f"seed {args.seed} (rerun the same choices with --seed {args.seed})")
    code = 2
    try:
        code = run.main()
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    except Exception:
        traceback.print_exc()
        for n in run.nodes:
            try:
                with open(n.log_path, errors="replace") as f:
                    tail = f.read()[-2000:]
                print(f"--- node #{n.idx} log tail ---\n{tail}")
            except OSError:
                pass
        code = 2
        run.keep_logs = True
        log(f"node logs kept in {run.workdir}")
    finally:
        run.stop_load.set()
        run.stop_watch.set()
        run.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
