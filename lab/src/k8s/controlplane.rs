//! The lab's control plane as one process (`zklab controlplane`), run by
//! `zklab up` inside the control-plane machine (10.77.0.2): one [`Store`]
//! shared by the API server, the controllers, the kubelet, the proxy and
//! the DNS server.
//!
//! What it writes under the lab directory: `pki/` (the lab CA and the API
//! server's certificate), `kubeconfig` (admin token), `tokens/` (extra
//! tokens with rules, read at start, for RBAC tests), and `controlplane.ready`
//! once every part has started, which `up` waits for. What it reads while
//! it runs: `faults/api.json`, the API server's injected fault. The store lives in
//! memory: a restarted control plane starts empty (the kubelet then kills
//! the Pods it finds left over).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::admission::LabAdmission;
use super::apiserver::{self, Access, ApiServer, ApiServerConfig, Rule, Tokens, User};
use super::controllers::{self, ControllerConfig};
use super::dns::{self, DnsConfig};
use super::kubelet::{self, KubeletConfig};
use super::proxy::{self, ProxyConfig};
use super::resources;
use super::store::Store;
use crate::LabError;
use crate::layout::{Layout, Machine};
use crate::topology;

/// The API server's port.
pub const API_PORT: u16 = 6443;

/// Where the control plane's files are.
pub fn kubeconfig_path(layout: &Layout) -> PathBuf {
    layout.root.join("kubeconfig")
}

/// The file `up` waits for.
pub fn ready_path(layout: &Layout) -> PathBuf {
    layout.root.join("controlplane.ready")
}

/// The admin bearer token of the lab (created on first start).
pub fn admin_token(layout: &Layout) -> Result<String, LabError> {
    let path = layout.root.join("pki").join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_string());
    }
    let token = format!("zklab-{}", super::store::new_uid().replace('-', ""));
    std::fs::create_dir_all(layout.root.join("pki")).map_err(|source| LabError::Io {
        what: "create the pki directory".into(),
        source,
    })?;
    crate::host::write(&path, &format!("{token}\n"))?;
    Ok(token)
}

fn stuck(what: &str) -> impl FnOnce(String) -> LabError + '_ {
    move |e| LabError::Stuck(format!("{what}: {e}"))
}

/// Runs the control plane of lab `layout` with `servers` hosts until
/// SIGTERM or SIGINT.
pub async fn run(layout: Layout, servers: u8) -> Result<(), LabError> {
    let _ = std::fs::remove_file(ready_path(&layout));
    let admission = LabAdmission::new(topology::SERVICE_CIDR)
        .map_err(|e| stuck("configure admission")(e.to_string()))?;
    let store = Store::new(Arc::new(admission));
    let cp = Machine::ControlPlane.addr();
    // The API server's own Service, as on a real cluster (in-cluster
    // clients find it as kubernetes.default.svc).
    create_kubernetes_service(&store, cp)?;
    // The namespace the lab's plan migrates into (zkmigrate never creates
    // namespaces: preflight requires it to exist, as on a real cluster).
    store
        .create(
            resources::namespaces(),
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "zookeeper"}}),
        )
        .map_err(|e| LabError::Stuck(format!("create the zookeeper namespace: {e}")))?;

    let pki = apiserver::make_pki(&[IpAddr::V4(cp)], &layout.root.join("pki"))
        .map_err(|e| stuck("make the lab PKI")(e.to_string()))?;
    let token = admin_token(&layout)?;
    let tokens = extra_tokens(&layout, Tokens::admin(&token))?;
    let kubelet_cfg = KubeletConfig {
        // A lab's restarts back off from 2 s to 60 s instead of the real
        // kubelet's 10 s to 5 min, so that fault tests finish.
        backoff_base: Duration::from_secs(2),
        backoff_max: Duration::from_secs(60),
        ..KubeletConfig::for_lab(&layout)
    };
    let mut api_cfg = ApiServerConfig::new(SocketAddr::from((cp, API_PORT)), pki.clone(), tokens);
    api_cfg.fault_file = Some(layout.api_fault_file());
    let locator = kubelet_cfg.log_locator();
    api_cfg.log_locator = Some(Arc::new(
        move |pod: &serde_json::Value, container: Option<&str>, previous: bool| {
            locator
                .locate(pod, container, previous)
                .map_err(|e| e.to_string())
        },
    ));
    let server = ApiServer::start(store.clone(), api_cfg)
        .await
        .map_err(|e| stuck("start the API server")(e.to_string()))?;
    apiserver::write_kubeconfig(
        &kubeconfig_path(&layout),
        &server.url(),
        &pki.ca_pem,
        &token,
        &format!("zklab-{}", layout.name),
    )
    .map_err(|e| stuck("write the kubeconfig")(e.to_string()))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(controllers::run_controllers(
        store.clone(),
        ControllerConfig::new(kubelet_cfg.volumes_dir.clone()),
        stopped(),
    ));
    {
        let (store, stop) = (store.clone(), stopped());
        tasks.spawn(async move {
            if let Err(e) = kubelet::run_kubelet(store, kubelet_cfg, stop).await {
                tracing::error!(error = %e, "kubelet stopped");
            }
        });
    }
    {
        let (store, stop, cfg) = (store.clone(), stopped(), ProxyConfig::for_layout(&layout));
        tasks.spawn(async move {
            if let Err(e) = proxy::run_proxy(store, cfg, stop).await {
                tracing::error!(error = %e, "proxy stopped");
            }
        });
    }
    let dns_cfg = DnsConfig::for_lab(&topology::machines(servers));
    {
        let (store, stop) = (store.clone(), stopped());
        tasks.spawn(async move {
            if let Err(e) = dns::run_dns(store, dns_cfg, stop).await {
                tracing::error!(error = %e, "dns stopped");
            }
        });
    }
    crate::host::write(&ready_path(&layout), &format!("{}\n", std::process::id()))?;
    tracing::info!(lab = %layout.name, url = %server.url(), "control plane ready");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| LabError::Io {
            what: "install the SIGTERM handler".into(),
            source,
        })?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!(lab = %layout.name, "control plane stopping");
    let _ = stop_tx.send(true);
    server.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let _ = std::fs::remove_file(ready_path(&layout));
    Ok(())
}

