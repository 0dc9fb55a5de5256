//! One Pod's worker: from binding to removal.
//!
//! Where it sits: the kubelet starts one per Pod bound to its node and
//! passes it every new version of the object (`None`: gone from the store).
//! Each wake-up (a change, a container exit, a probe result, a tick) runs
//! one level-based `sync`: network, volumes, init containers in order, then
//! containers, each started, probed or restarted (with back-off) as the
//! Pod's spec and restart policy say, and the status written when it
//! changed. A `deletionTimestamp` (or the object's disappearance) turns the
//! worker to `terminate`: SIGTERM, SIGKILL after the grace period, wait,
//! tear down, remove the object.
//!
//! Container start, back-off and probes are in `runtime`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::network::{self, PodNames, PodNetwork};
use super::runtime::{Event, Slot};
use super::status::{self, Conditions};
use super::{Ctx, logs, volumes};
use crate::k8s::error::ApiError;
use crate::k8s::resources;
use crate::k8s::store::{DeleteOptions, now_rfc3339};

/// How often a worker wakes without a reason.
const TICK: Duration = Duration::from_millis(250);

pub(crate) struct PodWorker {
    pub ctx: Arc<Ctx>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub raw: Value,
    pub spec: PodSpec,
    pub net: Option<PodNetwork>,
    pub pod_dir: std::path::PathBuf,
    pub volumes: Option<volumes::VolumeDirs>,
    pub volume_error: Option<String>,
    next_volume_sync: Instant,
    next_network_try: Instant,
    network_error: Option<String>,
    pub init: Vec<Slot>,
    pub main: Vec<Slot>,
    conds: Conditions,
    start_time: String,
    last_written: Option<Value>,
    pub events: mpsc::UnboundedSender<Event>,
}

/// Runs one Pod until it is removed (or the kubelet stops).
pub(crate) async fn run(ctx: Arc<Ctx>, mut rx: watch::Receiver<Option<Value>>) {
    let Some(raw) = rx.borrow_and_update().clone() else {
        return;
    };
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let mut w = match PodWorker::new(ctx, raw, events) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "a Pod the kubelet cannot read");
            return;
        }
    };
    let mut gone = false;
    loop {
        tokio::select! {
            changed = rx.changed() => match changed {
                Ok(()) => match rx.borrow_and_update().clone() {
                    Some(raw) => w.update(raw),
                    None => gone = true,
                },
                Err(_) => gone = true,
            },
            Some(ev) = events_rx.recv() => w.handle(ev),
            _ = tokio::time::sleep(TICK) => {}
        }
        if gone || w.raw["metadata"]["deletionTimestamp"].is_string() {
            w.terminate(gone, &mut events_rx).await;
            return;
        }
        w.sync().await;
        w.write_status();
    }
}

