//! The job model and its state machine.
//!
//! One job table and one state machine serve every dialect (`shared/spec/DECISIONS.md`, "One
//! engine, three dialects"). The canonical states are listed in [`JobState`]; each dialect renders
//! them in its own words at the HTTP edge. Every legal move is an arrow in [`Action::apply`]; the
//! store builds the `WHERE state IN (…)` of each conditional update from [`Action::sources`], so
//! the SQL and this table cannot drift apart.

use crate::error::TransitionError;
use crate::ids::{JobId, QueueKey, TenantId};
use chrono::{DateTime, Utc};
use std::fmt;

/// The canonical job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Created, waiting for input such as an uploaded file (Zuora's `pending`).
    AwaitingInput,
    /// Queued, waiting for a worker.
    Pending,
    /// A worker holds the job's lease and runs it.
    Running,
    /// A cancel was requested while running; the worker stops at its next checkpoint.
    Cancelling,
    /// Finished successfully (terminal).
    Succeeded,
    /// Finished unsuccessfully (terminal).
    Failed,
    /// Cancelled (terminal).
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::AwaitingInput,
        JobState::Pending,
        JobState::Running,
        JobState::Cancelling,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::AwaitingInput => "awaiting_input",
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Cancelling => "cancelling",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    /// States in which a worker holds the job (and its queue slot).
    pub fn holds_lease(self) -> bool {
        matches!(self, JobState::Running | JobState::Cancelling)
    }

    fn cancel_bit(self) -> u8 {
        match self {
            JobState::AwaitingInput => 1,
            JobState::Pending => 2,
            JobState::Running => 4,
            _ => 0,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The states a kind's jobs may be cancelled from (DECISIONS.md: PXM `pending`; promotions
/// `pending` and `running`; Zuora `awaiting_input` and `pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelPolicy(u8);

impl CancelPolicy {
    /// Only queued jobs (PXM).
    pub const PENDING: CancelPolicy = CancelPolicy(2);
    /// Queued or running jobs; a running one goes through `cancelling` (promotions, engine kinds).
    pub const PENDING_OR_RUNNING: CancelPolicy = CancelPolicy(2 | 4);
    /// Jobs waiting for input or queued (Zuora).
    pub const AWAITING_OR_PENDING: CancelPolicy = CancelPolicy(1 | 2);

    /// The union of every policy: the states any kind may be cancelled from. The store builds
    /// its cancel statement over these and lets each job's stored mask decide.
    pub const ANY: CancelPolicy = CancelPolicy(1 | 2 | 4);

    /// The policy that allows a cancel from `state` alone (empty where no policy may).
    pub fn only(state: JobState) -> Self {
        CancelPolicy(state.cancel_bit())
    }

    /// Whether a cancel is accepted from `state`.
    pub fn allows(self, state: JobState) -> bool {
        self.0 & state.cancel_bit() != 0
    }

    /// The bit mask stored with each job, so one conditional UPDATE can apply the kind's rule.
    pub fn mask(self) -> i64 {
        i64::from(self.0)
    }

    /// Rebuilds a policy from a stored mask (unknown bits are dropped).
    pub fn from_mask(mask: i64) -> Self {
        CancelPolicy((mask & 7) as u8)
    }
}

/// What a job kind declares about itself. The handler that runs it lives in the worker crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSpec {
    /// The stored kind name, e.g. `pxm/product-import`.
    pub name: &'static str,
    /// States a cancel is accepted from.
    pub cancel: CancelPolicy,
    /// How many times a job is claimed before a crash makes it `failed`.
    pub max_attempts: u32,
}

/// Every move a job can make. Each is applied by one conditional statement in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The input arrived (an upload): `awaiting_input → pending`.
    Submit,
    /// A worker takes the job: `pending → running`.
    Claim,
    /// The handler finished: `running | cancelling → succeeded` (the truth wins over a late cancel).
    Succeed,
    /// The handler failed for good: `running | cancelling → failed`.
    Fail,
    /// The handler failed but may try again: `running → pending`.
    Retry,
    /// Graceful shutdown hands the job back: `running → pending`.
    Release,
    /// A client asks to cancel: queued → `cancelled`, running → `cancelling`, as the policy allows.
    RequestCancel,
    /// A client asks to cancel a queued job that an earlier attempt already left effects of
    /// (its checkpoint is past zero: it crashed or was released mid-way), of a kind whose
    /// cancel reaches running work (its policy allows `running`, so it has an undo):
    /// `pending → cancelling`, so that a worker adopts it and the kind's undo runs whichever
    /// attempt made the effects. The store picks this over `RequestCancel` by the job's
    /// checkpoint and policy, in the same statement.
    CancelWithEffects,
    /// The handler stopped (or its deadline passed): `cancelling → cancelled`.
    FinishCancel,
    /// The lease expired with attempts left: `running → pending`, `cancelling → cancelled`.
    Rescue,
    /// The lease expired with no attempts left: `running → failed`.
    Exhaust,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 11] = [
        Action::Submit,
        Action::Claim,
        Action::Succeed,
        Action::Fail,
        Action::Retry,
        Action::Release,
        Action::RequestCancel,
        Action::CancelWithEffects,
        Action::FinishCancel,
        Action::Rescue,
        Action::Exhaust,
    ];

    /// The state this action leads to from `from`, under the kind's cancel `policy`.
    pub fn apply(self, from: JobState, policy: CancelPolicy) -> Result<JobState, TransitionError> {
        use JobState::*;
        let to = match (self, from) {
            (Action::Submit, AwaitingInput) => Pending,
            (Action::Claim, Pending) => Running,
            (Action::Succeed, Running | Cancelling) => Succeeded,
            (Action::Fail, Running | Cancelling) => Failed,
            (Action::Retry | Action::Release, Running) => Pending,
            (Action::RequestCancel, AwaitingInput | Pending) if policy.allows(from) => Cancelled,
            (Action::RequestCancel, Running) if policy.allows(from) => Cancelling,
            (Action::RequestCancel, state) => {
                return Err(TransitionError::NotCancellable { state });
            }
            (Action::CancelWithEffects, Pending) if policy.allows(Running) => Cancelling,
            (Action::CancelWithEffects, state) => {
                return Err(TransitionError::NotCancellable { state });
            }
            (Action::FinishCancel, Cancelling) => Cancelled,
            (Action::Rescue, Running) => Pending,
            (Action::Rescue, Cancelling) => Cancelled,
            (Action::Exhaust, Running) => Failed,
            (action, state) => return Err(TransitionError::NotAllowed { state, action }),
        };
        Ok(to)
    }

    /// The states this action may start from: the `IN (…)` list of its conditional UPDATE.
    pub fn sources(self, policy: CancelPolicy) -> Vec<JobState> {
        JobState::ALL.into_iter().filter(|s| self.apply(*s, policy).is_ok()).collect()
    }
}

