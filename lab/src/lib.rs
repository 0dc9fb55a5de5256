//! zklab: the lab where zkmigrate is rehearsed and proven (DESIGN section 8).
//!
//! # Layout
//!
//! - [`layout`]: names, addresses and paths of one lab (pure).
//! - [`netns`]: network namespaces, veth pairs and the bridge, via `ip`.
//! - [`k8s`]: the lab's Kubernetes control plane.
//! - [`host`]: a bare-metal host: private mounts, files, service script.
//! - [`ssh`]: the lab's keys and one `sshd` per host.
//! - [`topology`]: `zklab up` / `zklab down`.
//! - [`planfile`]: the zkmigrate plan a lab writes for itself.
//! - [`fault`]: `zklab fault`: partitions of machines and Pods, kills,
//!   broken starts, API server failures, a leader of our choice.
//! - [`demo`]: `zklab demo`: up, load, the whole migration with zkmigrate,
//!   the report, down.
//! - [`workload`]: `zklab load`, the workload run in the client machine.
//! - [`load`]: the workload (a steady writer plus a session holding an
//!   ephemeral znode) and its scorer, the report of DESIGN section 8.
//! - [`testkit`]: real ZooKeeper 3.8 ensembles on loopback addresses, for
//!   tests: started with Debian's package, stopped on drop.

pub mod demo;
pub mod fault;
pub mod host;
pub mod k8s;
pub mod layout;
pub mod load;
pub mod netns;
pub mod planfile;
pub mod ssh;
pub mod testkit;
pub mod topology;
pub mod workload;

/// Errors of the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    BadName(#[from] layout::BadName),
    #[error("failed to run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("failed: `{command}` exited with {status:?}: {stderr}")]
    Command {
        command: String,
        status: Option<i32>,
        stderr: String,
    },
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("failed: {0}")]
    Stuck(String),
}
