//! An API server per test: a fresh store, a PKI and a kubeconfig in a
//! temporary directory, the server on 127.101.P.N (P from the process id,
//! N per test, port 0), an admin client from the kubeconfig, and kubectl.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use zklab::k8s::apiserver::{
    Access, ApiServer, ApiServerConfig, Rule, Tokens, User, make_pki, write_kubeconfig,
};
use zklab::k8s::store::{AcceptAll, Admission, Store};

pub const ADMIN_TOKEN: &str = "admin-token";
/// `viewer`: get, list and watch ConfigMaps in `zookeeper` only.
pub const VIEWER_TOKEN: &str = "viewer-token";

pub struct Lab {
    server: Option<ApiServer>,
    pub store: Store,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub client: Client,
    pub url: String,
    ca_pem: String,
}

pub fn deadline_for(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// The Status of a failed kube call.
pub fn kube_err<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn cm(name: &str, labels: &[(&str, &str)], v: &str) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    c.data = Some(BTreeMap::from([("k".to_string(), v.to_string())]));
    c
}

impl Lab {
    pub async fn start(n: u8) -> Lab {
        Lab::start_with(n, Arc::new(AcceptAll)).await
    }

    pub async fn start_with(n: u8, admission: Arc<dyn Admission>) -> Lab {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ip = Ipv4Addr::new(127, 101, (std::process::id() % 250) as u8 + 1, n);
        let pki = make_pki(&[IpAddr::V4(ip)], &dir.path().join("pki")).unwrap();
        let tokens = Tokens::admin(ADMIN_TOKEN).with(
            VIEWER_TOKEN,
            User {
                name: "viewer".into(),
                access: Access::Rules(vec![
                    Rule::new(&["get", "list", "watch"], &[""], &["configmaps"])
                        .in_namespaces(&["zookeeper"]),
                ]),
            },
        );
        let mut config =
            ApiServerConfig::new(SocketAddr::new(IpAddr::V4(ip), 0), pki.clone(), tokens);
        config.bookmark_interval = Duration::from_millis(300);
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        // Models a kubelet that has one run of each container: `previous`
        // finds nothing, as for a container that never restarted.
        config.log_locator = Some(Arc::new(
            move |pod: &serde_json::Value, c: Option<&str>, previous: bool| {
                let (ns, name) = (
                    pod["metadata"]["namespace"].as_str().unwrap_or(""),
                    pod["metadata"]["name"].as_str().unwrap_or(""),
                );
                let c = c.unwrap_or("");
                if previous {
                    return Err(format!(
                        "previous terminated container \"{c}\" in pod \"{name}\" not found"
                    ));
                }
                Ok(logs.join(format!("{ns}_{name}_{c}.log")))
            },
        ));
        let store = Store::new(admission);
        let server = ApiServer::start(store.clone(), config).await.unwrap();
        let url = server.url();
        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(&kubeconfig, &url, &pki.ca_pem, ADMIN_TOKEN, "zklab-test").unwrap();
        let client = client_from(&kubeconfig).await;
        Lab {
            server: Some(server),
            store,
            dir,
            kubeconfig,
            client,
            url,
            ca_pem: pki.ca_pem,
        }
    }

    /// A client for another token (same server and CA).
    pub async fn client_with_token(&self, token: &str) -> Client {
        let path = self.dir.path().join(format!("kubeconfig-{token}"));
        write_kubeconfig(&path, &self.url, &self.ca_pem, token, "zklab-test").unwrap();
        client_from(&path).await
    }

    pub async fn namespace(&self, name: &str) {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    pub fn log_path(&self, ns: &str, pod: &str, container: &str) -> PathBuf {
        self.dir
            .path()
            .join("logs")
            .join(format!("{ns}_{pod}_{container}.log"))
    }

    /// Runs kubectl with this lab's kubeconfig and a private cache.
    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("kubectl is installed");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl ends within 60 s")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

async fn client_from(path: &std::path::Path) -> Client {
    let kc = Kubeconfig::read_from(path).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}