/// Work done so far, as the handler reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Units finished.
    pub done: u64,
    /// Units in all, once known.
    pub total: Option<u64>,
}

/// How far a job got for good: the units of its input done by committed batches, and what its
/// kind needs to go on from there (its counts so far). A retried, released or adopted job
/// starts from its checkpoint, not from the beginning; a new job has [`Checkpoint::default`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checkpoint {
    /// Units of input done (rows read, codes made).
    pub position: u64,
    /// The kind's own state at that position (`Null` before the first batch).
    pub state: serde_json::Value,
}

/// One error a job recorded (a bad CSV row, a failed record).
#[derive(Debug, Clone, PartialEq)]
pub struct JobErrorEntry {
    /// The input row it concerns, numbered as the dialect numbers rows.
    pub row: Option<i64>,
    /// A dialect error code (Zuora's 8-digit codes).
    pub code: Option<i64>,
    /// The message, as shown to the client.
    pub message: String,
    /// The offending record, when there is one.
    pub record: Option<serde_json::Value>,
}

impl JobErrorEntry {
    /// An error with just a message.
    pub fn message(message: impl Into<String>) -> Self {
        Self { row: None, code: None, message: message.into(), record: None }
    }
}

/// A role of an API client. Admin roles reach the job endpoints of the vendor dialects; the
/// operator role reaches only the native operator API (`/v1`), across every tenant; others get
/// 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// May create, read and cancel jobs of its own tenant.
    Admin,
    /// Authenticated, but with no access to jobs (EP's "Support" role and the like).
    Support,
    /// Runs the service: reads and cancels the jobs of every tenant through `/v1`. Not a
    /// store admin in the vendor dialects, which refuse it with 403.
    Operator,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Operator => "operator",
        }
    }

    /// Parses a role name as typed on the command line.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "support" => Some(Role::Support),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The tenant it belongs to; other tenants never see it.
    pub tenant: TenantId,
    /// The kind name (see [`KindSpec::name`]).
    pub kind: String,
    /// The queue it waits in.
    pub queue: QueueKey,
    /// The resource it acts on (a promotion, a hierarchy, an object), for per-subject rules.
    pub subject: Option<String>,
    /// Current state.
    pub state: JobState,
    /// How many times it has been claimed; with the id, the fencing token of a worker's writes.
    pub attempt: u32,
    /// Claims allowed before a crash fails it.
    pub max_attempts: u32,
    /// States a cancel is accepted from.
    pub cancel: CancelPolicy,
    /// The kind's input parameters.
    pub payload: serde_json::Value,
    /// What the handler reported on completion (or on cancel, what was undone).
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// Progress counters.
    pub progress: Progress,
    /// Where a new attempt resumes (see [`Checkpoint`]).
    pub checkpoint: Checkpoint,
    /// The request id of the request that created it.
    pub x_request_id: Option<String>,
    /// The client that created it.
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When a worker first started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state after running (null for a job cancelled while queued).
    pub completed_at: Option<DateTime<Utc>>,
}

/// The initial state of a new job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    /// Queued at once.
    Pending,
    /// Waits for an upload first.
    AwaitingInput,
}

