//! The journal (DESIGN section 6): where the migration stands, kept so that
//! a run stopped by a crash, a halt or an operator can be resumed.
//!
//! The engine records a step's status and, for each action, its intent
//! before `apply` and its outcome after `verify`. The journal is a record
//! of intent, not the truth: `step --resume` re-observes the world and
//! never trusts the journal alone (DESIGN section 2). What it does decide
//! is whether a run may start at all: another run holds the lock, the plan
//! changed since it was written (the hash excludes `policy`), or a step was
//! left running and needs `--resume`.
//!
//! - `model`: the document and its pure transitions ([`Journal`]).
//! - `file`: the `file` backend: lock file, atomic writes, reading
//!   without a lock.
//! - `kubernetes`: the `kubernetes` backend: the document in a ConfigMap,
//!   a Lease as the lock, renewed in the background; writes conditional
//!   on `resourceVersion`.
//! - `lease`: the pure decision of whether a runner may take the Lease.
//!
//! [`JournalStore`] picks the backend from the plan; [`LockedJournal`] is
//! the one way to change a journal, whatever the backend: every change is
//! persisted before its call returns. Time comes from a [`Clock`] so that
//! tests can fix it.

mod file;
mod kubernetes;
pub mod lease;
mod model;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use file::{lock_path, parse, read, render, write_atomic};
pub use kubernetes::{JOURNAL_KEY, KubeNames};
pub use model::{
    ActionRecord, ActionStatus, InterruptedStep, Journal, SCHEMA_VERSION, StepRecord, StepStatus,
    Timestamp, step_of,
};

use crate::k8s::{Cluster, K8sError};
use crate::plan::{StateBackend, ValidatedPlan};
use crate::steps::StepName;
use file::FileLock;
use kubernetes::KubeLock;

/// Why the journal could not be read, locked or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process (or handle) holds the lock.
    #[error(
        "failed to lock the journal of plan {plan}: {lock} is held by {holder_text}; another zkmigrate step or rollback is running on this plan",
        lock = lock_path.display(),
        holder_text = match holder { Some(pid) => format!("process {pid}"), None => "another process".to_string() },
    )]
    Locked {
        /// The lock file.
        lock_path: PathBuf,
        /// The plan's name.
        plan: String,
        /// The pid written in the lock file by the holder, if readable.
        holder: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    #[error("failed to lock {}", lock_path.display())]
    Lock {
        /// The lock file.
        lock_path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The journal file could not be read.
    #[error("failed to read journal {}", path.display())]
    Read {
        /// The journal file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The journal is not a journal of this schema.
    #[error("failed to read journal {}: it is not valid: {reason}", path.display())]
    Malformed {
        /// The journal file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The journal has a schema version this build does not know.
    #[error(
        "failed to read journal {}: schemaVersion {found} is not supported (this zkmigrate reads version {SCHEMA_VERSION})",
        path.display()
    )]
    UnknownSchema {
        /// The journal file.
        path: PathBuf,
        /// The version found, as written.
        found: String,
    },
    /// The plan changed since the journal was written.
    #[error(
        "failed to open journal {}: the plan changed since the journal was written (journal plan hash {journal_hash}, plan file hash {plan_hash}); only `policy` may change between runs: restore the plan the migration started with, or roll back with it first",
        path.display()
    )]
    PlanChanged {
        /// The journal file.
        path: PathBuf,
        /// The hash in the journal.
        journal_hash: String,
        /// The hash of the plan given now.
        plan_hash: String,
    },
    /// The journal could not be written.
    #[error("failed to write journal {}", path.display())]
    Write {
        /// The journal file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// An action id that does not start with a step name.
    #[error("failed to record action {id:?}: an action id is STEP/..., e.g. peers/restart/2")]
    BadActionId {
        /// The id given.
        id: String,
    },
    /// An outcome for an action that was never recorded as intent.
    #[error("failed to record the outcome of action {id:?}: it has no recorded intent")]
    UnknownAction {
        /// The id given.
        id: String,
    },
    /// Another runner holds the Lease of the kubernetes backend.
    #[error(
        "failed to lock the journal: {lease} is held by {holder}; {}",
        if holder.expired {
            "its holder stopped renewing it, but may still be running (a paused machine, a cut network): make sure it is gone, then run again with --steal-lease (and --resume if a step was interrupted)"
        } else {
            "another zkmigrate step or rollback is running on this plan: wait for it to end, or, if its machine is gone, wait until the Lease expires and run again with --steal-lease"
        }
    )]
    LeaseHeld {
        /// `Lease NS/NAME`.
        lease: String,
        /// Who holds it, and until when.
        holder: Box<lease::Holder>,
    },
    /// The Lease was lost while the run held it: nothing more may be
    /// written or done.
    #[error(
        "failed to keep the journal's lock: the lease was lost: {lease}: {reason}; this run stopped before its next action: make sure no other run is active on this plan before resuming"
    )]
    LeaseLost {
        /// `Lease NS/NAME`.
        lease: String,
        /// Taken by whom, or not renewed in time.
        reason: String,
    },
    /// A write conditional on `resourceVersion` got 409: someone else
    /// wrote the object since this run last did.
    #[error(
        "failed to write {object}: someone else changed it since this run last wrote it (409 Conflict); stopped without writing: check for another zkmigrate run on this plan"
    )]
    Conflict {
        /// `ConfigMap NS/NAME` or `Lease NS/NAME`.
        object: String,
    },
    /// An object of the backend exists but zkmigrate did not create it.
    #[error(
        "failed to open the journal: {object} exists but is not labelled app.kubernetes.io/managed-by=zkmigrate; zkmigrate does not take over objects it did not create: rename the plan or remove the object"
    )]
    NotOurs {
        /// `ConfigMap NS/NAME` or `Lease NS/NAME`.
        object: String,
    },
    /// The API server refused or failed a request.
    #[error(transparent)]
    Kubernetes(#[from] K8sError),
}