impl PodWorker {
    fn new(
        ctx: Arc<Ctx>,
        raw: Value,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<PodWorker, String> {
        let spec: PodSpec = serde_json::from_value(raw["spec"].clone())
            .map_err(|e| format!("bad Pod spec: {e}"))?;
        let md = &raw["metadata"];
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let (uid, namespace, name) = (s(&md["uid"]), s(&md["namespace"]), s(&md["name"]));
        let pod_dir = logs::pod_dir(&ctx.cfg.pods_dir, &namespace, &name, &uid);
        let slots = |cs: &Option<Vec<k8s_openapi::api::core::v1::Container>>| -> Vec<Slot> {
            cs.iter().flatten().map(|c| Slot::new(c.clone())).collect()
        };
        let now = Instant::now();
        Ok(PodWorker {
            init: slots(&spec.init_containers),
            main: slots(&Some(spec.containers.clone())),
            ctx,
            uid,
            namespace,
            name,
            raw,
            spec,
            net: None,
            pod_dir,
            volumes: None,
            volume_error: None,
            next_volume_sync: now,
            next_network_try: now,
            network_error: None,
            conds: Conditions::default(),
            start_time: now_rfc3339(),
            last_written: None,
            events,
        })
    }

    fn update(&mut self, raw: Value) {
        if let Ok(spec) = serde_json::from_value::<PodSpec>(raw["spec"].clone()) {
            // Only the image of a container may change in a running Pod;
            // the lab has one image, so the running spec is kept.
            for (slot, c) in self.main.iter_mut().zip(&spec.containers) {
                slot.spec.image = c.image.clone();
            }
            self.spec.active_deadline_seconds = spec.active_deadline_seconds;
        }
        self.raw = raw;
    }

    pub fn hostname(&self) -> String {
        let h = self
            .spec
            .hostname
            .clone()
            .unwrap_or_else(|| self.name.clone());
        h.chars().take(63).collect()
    }

    pub fn restart_policy(&self) -> &str {
        self.spec.restart_policy.as_deref().unwrap_or("Always")
    }

    /// One reconciliation pass.
    async fn sync(&mut self) {
        if self.net.is_none() {
            if Instant::now() < self.next_network_try {
                return;
            }
            if let Err(e) = self.setup_network().await {
                tracing::warn!(pod = %self.name, error = %e, "failed to set up the Pod's network");
                self.network_error = Some(e);
                self.next_network_try = Instant::now() + Duration::from_secs(2);
                return;
            }
            self.network_error = None;
        }
        if Instant::now() >= self.next_volume_sync {
            self.next_volume_sync = Instant::now() + self.ctx.cfg.configmap_refresh;
            match volumes::prepare(
                &self.spec,
                &self.namespace,
                &self.pod_dir,
                &self.ctx.cfg.volumes_dir,
                &self.ctx.store,
            ) {
                Ok(v) => {
                    self.volumes = Some(v);
                    self.volume_error = None;
                }
                Err(e) => {
                    if self.volume_error.as_deref() != Some(&e.to_string()) {
                        tracing::warn!(pod = %self.name, error = %e, "failed to set up a volume");
                    }
                    self.volume_error = Some(e.to_string());
                }
            }
        }
        if self.volumes.is_none() {
            return;
        }
        let policy = self.restart_policy().to_string();
        // Init containers: one at a time, in order, each to success.
        for i in 0..self.init.len() {
            if self.init[i].succeeded() {
                continue;
            }
            let init_policy = if policy == "Always" {
                "OnFailure"
            } else {
                policy.as_str()
            };
            self.drive(true, i, init_policy).await;
            return;
        }
        for i in 0..self.main.len() {
            self.drive(false, i, &policy).await;
        }
    }

    async fn setup_network(&mut self) -> Result<(), String> {
        let (n, ip) = self
            .ctx
            .alloc
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allocate()
            .ok_or("no Pod address is free")?;
        let net = PodNetwork {
            n,
            ns: self.ctx.cfg.layout.pod_ns(n),
            ip,
            port: format!("v-p{n}"),
        };
        let names = PodNames {
            namespace: self.namespace.clone(),
            hostname: self.hostname(),
            subdomain: self.spec.subdomain.clone(),
            cluster_domain: self.ctx.cfg.cluster_domain.clone(),
            nameserver: self.ctx.cfg.nameserver,
        };
        let (layout, bridge, n2) = (
            self.ctx.cfg.layout.clone(),
            self.ctx.cfg.bridge.clone(),
            net.clone(),
        );
        let result =
            tokio::task::spawn_blocking(move || network::setup(&layout, &bridge, &n2, &names))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(()) => {
                tracing::info!(pod = %self.name, ns = %net.ns, ip = %net.ip, "Pod network up");
                if let Err(e) = network::record(&self.pod_dir, &net) {
                    tracing::warn!(pod = %self.name, error = %e, "failed to record the Pod's network");
                }
                self.net = Some(net);
                Ok(())
            }
            Err(e) => {
                self.ctx
                    .alloc
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .release(n, ip);
                Err(e)
            }
        }
    }

