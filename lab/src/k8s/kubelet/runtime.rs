//! Running one container of a Pod worker: "pull", start, exit, restart with
//! back-off, probes.
//!
//! Where it sits: `worker::sync` calls [`PodWorker::drive`] for each
//! container in turn; process exits and probe outcomes come back as
//! [`Event`]s. Back-off is client-go's `flowcontrol.Backoff` as the kubelet
//! uses it (`pkg/kubelet/kuberuntime/kuberuntime_manager.go` `doBackOff`,
//! `pkg/kubelet/images/image_manager.go`), in `backoff`.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::container::{self, EnvSources};
use super::image::{self, ImageConfig};
use super::logs;
use super::probes::{self, ProbeTracker};
use super::sandbox::{self, Mount, SandboxSpec};
use super::status::{ContainerStatus, State, exit_reason};
use super::worker::PodWorker;
use crate::k8s::resources;
use crate::k8s::store::now_rfc3339;

/// How long `ErrImagePull` shows before `ImagePullBackOff`.
const PULL_ERROR_SHOWN: Duration = Duration::from_millis(800);

/// What comes back to a worker from its containers' tasks.
#[derive(Debug)]
pub(crate) enum Event {
    Exited {
        init: bool,
        index: usize,
        run: u64,
        code: i32,
    },
    Probe {
        index: usize,
        run: u64,
        liveness: bool,
        result: Result<(), String>,
    },
}

/// One run of a container.
pub(crate) struct Run {
    id: u64,
    pid: Option<u32>,
    env: Vec<(String, String)>,
    started_at: String,
    container_id: String,
}

/// A container of the Pod and what the kubelet knows of it.
pub(crate) struct Slot {
    pub spec: Container,
    pub status: ContainerStatus,
    image: Option<ImageConfig>,
    pub run: Option<Run>,
    runs: u64,
    crash_backoff: Backoff,
    pull_backoff: Backoff,
    pull_failed_at: Option<Instant>,
    finished_at: Option<Instant>,
    last_exit: Option<i32>,
    next_try: Option<Instant>,
    readiness: Option<ProbeTracker>,
    liveness: Option<ProbeTracker>,
    /// The Pod is terminating: never start again.
    pub stopping: bool,
}

impl Slot {
    pub fn new(spec: Container) -> Slot {
        let image = spec.image.clone().unwrap_or_default();
        Slot {
            status: ContainerStatus::new(&spec.name, &image),
            spec,
            image: None,
            run: None,
            runs: 0,
            crash_backoff: Backoff::default(),
            pull_backoff: Backoff::default(),
            pull_failed_at: None,
            finished_at: None,
            last_exit: None,
            next_try: None,
            readiness: None,
            liveness: None,
            stopping: false,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.run.is_none() && self.last_exit == Some(0)
    }

    pub fn pid(&self) -> Option<u32> {
        self.run.as_ref().and_then(|r| r.pid)
    }
}

fn io_message(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("failed to {what} {}: {e}", p.display())
}

impl PodWorker {
    fn slot(&mut self, init: bool, i: usize) -> &mut Slot {
        if init {
            &mut self.init[i]
        } else {
            &mut self.main[i]
        }
    }