/// Where "now" comes from: the system clock, or a fixed or scripted one in
/// tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(SystemTime::now))
    }

    /// Always `at`.
    pub fn fixed(at: SystemTime) -> Clock {
        Clock(Arc::new(move || at))
    }

    /// Any function of nothing, e.g. a counter.
    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// The time now.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Where a plan's journal lives.
#[derive(Debug, Clone)]
pub enum JournalStore {
    /// A JSON file and its `.lock` sibling.
    File {
        /// The journal file (see [`ValidatedPlan::state_file`]).
        path: PathBuf,
    },
    /// A ConfigMap and a Lease `zkmigrate-<plan>` in the plan's namespace.
    Kubernetes(KubeNames),
}

/// How `step` and `rollback` take the journal.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Where the journal's times come from.
    pub clock: Clock,
    /// Take over an expired Lease held by another runner (`--steal-lease`).
    pub steal_lease: bool,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            clock: Clock::system(),
            steal_lease: false,
        }
    }
}

impl JournalStore {
    /// The store the plan's `state` section names.
    pub fn from_plan(plan: &ValidatedPlan) -> JournalStore {
        match (&plan.state, plan.state_file()) {
            (StateBackend::File { .. }, Some(path)) => JournalStore::File { path },
            _ => JournalStore::Kubernetes(KubeNames::of(plan)),
        }
    }

    /// Locks and opens (or creates) the journal for a `step` or `rollback`
    /// run. The kubernetes backend talks to `cluster` (connected from the
    /// plan when `None`); the file backend ignores it.
    ///
    /// Refused when another run holds the lock, when the journal was
    /// written for a different plan (the hash excludes `policy`), and when
    /// its schema version is unknown; nothing is changed then.
    pub async fn open_locked(
        &self,
        plan: &ValidatedPlan,
        cluster: Option<&Cluster>,
        options: LockOptions,
    ) -> Result<LockedJournal, JournalError> {
        let (backend, journal) = match self {
            JournalStore::File { path } => {
                let (lock, journal) = FileLock::open(path, plan, &options.clock)?;
                (Backend::File(lock), journal)
            }
            JournalStore::Kubernetes(_) => {
                let cluster = match cluster {
                    Some(cluster) => cluster.clone(),
                    None => crate::k8s::connect(&plan.kubernetes).await?,
                };
                let (lock, journal) =
                    KubeLock::open(&cluster, plan, &options.clock, options.steal_lease).await?;
                (Backend::Kubernetes(Box::new(lock)), journal)
            }
        };
        Ok(LockedJournal {
            backend,
            journal,
            clock: options.clock,
        })
    }

    /// Reads the journal without locking (`status`), even while a step
    /// runs; `None` when no run has written one yet.
    pub async fn read(
        &self,
        plan: &ValidatedPlan,
        cluster: Option<&Cluster>,
    ) -> Result<Option<Journal>, JournalError> {
        match self {
            JournalStore::File { path } => read(path),
            JournalStore::Kubernetes(names) => {
                let cluster = match cluster {
                    Some(cluster) => cluster.clone(),
                    None => crate::k8s::connect(&plan.kubernetes).await?,
                };
                kubernetes::read(&cluster, names).await
            }
        }
    }
}

