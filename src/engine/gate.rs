//! The safety gate of DESIGN 2 ("Quorum first") and the waits after an
//! action: the engine calls [`await_gate`] before every action that stops,
//! restarts or replaces a server, and [`await_synced`] after a restart or a
//! Pod start.
//!
//! Both are one loop ([`wait_for`]): observe the ensemble every
//! `policy.pollInterval`, hand the observation to the pure
//! [`judge::judge`], show its message on the progress bar, and stop on a
//! pass or a halt. Everything that decides (the checks, the progress rule,
//! the deadlines, the leader grace) is in [`judge`], a function of data and
//! an injected `Instant`, so it is tested without servers or clocks; this
//! file holds only the I/O and the operator's message.
//!
//! A halt is not an error of zkmigrate: it is the gate doing its job. It
//! carries what was observed and expected per server, how long it waited,
//! which limit fired, and prints the commands that continue or roll back
//! ("Nothing silent"); it maps to exit code 3 ([`Exit::Halted`]).

pub mod judge;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::exit::Exit;
use crate::observe::health::HealthReport;
use crate::observe::{EnsembleObservation, ObserveOptions, Target, observe_ensemble};
use crate::plan::Policy;
use crate::progress::Progress;

pub use judge::{Awaited, Deadline, Deadlines, History, Verdict, judge};

/// What the gate before one action requires beyond DESIGN 2's quorum gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateSpec {
    /// The server the next action stops, restarts or replaces: the voters
    /// left without it must still be a quorum.
    pub about: Option<u64>,
    /// DESIGN 9 (ZOOKEEPER-2325): right before fencing host `about`, every
    /// other voter has the leader's zxid.
    pub require_equal_zxid: bool,
    /// The most a serving voter may lag behind the leader.
    pub max_lag: u64,
}

impl GateSpec {
    /// The gate before restarting or stopping `server`: quorum first, lag 0.
    pub fn before_touching(server: u64) -> GateSpec {
        GateSpec {
            about: Some(server),
            require_equal_zxid: false,
            max_lag: 0,
        }
    }

    /// The gate before fencing host `server` (step `replace`).
    pub fn before_fencing(server: u64) -> GateSpec {
        GateSpec {
            require_equal_zxid: true,
            ..GateSpec::before_touching(server)
        }
    }
}

/// A wait that passed.
#[derive(Debug, Clone)]
pub struct GatePassed {
    /// The observation that passed.
    pub observation: EnsembleObservation,
    /// The leader agreed by quorum in that observation.
    pub leader: u64,
    /// How long the wait took.
    pub waited: Duration,
}

/// A wait that gave up: what the operator reads (its `Display`) and what
/// the engine journals.
#[derive(Debug, Clone)]
pub struct GateHalt {
    pub awaited: Awaited,
    /// Every failing check of the last observation.
    pub report: HealthReport,
    /// The last observation, per server.
    pub observation: EnsembleObservation,
    pub deadline: Deadline,
    pub elapsed: Duration,
    /// The plan file, for the commands printed.
    pub plan_file: PathBuf,
}

impl GateHalt {
    /// Always [`Exit::Halted`]: a halt is resumable.
    pub fn exit(&self) -> Exit {
        Exit::Halted
    }
}

impl std::error::Error for GateHalt {}

