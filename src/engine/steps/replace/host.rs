//! The host side of `replace`: fencing a host for good (DESIGN 2, "one
//! identity, one process") and bringing it back on rollback.
//!
//! A fenced host is one where ZooKeeper's ports (the plan's client, quorum
//! and election ports) are closed and `<dataDir>/myid` has been moved to
//! `<dataDir>/myid.zkmigrate-fenced`: a ZooKeeper started by accident
//! (config management, an operator) finds no myid and refuses to join as
//! server N. That, and the plan's `service.disable`, is the fence.
//!
//! Order of the fence: disable first, then stop, then wait for the ports,
//! then move myid. Disabling first closes the window in which a supervisor
//! or config management run could start the service again between the stop
//! and the disable. The myid is moved only once the ports are closed: a
//! host whose service will not stop keeps its myid and keeps serving, and
//! the action refuses, with nothing else changed but the disable (which the
//! refusal names, with the command that undoes it).
//!
//! zkmigrate trusts the plan's disable command: it never runs `start` to
//! test it (a broken disable would start ZooKeeper). Instead the fence is
//! re-checked (ports closed, myid moved) right before the Pod of the server
//! is created ([`super::pod`]), and by `finalize` on every host.

use std::time::{Duration, Instant};

use crate::engine::action::Action;
use crate::engine::context::{Ctx, StepError};
use crate::hosts::HostSession;
use crate::plan::ServerId;
use crate::zoocfg::ZooCfg;

/// ZooKeeper's default `dataDir` when zoo.cfg sets none (as `world` reads it).
const DEFAULT_DATA_DIR: &str = "/var/lib/zookeeper";
/// Where myid goes while the host is fenced.
pub const FENCED_SUFFIX: &str = ".zkmigrate-fenced";

/// What one look at a host showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceState {
    /// The plan's ports that listen on the host.
    pub listening: Vec<u16>,
    /// `<dataDir>/myid` is there.
    pub myid_present: bool,
    /// `<dataDir>/myid.zkmigrate-fenced` is there.
    pub fenced_present: bool,
    /// The host's `dataDir`.
    pub data_dir: String,
}

impl FenceState {
    /// Ports closed and myid moved aside.
    pub fn is_fenced(&self) -> bool {
        self.listening.is_empty() && !self.myid_present && self.fenced_present
    }

    /// What was seen, for messages.
    pub fn describe(&self) -> String {
        let ports = if self.listening.is_empty() {
            "no ZooKeeper port listening".to_string()
        } else {
            format!("listening on {}", join_ports(&self.listening))
        };
        let myid = match (self.myid_present, self.fenced_present) {
            (true, false) => format!("{}/myid in place", self.data_dir),
            (false, true) => format!("myid moved to {}/myid{FENCED_SUFFIX}", self.data_dir),
            (true, true) => format!(
                "both {0}/myid and {0}/myid{FENCED_SUFFIX} present",
                self.data_dir
            ),
            (false, false) => format!("no myid in {}", self.data_dir),
        };
        format!("{ports}; {myid}")
    }

    fn myid_path(&self) -> String {
        format!("{}/myid", self.data_dir)
    }

    fn fenced_path(&self) -> String {
        format!("{}/myid{FENCED_SUFFIX}", self.data_dir)
    }
}

pub fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plan's ZooKeeper ports.
pub fn zk_ports(ctx: &Ctx) -> [u16; 3] {
    let e = &ctx.plan.ensemble;
    [e.client_port, e.quorum_port, e.election_port]
}

/// The host's `dataDir`, from its zoo.cfg.
async fn data_dir(ctx: &Ctx, session: &HostSession) -> Result<String, StepError> {
    let path = &ctx.plan.ensemble.config_path;
    let text = session.read_file(path).await?.ok_or_else(|| {
        StepError::Other(format!(
            "read {path} on server {} ({}): no such file",
            session.server_id(),
            session.host()
        ))
    })?;
    let cfg = ZooCfg::parse(&String::from_utf8_lossy(&text)).map_err(|e| {
        StepError::Other(format!(
            "parse {path} of server {}: {e}",
            session.server_id()
        ))
    })?;
    Ok(cfg
        .data_dir()
        .unwrap_or(DEFAULT_DATA_DIR)
        .trim_end_matches('/')
        .to_string())
}

/// Looks at the host: ports, myid, moved-aside myid.
pub async fn observe_fence(ctx: &Ctx, session: &HostSession) -> Result<FenceState, StepError> {
    let data_dir = data_dir(ctx, session).await?;
    let listening = session.ports_listening(&zk_ports(ctx)).await?;
    let myid_present = session.file_exists(&format!("{data_dir}/myid")).await?;
    let fenced_present = session
        .file_exists(&format!("{data_dir}/myid{FENCED_SUFFIX}"))
        .await?;
    Ok(FenceState {
        listening,
        myid_present,
        fenced_present,
        data_dir,
    })
}

/// Connects and looks.
pub async fn fence_state(ctx: &Ctx, id: ServerId) -> Result<FenceState, StepError> {
    let session = ctx.session(id).await?;
    let state = observe_fence(ctx, &session).await;
    let _ = session.close().await;
    state
}

/// Disables and stops the host's ZooKeeper, waits until its ports are
/// closed, moves myid aside (see the module header for the order).
pub async fn fence(ctx: &Ctx, action: &Action, id: ServerId) -> Result<(), StepError> {
    let session = ctx.session(id).await?;
    let result = fence_on(ctx, action, id, &session).await;
    let _ = session.close().await;
    result
}