#[derive(Debug)]
enum Backend {
    File(FileLock),
    Kubernetes(Box<KubeLock>),
}

/// A journal held under its backend's lock: the only way to change it.
/// Every change is persisted before its call returns (so a recorded intent
/// is durable before its action is applied); a failed write leaves memory
/// as the store has it.
#[derive(Debug)]
pub struct LockedJournal {
    backend: Backend,
    journal: Journal,
    clock: Clock,
}

impl LockedJournal {
    /// The journal as last persisted.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The journal file (file backend).
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::File(lock) => Some(&lock.path),
            Backend::Kubernetes(_) => None,
        }
    }

    /// The lock file (file backend).
    pub fn lock_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::File(lock) => Some(&lock.lock_path),
            Backend::Kubernetes(_) => None,
        }
    }

    /// The Lease holder identity of this run (kubernetes backend).
    pub fn lease_identity(&self) -> Option<&str> {
        match &self.backend {
            Backend::File(_) => None,
            Backend::Kubernetes(lock) => Some(lock.identity()),
        }
    }

    /// The step a previous run left `running` (see
    /// [`Journal::interrupted_step`]).
    pub fn interrupted_step(&self) -> Option<InterruptedStep<'_>> {
        self.journal.interrupted_step()
    }

    /// Sets a step's status; persisted before it returns.
    pub async fn set_step_status(
        &mut self,
        step: StepName,
        status: StepStatus,
    ) -> Result<(), JournalError> {
        let now = self.clock.now();
        self.update(|j| {
            j.set_step_status(step, status, now);
            Ok(())
        })
        .await?;
        tracing::debug!(step = %step, status = status.as_str(), "journal: step status");
        Ok(())
    }

    /// Records that action `id` (`STEP/...`) is about to be applied;
    /// persisted before it returns, so before the apply.
    pub async fn record_intent(&mut self, id: &str) -> Result<(), JournalError> {
        let now = self.clock.now();
        self.update(|j| j.record_intent(id, now)).await?;
        tracing::debug!(action = id, "journal: intent");
        Ok(())
    }

    /// Records that action `id` was applied and verified.
    pub async fn record_done(
        &mut self,
        id: &str,
        detail: Option<String>,
    ) -> Result<(), JournalError> {
        self.record_outcome(id, ActionStatus::Done, detail).await
    }

    /// Records that action `id` failed, and why.
    pub async fn record_failed(&mut self, id: &str, detail: String) -> Result<(), JournalError> {
        self.record_outcome(id, ActionStatus::Failed, Some(detail))
            .await
    }

    /// Records that action `id` was undone by a rollback.
    pub async fn record_undone(
        &mut self,
        id: &str,
        detail: Option<String>,
    ) -> Result<(), JournalError> {
        self.record_outcome(id, ActionStatus::Undone, detail).await
    }

    async fn record_outcome(
        &mut self,
        id: &str,
        status: ActionStatus,
        detail: Option<String>,
    ) -> Result<(), JournalError> {
        let now = self.clock.now();
        self.update(|j| j.record_outcome(id, status, detail, now))
            .await?;
        tracing::debug!(action = id, status = ?status, "journal: action outcome");
        Ok(())
    }

    /// Applies `change` to a copy, persists the copy, then keeps it.
    async fn update(
        &mut self,
        change: impl FnOnce(&mut Journal) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut next = self.journal.clone();
        change(&mut next)?;
        match &mut self.backend {
            Backend::File(lock) => lock.persist(&next)?,
            Backend::Kubernetes(lock) => lock.persist(&next).await?,
        }
        self.journal = next;
        Ok(())
    }

    /// Ends the run's hold: the file lock goes with the handle; the Lease
    /// stops being renewed and its holder is cleared. Call it on every
    /// end of a run, halt and failure included.
    pub async fn release(self) {
        let LockedJournal { backend, .. } = self;
        match backend {
            Backend::File(lock) => drop(lock),
            Backend::Kubernetes(mut lock) => lock.release().await,
        }
    }
}

/// Locks and opens the journal file at `path` for `plan`, with the system
/// clock (the file backend without going through [`JournalStore`]).
pub async fn open_locked(path: &Path, plan: &ValidatedPlan) -> Result<LockedJournal, JournalError> {
    JournalStore::File {
        path: path.to_path_buf(),
    }
    .open_locked(plan, None, LockOptions::default())
    .await
}

#[cfg(test)]
mod tests;
