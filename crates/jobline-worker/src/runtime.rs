//! The claim loop, leases, cancellation delivery and shutdown. Knows no dialect and no concrete
//! job kind: handlers come from the [`Registry`], and each sees only its [`JobContext`].
//!
//! How a cancel reaches a running job:
//! - same process: the store publishes `CancelRequested` on commit and the runtime trips the
//!   job's token at once;
//! - another process on PostgreSQL: the same event arrives through LISTEN/NOTIFY;
//! - durably, whatever happened to events: the next heartbeat returns the job's state, and a
//!   `cancelling` state trips the token.
//!
//! A handler that does not stop within `cancel_deadline` is abandoned (its task is left to end
//! on its own, never aborted mid-write) and the job is finalised `cancelled`; the store's fence
//! rejects anything the abandoned handler writes afterwards.

use crate::breakpoints::Breakpoints;
use crate::context::{JobContext, UndoContext};
use crate::error::JobError;
use crate::handler::{JobHandler, Registry};
use jobline_core::{Job, JobId, JobState};
use jobline_store::{ClaimRequest, ClaimedJob, Store, StoreError, StoreEvent};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// Tuning of one runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Jobs this process runs at once.
    pub slots: usize,
    /// How long a claim stays valid without a heartbeat.
    pub lease: Duration,
    /// How often leases are renewed (and cancels read from the database); a third of the lease
    /// by default, so two heartbeats may be lost before a lease expires.
    pub heartbeat: Duration,
    /// How often to look for work when no wake-up event arrives.
    pub poll_interval: Duration,
    /// How long a cancelled handler has to stop before the job is finalised without it.
    pub cancel_deadline: Duration,
    /// How long running jobs have to reach a checkpoint on shutdown before they are released.
    pub shutdown_grace: Duration,
    /// Running jobs per queue for queues without their own setting.
    pub default_concurrency: u32,
    /// Delay before a job that failed with a retryable error runs again.
    pub retry_delay: Duration,
    /// Jobs claimed ahead into the local queue, beyond the free slots (0: claim only for free
    /// slots). Prefetched jobs hold leases like running ones, so a slot that frees up starts
    /// the next job without a round trip to the database; a cancel reaches them at once (they
    /// never start), and a killed worker's prefetched jobs come back within one lease. They
    /// count against their queue's concurrency, and a claimed job is `running` to clients:
    /// leave it at 0 where "only pending jobs cancel" matters more than throughput.
    pub prefetch: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            slots: 4,
            lease: Duration::from_secs(10),
            heartbeat: Duration::from_millis(3333),
            poll_interval: Duration::from_secs(1),
            cancel_deadline: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            default_concurrency: 1,
            retry_delay: Duration::from_secs(5),
            prefetch: 0,
        }
    }
}

/// Why a job's token was tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    CancelRequested,
    LeaseLost,
    Shutdown,
}

#[derive(Debug)]
struct Running {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
    since: Instant,
}

/// A worker runtime. Clone it freely: clones share the same slots and jobs.
#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    registry: Registry,
    config: RuntimeConfig,
    owner: String,
    running: Mutex<HashMap<JobId, Running>>,
    /// Claimed jobs that have not started yet (see [`RuntimeConfig::prefetch`]), each with
    /// when it was claimed.
    local: Mutex<VecDeque<(ClaimedJob, Instant)>>,
    wake: Notify,
    breakpoints: Breakpoints,
    root: CancellationToken,
    /// Feeds successes to the `run` loop, which records them with its next claim (see
    /// [`Runtime::complete`]); unset outside `run`.
    completer: OnceLock<mpsc::UnboundedSender<Completion>>,
}

/// A successful run waiting to be recorded, and where to report how that went.
type Completion =
    (Arc<ClaimedJob>, Option<serde_json::Value>, oneshot::Sender<Result<Job, StoreError>>);

/// Most completions recorded in one transaction.
const COMPLETION_BATCH: usize = 64;

