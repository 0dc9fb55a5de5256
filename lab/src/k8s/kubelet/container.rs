//! What a container runs and with which environment: the image's
//! `ENTRYPOINT`/`CMD` combined with the container's `command`/`args`, and
//! the environment from the image, the runtime, Service links, `envFrom`
//! and `env` (with `fieldRef` and `configMapKeyRef`), with `$(VAR)`
//! expansion. Pure: the caller passes the Pod, its IP and a view of the
//! store's ConfigMaps and Services.
//!
//! Follows `pkg/kubelet/kubelet_pods.go` (`makeEnvironmentVariables`),
//! `pkg/kubelet/envvars/envvars.go` (Service links),
//! `third_party/forked/golang/expansion/expand.go` (`$(VAR)`) and
//! `pkg/kubelet/kuberuntime/kuberuntime_container.go` with the documented
//! rule of "Define a Command and Arguments for a Container" (`command`
//! replaces ENTRYPOINT, `args` replaces CMD).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use serde_json::Value;

use super::image::ImageConfig;

/// Why a container cannot be created; the kubelet reports it as waiting
/// with `reason` (`CreateContainerConfigError`, `CreateContainerError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub reason: &'static str,
    pub message: String,
}

fn config_error(message: String) -> ConfigError {
    ConfigError {
        reason: "CreateContainerConfigError",
        message,
    }
}

/// A container's whole environment, and the kubelet's part of it.
pub type Environment = (Vec<(String, String)>, BTreeMap<String, String>);

/// What the environment may refer to besides the container itself.
pub struct EnvSources<'a> {
    /// The Pod as stored.
    pub pod: &'a Value,
    pub pod_ip: String,
    pub host_ip: String,
    /// The hostname the runtime sets (`HOSTNAME`).
    pub hostname: String,
    /// ConfigMaps of the Pod's namespace by name.
    pub configmap: &'a (dyn Fn(&str) -> Option<Value> + Sync),
    /// Services of the Pod's namespace, plus `kubernetes` of `default`,
    /// for Service links.
    pub services: Vec<Value>,
}

