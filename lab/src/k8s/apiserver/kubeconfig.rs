//! The kubeconfig `zklab up` writes: one cluster (the server URL and the
//! lab CA inline as `certificate-authority-data`), one user with the
//! bearer token, one context, made current — the shape of
//! `clientcmd/api/v1/types.go` `Config`, readable by kubectl and
//! kube-rs' `Kubeconfig`.

use std::path::{Path, PathBuf};

use serde_json::json;

#[derive(Debug, thiserror::Error)]
#[error("failed to write the kubeconfig {path}: {source}")]
pub struct KubeconfigError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Standard base64 (RFC 4648, padded), for `certificate-authority-data`.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The kubeconfig text (YAML; JSON is YAML, and kubectl reads it).
pub fn kubeconfig(server_url: &str, ca_pem: &str, token: &str, context_name: &str) -> String {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": context_name,
            "cluster": {
                "server": server_url,
                "certificate-authority-data": base64(ca_pem.as_bytes()),
            },
        }],
        "users": [{"name": context_name, "user": {"token": token}}],
        "contexts": [{
            "name": context_name,
            "context": {"cluster": context_name, "user": context_name, "namespace": "default"},
        }],
        "current-context": context_name,
        "preferences": {},
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Writes [`kubeconfig`] to `path` (mode 0600: it holds the token).
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    token: &str,
    context_name: &str,
) -> Result<(), KubeconfigError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| KubeconfigError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, kubeconfig(server_url, ca_pem, token, context_name)).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn the_kubeconfig_names_one_current_context() {
        let text = kubeconfig("https://10.77.0.2:6443", "PEM", "tok", "zklab-a");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["current-context"], "zklab-a");
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
    }
}