    /// Brings container `i` one step towards what the spec asks: probe it
    /// if it runs, restart it (after back-off) if the policy says so, or
    /// start it for the first time.
    pub(crate) async fn drive(&mut self, init: bool, i: usize, policy: &str) {
        let (base, max) = (self.ctx.cfg.backoff_base, self.ctx.cfg.backoff_max);
        let pod_ref = format!("{}_{}({})", self.name, self.namespace, self.uid);
        let pod_name = self.name.clone();
        let layout = self.ctx.cfg.layout.clone();
        let now = Instant::now();
        let slot = self.slot(init, i);
        if slot.stopping || slot.next_try.is_some_and(|t| now < t) {
            return;
        }
        if slot.run.is_some() {
            if !init {
                self.probe(i, now);
            }
            return;
        }
        if let (Some(code), Some(finished)) = (slot.last_exit, slot.finished_at) {
            let restart = match policy {
                "Always" => true,
                "OnFailure" => code != 0,
                _ => false,
            };
            if !restart {
                return;
            }
            if let Some(d) = slot.crash_backoff.in_backoff(finished, now, max) {
                if let State::Terminated { .. } = slot.status.state {
                    slot.status.last = Some(slot.status.state.clone());
                }
                slot.status.state = State::waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {} restarting failed container={} pod={pod_ref}",
                        humantime::format_duration(d),
                        slot.spec.name
                    )),
                );
                return;
            }
            slot.crash_backoff.next(finished, base, max);
        }
        if slot.image.is_none() {
            let name = slot.spec.image.clone().unwrap_or_default();
            if let Some(failed) = slot.pull_failed_at
                && slot.pull_backoff.in_backoff(failed, now, max).is_some()
            {
                // The failed pull stays visible for a moment, as it does
                // until the real kubelet's next sync of the Pod.
                if now.saturating_duration_since(failed) < PULL_ERROR_SHOWN {
                    return;
                }
                slot.status.state = State::waiting(
                    "ImagePullBackOff",
                    Some(format!("Back-off pulling image \"{name}\"")),
                );
                return;
            }
            match image::pull(&layout, &name) {
                Ok(img) => {
                    slot.status.image = img.reference.clone();
                    slot.status.image_id = img.id.clone();
                    slot.image = Some(img);
                }
                Err(e) => {
                    tracing::warn!(pod = %pod_name, container = %slot.spec.name, image = %name, "failed to pull image");
                    slot.pull_backoff.next(now, base, max);
                    slot.pull_failed_at = Some(now);
                    slot.status.state = State::waiting("ErrImagePull", Some(e.to_string()));
                    return;
                }
            }
        }
        if let Err((reason, message)) = self.start(init, i).await {
            let pod_name = self.name.clone();
            let slot = self.slot(init, i);
            tracing::warn!(pod = %pod_name, container = %slot.spec.name, reason, message = %message, "failed to start a container");
            slot.status.state = State::waiting(reason, Some(message));
            slot.next_try = Some(Instant::now() + Duration::from_secs(1));
        }
    }

    /// Starts container `i` (its image resolved, volumes ready).
    async fn start(&mut self, init: bool, i: usize) -> Result<(), (&'static str, String)> {
        let net = self
            .net
            .clone()
            .ok_or(("ContainerCreating", "no network yet".to_string()))?;
        let vols = self.volumes.clone().unwrap_or_default();
        let slot = if init { &self.init[i] } else { &self.main[i] };
        let (spec, img) = (
            slot.spec.clone(),
            slot.image.clone().ok_or(("ErrImagePull", String::new()))?,
        );
        let run_index = if slot.runs == 0 {
            0
        } else {
            slot.status.restart_count + 1
        };
        let store = self.ctx.store.clone();
        let ns = self.namespace.clone();
        let configmap = move |name: &str| store.get(resources::configmaps(), &ns, name).ok();
        let (services, _) = self
            .ctx
            .store
            .list(resources::services(), Some(&self.namespace));
        let mut services = services;
        if self.namespace != "default" {
            services.extend(
                self.ctx
                    .store
                    .get(resources::services(), "default", "kubernetes")
                    .ok(),
            );
        }
        let hostname = self.hostname();
        let src = EnvSources {
            pod: &self.raw,
            pod_ip: net.ip.to_string(),
            host_ip: self.ctx.cfg.host_ip.to_string(),
            hostname: hostname.clone(),
            configmap: &configmap,
            services,
        };
        let (env, kubelet_env) =
            container::environment(&img, &spec, &src).map_err(|e| (e.reason, e.message))?;
        let argv = container::argv(&img, &spec, &kubelet_env).map_err(|e| (e.reason, e.message))?;

        let cdir = self.pod_dir.join(&spec.name);
        let mut mounts = Vec::new();
        let targets: Vec<String> = spec
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.trim_end_matches('/').to_string())
            .collect();
        // The image's declared volumes: fresh for every run, as a new
        // container's are.
        for d in img.writable_dirs.iter().filter(|d| !targets.contains(d)) {
            let p = cdir.join("rootfs").join(d.trim_start_matches('/'));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p)
                .map_err(|e| ("RunContainerError", io_message("create", &p, e)))?;
            mounts.push(Mount {
                source: p,
                target: d.clone(),
                read_only: false,
            });
        }
        for m in spec.volume_mounts.iter().flatten() {
            let vol = vols.get(&m.name).ok_or((
                "CreateContainerConfigError",
                format!(
                    "cannot find volume \"{}\" to mount into container \"{}\"",
                    m.name, spec.name
                ),
            ))?;
            let mut source = vol.path.clone();
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if sub.split('/').any(|c| c == "..") || sub.starts_with('/') {
                    return Err((
                        "CreateContainerConfigError",
                        format!("invalid subPath {sub:?}"),
                    ));
                }
                source = source.join(sub);
                if !vol.read_only && !source.exists() {
                    std::fs::create_dir_all(&source).map_err(|e| {
                        (
                            "CreateContainerConfigError",
                            io_message("create", &source, e),
                        )
                    })?;
                }
            }
            mounts.push(Mount {
                source,
                target: m.mount_path.clone(),
                read_only: vol.read_only || m.read_only == Some(true),
            });
        }
        let sandbox = SandboxSpec {
            netns: net.ns.clone(),
            hostname,
            image_dir: self.ctx.cfg.image_dir.clone(),
            mounts,
            working_dir: spec
                .working_dir
                .clone()
                .unwrap_or_else(|| img.working_dir.clone()),
            argv,
        };
        std::fs::create_dir_all(&cdir)
            .map_err(|e| ("RunContainerError", io_message("create", &cdir, e)))?;
        let log = logs::log_path(
            &self.ctx.cfg.pods_dir,
            &self.namespace,
            &self.name,
            &self.uid,
            &spec.name,
            run_index,
        );
        let status_file = cdir.join(format!("bwrap-{run_index}.json"));
        let running = sandbox::spawn(&sandbox, &self.ctx.root, &env, &log, &status_file)
            .map_err(|e| ("RunContainerError", e.to_string()))?;
        let mut child = running.child;
        let pid = sandbox::await_child_pid(&status_file, Duration::from_secs(5)).await;
        logs::prune(&cdir, run_index);

        let slot = self.slot(init, i);
        slot.runs += 1;
        let run_id = slot.runs;
        let events = self.events.clone();
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(s) => sandbox::exit_code(s),
                Err(_) => -1,
            };
            let _ = events.send(Event::Exited {
                init,
                index: i,
                run: run_id,
                code,
            });
        });
        let container_id = format!("zklab://{}-{}-{run_index}", &self.uid, spec.name);
        let pod_name = self.name.clone();
        let slot = self.slot(init, i);
        if run_index > 0 {
            slot.status.restart_count = run_index;
        }
        if let State::Terminated { .. } = slot.status.state {
            slot.status.last = Some(slot.status.state.clone());
        }
        let started_at = now_rfc3339();
        slot.status.state = State::Running {
            started_at: started_at.clone(),
        };
        slot.status.container_id = Some(container_id.clone());
        let started = Instant::now();
        let action = |p: &k8s_openapi::api::core::v1::Probe| probes::action(p, &spec, net.ip);
        slot.readiness = spec.readiness_probe.as_ref().filter(|_| !init).map(|p| {
            ProbeTracker::new(
                p,
                action(p).unwrap_or(probes::ProbeAction::Exec(vec![])),
                started,
                false,
            )
        });
        slot.liveness = spec.liveness_probe.as_ref().filter(|_| !init).map(|p| {
            ProbeTracker::new(
                p,
                action(p).unwrap_or(probes::ProbeAction::Exec(vec![])),
                started,
                true,
            )
        });
        slot.status.ready = slot.readiness.is_none() && !init;
        slot.run = Some(Run {
            id: run_id,
            pid,
            env,
            started_at,
            container_id,
        });
        tracing::info!(pod = %pod_name, container = %spec.name, pid, restart = run_index, "container started");
        Ok(())
    }

    /// Starts the probes of container `i` that are due.
    fn probe(&mut self, i: usize, now: Instant) {
        let netns = self.net.as_ref().map(|n| n.ns.clone()).unwrap_or_default();
        let slot = &mut self.main[i];
        let Some(run) = &slot.run else { return };
        for liveness in [false, true] {
            let tracker = if liveness {
                &mut slot.liveness
            } else {
                &mut slot.readiness
            };
            let Some(t) = tracker.as_mut() else { continue };
            if !t.due(now) {
                continue;
            }
            let (action, timeout) = (t.action.clone(), t.timeout);
            let (netns, pid, env, run_id) = (netns.clone(), run.pid, run.env.clone(), run.id);
            let events = self.events.clone();
            tokio::spawn(async move {
                let target = probes::Target {
                    netns: &netns,
                    pid,
                    env: &env,
                };
                let result = probes::run(&action, target, timeout).await;
                let _ = events.send(Event::Probe {
                    index: i,
                    run: run_id,
                    liveness,
                    result,
                });
            });
        }
    }

    /// Takes in a process exit or a probe outcome.
    pub(crate) fn handle(&mut self, ev: Event) {
        match ev {
            Event::Exited {
                init,
                index,
                run,
                code,
            } => {
                let name = self.name.clone();
                let slot = self.slot(init, index);
                if slot.run.as_ref().is_none_or(|r| r.id != run) {
                    return;
                }
                let Some(r) = slot.run.take() else { return };
                tracing::info!(pod = %name, container = %slot.spec.name, code, "container exited");
                slot.status.state = State::Terminated {
                    exit_code: code,
                    reason: exit_reason(code).into(),
                    started_at: r.started_at,
                    finished_at: now_rfc3339(),
                    container_id: r.container_id,
                };
                slot.status.ready = false;
                slot.last_exit = Some(code);
                slot.finished_at = Some(Instant::now());
                slot.readiness = None;
                slot.liveness = None;
            }
            Event::Probe {
                index,
                run,
                liveness,
                result,
            } => {
                let grace = self
                    .spec
                    .termination_grace_period_seconds
                    .unwrap_or(30)
                    .max(0) as u64;
                let name = self.name.clone();
                let slot = &mut self.main[index];
                let Some(r) = slot.run.as_ref().filter(|r| r.id == run) else {
                    return;
                };
                let pid = r.pid;
                let tracker = if liveness {
                    &mut slot.liveness
                } else {
                    &mut slot.readiness
                };
                let Some(t) = tracker.as_mut() else { return };
                if let Err(why) = &result {
                    tracing::debug!(pod = %name, container = %slot.spec.name, liveness, why = %why, "probe failed");
                }
                if !t.record(result.is_ok()) {
                    return;
                }
                let ok = t.result;
                if !liveness {
                    tracing::info!(pod = %name, container = %slot.spec.name, ready = ok, "readiness changed");
                    slot.status.ready = ok;
                } else if !ok {
                    tracing::info!(pod = %name, container = %slot.spec.name, "liveness probe failed: restarting");
                    slot.liveness = None;
                    if let Some(pid) = pid {
                        tokio::spawn(async move {
                            sandbox::signal(pid, "TERM").await;
                            tokio::time::sleep(Duration::from_secs(grace)).await;
                            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                                sandbox::signal(pid, "KILL").await;
                            }
                        });
                    }
                }
            }
        }
    }
}
