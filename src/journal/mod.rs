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
//!   without a lock ([`LockedJournal`]).
//!
//! [`JournalStore`] picks the backend from the plan; the `kubernetes`
//! backend (a ConfigMap and a Lease) is not built yet and says so.
//! Time comes from a [`Clock`] so that tests can fix it.

mod file;
mod model;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use file::{LockedJournal, lock_path, parse, read, render, write_atomic};
pub use model::{
    ActionRecord, ActionStatus, InterruptedStep, Journal, SCHEMA_VERSION, StepRecord, StepStatus,
    Timestamp, step_of,
};

use crate::plan::{StateBackend, ValidatedPlan};

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
    /// The `kubernetes` state backend is not built yet.
    #[error(
        "failed to open the journal of plan {plan}: the kubernetes state backend is not supported yet; use `state: {{ backend: file }}`"
    )]
    NotSupported {
        /// The plan's name.
        plan: String,
    },
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalStore {
    /// A JSON file and its `.lock` sibling.
    File {
        /// The journal file (see [`ValidatedPlan::state_file`]).
        path: PathBuf,
    },
    /// A ConfigMap and a Lease (issue 7): not supported yet.
    Kubernetes {
        /// The plan's name.
        plan: String,
    },
}

impl JournalStore {
    /// The store the plan's `state` section names.
    pub fn from_plan(plan: &ValidatedPlan) -> JournalStore {
        match (&plan.state, plan.state_file()) {
            (StateBackend::File { .. }, Some(path)) => JournalStore::File { path },
            _ => JournalStore::Kubernetes {
                plan: plan.name.clone(),
            },
        }
    }

    /// Locks and opens (or creates) the journal for a `step` or `rollback`
    /// run, with the system clock. See [`LockedJournal::open`].
    pub fn open_locked(&self, plan: &ValidatedPlan) -> Result<LockedJournal, JournalError> {
        self.open_locked_with_clock(plan, Clock::system())
    }

    /// [`JournalStore::open_locked`] with a given clock.
    pub fn open_locked_with_clock(
        &self,
        plan: &ValidatedPlan,
        clock: Clock,
    ) -> Result<LockedJournal, JournalError> {
        match self {
            JournalStore::File { path } => LockedJournal::open(path, plan, clock),
            JournalStore::Kubernetes { plan } => {
                Err(JournalError::NotSupported { plan: plan.clone() })
            }
        }
    }

    /// Reads the journal without locking (`status`, `plan`); `None` when no
    /// run has written one yet.
    pub fn read(&self) -> Result<Option<Journal>, JournalError> {
        match self {
            JournalStore::File { path } => read(path),
            JournalStore::Kubernetes { plan } => {
                Err(JournalError::NotSupported { plan: plan.clone() })
            }
        }
    }
}

/// Locks and opens the journal file at `path` for `plan`, with the system
/// clock (the file backend without going through [`JournalStore`]).
pub fn open_locked(path: &Path, plan: &ValidatedPlan) -> Result<LockedJournal, JournalError> {
    LockedJournal::open(path, plan, Clock::system())
}

#[cfg(test)]
mod tests;
