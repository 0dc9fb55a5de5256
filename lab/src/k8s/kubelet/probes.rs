//! Readiness and liveness probes: what to run (`exec`, `tcpSocket`,
//! `httpGet`), running it against a container, and the threshold
//! bookkeeping of `pkg/kubelet/prober/worker.go`.
//!
//! Where it sits: the Pod worker asks each container's [`ProbeTracker`]
//! whether a probe is due, runs [`run`] on a task of its own, and feeds the
//! outcome back; the tracker says whether the result changed (readiness
//! flips, or liveness asks for a restart). `exec` runs the command inside
//! the container (`nsenter` into the mount, network, PID, UTS and IPC
//! namespaces of its PID 1, with its root, working directory and
//! environment); `tcpSocket` and `httpGet` connect from the Pod's network
//! namespace, as the real kubelet connects to the Pod IP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::time::Instant;

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    Exec(Vec<String>),
    Tcp(SocketAddr),
    Http { addr: SocketAddr, path: String },
}

/// A probe's port: a number, or the name of one of the container's ports.
fn port(p: &IntOrString, c: &Container) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .ok_or_else(|| format!("couldn't find port {name} in container")),
    }
}

/// The action of `probe` of container `c` on a Pod with address `pod_ip`.
pub fn action(
    probe: &Probe,
    c: &Container,
    pod_ip: std::net::Ipv4Addr,
) -> Result<ProbeAction, String> {
    let addr = |host: &Option<String>, p: u16| -> Result<SocketAddr, String> {
        let ip = match host.as_deref() {
            None | Some("") => pod_ip,
            Some(h) => h
                .parse()
                .map_err(|_| format!("unsupported probe host {h}"))?,
        };
        Ok(SocketAddr::from((ip, p)))
    };
    if let Some(e) = &probe.exec {
        return Ok(ProbeAction::Exec(e.command.clone().unwrap_or_default()));
    }
    if let Some(t) = &probe.tcp_socket {
        return Ok(ProbeAction::Tcp(addr(&t.host, port(&t.port, c)?)?));
    }
    if let Some(h) = &probe.http_get {
        if h.scheme.as_deref().is_some_and(|s| s != "HTTP") {
            return Err("only HTTP probes are supported by the lab's kubelet".into());
        }
        return Ok(ProbeAction::Http {
            addr: addr(&h.host, port(&h.port, c)?)?,
            path: h.path.clone().unwrap_or_else(|| "/".into()),
        });
    }
    Err("probe has no handler (exec, tcpSocket or httpGet)".into())
}

/// Where a probe runs.
pub struct Target<'a> {
    pub netns: &'a str,
    /// The container's PID 1 on the host (for exec).
    pub pid: Option<u32>,
    pub env: &'a [(String, String)],
}

/// Runs `action` once; `Ok` on success, the failure's description
/// otherwise.
pub async fn run(
    action: &ProbeAction,
    target: Target<'_>,
    timeout: Duration,
) -> Result<(), String> {
    match action {
        ProbeAction::Exec(argv) => {
            let pid = target.pid.ok_or("container is not running")?;
            if argv.is_empty() {
                return Err("exec probe has no command".into());
            }
            let secs = timeout.as_secs().max(1).to_string();
            let mut cmd = tokio::process::Command::new("nsenter");
            cmd.args([
                "-t",
                &pid.to_string(),
                "-m",
                "-n",
                "-p",
                "-u",
                "-i",
                "-r",
                "-w",
                "--",
            ])
            // Bounds the command inside the container too: killing
            // nsenter alone would leave it running there.
            .args(["timeout", "-s", "KILL", &secs])
            .args(argv)
            .env_clear()
            .envs(target.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
            let out = tokio::time::timeout(timeout + Duration::from_secs(2), cmd.output())
                .await
                .map_err(|_| format!("command timed out after {timeout:?}"))?
                .map_err(|e| format!("failed to run nsenter: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                Err(format!(
                    "command {argv:?} exited with {:?}: {}",
                    out.status.code(),
                    text.trim()
                ))
            }
        }
        ProbeAction::Tcp(addr) => {
            let addr = *addr;
            in_pod(target.netns, move || {
                TcpStream::connect_timeout(&addr, timeout)
                    .map(|_| ())
                    .map_err(|e| format!("dial tcp {addr}: {e}"))
            })
            .await
        }
        ProbeAction::Http { addr, path } => {
            let (addr, path) = (*addr, path.clone());
            in_pod(target.netns, move || http_get(addr, &path, timeout)).await
        }
    }
}

