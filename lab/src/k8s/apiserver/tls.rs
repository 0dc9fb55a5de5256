//! The lab's PKI: a CA made per lab and a server certificate it signs,
//! with the names a client inside the cluster or the lab uses for the API
//! server (as kubeadm's `apiserver` certificate carries:
//! `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
//! `kubernetes.default.svc.cluster.local`, the listen IP, plus `localhost`).
//!
//! The files are written as kubeadm lays them out (`ca.crt`, `server.crt`,
//! `server.key`, and `ca.key` so the CA could sign more), and the rustls
//! config offers `h2` and `http/1.1` by ALPN: kube-rs speaks HTTP/1.1,
//! kubectl (Go) prefers HTTP/2.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse the server certificate or key: {0}")]
    Pem(String),
    #[error("failed to build the TLS config: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The CA and the server's certificate and key, as PEM, and where they are.
#[derive(Clone)]
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// The directory holding `ca.crt`, `server.crt`, `server.key`.
    pub dir: PathBuf,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The DNS names of the API server inside the cluster and on the host.
pub const SERVER_NAMES: &[&str] = &[
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
];

/// Makes a new CA and a server certificate for `ips` and
/// [`SERVER_NAMES`], and writes them to `dir` (created if missing).
pub fn make_pki(ips: &[IpAddr], dir: &Path) -> Result<Pki, PkiError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "zklab-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate()?;
    let mut names: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    names.extend(SERVER_NAMES.iter().map(|n| n.to_string()));
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &issuer)?;

    let pki = Pki {
        ca_pem,
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        dir: dir.to_path_buf(),
    };
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write(&dir.join("ca.crt"), &pki.ca_pem, 0o644)?;
    write(&dir.join("ca.key"), &ca_key.serialize_pem(), 0o600)?;
    write(&dir.join("server.crt"), &pki.server_cert_pem, 0o644)?;
    write(&dir.join("server.key"), &pki.server_key_pem, 0o600)?;
    Ok(pki)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, text).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)
}

impl Pki {
    /// Reads what [`make_pki`] wrote in `dir`.
    pub fn load(dir: &Path) -> Result<Pki, PkiError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PkiError::Read { path, source })
        };
        Ok(Pki {
            ca_pem: read("ca.crt")?,
            server_cert_pem: read("server.crt")?,
            server_key_pem: read("server.key")?,
            dir: dir.to_path_buf(),
        })
    }

    /// The rustls server config: ring only, `h2` then `http/1.1`.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, PkiError> {
        let certs = CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
            .chain(CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PkiError::Pem(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .map_err(|e| PkiError::Pem(e.to_string()))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}