/// Expands `$(VAR)` from `env`; `$$` is a literal `$`; an unknown or
/// unclosed reference stays as written.
pub fn expand(input: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(') {
            match r.find(')') {
                Some(end) => {
                    let name = &r[..end];
                    match env(name) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &r[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = r;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The value of a downward-API `fieldRef` (the paths
/// `pkg/apis/core/validation` allows for env).
fn field_ref(path: &str, src: &EnvSources<'_>) -> Result<String, ConfigError> {
    let pod = src.pod;
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(String::from)
    };
    Ok(match path {
        "metadata.name" => s(&pod["metadata"]["name"]),
        "metadata.namespace" => s(&pod["metadata"]["namespace"]),
        "metadata.uid" => s(&pod["metadata"]["uid"]),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => s(&pod["spec"]["serviceAccountName"]),
        "status.podIP" | "status.podIPs" => src.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => src.host_ip.clone(),
        _ => {
            if let Some(k) = keyed("metadata.labels['") {
                s(&pod["metadata"]["labels"][k.as_str()])
            } else if let Some(k) = keyed("metadata.annotations['") {
                s(&pod["metadata"]["annotations"][k.as_str()])
            } else {
                return Err(config_error(format!("unsupported fieldPath: {path}")));
            }
        }
    })
}

/// A C identifier, as env var names from `envFrom` must be.
fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Service link variables (`FOO_SERVICE_HOST`, `FOO_PORT_2181_TCP`, ...)
/// of `pkg/kubelet/envvars/envvars.go` `FromServices`.
fn service_links(services: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let Some(first) = ports.first() else {
            continue;
        };
        let name = svc["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_uppercase()
            .replace('-', "_");
        out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{name}_SERVICE_PORT"), first["port"].to_string()));
        for p in &ports {
            if let Some(pn) = p["name"].as_str().filter(|n| !n.is_empty()) {
                out.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p["port"].to_string(),
                ));
            }
        }
        let proto = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_string();
        out.push((
            format!("{name}_PORT"),
            format!("{}://{ip}:{}", proto(first).to_lowercase(), first["port"]),
        ));
        for p in &ports {
            let (port, pr) = (p["port"].to_string(), proto(p));
            let prefix = format!("{name}_PORT_{port}_{pr}");
            out.push((
                prefix.clone(),
                format!("{}://{ip}:{port}", pr.to_lowercase()),
            ));
            out.push((format!("{prefix}_PROTO"), pr.to_lowercase()));
            out.push((format!("{prefix}_PORT"), port));
            out.push((format!("{prefix}_ADDR"), ip.to_string()));
        }
    }
    out
}

/// The container's environment: `HOSTNAME` (set by the runtime), the
/// image's `ENV`, then what the kubelet computes (Service links, `envFrom`,
/// `env`), later entries overriding earlier ones. Also returns the
/// kubelet's part alone, which `$(VAR)` in command and args refers to.
pub fn environment(
    image: &ImageConfig,
    c: &Container,
    src: &EnvSources<'_>,
) -> Result<Environment, ConfigError> {
    let mut kubelet: BTreeMap<String, String> = BTreeMap::new();
    if src.pod["spec"]["enableServiceLinks"].as_bool() != Some(false) {
        kubelet.extend(service_links(&src.services));
    }
    let cm_or_err = |name: &str, optional: bool| -> Result<Option<Value>, ConfigError> {
        match (src.configmap)(name) {
            Some(cm) => Ok(Some(cm)),
            None if optional => Ok(None),
            None => Err(config_error(format!("configmap \"{name}\" not found"))),
        }
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref
            && let Some(cm) = cm_or_err(&r.name, r.optional == Some(true))?
        {
            for (k, v) in cm["data"].as_object().into_iter().flatten() {
                let key = format!("{prefix}{k}");
                if is_env_name(&key) {
                    kubelet.insert(key, v.as_str().unwrap_or("").to_string());
                }
            }
        }
        if let Some(r) = &from.secret_ref
            && r.optional != Some(true)
        {
            return Err(config_error(format!("secret \"{}\" not found", r.name)));
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            let known = kubelet.clone();
            expand(v, &|n| known.get(n).cloned())
        } else if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                field_ref(&f.field_path, src)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match cm_or_err(&r.name, optional)? {
                    Some(cm) => match cm["data"][r.key.as_str()].as_str() {
                        Some(v) => v.to_string(),
                        None if optional => continue,
                        None => {
                            return Err(config_error(format!(
                                "couldn't find key {} in ConfigMap {}/{}",
                                r.key,
                                src.pod["metadata"]["namespace"].as_str().unwrap_or(""),
                                r.name
                            )));
                        }
                    },
                    None => continue,
                }
            } else if let Some(r) = &from.secret_key_ref {
                if r.optional == Some(true) {
                    continue;
                }
                return Err(config_error(format!("secret \"{}\" not found", r.name)));
            } else {
                // resourceFieldRef: the lab sets no limits; the node's
                // allocatable is what the real kubelet reports then.
                String::new()
            }
        } else {
            String::new()
        };
        kubelet.insert(e.name.clone(), value);
    }
    let mut all: Vec<(String, String)> = vec![("HOSTNAME".into(), src.hostname.clone())];
    let mut set = |k: &str, v: &str| match all.iter_mut().find(|(n, _)| n == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => all.push((k.to_string(), v.to_string())),
    };
    for (k, v) in &image.env {
        set(k, v);
    }
    for (k, v) in &kubelet {
        set(k, v);
    }
    Ok((all, kubelet))
}

/// The argv a container runs: `command` replaces the image's ENTRYPOINT
/// (and drops its CMD), `args` replaces CMD; `$(VAR)` expands from the
/// kubelet's environment.
pub fn argv(
    image: &ImageConfig,
    c: &Container,
    env: &BTreeMap<String, String>,
) -> Result<Vec<String>, ConfigError> {
    let lookup = |n: &str| env.get(n).cloned();
    let expand_all =
        |v: &Vec<String>| -> Vec<String> { v.iter().map(|s| expand(s, &lookup)).collect() };
    let out = match (&c.command, &c.args) {
        (Some(cmd), Some(args)) => [expand_all(cmd), expand_all(args)].concat(),
        (Some(cmd), None) => expand_all(cmd),
        (None, Some(args)) => [image.entrypoint.clone(), expand_all(args)].concat(),
        (None, None) => [image.entrypoint.clone(), image.cmd.clone()].concat(),
    };
    if out.is_empty() {
        return Err(ConfigError {
            reason: "CreateContainerError",
            message: "no command specified".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: Value) -> Container {
        serde_json::from_value(v).unwrap()
    }

    fn sources<'a>(
        pod: &'a Value,
        cms: &'a (dyn Fn(&str) -> Option<Value> + Sync),
    ) -> EnvSources<'a> {
        EnvSources {
            pod,
            pod_ip: "10.244.0.9".into(),
            host_ip: "10.77.0.2".into(),
            hostname: "zk-0".into(),
            configmap: cms,
            services: vec![
                json!({"metadata": {"name": "zk-cs"}, "spec": {"clusterIP": "10.96.0.5",
                "ports": [{"name": "client", "port": 2181, "protocol": "TCP"}]}}),
            ],
        }
    }

    #[test]
    fn expansion_follows_the_kubernetes_rules() {
        let env = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)-$(B)-$$(A)-$A-$(A", &env), "x-$(B)-$(A)-$A-$(A");
        assert_eq!(expand("tail$", &env), "tail$");
    }

    #[test]
    fn env_combines_image_runtime_links_and_the_container() {
        let pod = json!({"metadata": {"name": "zk-0", "namespace": "zk", "uid": "u",
            "labels": {"app": "zk"}}, "spec": {"nodeName": "lab"}});
        let cms = |n: &str| (n == "cfg").then(|| json!({"data": {"id": "3", "bad key": "x"}}));
        let c = container(json!({"name": "zk", "image": "zookeeper",
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}],
            "env": [
                {"name": "ZOO_MY_ID", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "id"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "ADDR", "value": "$(POD):$(ZK_CS_SERVICE_PORT_CLIENT)"},
                {"name": "ZOO_TICK_TIME", "value": "500"}]}));
        let image = super::super::image::resolve("zookeeper").unwrap();
        let (all, kubelet) = environment(&image, &c, &sources(&pod, &cms)).unwrap();
        let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HOSTNAME"), Some("zk-0"));
        assert_eq!(get("ZOO_MY_ID"), Some("3"));
        assert_eq!(get("CM_id"), Some("3"));
        assert_eq!(get("CM_bad key"), None);
        assert_eq!(get("POD"), Some("zk-0"));
        assert_eq!(get("IP"), Some("10.244.0.9"));
        assert_eq!(get("APP"), Some("zk"));
        assert_eq!(get("ADDR"), Some("zk-0:2181"));
        assert_eq!(
            get("ZOO_TICK_TIME"),
            Some("500"),
            "the container overrides the image"
        );
        assert_eq!(get("ZOO_INIT_LIMIT"), Some("5"));
        assert_eq!(get("ZK_CS_SERVICE_HOST"), Some("10.96.0.5"));
        assert_eq!(get("ZK_CS_PORT_2181_TCP"), Some("tcp://10.96.0.5:2181"));
        assert!(!kubelet.contains_key("ZOO_INIT_LIMIT"));
    }

    #[test]
    fn missing_config_is_a_create_container_config_error() {
        let pod = json!({"metadata": {"name": "p", "namespace": "zk"}});
        let none = |_: &str| None;
        let image = super::super::image::resolve("zookeeper").unwrap();
        let c = container(json!({"name": "zk", "env": [{"name": "X",
            "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}]}));
        let e = environment(&image, &c, &sources(&pod, &none)).unwrap_err();
        assert_eq!(e.reason, "CreateContainerConfigError");
        assert_eq!(e.message, "configmap \"gone\" not found");
        let optional = container(json!({"name": "zk", "env": [{"name": "X",
            "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": true}}}]}));
        let (all, _) = environment(&image, &optional, &sources(&pod, &none)).unwrap();
        assert!(!all.iter().any(|(n, _)| n == "X"));
    }

    #[test]
    fn command_replaces_entrypoint_and_args_replace_cmd() {
        let image = super::super::image::resolve("zookeeper").unwrap();
        let env = BTreeMap::from([("N".to_string(), "7".to_string())]);
        let run = |v: Value| argv(&image, &container(v), &env).unwrap();
        assert_eq!(
            run(json!({"name": "c"})),
            ["/docker-entrypoint.sh", "zkServer.sh", "start-foreground"]
        );
        assert_eq!(
            run(json!({"name": "c", "args": ["zkServer.sh", "print-cmd"]})),
            ["/docker-entrypoint.sh", "zkServer.sh", "print-cmd"]
        );
        assert_eq!(
            run(json!({"name": "c", "command": ["sh", "-c"], "args": ["exit $(N)"]})),
            ["sh", "-c", "exit 7"]
        );
        assert_eq!(run(json!({"name": "c", "command": ["true"]})), ["true"]);
        let empty = container(json!({"name": "c", "command": []}));
        assert_eq!(
            argv(&image, &empty, &env).unwrap_err().reason,
            "CreateContainerError"
        );
    }
}
