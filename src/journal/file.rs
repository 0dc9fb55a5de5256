//! The `file` backend: a JSON document beside a lock file.
//!
//! - **Lock.** `<journal>.lock`, locked with `flock` (fs4) for as long as
//!   the journal is held, and holding the holder's pid so that a second
//!   `step` or `rollback` is refused at once with a message naming both.
//!   The lock file is never deleted: unlinking a locked file lets a third
//!   process lock a new file of the same name while the first still runs.
//! - **Atomic writes.** Every change is written to a temporary file in the
//!   journal's directory, fsynced, renamed over the journal, and the
//!   directory fsynced, before the call returns: after a crash the journal
//!   is the old document or the new one, never a mix, and a recorded
//!   intent is on disk before its action is applied.
//! - **Readers** (`status`, `plan`) take no lock: a rename is atomic, so
//!   they always see a whole document, even while a step runs.
//!
//! The changes themselves go through [`super::LockedJournal`], which holds
//! a [`FileLock`] (or the kubernetes backend's Lease).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::model::{Journal, SCHEMA_VERSION};
use super::{Clock, JournalError};
use crate::plan::ValidatedPlan;

/// The lock file of journal `path`: `<path>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Reads the journal at `path` without locking; `None` when there is none
/// yet. Refuses an unknown schema version or a malformed document.
pub fn read(path: &Path) -> Result<Option<Journal>, JournalError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JournalError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse(path, &bytes).map(Some)
}

/// Parses a journal document: the schema version first, so that a journal
/// of another version gets one clear error rather than a field's.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Journal, JournalError> {
    let malformed = |reason: String| JournalError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let version = value
        .get("schemaVersion")
        .and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(SCHEMA_VERSION)) {
        return Err(JournalError::UnknownSchema {
            path: path.to_path_buf(),
            found: value
                .get("schemaVersion")
                .map_or_else(|| "none".to_string(), ToString::to_string),
        });
    }
    let journal: Journal = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    journal.check_shape().map_err(malformed)?;
    Ok(journal)
}

/// The bytes written for a journal: pretty JSON and a final newline.
pub fn render(journal: &Journal) -> Vec<u8> {
    // Serializing these types cannot fail: string keys, no maps.
    let mut bytes = serde_json::to_vec_pretty(journal).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The file backend's hold on a journal: the locked lock file.
#[derive(Debug)]
pub(super) struct FileLock {
    pub(super) path: PathBuf,
    pub(super) lock_path: PathBuf,
    lock: File,
}

impl FileLock {
    /// Locks the journal at `path` and opens it for `plan`, creating it
    /// (every step pending) when it does not exist.
    ///
    /// Refused when another process (or another handle in this one) holds
    /// the lock, when the journal was written for a different plan (the
    /// hash excludes `policy`, so a changed timeout is fine), and when its
    /// schema version is unknown.
    pub(super) fn open(
        path: &Path,
        plan: &ValidatedPlan,
        clock: &Clock,
    ) -> Result<(FileLock, Journal), JournalError> {
        if let Some(dir) = parent_dir(path) {
            fs::create_dir_all(dir).map_err(|source| JournalError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let lock_path = lock_path(path);
        let lock = acquire_lock(&lock_path, &plan.name)?;
        let journal = match read(path)? {
            Some(journal) => {
                let plan_hash = plan.hash();
                if journal.plan_hash != plan_hash {
                    return Err(JournalError::PlanChanged {
                        path: path.to_path_buf(),
                        journal_hash: journal.plan_hash,
                        plan_hash,
                    });
                }
                journal
            }
            None => {
                let journal = Journal::new(plan, clock.now());
                write_atomic(path, &render(&journal))?;
                tracing::info!(path = %path.display(), plan = %plan.name, "journal created");
                journal
            }
        };
        let held = FileLock {
            path: path.to_path_buf(),
            lock_path,
            lock,
        };
        Ok((held, journal))
    }

    /// Replaces the journal file with `journal`, atomically and durably.
    pub(super) fn persist(&self, journal: &Journal) -> Result<(), JournalError> {
        write_atomic(&self.path, &render(journal))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Clear the pid before the lock goes (with the file handle), so a
        // later reader of the lock file does not name a finished process.
        let _ = self.lock.set_len(0);
    }
}

/// Locks `lock_path` exclusively without waiting and writes our pid in it.
fn acquire_lock(lock_path: &Path, plan_name: &str) -> Result<File, JournalError> {
    let lock_error = |source| JournalError::Lock {
        lock_path: lock_path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)
        .map_err(lock_error)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(JournalError::Locked {
                lock_path: lock_path.to_path_buf(),
                plan: plan_name.to_string(),
                holder: text.trim().parse().ok(),
            });
        }
        Err(fs4::TryLockError::Error(source)) => return Err(lock_error(source)),
    }
    file.set_len(0).map_err(lock_error)?;
    file.rewind().map_err(lock_error)?;
    writeln!(file, "{}", std::process::id()).map_err(lock_error)?;
    file.sync_all().map_err(lock_error)?;
    Ok(file)
}

/// Replaces `path` with `bytes` atomically and durably: a temporary file in
/// the same directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let write_error = |source| JournalError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = parent_dir(path).unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".zkmigrate-journal-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_error)?;
    temp.write_all(bytes).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(path).map_err(|e| write_error(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error)?;
    Ok(())
}

fn parent_dir(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}