    /// The status as the kubelet reports it now.
    fn render_status(&mut self) -> Value {
        let now = now_rfc3339();
        let init: Vec<status::ContainerStatus> =
            self.init.iter().map(|s| s.status.clone()).collect();
        let mut main: Vec<status::ContainerStatus> =
            self.main.iter().map(|s| s.status.clone()).collect();
        let blocked = self
            .network_error
            .clone()
            .or_else(|| self.volume_error.clone());
        let init_pending = init
            .iter()
            .any(|c| !matches!(c.state, status::State::Terminated { exit_code: 0, .. }));
        for c in &mut main {
            if let status::State::Waiting { reason, message } = &mut c.state
                && (reason == "ContainerCreating" || reason == "PodInitializing")
            {
                *reason = if init_pending && !init.is_empty() && blocked.is_none() {
                    "PodInitializing".into()
                } else {
                    "ContainerCreating".into()
                };
                if c.last.is_none() {
                    *message = blocked.clone();
                }
            }
        }
        let phase = status::phase(&init, &main, self.restart_policy());
        self.conds.set("PodScheduled", true, None, None, &now);
        self.conds.set(
            "PodReadyToStartContainers",
            self.net.is_some(),
            None,
            None,
            &now,
        );
        status::derive_conditions(&mut self.conds, &init, &main, phase, &now);
        let host_ip = self.ctx.cfg.host_ip.to_string();
        let mut s = json!({
            "phase": phase,
            "conditions": self.conds.to_json(),
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": self.start_time,
            "qosClass": "BestEffort",
            "containerStatuses": main.iter().map(status::ContainerStatus::to_json).collect::<Vec<_>>(),
        });
        if !init.is_empty() {
            s["initContainerStatuses"] = json!(
                init.iter()
                    .map(status::ContainerStatus::to_json)
                    .collect::<Vec<_>>()
            );
        }
        if let Some(net) = &self.net {
            s["podIP"] = json!(net.ip.to_string());
            s["podIPs"] = json!([{"ip": net.ip.to_string()}]);
        }
        s
    }

    /// Writes the status through the status subresource if it changed.
    fn write_status(&mut self) {
        let status = self.render_status();
        if self.last_written.as_ref() == Some(&status) {
            return;
        }
        let uid = self.uid.clone();
        let s = status.clone();
        let r = self.ctx.store.write(
            resources::pods(),
            &self.namespace,
            &self.name,
            Some("status"),
            |old| match old {
                Some(o) if o["metadata"]["uid"] == uid.as_str() => {
                    let mut o = o.clone();
                    o["status"] = s;
                    Ok(o)
                }
                _ => Err(ApiError::not_found("pods", "", "")),
            },
        );
        match r {
            Ok(_) => self.last_written = Some(status),
            Err(e) => tracing::debug!(pod = %self.name, error = %e, "status not written"),
        }
    }

    /// Graceful deletion: SIGTERM every running container, SIGKILL what is
    /// left after the grace period (at once if the object is already gone),
    /// wait for every process, tear the network down, then remove the
    /// object (grace 0, this Pod's uid only).
    async fn terminate(&mut self, gone: bool, events: &mut mpsc::UnboundedReceiver<Event>) {
        let grace = if gone {
            0
        } else {
            self.raw["metadata"]["deletionGracePeriodSeconds"]
                .as_u64()
                .or(self
                    .spec
                    .termination_grace_period_seconds
                    .map(|g| g.max(0) as u64))
                .unwrap_or(30)
        };
        tracing::info!(pod = %self.name, grace_s = grace, "killing the Pod's containers");
        let deadline = Instant::now() + Duration::from_secs(grace);
        for slot in self.init.iter_mut().chain(self.main.iter_mut()) {
            slot.stopping = true;
            if let Some(pid) = slot.pid() {
                super::sandbox::signal(pid, if grace == 0 { "KILL" } else { "TERM" }).await;
            }
        }
        let running = |w: &PodWorker| w.init.iter().chain(&w.main).any(|s| s.run.is_some());
        while running(self) && Instant::now() < deadline {
            tokio::select! {
                Some(ev) = events.recv() => self.handle(ev),
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        if let Some(net) = &self.net {
            // Whatever is left, in every container of the Pod.
            let ns = net.ns.clone();
            let _ = tokio::task::spawn_blocking(move || network::teardown(&ns)).await;
        }
        let wait_until = Instant::now() + Duration::from_secs(10);
        while running(self) && Instant::now() < wait_until {
            tokio::select! {
                Some(ev) = events.recv() => self.handle(ev),
                _ = tokio::time::sleep_until(wait_until) => {}
            }
        }
        if let Some(net) = self.net.take() {
            let ns = net.ns.clone();
            let _ = tokio::task::spawn_blocking(move || network::teardown(&ns)).await;
            self.ctx
                .alloc
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .release(net.n, net.ip);
        }
        let _ = std::fs::remove_dir_all(&self.pod_dir);
        if !gone {
            let opts = DeleteOptions {
                grace_period_seconds: Some(0),
                uid: Some(self.uid.clone()),
                ..Default::default()
            };
            match self
                .ctx
                .store
                .delete(resources::pods(), &self.namespace, &self.name, &opts)
            {
                Ok(_) => tracing::info!(pod = %self.name, "Pod removed"),
                Err(e) => tracing::debug!(pod = %self.name, error = %e, "Pod already removed"),
            }
        }
    }
}