impl fmt::Display for GateHalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = self.plan_file.display();
        writeln!(
            f,
            "failed to pass {}: halted after {} by the {}",
            self.awaited,
            humantime::format_duration(round_ms(self.elapsed)),
            self.deadline
        )?;
        writeln!(f, "observed:")?;
        for line in server_lines(&self.observation) {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "failing (observed; expected):")?;
        for failure in &self.report.failures {
            writeln!(f, "  {failure}")?;
        }
        writeln!(
            f,
            "nothing was changed by this wait; once the ensemble is healthy, continue with:"
        )?;
        writeln!(f, "  zkmigrate step -f {plan} --resume")?;
        writeln!(f, "or roll back with:")?;
        write!(f, "  zkmigrate rollback -f {plan}")
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// One line per expected server: where it was asked, mode, zxid, lag.
fn server_lines(obs: &EnsembleObservation) -> Vec<String> {
    obs.servers
        .iter()
        .map(|e| match &e.outcome {
            Ok(o) => {
                let lag = obs
                    .zxid_lag(e.id)
                    .map_or("unknown".to_string(), |l| l.to_string());
                format!(
                    "server {} at {}: {}, zxid {}, lag {lag}",
                    e.id, e.address, o.srvr.mode, o.srvr.zxid
                )
            }
            Err(fail) => format!("server {} at {}: {}", e.id, e.address, fail.message),
        })
        .collect()
}

/// Waits until the gate `spec` holds (module header), or halts.
pub async fn await_gate(
    targets: &[Target],
    spec: &GateSpec,
    policy: &Policy,
    plan_file: &Path,
    progress: &Progress,
) -> Result<GatePassed, GateHalt> {
    let awaited = Awaited::Gate(spec.clone());
    wait_for(
        awaited,
        targets,
        Deadlines::from_policy(policy),
        policy.poll_interval,
        plan_file,
        progress,
    )
    .await
}

/// Waits until `server` serves as a voting member, the leader counts every
/// voter synced and the server's lag is 0, or halts.
pub async fn await_synced(
    targets: &[Target],
    server: u64,
    policy: &Policy,
    plan_file: &Path,
    progress: &Progress,
) -> Result<GatePassed, GateHalt> {
    let awaited = Awaited::Synced { server };
    wait_for(
        awaited,
        targets,
        Deadlines::from_policy(policy),
        policy.poll_interval,
        plan_file,
        progress,
    )
    .await
}

/// The one wait loop: observe, judge, show, sleep `poll`.
pub async fn wait_for(
    awaited: Awaited,
    targets: &[Target],
    deadlines: Deadlines,
    poll: Duration,
    plan_file: &Path,
    progress: &Progress,
) -> Result<GatePassed, GateHalt> {
    let bar = progress.wait(&awaited.to_string());
    let started = Instant::now();
    let mut history = History::new(awaited, deadlines, started);
    // An exchange never outlives the overall limit by much, and a hung
    // server is seen as unreachable well before the progress deadline.
    let opts = ObserveOptions {
        timeout: deadlines
            .progress_deadline
            .min(ObserveOptions::default().timeout),
        ..ObserveOptions::default()
    };
    loop {
        let observation = observe_ensemble(targets, &opts).await;
        let now = Instant::now();
        match judge(&mut history, &observation, now) {
            Verdict::Pass { leader } => {
                let waited = now.saturating_duration_since(started);
                tracing::info!(
                    wait = %history.awaited,
                    leader,
                    waited_ms = waited.as_millis() as u64,
                    "passed"
                );
                bar.finish(format!(
                    "passed after {} (leader {leader})",
                    humantime::format_duration(round_ms(waited))
                ));
                return Ok(GatePassed {
                    observation,
                    leader,
                    waited,
                });
            }
            Verdict::Wait { message, .. } => {
                tracing::debug!(wait = %history.awaited, "{message}");
                bar.set_message(message);
            }
            Verdict::Halt { report, deadline } => {
                let elapsed = now.saturating_duration_since(started);
                tracing::warn!(
                    wait = %history.awaited,
                    %deadline,
                    elapsed_ms = elapsed.as_millis() as u64,
                    failures = report.failures.len(),
                    "halted"
                );
                bar.abandon(format!("halted: {deadline}"));
                return Err(GateHalt {
                    awaited: history.awaited,
                    report,
                    observation,
                    deadline,
                    elapsed,
                    plan_file: plan_file.to_path_buf(),
                });
            }
        }
        tokio::time::sleep(poll).await;
    }
}