impl Runtime {
    /// A runtime that runs `registry`'s kinds from `store`. Its worker id is unique per process
    /// start, so a restarted process never mistakes an old lease for its own.
    pub fn new(store: Store, registry: Registry, config: RuntimeConfig) -> Self {
        let owner = format!(
            "{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap_or_default()
        );
        Self {
            inner: Arc::new(Inner {
                store,
                registry,
                config,
                owner,
                running: Mutex::default(),
                local: Mutex::default(),
                wake: Notify::new(),
                breakpoints: Breakpoints::default(),
                root: CancellationToken::new(),
                completer: OnceLock::new(),
            }),
        }
    }

    /// The pause points handlers of this runtime pass (for tests).
    pub fn breakpoints(&self) -> &Breakpoints {
        &self.inner.breakpoints
    }

    /// This runtime's worker id (the `lease_owner` of its jobs).
    pub fn worker_id(&self) -> &str {
        &self.inner.owner
    }

    /// How many jobs run right now.
    pub fn running_count(&self) -> usize {
        self.lock_running().len()
    }

    /// Runs until `shutdown` fires, then stops claiming, gives running jobs `shutdown_grace` to
    /// reach a checkpoint, and hands back to the queue those that have not finished.
    ///
    /// The loop is the worker's one round trip to the database: each turn records the jobs
    /// that finished since the last one and claims jobs for the free slots (plus the local
    /// queue) in one transaction ([`Store::settle`]), then starts what it can.
    pub async fn run(&self, shutdown: CancellationToken) {
        let inner = &self.inner;
        let slots = inner.config.slots;
        info!(worker = %inner.owner, slots, prefetch = inner.config.prefetch, kinds = ?inner.registry.kinds(), "worker runtime started");
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completion>();
        // Completions go to this loop from now on.
        let _ = inner.completer.set(done_tx);
        let mut tasks = JoinSet::new();
        let background = CancellationToken::new();
        tasks.spawn(self.clone().listen(background.clone()));
        tasks.spawn(self.clone().heartbeats(background.clone()));
        let mut jobs = JoinSet::new();
        let mut failures = 0u32;
        let mut done: Vec<Completion> = Vec::new();
        // Whether there may be work to claim: after a wake-up, a poll tick, or a full claim.
        let mut look = true;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while jobs.try_join_next().is_some() {}
            while done.len() < COMPLETION_BATCH {
                match done_rx.try_recv() {
                    Ok(c) => done.push(c),
                    Err(_) => break,
                }
            }
            let held = self.running_count() + self.local_count();
            // Finished jobs free places in their queues: claim with them in the same round trip.
            let want = if look || !done.is_empty() {
                (slots + inner.config.prefetch).saturating_sub(held)
            } else {
                0
            };
            let mut claimed_all = false;
            if !done.is_empty() || want > 0 {
                match self.settle(&mut done, want).await {
                    Ok(got) => {
                        failures = 0;
                        claimed_all = want > 0 && got == want;
                        look = claimed_all;
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        warn!(error = %e, "claim failed; backing off");
                        let backoff = inner.config.poll_interval * failures.min(10);
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            () = shutdown.cancelled() => break,
                        }
                        look = true;
                        continue;
                    }
                }
            }
            while self.running_count() < slots {
                let Some(next) = self.pop_local() else { break };
                jobs.spawn(self.clone().supervise(next));
            }
            if claimed_all || !done.is_empty() {
                continue; // there may be more: go round at once
            }
            tokio::select! {
                () = inner.wake.notified() => look = true,
                c = done_rx.recv() => done.extend(c),
                () = tokio::time::sleep(inner.config.poll_interval) => look = true,
                () = shutdown.cancelled() => break,
            }
        }
        info!(running = self.running_count(), "worker runtime stopping");
        for r in self.lock_running().values() {
            let _ = r.reason.set(StopReason::Shutdown);
        }
        inner.root.cancel();
        self.release_local().await;
        // Jobs that finish during the grace still report through the channel: keep recording
        // them until every job has ended.
        loop {
            tokio::select! {
                j = jobs.join_next() => {
                    if j.is_none() {
                        break;
                    }
                }
                c = done_rx.recv() => done.extend(c),
            }
            if !done.is_empty() {
                let _ = self.settle(&mut done, 0).await;
            }
        }
        while let Ok(c) = done_rx.try_recv() {
            done.push(c);
        }
        let _ = self.settle(&mut done, 0).await;
        background.cancel();
        while tasks.join_next().await.is_some() {}
        info!("worker runtime stopped");
    }

    /// One round trip: records `done` (answering each waiting supervisor) and claims up to
    /// `want` jobs into the local queue. Returns how many were claimed. If the transaction
    /// fails, each completion is recorded alone so each gets its own answer.
    async fn settle(&self, done: &mut Vec<Completion>, want: usize) -> Result<usize, StoreError> {
        let c = &self.inner.config;
        let request = ClaimRequest {
            owner: &self.inner.owner,
            limit: want,
            lease: c.lease,
            default_concurrency: c.default_concurrency,
        };
        let batch = std::mem::take(done);
        let items: Vec<_> = batch.iter().map(|(c, r, _)| (c.as_ref(), r.clone())).collect();
        match self.inner.store.settle(&items, request).await {
            Ok(settled) => {
                for ((_, _, reply), outcome) in batch.into_iter().zip(settled.completed) {
                    let _ = reply.send(outcome);
                }
                let got = settled.claimed.len();
                let now = Instant::now();
                self.lock_local().extend(settled.claimed.into_iter().map(|c| (c, now)));
                Ok(got)
            }
            Err(e) => {
                if !batch.is_empty() {
                    warn!(error = %e, "batched completion failed; recording one by one");
                }
                for (claimed, result, reply) in batch {
                    let _ = reply.send(self.inner.store.complete(&claimed, result).await);
                }
                Err(e)
            }
        }
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, VecDeque<(ClaimedJob, Instant)>> {
        self.inner.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn local_count(&self) -> usize {
        self.lock_local().len()
    }

    fn pop_local(&self) -> Option<ClaimedJob> {
        self.lock_local().pop_front().map(|(c, _)| c)
    }

    /// Takes a job out of the local queue, if it waits there.
    fn take_local(&self, id: JobId) -> Option<ClaimedJob> {
        let mut local = self.lock_local();
        let at = local.iter().position(|(c, _)| c.job().id == id)?;
        local.remove(at).map(|(c, _)| c)
    }

    /// Shutdown: the jobs that never started go back to their queue, attempt given back.
    async fn release_local(&self) {
        let waiting: Vec<ClaimedJob> = self.lock_local().drain(..).map(|(c, _)| c).collect();
        for claimed in waiting {
            match self.inner.store.release(&claimed).await {
                Ok(_) => debug!(job = %claimed.job().id, "released a prefetched job"),
                // A cancel arrived meanwhile: finish it as a cancel.
                Err(StoreError::Fenced) => self.cancel_unstarted(claimed).await,
                Err(e) => warn!(error = %e, "could not release a prefetched job"),
            }
        }
    }

    /// A job cancelled while it waited in the local queue: it never runs; its kind's undo
    /// (which finds nothing to undo) and `finish_cancel` end it `cancelled` at once.
    async fn cancel_unstarted(&self, claimed: ClaimedJob) {
        let claimed = Arc::new(claimed);
        match self.inner.registry.get(&claimed.job().kind) {
            Some(handler) => self.finish_cancel(&handler, &claimed).await,
            None => {
                let _ = self.inner.store.finish_cancel(&claimed, None).await;
            }
        }
    }

    /// Claims what is claimable now and runs it to the end (for tests and tools: no background
    /// heartbeats, so use it for jobs that finish within their lease). Returns how many ran.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let free = self.inner.config.slots.saturating_sub(self.running_count());
        let claimed = self.claim(free).await?;
        let n = claimed.len();
        let mut set = JoinSet::new();
        for c in claimed {
            set.spawn(self.clone().supervise(c));
        }
        while set.join_next().await.is_some() {}
        Ok(n)
    }

    /// Runs jobs until none is claimable.
    pub async fn run_until_idle(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    async fn claim(&self, free: usize) -> Result<Vec<ClaimedJob>, StoreError> {
        let c = &self.inner.config;
        self.inner.store.claim(&self.inner.owner, free, c.lease, c.default_concurrency).await
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Running>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Trips the token of a job this process runs, recording why (first reason wins). A job
    /// still in the local queue never starts: a cancelled one is finished as cancelled, one
    /// whose lease is lost is dropped.
    fn trip(&self, id: JobId, reason: StopReason) {
        if let Some(r) = self.lock_running().get(&id) {
            let _ = r.reason.set(reason);
            r.token.cancel();
            return;
        }
        let Some(claimed) = self.take_local(id) else { return };
        match reason {
            StopReason::CancelRequested => {
                let this = self.clone();
                tokio::spawn(async move { this.cancel_unstarted(claimed).await });
            }
            StopReason::LeaseLost | StopReason::Shutdown => {
                debug!(job = %id, ?reason, "dropped a prefetched job");
            }
        }
        self.inner.wake.notify_one();
    }

    /// Reacts to store events: cancels at once, wakes the claim loop on new work.
    async fn listen(self, stop: CancellationToken) {
        let mut rx = self.inner.store.subscribe();
        loop {
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                () = stop.cancelled() => return,
            };
            match ev {
                Ok(StoreEvent::CancelRequested(id)) => self.trip(id, StopReason::CancelRequested),
                Ok(StoreEvent::JobsAvailable) => self.inner.wake.notify_one(),
                // Missed events are only hints: wake up and re-read the durable state.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    self.inner.wake.notify_one();
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Renews leases, learns of cancels and lost jobs from the database, and rescues jobs of
    /// workers that died.
    async fn heartbeats(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.inner.config.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            self.heartbeat_once().await;
            self.adopt_cancelling().await;
            match self.inner.store.rescue_expired().await {
                Ok(r) if !r.is_empty() => self.inner.wake.notify_one(),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "rescue sweep failed"),
            }
        }
    }

    /// Finishes the cancels of workers that died mid-cancel: the kind's undo runs here, so a
    /// crash never leaves a cancelled job's effects behind.
    async fn adopt_cancelling(&self) {
        let c = &self.inner.config;
        let adopted = match self.inner.store.adopt_cancelling(&self.inner.owner, c.lease).await {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "could not adopt orphaned cancels");
                return;
            }
        };
        for claimed in adopted {
            let this = self.clone();
            let job = claimed.job();
            let span = tracing::info_span!("adopted cancel", job_id = %job.id, kind = %job.kind);
            tokio::spawn(
                async move {
                    let claimed = Arc::new(claimed);
                    match this.inner.registry.get(&claimed.job().kind) {
                        Some(handler) => this.finish_cancel(&handler, &claimed).await,
                        None => {
                            if let Err(e) = this.inner.store.finish_cancel(&claimed, None).await {
                                warn!(error = %e, "could not finish an adopted cancel");
                            }
                        }
                    }
                }
                .instrument(span),
            );
        }
    }

    async fn heartbeat_once(&self) {
        let started = Instant::now();
        let beats =
            match self.inner.store.heartbeat(&self.inner.owner, self.inner.config.lease).await {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "heartbeat failed");
                    return;
                }
            };
        let held: HashMap<JobId, JobState> = beats.into_iter().map(|(id, _, s)| (id, s)).collect();
        let mut trips = Vec::new();
        for (id, r) in self.lock_running().iter() {
            match held.get(id) {
                Some(JobState::Cancelling) => trips.push((*id, StopReason::CancelRequested)),
                Some(_) => {}
                // Claimed after the heartbeat read, or already finished: not lost.
                None if r.since >= started => {}
                None => trips.push((*id, StopReason::LeaseLost)),
            }
        }
        for (c, since) in self.lock_local().iter() {
            let id = c.job().id;
            match held.get(&id) {
                Some(JobState::Cancelling) => trips.push((id, StopReason::CancelRequested)),
                Some(_) => {}
                None if *since >= started => {}
                None => trips.push((id, StopReason::LeaseLost)),
            }
        }
        for (id, reason) in trips {
            debug!(job = %id, ?reason, "heartbeat stops job");
            self.trip(id, reason);
        }
    }

    /// Runs one claimed job to its end and records the outcome.
    async fn supervise(self, claimed: ClaimedJob) {
        let job = claimed.job();
        let span =
            tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempt);
        let id = job.id;
        async {
            let token = self.inner.root.child_token();
            let reason: Arc<OnceLock<StopReason>> = Arc::default();
            self.lock_running().insert(
                id,
                Running { token: token.clone(), reason: reason.clone(), since: Instant::now() },
            );
            if self.inner.root.is_cancelled() {
                let _ = reason.set(StopReason::Shutdown);
            }
            let claimed = Arc::new(claimed);
            self.run_claimed(&claimed, &token, &reason).await;
            self.lock_running().remove(&id);
            self.inner.wake.notify_one();
        }
        .instrument(span)
        .await;
    }

    async fn run_claimed(
        &self,
        claimed: &Arc<ClaimedJob>,
        token: &CancellationToken,
        reason: &OnceLock<StopReason>,
    ) {
        let store = &self.inner.store;
        let Some(handler) = self.inner.registry.get(&claimed.job().kind) else {
            let msg = format!("no handler for job kind {:?}", claimed.job().kind);
            warn!("{msg}");
            let _ = store.fail(claimed, &msg).await;
            return;
        };
        debug!("job started");
        let ctx = JobContext::new(
            claimed.clone(),
            store.clone(),
            token.clone(),
            self.inner.breakpoints.clone(),
        );
        let h = handler.clone();
        let started = Instant::now();
        let mut task = tokio::spawn(async move { h.run(ctx).await });

        let outcome = tokio::select! {
            r = &mut task => Some(r),
            () = token.cancelled() => None,
        };
        // When the token was tripped (the select wakes at once), for the cancel histogram.
        let mut tripped_at = None;
        let outcome = match outcome {
            Some(r) => Some(r),
            None => {
                tripped_at = Some(Instant::now());
                let stop = *reason.get().unwrap_or(&StopReason::Shutdown);
                let deadline = match stop {
                    StopReason::Shutdown => self.inner.config.shutdown_grace,
                    StopReason::CancelRequested => self.inner.config.cancel_deadline,
                    StopReason::LeaseLost => Duration::ZERO,
                };
                match tokio::time::timeout(deadline, &mut task).await {
                    Ok(r) => Some(r),
                    Err(_) => {
                        if stop != StopReason::LeaseLost {
                            warn!(?deadline, "handler did not stop in time; abandoning it (its writes are fenced)");
                        }
                        None
                    }
                }
            }
        };
        let stop = reason.get().copied();
        record_run(&claimed.job().kind, started, outcome.as_ref(), stop, tripped_at);
        if stop == Some(StopReason::LeaseLost) {
            info!("lease lost; the job is no longer ours");
            return;
        }
        match outcome {
            Some(Ok(Ok(result))) => match self.complete(claimed, result).await {
                Ok(job) => debug!(state = %job.state, "job finished"),
                Err(e) => warn!(error = %e, "could not record success"),
            },
            Some(Ok(Err(JobError::Cancelled))) | None => {
                if stop == Some(StopReason::Shutdown) {
                    match store.release(claimed).await {
                        Ok(_) => info!("released to the queue on shutdown"),
                        // A cancel arrived meanwhile: finish it as a cancel.
                        Err(StoreError::Fenced) => self.finish_cancel(&handler, claimed).await,
                        Err(e) => warn!(error = %e, "could not release job"),
                    }
                } else {
                    self.finish_cancel(&handler, claimed).await;
                }
            }
            Some(Ok(Err(JobError::Retryable(msg)))) => {
                match store.retry(claimed, &msg, self.inner.config.retry_delay).await {
                    Ok(job) => info!(state = %job.state, error = %msg, "retryable failure"),
                    Err(StoreError::Fenced) => self.finish_cancel(&handler, claimed).await,
                    Err(e) => warn!(error = %e, "could not record retry"),
                }
            }
            Some(Ok(Err(JobError::Fatal(msg)))) => {
                if let Err(e) = store.fail(claimed, &msg).await {
                    warn!(error = %e, "could not record failure");
                } else {
                    info!(error = %msg, "job failed");
                }
            }
            Some(Err(join)) => {
                let msg =
                    if join.is_panic() { "job handler panicked" } else { "job handler stopped" };
                warn!("{msg}");
                let _ = store.fail(claimed, msg).await;
            }
        }
    }

    /// Records a successful run. Completions that arrive while a commit is under way are
    /// recorded together in the next transaction (each still by its own conditional UPDATE),
    /// so a busy runtime pays far less than one commit per job, and an idle one waits for
    /// nothing: a lone completion is written at once.
    async fn complete(
        &self,
        claimed: &Arc<ClaimedJob>,
        result: Option<serde_json::Value>,
    ) -> Result<Job, StoreError> {
        // The handler is done: its slot is free for the next job while the success is
        // recorded (the claim loop counts running jobs to decide how many to claim).
        self.lock_running().remove(&claimed.job().id);
        // Under `run`, the loop records it with the next claim, in one transaction.
        if let Some(sender) = self.inner.completer.get() {
            let (reply, answer) = oneshot::channel();
            if sender.send((claimed.clone(), result.clone(), reply)).is_ok() {
                if let Ok(outcome) = answer.await {
                    return outcome;
                }
            }
        }
        // No loop (`run_once`), or it has stopped: record it directly.
        self.inner.store.complete(claimed, result).await
    }

    /// The handler stopped after a cancel: undo what the kind says, then `cancelled`. If the
    /// job is not `cancelling` (the handler gave up on its own), it is failed instead, so it
    /// can never stay `running` under a lease this runtime keeps renewing.
    async fn finish_cancel(&self, handler: &Arc<dyn JobHandler>, claimed: &Arc<ClaimedJob>) {
        let store = &self.inner.store;
        let ctx = UndoContext::new(claimed.clone(), store.clone(), self.inner.breakpoints.clone());
        let undo = handler.undo(ctx).await;
        let result = match undo {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "undo failed");
                None
            }
        };
        match store.finish_cancel(claimed, result).await {
            Ok(_) => info!("job cancelled"),
            Err(StoreError::Fenced) => {
                match store.fail(claimed, "handler stopped without a cancel request").await {
                    Ok(_) => warn!("handler stopped although the job was not cancelled"),
                    Err(StoreError::Fenced) => debug!("job already finished elsewhere"),
                    Err(e) => warn!(error = %e, "could not record failure"),
                }
            }
            Err(e) => warn!(error = %e, "could not record cancel"),
        }
    }
}

