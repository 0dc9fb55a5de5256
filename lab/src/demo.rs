//! `zklab demo` (DESIGN section 8): up, load, the full migration with
//! zkmigrate, the report, down. What an operator would do, in order: build
//! the lab, start the workload, run `zkmigrate plan`, run the steps up to
//! `clients` (which stops for the operator), move the workload's clients to
//! the Service names, confirm and run the rest, look at `status`, then stop
//! the workload and read its report.
//!
//! zkmigrate runs on the lab's operator machine with the lab's kubeconfig,
//! its own progress on the terminal. The lab is torn down at the end, also
//! when a step fails, unless `--keep`.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::LabError;
use crate::layout::{Layout, Machine};
use crate::topology::{self, LabState, Target};
use crate::{fault, workload};

/// What `zklab demo` does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub servers: u8,
    pub target: Target,
    /// Make this server the leader before the workload starts.
    pub leader: Option<u8>,
    /// The zkmigrate executable.
    pub zkmigrate: PathBuf,
    /// Leave the lab up at the end.
    pub keep: bool,
}

/// The outcome: the workload's report (DESIGN section 8) and how long the
/// demo took.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    pub report: serde_json::Value,
    pub elapsed: Duration,
}

/// The zkmigrate executable beside zklab's (one cargo target directory
/// builds both), or `$ZKMIGRATE_BIN`.
pub fn find_zkmigrate() -> Result<PathBuf, LabError> {
    if let Some(path) = std::env::var_os("ZKMIGRATE_BIN") {
        return Ok(path.into());
    }
    let zklab = topology::zklab_exe()?;
    let beside = zklab.with_file_name("zkmigrate");
    if beside.exists() {
        return Ok(beside);
    }
    Err(LabError::Usage(format!(
        "cannot find zkmigrate beside {}: build it (cargo build --bins) or pass --zkmigrate PATH",
        zklab.display()
    )))
}

/// Tears the lab down when dropped, unless kept.
struct Teardown<'a> {
    layout: &'a Layout,
    keep: bool,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if self.keep {
            eprintln!(
                "== the lab stays up: `zklab down --name {}` removes it",
                self.layout.name
            );
        } else if let Err(e) = topology::down(self.layout) {
            eprintln!("zklab demo: tearing the lab down failed: {e}");
        }
    }
}

/// Runs the demo in lab `layout`; any leftover lab of that name is removed
/// first.
pub fn run(layout: &Layout, opts: &DemoOptions) -> Result<DemoOutcome, LabError> {
    let started = Instant::now();
    if !opts.zkmigrate.exists() {
        return Err(LabError::Usage(format!(
            "no zkmigrate at {}",
            opts.zkmigrate.display()
        )));
    }
    topology::down(layout)?;
    let _teardown = Teardown {
        layout,
        keep: opts.keep,
    };

    eprintln!(
        "== zklab up: {} hosts with ZooKeeper 3.8 over SSH, and a Kubernetes control plane ({:?} target)",
        opts.servers, opts.target
    );
    let state = topology::up(layout, opts.servers, opts.target)?;
    eprintln!("plan: {}\nkubeconfig: {}", state.plan, state.kubeconfig);
    if let Some(leader) = opts.leader {
        eprintln!("== making server {leader} the leader");
        fault::elect::elect(layout, opts.servers, leader, Duration::from_secs(60))?;
    }

    eprintln!("== the workload: a steady writer and a session holding an ephemeral znode");
    let load = workload::start(layout, None, crate::load::DEFAULT_RATE_PER_S)?;
    eprintln!(
        "workload started: {} writes/s to {}",
        load.rate_per_s, load.connect
    );

    let plan = state.plan.clone();
    eprintln!("== zkmigrate plan");
    expect(
        zkmigrate(layout, &state, opts, &["plan", "-f", &plan])?,
        &[0],
        "plan",
    )?;

    eprintln!("== zkmigrate step: preflight, services, clients (stops for the operator)");
    expect(
        zkmigrate(
            layout,
            &state,
            opts,
            &["step", "-f", &plan, "--until", "clients", "--yes"],
        )?,
        &[4],
        "step --until clients",
    )?;

    let services: Vec<String> = (1..=opts.servers)
        .map(|id| format!("zk-{id}.zookeeper.svc.cluster.local:2181"))
        .collect();
    eprintln!("== the operator moves the clients to the Service names");
    let moved = workload::reconnect(layout, &services.join(","))?;
    eprintln!(
        "workload switched to the Service names (ephemeral session kept: {})",
        moved.ephemeral_kept
    );

    eprintln!("== zkmigrate step: peers, replace, finalize");
    expect(
        zkmigrate(
            layout,
            &state,
            opts,
            &[
                "step",
                "-f",
                &plan,
                "--all",
                "--yes",
                "--resume",
                "--confirm",
                "clients",
            ],
        )?,
        &[0],
        "step --all",
    )?;

    eprintln!("== zkmigrate status");
    expect(
        zkmigrate(layout, &state, opts, &["status", "-f", &plan])?,
        &[0],
        "status",
    )?;

    workload::stop(layout)?;
    let text = workload::report(layout)?;
    let report: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| LabError::Stuck(format!("the workload's report is not JSON ({e}): {text}")))?;
    Ok(DemoOutcome {
        report,
        elapsed: started.elapsed(),
    })
}