async fn in_pod(
    netns: &str,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    let ns = netns.to_string();
    tokio::task::spawn_blocking(move || crate::netns::in_ns(&ns, f))
        .await
        .map_err(|e| format!("probe task failed: {e}"))?
        .map_err(|e| e.to_string())?
}

/// One GET as `pkg/probe/http` makes it; 200..399 is success.
fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("dial tcp {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| format!("read {addr}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad HTTP response from {addr}"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// The timing and threshold state of one probe of one container run.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    pub action: ProbeAction,
    period: Duration,
    pub timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    next_due: Instant,
    last: Option<bool>,
    run: u32,
    /// The published result: readiness starts false, liveness true.
    pub result: bool,
    pub in_flight: bool,
}

impl ProbeTracker {
    /// A tracker for a container started at `started`, with the API's
    /// defaults (period 10 s, timeout 1 s, thresholds 1 and 3).
    pub fn new(
        probe: &Probe,
        action: ProbeAction,
        started: Instant,
        initial: bool,
    ) -> ProbeTracker {
        let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
        ProbeTracker {
            action,
            period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            next_due: started + secs(probe.initial_delay_seconds, 0),
            last: None,
            run: 0,
            result: initial,
            in_flight: false,
        }
    }

    /// Whether a probe should start now (and marks it started).
    pub fn due(&mut self, now: Instant) -> bool {
        if self.in_flight || now < self.next_due {
            return false;
        }
        self.in_flight = true;
        self.next_due = now + self.period;
        true
    }

    /// Records one outcome; returns whether the published result changed.
    pub fn record(&mut self, ok: bool) -> bool {
        self.in_flight = false;
        if self.last == Some(ok) {
            self.run += 1;
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let threshold = if ok {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run < threshold || self.result == ok {
            return false;
        }
        self.result = ok;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn actions_resolve_named_ports_and_the_pod_ip() {
        let c: Container = serde_json::from_value(json!({"name": "zk",
            "ports": [{"name": "client", "containerPort": 2181}]}))
        .unwrap();
        let ip = std::net::Ipv4Addr::new(10, 244, 0, 2);
        assert_eq!(
            action(&probe(json!({"tcpSocket": {"port": "client"}})), &c, ip).unwrap(),
            ProbeAction::Tcp("10.244.0.2:2181".parse().unwrap())
        );
        assert_eq!(
            action(
                &probe(json!({"httpGet": {"port": 8080, "path": "/commands/ruok"}})),
                &c,
                ip
            )
            .unwrap(),
            ProbeAction::Http {
                addr: "10.244.0.2:8080".parse().unwrap(),
                path: "/commands/ruok".into()
            }
        );
        assert!(action(&probe(json!({"tcpSocket": {"port": "nope"}})), &c, ip).is_err());
        assert!(action(&probe(json!({})), &c, ip).is_err());
    }

    #[test]
    fn thresholds_gate_changes_as_the_prober_worker_does() {
        let p = probe(json!({"exec": {"command": ["true"]}, "periodSeconds": 2,
            "initialDelaySeconds": 5, "successThreshold": 2, "failureThreshold": 3}));
        let t0 = Instant::now();
        let mut t = ProbeTracker::new(&p, ProbeAction::Exec(vec![]), t0, false);
        assert!(!t.due(t0), "initial delay");
        assert!(t.due(t0 + Duration::from_secs(5)));
        assert!(
            !t.due(t0 + Duration::from_secs(6)),
            "one in flight at a time"
        );
        assert!(!t.record(true), "one success of two");
        assert!(!t.due(t0 + Duration::from_secs(6)), "period");
        assert!(t.due(t0 + Duration::from_secs(7)));
        assert!(t.record(true), "second success: ready");
        assert!(t.result);
        assert!(!t.record(false) && !t.record(false));
        assert!(!t.record(true), "a success resets the failure run");
        assert!(!t.record(false) && !t.record(false));
        assert!(t.record(false), "third consecutive failure: unready");
        assert!(!t.result);
    }
}
