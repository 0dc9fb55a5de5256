//! Control of a running worker from another process: stop and reconnect.
//!
//! The channel is a directory of small files in the worker's state
//! directory, polled by the worker every 50 ms: a request is written to a
//! temporary name and renamed into place (so the worker never reads half of
//! one), the worker answers with a reply file of the same id. Files work
//! across network namespaces and need no listener; 50 ms is far below what
//! a human or the CLI notices.
//!
//! Liveness is an exclusive `flock` on `worker.lock`, held for the worker's
//! life and released by the kernel if it dies: a requester can tell "no
//! worker" from "no answer yet" at once instead of waiting out its timeout.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{LoadError, StateFiles};

/// How long `request_stop` and `request_reconnect` wait for the worker.
/// A worker answers between two writes (one attempt is bounded by 2 s); a
/// reconnect then opens up to three sessions, each bounded by twice the
/// session timeout, which an unreachable server can use up.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(90);

const POLL: Duration = Duration::from_millis(20);

/// What a requester asks of the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub(crate) enum Command {
    Stop,
    Reconnect { connect: String },
}

/// What the worker answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub(crate) enum Reply {
    Stopped,
    Reconnected(ReconnectOutcome),
    Refused { reason: String },
}

/// The sessions after a reconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconnectOutcome {
    /// The writer's session: a new one, opened through the new string.
    pub writer_session: i64,
    /// The ephemeral holder's session after the switch.
    pub ephemeral_session: i64,
    /// The ephemeral session was re-attached (same id) and still owns its
    /// znode.
    pub ephemeral_kept: bool,
}