/// The runtime's figures for `/metrics`: how long the handler ran (by kind and outcome) and,
/// for a cancel, how long the handler took to stop after the runtime tripped its token (the
/// runtime learns of a cancel at once in-process or by NOTIFY, else at its next heartbeat).
/// Durations are tokio time, never the wall clock.
fn record_run(
    kind: &str,
    started: Instant,
    outcome: Option<&Result<Result<Option<serde_json::Value>, JobError>, tokio::task::JoinError>>,
    stop: Option<StopReason>,
    tripped_at: Option<Instant>,
) {
    let label = match (outcome, stop) {
        (_, Some(StopReason::LeaseLost)) => "lease_lost",
        (Some(Ok(Ok(_))), _) => "succeeded",
        (Some(Ok(Err(JobError::Cancelled))) | None, Some(StopReason::Shutdown)) => "released",
        (Some(Ok(Err(JobError::Cancelled))), _) => "cancelled",
        (None, _) => "abandoned",
        (Some(Ok(Err(JobError::Retryable(_)))), _) => "retryable",
        (Some(Ok(Err(JobError::Fatal(_)))), _) => "failed",
        (Some(Err(_)), _) => "panicked",
    };
    let labels = [("kind", kind.to_owned()), ("outcome", label.to_owned())];
    metrics::histogram!("jobline_job_run_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    if let (Some(StopReason::CancelRequested), Some(at)) = (stop, tripped_at) {
        let stopped = if outcome.is_some() { "stopped" } else { "abandoned" };
        let labels = [("kind", kind.to_owned()), ("outcome", stopped.to_owned())];
        metrics::histogram!("jobline_cancel_stop_seconds", &labels)
            .record(at.elapsed().as_secs_f64());
    }
}