async fn fence_on(
    ctx: &Ctx,
    action: &Action,
    id: ServerId,
    session: &HostSession,
) -> Result<(), StepError> {
    let service = &ctx.plan.ensemble.service;
    let plan_file = ctx.plan_file.display();
    session.run_checked(&service.disable).await?;
    tracing::info!(server_id = %id, command = %service.disable, "host service disabled");
    let stop = session.run(&service.stop).await?;
    if !stop.success() {
        return Err(StepError::refused(
            action,
            format!(
                "`{}` exited {} on {}: {}",
                service.stop,
                stop.status,
                session.host(),
                stop.stderr_text()
            ),
            "the host's ZooKeeper stopped",
            format!(
                "The service was disabled (`{}`); myid was not moved and no Pod was created. Fix the stop command, then `zkmigrate step -f {plan_file} --resume`, or undo with `{}` on {}.",
                service.disable,
                service.enable,
                session.host()
            ),
        ));
    }
    let listening = await_ports_closed(ctx, id, session).await?;
    if !listening.is_empty() {
        let timeout = ctx.plan.policy.progress_deadline;
        return Err(StepError::refused(
            action,
            format!(
                "ports {} still listening on {} {} after `{}` succeeded",
                join_ports(&listening),
                session.host(),
                humantime::format_duration(timeout),
                service.stop
            ),
            format!(
                "ports {} closed (ZooKeeper stopped for good)",
                join_ports(&zk_ports(ctx))
            ),
            format!(
                "The service was disabled (`{}`), its myid was NOT moved and no Pod was created: server {id} still runs on its host. Find what holds the ports (`ss -ltnp` on {}), make `{}` stop it, then `zkmigrate step -f {plan_file} --resume`; or undo with `{}` on the host.",
                service.disable,
                session.host(),
                service.stop,
                service.enable
            ),
        ));
    }
    let state = observe_fence(ctx, session).await?;
    if state.myid_present {
        session
            .rename(&state.myid_path(), &state.fenced_path())
            .await?;
        tracing::info!(server_id = %id, to = %state.fenced_path(), "myid moved aside");
    } else if !state.fenced_present {
        return Err(StepError::refused(
            action,
            format!(
                "neither {} nor {} exists",
                state.myid_path(),
                state.fenced_path()
            ),
            format!("{} to move aside", state.myid_path()),
            format!(
                "The host's ZooKeeper is stopped and disabled. Restore {} (it holds {id}), then `zkmigrate step -f {plan_file} --resume`.",
                state.myid_path()
            ),
        ));
    }
    Ok(())
}

/// Polls the host's socket table every `pollInterval` until none of the
/// ZooKeeper ports listens or `progressDeadline` passes; returns what still
/// listens (empty: closed). There is no event to watch on a remote host,
/// so this is a bounded poll of the condition itself.
async fn await_ports_closed(
    ctx: &Ctx,
    id: ServerId,
    session: &HostSession,
) -> Result<Vec<u16>, StepError> {
    let ports = zk_ports(ctx);
    let bar = ctx.progress.wait(&format!(
        "host of server {id}: ports {} closed",
        join_ports(&ports)
    ));
    let deadline = Instant::now() + ctx.plan.policy.progress_deadline;
    loop {
        let listening = session.ports_listening(&ports).await?;
        if listening.is_empty() {
            bar.finish("closed");
            return Ok(listening);
        }
        bar.set_message(format!("still listening: {}", join_ports(&listening)));
        if Instant::now() >= deadline {
            bar.abandon(format!("still listening: {}", join_ports(&listening)));
            return Ok(listening);
        }
        tokio::time::sleep(ctx.plan.policy.poll_interval.max(Duration::from_millis(50))).await;
    }
}

/// Rollback of the fence: myid back, enable, start. The caller has made
/// sure no Pod runs the id.
pub async fn unfence(ctx: &Ctx, id: ServerId) -> Result<(), StepError> {
    let session = ctx.session(id).await?;
    let result = async {
        let state = observe_fence(ctx, &session).await?;
        if !state.myid_present && state.fenced_present {
            session
                .rename(&state.fenced_path(), &state.myid_path())
                .await?;
            tracing::info!(server_id = %id, "myid moved back");
        }
        let service = &ctx.plan.ensemble.service;
        session.run_checked(&service.enable).await?;
        session.run_checked(&service.start).await?;
        tracing::info!(server_id = %id, "host service enabled and started");
        Ok(())
    }
    .await;
    let _ = session.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(listening: Vec<u16>, myid: bool, fenced: bool) -> FenceState {
        FenceState {
            listening,
            myid_present: myid,
            fenced_present: fenced,
            data_dir: "/var/lib/zookeeper".into(),
        }
    }

    #[test]
    fn fenced_means_ports_closed_and_myid_moved() {
        assert!(state(vec![], false, true).is_fenced());
        assert!(!state(vec![2181], false, true).is_fenced());
        assert!(!state(vec![], true, true).is_fenced());
        assert!(!state(vec![], true, false).is_fenced());
        assert!(!state(vec![], false, false).is_fenced());
    }

    #[test]
    fn the_state_says_what_was_seen() {
        assert_eq!(
            state(vec![2181, 3888], true, false).describe(),
            "listening on 2181, 3888; /var/lib/zookeeper/myid in place"
        );
        assert_eq!(
            state(vec![], false, true).describe(),
            "no ZooKeeper port listening; myid moved to /var/lib/zookeeper/myid.zkmigrate-fenced"
        );
    }
}
