//! The one image the lab's node has: the official `zookeeper` image's
//! contract (github.com/31z4/zookeeper-docker, `3.8.x/Dockerfile`), backed
//! by Debian's ZooKeeper 3.8 on the host filesystem.
//!
//! Where it sits: the kubelet resolves each container's `image` here before
//! it starts anything ("pulling"); a name that is not a `zookeeper` image
//! fails as a real pull of a missing repository does, so that failure can be
//! rehearsed. The image's files are three shell scripts embedded in the
//! binary and written once to the kubelet's image directory, which the
//! sandbox binds read-only at [`HOME`] (the official image's
//! `/apache-zookeeper-<version>-bin`) and `/docker-entrypoint.sh`.

use std::path::Path;

use crate::LabError;

/// The official image's `docker-entrypoint.sh`, adapted (see its header).
pub const ENTRYPOINT_SCRIPT: &str = include_str!("image/docker-entrypoint.sh");
/// `bin/zkServer.sh` running Debian's jars.
pub const ZK_SERVER_SCRIPT: &str = include_str!("image/zkServer.sh");
/// `bin/zkCli.sh`.
pub const ZK_CLI_SCRIPT: &str = include_str!("image/zkCli.sh");

/// Where the image's distribution lives inside a container (its WORKDIR;
/// `bin/` is on PATH). Named after Debian's ZooKeeper version.
pub const HOME: &str = "/apache-zookeeper-3.8.0-bin";

/// `/docker-entrypoint.sh` inside a container.
pub const ENTRYPOINT_PATH: &str = "/docker-entrypoint.sh";

/// The repository every accepted image name denotes.
const REPOSITORY: &str = "docker.io/library/zookeeper";

/// An image as the runtime sees it: its config (Dockerfile `ENTRYPOINT`,
/// `CMD`, `ENV`, `WORKDIR`, `VOLUME`) and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// The normalised reference, e.g. `docker.io/library/zookeeper:3.8`.
    pub reference: String,
    /// `imageID` of container statuses.
    pub id: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// In Dockerfile order; later entries of the container override them.
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    /// Directories the image declares (`VOLUME`) or creates and the server
    /// writes to; each container instance gets them fresh and writable.
    pub writable_dirs: Vec<String>,
}

/// Why an image is not available: the kubelet reports `ErrImagePull` with
/// this message, then `ImagePullBackOff`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
)]
pub struct PullError {
    pub reference: String,
}

/// Normalises an image name as containerd does (`docker.io/library/` for
/// bare names, `:latest` without tag or digest).
pub fn normalise(image: &str) -> String {
    let (name, tag) = split_tag(image);
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    match tag {
        Some(t) => format!("{full}{t}"),
        None => format!("{full}:latest"),
    }
}

/// Name and `:tag` / `@digest` suffix (a colon in the registry's host:port
/// is not a tag).
fn split_tag(image: &str) -> (&str, Option<&str>) {
    if let Some(at) = image.find('@') {
        return (&image[..at], Some(&image[at..]));
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(c) => (&image[..last_slash + c], Some(&image[last_slash + c..])),
        None => (image, None),
    }
}

/// "Pulls" `image`: the `zookeeper` image's config, or the error a registry
/// gives for a repository that does not exist.
pub fn resolve(image: &str) -> Result<ImageConfig, PullError> {
    let reference = normalise(image);
    let (name, _) = split_tag(&reference);
    if name != REPOSITORY {
        return Err(PullError { reference });
    }
    let env = [
        (
            "PATH",
            format!("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{HOME}/bin"),
        ),
        ("ZOO_CONF_DIR", "/conf".into()),
        ("ZOO_DATA_DIR", "/data".into()),
        ("ZOO_DATA_LOG_DIR", "/datalog".into()),
        ("ZOO_LOG_DIR", "/logs".into()),
        ("ZOO_TICK_TIME", "2000".into()),
        ("ZOO_INIT_LIMIT", "5".into()),
        ("ZOO_SYNC_LIMIT", "2".into()),
        ("ZOO_AUTOPURGE_PURGEINTERVAL", "0".into()),
        ("ZOO_AUTOPURGE_SNAPRETAINCOUNT", "3".into()),
        ("ZOO_MAX_CLIENT_CNXNS", "60".into()),
        ("ZOO_STANDALONE_ENABLED", "true".into()),
        ("ZOO_ADMINSERVER_ENABLED", "true".into()),
        ("ZOO_LOG_APPENDER", "CONSOLE".into()),
        ("ZOO_LOG_LEVEL", "INFO".into()),
        ("ZOOCFGDIR", "/conf".into()),
        ("JAVA_HOME", "/usr/lib/jvm/default-java".into()),
    ];
    Ok(ImageConfig {
        id: format!("{REPOSITORY}@sha256:{}", fake_digest(&reference)),
        reference,
        entrypoint: vec![ENTRYPOINT_PATH.into()],
        cmd: vec!["zkServer.sh".into(), "start-foreground".into()],
        env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        working_dir: HOME.into(),
        writable_dirs: ["/conf", "/data", "/datalog", "/logs"]
            .into_iter()
            .map(String::from)
            .collect(),
    })
}