fn create_kubernetes_service(store: &Store, cp: std::net::Ipv4Addr) -> Result<(), LabError> {
    let fail =
        |e: super::error::ApiError| LabError::Stuck(format!("create the kubernetes Service: {e}"));
    store
        .create(
            resources::services(),
            "default",
            json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                   "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "targetPort": API_PORT}]}}),
        )
        .map_err(fail)?;
    store
        .create(
            resources::endpointslices(),
            "default",
            json!({"metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}},
                   "addressType": "IPv4",
                   "endpoints": [{"addresses": [cp.to_string()], "conditions": {"ready": true}}],
                   "ports": [{"name": "https", "port": API_PORT, "protocol": "TCP"}]}),
        )
        .map_err(fail)?;
    Ok(())
}

/// Tokens with rules, one JSON file each in `<lab>/tokens/`:
/// `{"token": "...", "user": "name", "rules": [{"verbs": [..], "apiGroups": [..], "resources": [..], "namespaces": [..]}]}`.
fn extra_tokens(layout: &Layout, mut tokens: Tokens) -> Result<Tokens, LabError> {
    let dir = layout.root.join("tokens");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(tokens);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        tokens = add_token_file(tokens, &path)?;
    }
    Ok(tokens)
}

fn add_token_file(tokens: Tokens, path: &Path) -> Result<Tokens, LabError> {
    let text = std::fs::read_to_string(path).map_err(|source| LabError::Io {
        what: format!("read {}", path.display()),
        source,
    })?;
    let bad = |why: &str| LabError::Stuck(format!("bad token file {}: {why}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let token = v["token"].as_str().ok_or_else(|| bad("no token"))?;
    let user = v["user"].as_str().ok_or_else(|| bad("no user"))?;
    let list = |r: &serde_json::Value, key: &str| -> Vec<String> {
        r[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let rules = v["rules"]
        .as_array()
        .ok_or_else(|| bad("no rules"))?
        .iter()
        .map(|r| Rule {
            verbs: list(r, "verbs"),
            api_groups: list(r, "apiGroups"),
            resources: list(r, "resources"),
            namespaces: r.get("namespaces").map(|_| list(r, "namespaces")),
        })
        .collect();
    Ok(tokens.with(
        token,
        User {
            name: user.to_string(),
            access: Access::Rules(rules),
        },
    ))
}
