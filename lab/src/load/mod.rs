//! The workload and its scorer (DESIGN section 8, issue 3 item 5).
//!
//! A worker writes sequence-numbered znodes at a steady rate through one
//! session and holds a second, long-lived session that owns an ephemeral
//! znode; everything it observes goes to an append-only record in its state
//! directory. The scorer turns that record, plus a read-back of every
//! acknowledged znode, into the report JSON of DESIGN section 8.
//!
//! Why it is shaped this way:
//! - **One process, one directory.** The worker runs in the foreground of
//!   its own process (the CLI starts it in the client namespace) or on a
//!   tokio task (tests); all it shares with the outside is its state
//!   directory: the record, a lock that says it runs, and control files.
//!   Files cross network namespaces where sockets would need care.
//! - **The record is the truth.** The report is a pure function of the
//!   recorded events and of which acknowledged znodes are absent at the end
//!   ([`score::score`]), so it is unit-tested on hand-made records.
//! - **Each run has its own znodes** (`<prefix>/r<unix ms>/w-0000000042`),
//!   so a leftover of an earlier run can never pass for a duplicate.
//!
//! Layout:
//! - [`record`]: the events and the append-only JSON-lines file.
//! - [`control`]: stop and reconnect requests, from another process.
//! - [`worker`]: the writer and the control loop.
//! - `session`: opening, re-attaching and closing sessions; the ephemeral
//!   holder.
//! - [`mod@score`]: the report, pure scoring plus the read-back.

pub mod control;
pub mod record;
pub mod score;
mod session;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use control::{ReconnectOutcome, request_reconnect, request_stop};
pub use record::{Event, Run, SessionRole, read_events, wait_started};
pub use score::{Report, report, score};
pub use worker::run_worker;

/// Default writes per second.
pub const DEFAULT_RATE_PER_S: u32 = 100;
/// Default parent of every run's znodes.
pub const DEFAULT_PREFIX: &str = "/zklab-load";
/// Default session timeout asked of the servers (they clamp it to
/// `[2, 20] x tickTime`).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// How a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Connection string, `host:port,...` with an optional chroot suffix.
    pub connect: String,
    /// Where the record, the lock and the control files live.
    pub state_dir: PathBuf,
    /// Writes per second, on a fixed tick schedule.
    pub rate_per_s: u32,
    /// Session timeout asked for both sessions.
    pub session_timeout: Duration,
    /// Parent znode of every run (absolute, no trailing slash).
    pub prefix: String,
}

impl WorkerConfig {
    /// A configuration with the defaults: 100 writes/s, a 10 s session
    /// timeout, znodes under `/zklab-load`.
    pub fn new(connect: impl Into<String>, state_dir: impl Into<PathBuf>) -> WorkerConfig {
        WorkerConfig {
            connect: connect.into(),
            state_dir: state_dir.into(),
            rate_per_s: DEFAULT_RATE_PER_S,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            prefix: DEFAULT_PREFIX.to_string(),
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        let bad = |reason: &str| {
            Err(LoadError::Config {
                reason: reason.to_string(),
            })
        };
        if self.rate_per_s == 0 || self.rate_per_s > 10_000 {
            return bad("rate_per_s must be between 1 and 10000");
        }
        if !self.prefix.starts_with('/') || self.prefix.len() < 2 || self.prefix.ends_with('/') {
            return bad("prefix must be an absolute znode path without a trailing slash");
        }
        if self.session_timeout < Duration::from_millis(100) {
            return bad("session_timeout must be at least 100 ms");
        }
        if self.connect.trim().is_empty() {
            return bad("connect must name at least one server");
        }
        Ok(())
    }
}

/// Errors of the workload, its control and its scorer.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to accept the workload configuration: {reason}")]
    Config { reason: String },
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse line {line} of {path}: {source}")]
    Record {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("failed to connect to ZooKeeper at {connect}: {source}")]
    Connect {
        connect: String,
        source: zookeeper_client::Error,
    },
    #[error("failed to connect to ZooKeeper at {connect} within {timeout:?}")]
    ConnectTimeout { connect: String, timeout: Duration },
    #[error("failed to {action} {path}: {source}")]
    Zk {
        action: &'static str,
        path: String,
        source: zookeeper_client::Error,
    },
    #[error("failed to {action} within {timeout:?}")]
    Timeout {
        action: &'static str,
        timeout: Duration,
    },
    #[error("failed to start the workload: a worker already runs in {dir}")]
    AlreadyRunning { dir: PathBuf },
    #[error("failed to reach the workload: no worker runs in {dir}")]
    NotRunning { dir: PathBuf },
    #[error("failed to get an answer to `{command}` from the workload in {dir} within {timeout:?}")]
    NoAnswer {
        command: &'static str,
        dir: PathBuf,
        timeout: Duration,
    },
    #[error("failed to {command}: the workload refused: {reason}")]
    Refused {
        command: &'static str,
        reason: String,
    },
    #[error("failed to score the workload: {dir} holds no record of a started worker")]
    NotStarted { dir: PathBuf },
}

/// The files of a state directory.
#[derive(Debug, Clone)]
pub(crate) struct StateFiles {
    dir: PathBuf,
}

impl StateFiles {
    pub(crate) fn new(dir: &Path) -> StateFiles {
        StateFiles {
            dir: dir.to_path_buf(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record: one JSON event per line.
    pub(crate) fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// Held (flock) by a running worker; holds its pid.
    pub(crate) fn lock(&self) -> PathBuf {
        self.dir.join("worker.lock")
    }

    /// Requests and replies.
    pub(crate) fn control(&self) -> PathBuf {
        self.dir.join("control")
    }
}

/// The epoch of a zxid: its high 32 bits; each new leader increments it.
pub fn epoch(zxid: i64) -> u32 {
    ((zxid as u64) >> 32) as u32
}

/// The path of write `seq` under a run's base path.
pub fn write_path(base: &str, seq: u64) -> String {
    format!("{base}/w-{seq:010}")
}