/// The file that lists the images the registry has lost (`zklab fault
/// image`): `{"missing": ["docker.io/library/zookeeper:3.8", ...]}`, by
/// normalised reference.
pub fn missing_file(layout: &crate::layout::Layout) -> std::path::PathBuf {
    layout.faults_dir().join("images.json")
}

/// The references listed in [`missing_file`] (none when it is absent).
pub fn missing(layout: &crate::layout::Layout) -> Vec<String> {
    std::fs::read_to_string(missing_file(layout))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v["missing"].as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// [`resolve`], unless the lab's registry has lost `image` (`zklab fault
/// image --missing`): then the pull fails as for a repository that does
/// not exist.
pub fn pull(layout: &crate::layout::Layout, image: &str) -> Result<ImageConfig, PullError> {
    let reference = normalise(image);
    if missing(layout).contains(&reference) {
        return Err(PullError { reference });
    }
    resolve(image)
}

/// A stable digest-shaped id per reference (the image has no real digest).
fn fake_digest(reference: &str) -> String {
    // FNV-1a, widened: stable across runs, unlike std's RandomState.
    let mut out = String::new();
    for round in 0u64..4 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ round;
        for b in reference.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// Writes the image's files under `dir`: `docker-entrypoint.sh` and
/// `bin/zkServer.sh`, `bin/zkCli.sh`, all executable.
pub fn install(dir: &Path) -> Result<(), LabError> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|source| LabError::Io {
        what: format!("create {}", bin.display()),
        source,
    })?;
    for (path, text) in [
        (dir.join("docker-entrypoint.sh"), ENTRYPOINT_SCRIPT),
        (bin.join("zkServer.sh"), ZK_SERVER_SCRIPT),
        (bin.join("zkCli.sh"), ZK_CLI_SCRIPT),
    ] {
        crate::host::write(&path, text)?;
        crate::host::chmod_x(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_zookeeper_image_is_present() {
        for name in [
            "zookeeper",
            "zookeeper:3.8",
            "library/zookeeper:3.8.4",
            "docker.io/library/zookeeper:3.9",
            "zookeeper@sha256:abc",
        ] {
            let img = resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(img.entrypoint, ["/docker-entrypoint.sh"]);
            assert_eq!(img.cmd, ["zkServer.sh", "start-foreground"]);
        }
        assert_eq!(
            resolve("zookeeper").unwrap().reference,
            "docker.io/library/zookeeper:latest"
        );
    }

    #[test]
    fn other_images_fail_like_a_missing_repository() {
        for name in [
            "busybox",
            "bitnami/zookeeper:3.8",
            "quay.io/x/zookeeper",
            "zookeeperx",
        ] {
            let e = resolve(name).unwrap_err();
            assert!(e.to_string().contains("not found"), "{e}");
        }
        assert_eq!(normalise("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            normalise("localhost:5000/zookeeper"),
            "localhost:5000/zookeeper:latest"
        );
        assert!(resolve("localhost:5000/zookeeper").is_err());
    }

    #[test]
    fn an_image_the_registry_lost_fails_to_pull_until_restored() {
        let layout =
            crate::layout::Layout::new(&format!("imgt{}", std::process::id() % 100_000)).unwrap();
        let _ = std::fs::remove_dir_all(&layout.root);
        assert!(pull(&layout, "zookeeper:3.8").is_ok());
        crate::fault::set_image_missing(&layout, "zookeeper:3.8", true).unwrap();
        let e = pull(&layout, "zookeeper:3.8").unwrap_err();
        assert_eq!(e.reference, "docker.io/library/zookeeper:3.8");
        // Only that tag is lost.
        assert!(pull(&layout, "zookeeper:3.9").is_ok());
        crate::fault::set_image_missing(&layout, "docker.io/library/zookeeper:3.8", false).unwrap();
        assert!(pull(&layout, "zookeeper:3.8").is_ok());
        std::fs::remove_dir_all(&layout.root).unwrap();
    }

    #[test]
    fn the_image_env_has_the_official_defaults() {
        let img = resolve("zookeeper:3.8").unwrap();
        let get = |k: &str| {
            img.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ZOO_CONF_DIR"), Some("/conf"));
        assert_eq!(get("ZOO_DATA_DIR"), Some("/data"));
        assert_eq!(get("ZOO_DATA_LOG_DIR"), Some("/datalog"));
        assert_eq!(get("ZOO_TICK_TIME"), Some("2000"));
        assert_eq!(get("ZOO_INIT_LIMIT"), Some("5"));
        assert_eq!(get("ZOO_SYNC_LIMIT"), Some("2"));
        assert!(get("PATH").unwrap().ends_with(&format!("{HOME}/bin")));
        assert_eq!(img.id, resolve("zookeeper:3.8").unwrap().id);
    }
}