/// Asks the worker in `state_dir` to stop and waits (at most
/// [`CONTROL_TIMEOUT`]) until it has recorded its verdict, closed its
/// sessions and let go of the directory.
pub fn request_stop(state_dir: &Path) -> Result<(), LoadError> {
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    match request(state_dir, &Command::Stop, "stop", deadline)? {
        Reply::Stopped => {}
        Reply::Refused { reason } => {
            return Err(LoadError::Refused {
                command: "stop",
                reason,
            });
        }
        Reply::Reconnected(_) => {
            return Err(LoadError::Refused {
                command: "stop",
                reason: "answered a reconnect".into(),
            });
        }
    }
    // The reply comes before the lock is released; wait for the release so
    // that a new worker can start on this directory as soon as we return.
    let files = StateFiles::new(state_dir);
    while worker_running(&files)? {
        if Instant::now() > deadline {
            return Err(LoadError::NoAnswer {
                command: "stop",
                dir: state_dir.to_path_buf(),
                timeout: CONTROL_TIMEOUT,
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// Asks the worker in `state_dir` to switch both its sessions to `connect`
/// and waits (at most [`CONTROL_TIMEOUT`]) for the outcome.
pub fn request_reconnect(state_dir: &Path, connect: &str) -> Result<ReconnectOutcome, LoadError> {
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    let command = Command::Reconnect {
        connect: connect.to_string(),
    };
    match request(state_dir, &command, "reconnect", deadline)? {
        Reply::Reconnected(outcome) => Ok(outcome),
        Reply::Refused { reason } => Err(LoadError::Refused {
            command: "reconnect",
            reason,
        }),
        Reply::Stopped => Err(LoadError::Refused {
            command: "reconnect",
            reason: "the workload stopped".into(),
        }),
    }
}

fn request(
    state_dir: &Path,
    command: &Command,
    name: &'static str,
    deadline: Instant,
) -> Result<Reply, LoadError> {
    let files = StateFiles::new(state_dir);
    if !worker_running(&files)? {
        return Err(LoadError::NotRunning {
            dir: state_dir.to_path_buf(),
        });
    }
    let id = request_id();
    let dir = files.control();
    let body = serde_json::to_vec(command).map_err(|source| LoadError::Record {
        path: dir.clone(),
        line: 0,
        source,
    })?;
    write_atomically(&dir, &format!("request-{id}.json"), &body)?;
    let reply_path = dir.join(format!("reply-{id}.json"));
    loop {
        if let Some(reply) = read_reply(&reply_path)? {
            return Ok(reply);
        }
        let running = worker_running(&files)?;
        // The worker may have answered just before it exited.
        if !running && let Some(reply) = read_reply(&reply_path)? {
            return Ok(reply);
        }
        if !running || Instant::now() > deadline {
            let _ = fs::remove_file(dir.join(format!("request-{id}.json")));
            return Err(if running {
                LoadError::NoAnswer {
                    command: name,
                    dir: state_dir.to_path_buf(),
                    timeout: CONTROL_TIMEOUT,
                }
            } else {
                LoadError::NotRunning {
                    dir: state_dir.to_path_buf(),
                }
            });
        }
        std::thread::sleep(POLL);
    }
}

fn read_reply(path: &Path) -> Result<Option<Reply>, LoadError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoadError::Io {
                action: "read the reply",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let _ = fs::remove_file(path);
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| LoadError::Record {
            path: path.to_path_buf(),
            line: 1,
            source,
        })
}

/// Zero-padded nanoseconds since the epoch, then the pid: ids sort in the
/// order requests were made, and two processes never collide.
fn request_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:020}-{}", std::process::id())
}

fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> Result<(), LoadError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let io = |action, path: &PathBuf, source| LoadError::Io {
        action,
        path: path.clone(),
        source,
    };
    fs::write(&tmp, body).map_err(|e| io("write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| io("rename into place", &path, e))
}

/// Whether a worker holds the lock of this state directory.
fn worker_running(files: &StateFiles) -> Result<bool, LoadError> {
    let path = files.lock();
    let file = match OpenOptions::new().write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(LoadError::Io {
                action: "open the worker lock",
                path,
                source,
            });
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(source)) => Err(LoadError::Io {
            action: "test the worker lock",
            path,
            source,
        }),
    }
}

/// A pending request: its id, and the command or why it cannot be parsed.
pub(crate) type Request = (String, Result<Command, String>);

/// The worker's hold on its state directory: the lock, and the inbox.
#[derive(Debug)]
pub(crate) struct Inbox {
    dir: PathBuf,
    _lock: File,
}

impl Inbox {
    /// Takes the directory's lock (refused while another worker holds it)
    /// and clears requests and replies left by an earlier run.
    pub(crate) fn claim(files: &StateFiles) -> Result<Inbox, LoadError> {
        let dir = files.control();
        fs::create_dir_all(&dir).map_err(|source| LoadError::Io {
            action: "create the control directory",
            path: dir.clone(),
            source,
        })?;
        let path = files.lock();
        let io = |action, source| LoadError::Io {
            action,
            path: path.clone(),
            source,
        };
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("open the worker lock", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LoadError::AlreadyRunning {
                    dir: files.dir().to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io("take the worker lock", e)),
        }
        lock.set_len(0)
            .map_err(|e| io("truncate the worker lock", e))?;
        writeln!(lock, "{}", std::process::id()).map_err(|e| io("write the worker lock", e))?;
        for entry in fs::read_dir(&dir).map_err(|e| io("list the control directory", e))? {
            let entry = entry.map_err(|e| io("list the control directory", e))?;
            let _ = fs::remove_file(entry.path());
        }
        Ok(Inbox { dir, _lock: lock })
    }

    /// Takes the pending requests, oldest first; a request that cannot be
    /// parsed comes back as its error, to be refused.
    pub(crate) fn take(&self) -> Result<Vec<Request>, LoadError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| LoadError::Io {
            action: "list the control directory",
            path: self.dir.clone(),
            source,
        })?;
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_prefix("request-")?.strip_suffix(".json")?;
                Some(id.to_string())
            })
            .collect();
        ids.sort();
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            let path = self.dir.join(format!("request-{id}.json"));
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
            let _ = fs::remove_file(&path);
            requests.push((id, parsed));
        }
        Ok(requests)
    }

    /// Answers request `id`.
    pub(crate) fn reply(&self, id: &str, reply: &Reply) -> Result<(), LoadError> {
        let body = serde_json::to_vec(reply).map_err(|source| LoadError::Record {
            path: self.dir.clone(),
            line: 0,
            source,
        })?;
        write_atomically(&self.dir, &format!("reply-{id}.json"), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_answered_through_the_inbox_and_the_lock_tells_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let files = StateFiles::new(dir.path());
        assert!(matches!(
            request_stop(dir.path()),
            Err(LoadError::NotRunning { .. })
        ));
        let inbox = Inbox::claim(&files).unwrap();
        assert!(worker_running(&files).unwrap());
        assert!(matches!(
            Inbox::claim(&files),
            Err(LoadError::AlreadyRunning { .. })
        ));
        let state_dir = dir.path().to_path_buf();
        let requester =
            std::thread::spawn(move || request_reconnect(&state_dir, "10.77.0.11:2181/chroot"));
        let (id, command) = loop {
            if let Some(first) = inbox.take().unwrap().into_iter().next() {
                break first;
            }
            std::thread::sleep(POLL);
        };
        assert_eq!(
            command.unwrap(),
            Command::Reconnect {
                connect: "10.77.0.11:2181/chroot".into()
            }
        );
        let outcome = ReconnectOutcome {
            writer_session: 1,
            ephemeral_session: 2,
            ephemeral_kept: true,
        };
        inbox
            .reply(&id, &Reply::Reconnected(outcome.clone()))
            .unwrap();
        assert_eq!(requester.join().unwrap().unwrap(), outcome);
        drop(inbox);
        assert!(!worker_running(&files).unwrap());
    }
}