/// A job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Its id, chosen by the caller so a batch can be referred to before it is stored.
    pub id: JobId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// What kind of job.
    pub kind: KindSpec,
    /// Which queue it waits in.
    pub queue: QueueKey,
    /// The resource it acts on, if any.
    pub subject: Option<String>,
    /// The kind's input.
    pub payload: serde_json::Value,
    /// Where it starts.
    pub initial: InitialState,
    /// Request id to record.
    pub x_request_id: Option<String>,
    /// Creating client.
    pub created_by: Option<String>,
}

impl NewJob {
    /// A queued job of `kind` in `queue` with `payload`.
    pub fn new(
        tenant: TenantId,
        kind: KindSpec,
        queue: QueueKey,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: JobId::new(),
            tenant,
            kind,
            queue,
            subject: None,
            payload,
            initial: InitialState::Pending,
            x_request_id: None,
            created_by: None,
        }
    }

    /// Starts the job in `awaiting_input` instead of `pending`.
    pub fn awaiting_input(mut self) -> Self {
        self.initial = InitialState::AwaitingInput;
        self
    }

    /// Records the resource the job acts on.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Records the creating request's id and client.
    pub fn with_origin(mut self, x_request_id: Option<String>, created_by: Option<String>) -> Self {
        self.x_request_id = x_request_id;
        self.created_by = created_by;
        self
    }
}

impl InitialState {
    /// The canonical state it corresponds to.
    pub fn state(self) -> JobState {
        match self {
            InitialState::Pending => JobState::Pending,
            InitialState::AwaitingInput => JobState::AwaitingInput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    /// One helper for every case, so the tests pin behaviour, not the API (STYLE.md §8.3).
    fn check(policy: CancelPolicy, from: JobState, action: Action, expect: Option<JobState>) {
        let got = action.apply(from, policy).ok();
        assert_eq!(got, expect, "{action:?} from {from} under {policy:?}");
    }

    /// The whole table: every state × every action, for each cancel policy.
    #[test]
    fn every_state_and_action_pair_follows_the_table() {
        let policies = [
            CancelPolicy::PENDING,
            CancelPolicy::PENDING_OR_RUNNING,
            CancelPolicy::AWAITING_OR_PENDING,
        ];
        for policy in policies {
            for from in JobState::ALL {
                for action in Action::ALL {
                    let expect = match (action, from) {
                        (Action::Submit, AwaitingInput) => Some(Pending),
                        (Action::Claim, Pending) => Some(Running),
                        (Action::Succeed, Running | Cancelling) => Some(Succeeded),
                        (Action::Fail, Running | Cancelling) => Some(Failed),
                        (Action::Retry, Running) => Some(Pending),
                        (Action::Release, Running) => Some(Pending),
                        (Action::RequestCancel, AwaitingInput)
                            if policy == CancelPolicy::AWAITING_OR_PENDING =>
                        {
                            Some(Cancelled)
                        }
                        (Action::RequestCancel, Pending) => Some(Cancelled),
                        (Action::RequestCancel, Running)
                            if policy == CancelPolicy::PENDING_OR_RUNNING =>
                        {
                            Some(Cancelling)
                        }
                        (Action::CancelWithEffects, Pending)
                            if policy == CancelPolicy::PENDING_OR_RUNNING =>
                        {
                            Some(Cancelling)
                        }
                        (Action::FinishCancel, Cancelling) => Some(Cancelled),
                        (Action::Rescue, Running) => Some(Pending),
                        (Action::Rescue, Cancelling) => Some(Cancelled),
                        (Action::Exhaust, Running) => Some(Failed),
                        _ => None,
                    };
                    check(policy, from, action, expect);
                }
            }
        }
    }

    #[test]
    fn terminal_states_accept_no_action() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for action in Action::ALL {
                check(CancelPolicy::PENDING_OR_RUNNING, from, action, None);
            }
        }
    }

    #[test]
    fn refused_cancel_names_the_current_state() {
        let err = Action::RequestCancel.apply(Running, CancelPolicy::PENDING).unwrap_err();
        assert_eq!(err, TransitionError::NotCancellable { state: Running });
        assert_eq!(err.to_string(), "a job in state running cannot be cancelled");
        let err = Action::RequestCancel.apply(Cancelled, CancelPolicy::PENDING_OR_RUNNING);
        assert_eq!(err, Err(TransitionError::NotCancellable { state: Cancelled }));
    }

    #[test]
    fn sources_are_the_where_clause_of_each_action() {
        let p = CancelPolicy::PENDING_OR_RUNNING;
        assert_eq!(Action::Succeed.sources(p), vec![Running, Cancelling]);
        assert_eq!(Action::RequestCancel.sources(p), vec![Pending, Running]);
        assert_eq!(
            Action::RequestCancel.sources(CancelPolicy::AWAITING_OR_PENDING),
            vec![AwaitingInput, Pending]
        );
        assert_eq!(Action::Rescue.sources(p), vec![Running, Cancelling]);
    }

    #[test]
    fn states_and_policies_round_trip_through_storage() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("processing"), None);
        for p in [CancelPolicy::PENDING, CancelPolicy::PENDING_OR_RUNNING] {
            assert_eq!(CancelPolicy::from_mask(p.mask()), p);
        }
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        for role in [Role::Admin, Role::Support, Role::Operator] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
