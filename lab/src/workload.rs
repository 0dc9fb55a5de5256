//! `zklab load`: the workload of a lab, run in its client machine.
//!
//! The worker ([`crate::load`]) runs as a detached `zklab load worker`
//! process inside the client namespace, so its sessions live where a real
//! client would; stop, reconnect and report talk to it through its state
//! directory. The report's read-back also runs inside the client namespace
//! (as `zklab load score`), where the connection string's names resolve as
//! the worker's do.

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::LabError;
use crate::layout::{Layout, Machine};
use crate::load::{self, Event};
use crate::topology;

/// The hosts' connection string (before any migration).
pub fn hosts_connect(servers: u8) -> String {
    (1..=servers)
        .map(|k| format!("{}:2181", Machine::Host(k).addr()))
        .collect::<Vec<_>>()
        .join(",")
}

fn load_err(e: load::LoadError) -> LabError {
    LabError::Stuck(e.to_string())
}

/// Starts the worker in the client machine; returns once its sessions are
/// open and it writes.
pub fn start(layout: &Layout, connect: Option<String>, rate: u32) -> Result<load::Run, LabError> {
    let state = topology::load_state(layout)?;
    let connect = connect.unwrap_or_else(|| hosts_connect(state.servers));
    let dir = layout.load_dir();
    fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    // A new run: the previous record would answer wait_started at once.
    for f in ["events.jsonl", "worker.log"] {
        let _ = fs::remove_file(dir.join(f));
    }
    let exe = topology::zklab_exe()?;
    let log = fs::File::create(dir.join("worker.log")).map_err(|source| LabError::Io {
        what: "create worker.log".into(),
        source,
    })?;
    let status = Command::new("setsid")
        .args(["--fork", "ip", "netns", "exec", &layout.ns(Machine::Client)])
        .arg(&exe)
        .args(["load", "worker", "--state"])
        .arg(&dir)
        .args(["--connect", &connect, "--rate", &rate.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|source| LabError::Spawn {
            command: "zklab load worker".into(),
            source,
        })?;
    if !status.success() {
        return Err(LabError::Stuck(format!(
            "the worker failed to start: {status}"
        )));
    }
    load::wait_started(&dir, Duration::from_secs(60)).map_err(|e| {
        let log = fs::read_to_string(dir.join("worker.log")).unwrap_or_default();
        LabError::Stuck(format!("{e}; worker log:\n{log}"))
    })
}

/// Stops the worker (it checks its ephemeral znode before closing).
pub fn stop(layout: &Layout) -> Result<(), LabError> {
    load::request_stop(&layout.load_dir()).map_err(load_err)
}

/// Switches the worker's clients to `connect`.
pub fn reconnect(layout: &Layout, connect: &str) -> Result<load::ReconnectOutcome, LabError> {
    load::request_reconnect(&layout.load_dir(), connect).map_err(load_err)
}

/// The connection string the worker uses now (the last it switched to).
pub fn current_connect(layout: &Layout) -> Result<String, LabError> {
    let events = load::read_events(&layout.load_dir()).map_err(load_err)?;
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Reconnected { connect, .. } => Some(connect.clone()),
            Event::Started(run) => Some(run.connect.clone()),
            _ => None,
        })
        .ok_or_else(|| LabError::Usage("the workload has never run in this lab".into()))
}

/// The report JSON, computed inside the client machine.
pub fn report(layout: &Layout) -> Result<String, LabError> {
    let connect = current_connect(layout)?;
    let exe = topology::zklab_exe()?;
    let out = Command::new("ip")
        .args(["netns", "exec", &layout.ns(Machine::Client)])
        .arg(&exe)
        .args(["load", "score", "--state"])
        .arg(layout.load_dir())
        .args(["--connect", &connect])
        .output()
        .map_err(|source| LabError::Spawn {
            command: "zklab load score".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(LabError::Stuck(format!(
            "the report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