/// `zkmigrate ARGS` on the operator machine, its output on our terminal.
fn zkmigrate(
    layout: &Layout,
    state: &LabState,
    opts: &DemoOptions,
    args: &[&str],
) -> Result<ExitStatus, LabError> {
    let log = std::env::var("ZKMIGRATE_LOG").unwrap_or_else(|_| "warn".into());
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &layout.ns(Machine::Ops), "env"])
        .arg(format!("KUBECONFIG={}", state.kubeconfig))
        .arg(format!("ZKMIGRATE_LOG={log}"))
        .arg(&opts.zkmigrate)
        .args(args);
    command.status().map_err(|source| LabError::Spawn {
        command: format!("zkmigrate {}", args.join(" ")),
        source,
    })
}

fn expect(status: ExitStatus, codes: &[i32], what: &str) -> Result<(), LabError> {
    match status.code() {
        Some(code) if codes.contains(&code) => Ok(()),
        code => Err(LabError::Stuck(format!(
            "zkmigrate {what} exited with {code:?}, expected {codes:?} (its messages are above)"
        ))),
    }
}

/// The one-paragraph human summary of a report.
pub fn summary(report: &serde_json::Value, elapsed: Duration) -> String {
    format!(
        "{} writes acknowledged, {} lost, {} leader elections, {} ms without acknowledgements \
         (longest gap {} ms); ephemeral znode survived: {}; sessions expired: {}. \
         The demo took {} s.",
        report["acked"],
        report["lost"],
        report["elections"],
        report["unavailable_ms"],
        report["max_gap_ms"],
        report["ephemeral_survived"],
        report["sessions_expired"],
        elapsed.as_secs()
    )
}

/// Whether the demo proved its point: nothing acknowledged was lost.
pub fn succeeded(report: &serde_json::Value) -> bool {
    report["lost"] == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_figure_of_the_report() {
        let report = serde_json::json!({"acked": 6362, "lost": 0, "duplicates": 0, "errors": 3,
            "max_gap_ms": 1551, "unavailable_ms": 2497, "elections": 2,
            "ephemeral_survived": true, "sessions_expired": 0, "duration_s": 60.1});
        let s = summary(&report, Duration::from_secs(69));
        assert_eq!(
            s,
            "6362 writes acknowledged, 0 lost, 2 leader elections, 2497 ms without \
             acknowledgements (longest gap 1551 ms); ephemeral znode survived: true; \
             sessions expired: 0. The demo took 69 s."
        );
        assert!(succeeded(&report));
        assert!(!succeeded(&serde_json::json!({"lost": 1})));
    }
}
