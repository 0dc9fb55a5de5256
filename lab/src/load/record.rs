//! The workload's record: what the worker observed, one JSON event per line.
//!
//! Append-only JSON lines, because the scorer and the tests read the record
//! while the worker still appends to it, and a line is either whole or not
//! there yet (a partial last line is skipped, never misread). The worker
//! flushes on its control tick (every 50 ms) and before it answers a
//! request, so a worker killed outright forgets at most the last 50 ms of
//! acknowledgements: they then count as unacknowledged, never as lost.
//!
//! Every number of the report derives from these events ([`super::score()`]).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{LoadError, StateFiles};

/// Which of the worker's two sessions an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    /// The session that writes the sequence.
    Writer,
    /// The long-lived session that owns the ephemeral znode.
    Ephemeral,
}

/// What a worker records about the start of its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The worker's process id.
    pub pid: u32,
    /// Wall-clock start, milliseconds since the Unix epoch; `t_ms` of every
    /// later event counts from here (on a monotonic clock).
    pub unix_ms: u64,
    /// The connection string the run started with.
    pub connect: String,
    /// Parent of this run's writes: `<prefix>/r<unix_ms>`.
    pub base: String,
    /// The ephemeral znode the second session owns.
    pub ephemeral_path: String,
    pub rate_per_s: u32,
    pub writer_session: i64,
    pub ephemeral_session: i64,
    /// The ephemeral znode's czxid: the zxid the run starts at.
    pub zxid: i64,
}

/// One observation of the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The sessions are up and the ephemeral znode exists; always first.
    Started(Run),
    /// Write `seq` is acknowledged. `duplicate`: a retry found the znode
    /// already there (an earlier attempt, unacknowledged, had succeeded);
    /// its czxid is then read back, if that read succeeded.
    Acked {
        seq: u64,
        t_ms: u64,
        czxid: Option<i64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    /// One attempt to write `seq` failed (it is retried on the next tick).
    Failed { seq: u64, t_ms: u64, error: String },
    /// A session expired (told by the server, or given up by the client
    /// after 1.4 x the session timeout without a server).
    Expired {
        t_ms: u64,
        role: SessionRole,
        session: i64,
    },
    /// A new session replaced an expired or closed one; for the ephemeral
    /// role, `czxid` is that of the re-created ephemeral znode.
    Renewed {
        t_ms: u64,
        role: SessionRole,
        session: i64,
        czxid: Option<i64>,
    },
    /// The worker switched to a new connection string.
    Reconnected {
        t_ms: u64,
        connect: String,
        writer_session: i64,
        ephemeral_session: i64,
        /// The ephemeral session was re-attached (same id and password)
        /// through the new string and still owns its znode.
        ephemeral_kept: bool,
    },
    /// The worker stopped; its verdict on the ephemeral znode, checked with
    /// its own session just before closing it.
    Stopped { t_ms: u64, ephemeral_survived: bool },
}

impl Event {
    /// Milliseconds since the run's start (0 for `Started`).
    pub fn t_ms(&self) -> u64 {
        match self {
            Event::Started(_) => 0,
            Event::Acked { t_ms, .. }
            | Event::Failed { t_ms, .. }
            | Event::Expired { t_ms, .. }
            | Event::Renewed { t_ms, .. }
            | Event::Reconnected { t_ms, .. }
            | Event::Stopped { t_ms, .. } => *t_ms,
        }
    }
}

/// The worker's end of the record.
#[derive(Debug)]
pub(crate) struct EventLog {
    path: PathBuf,
    out: BufWriter<File>,
    origin: Instant,
}

impl EventLog {
    /// Starts an empty record (a previous run's record is replaced).
    pub(crate) fn create(files: &StateFiles) -> Result<EventLog, LoadError> {
        let path = files.events();
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| LoadError::Io {
                action: "create the record",
                path: path.clone(),
                source,
            })?;
        Ok(EventLog {
            path,
            out: BufWriter::new(file),
            origin: Instant::now(),
        })
    }

    /// Milliseconds since the log was created.
    pub(crate) fn t_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    pub(crate) fn append(&mut self, event: &Event) -> Result<(), LoadError> {
        let line = serde_json::to_string(event).map_err(|source| LoadError::Record {
            path: self.path.clone(),
            line: 0,
            source,
        })?;
        writeln!(self.out, "{line}").map_err(|source| self.io_error("append to", source))
    }

    /// Hands buffered events to the kernel (readers see them).
    pub(crate) fn flush(&mut self) -> Result<(), LoadError> {
        self.out
            .flush()
            .map_err(|source| self.io_error("flush", source))
    }

    /// Flushes and waits for the disk.
    pub(crate) fn sync(&mut self) -> Result<(), LoadError> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|source| self.io_error("sync", source))
    }

    fn io_error(&self, action: &'static str, source: std::io::Error) -> LoadError {
        LoadError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

/// The events recorded so far in `state_dir` (whole lines only).
pub fn read_events(state_dir: &Path) -> Result<Vec<Event>, LoadError> {
    let path = StateFiles::new(state_dir).events();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LoadError::Io {
                action: "read the record",
                path,
                source,
            });
        }
    };
    parse_events(&text, &path)
}

fn parse_events(text: &str, path: &Path) -> Result<Vec<Event>, LoadError> {
    // Only lines that end in a newline are whole; the worker may be halfway
    // through the last one.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    whole
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|source| LoadError::Record {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// Waits until the worker in `state_dir` has recorded its start; returns
/// what it recorded. The caller starts the worker on a fresh or cleared
/// directory (a previous run's record would otherwise answer at once).
pub fn wait_started(state_dir: &Path, timeout: Duration) -> Result<Run, LoadError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(Event::Started(run)) = read_events(state_dir)?.into_iter().next() {
            return Ok(run);
        }
        if Instant::now() > deadline {
            return Err(LoadError::NoAnswer {
                command: "start",
                dir: state_dir.to_path_buf(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_one_json_object_per_line() {
        let acked = Event::Acked {
            seq: 42,
            t_ms: 420,
            czxid: Some(0x1_0000_0007),
            duplicate: false,
        };
        let line = serde_json::to_string(&acked).unwrap();
        assert_eq!(
            line,
            r#"{"event":"acked","seq":42,"t_ms":420,"czxid":4294967303}"#
        );
        let expired = Event::Expired {
            t_ms: 9,
            role: SessionRole::Ephemeral,
            session: 7,
        };
        let line = serde_json::to_string(&expired).unwrap();
        assert_eq!(
            line,
            r#"{"event":"expired","t_ms":9,"role":"ephemeral","session":7}"#
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, expired);
    }

    #[test]
    fn a_partial_last_line_is_skipped_and_a_broken_whole_line_is_an_error() {
        let path = Path::new("events.jsonl");
        let text =
            "{\"event\":\"stopped\",\"t_ms\":5,\"ephemeral_survived\":true}\n{\"event\":\"ack";
        let events = parse_events(text, path).unwrap();
        assert_eq!(
            events,
            vec![Event::Stopped {
                t_ms: 5,
                ephemeral_survived: true
            }]
        );
        let err = parse_events("{\"event\":\"nope\"}\n", path).unwrap_err();
        assert!(
            err.to_string().starts_with("failed to parse line 1"),
            "{err}"
        );
    }
}
