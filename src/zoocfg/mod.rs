//! A lossless model of ZooKeeper config files: `zoo.cfg` and the 3.5+
//! dynamic config files (`zoo.cfg.dynamic.<version>`).
//!
//! Pure: no I/O. The peers step (DESIGN 5.4) reads a host's config through
//! the host boundary, rewrites it here, shows the [`diff`] in `plan`, and
//! writes the result back; the replace step (5.5) derives a Pod's config from
//! the same model. Operators' files carry comments and local conventions, so
//! the contract is byte-exactness: [`ZooCfg::render`] returns exactly the
//! text [`ZooCfg::parse`] was given, and an edit changes only the lines it
//! must.
//!
//! # Layout
//!
//! - `properties`: the `java.util.Properties` grammar ZooKeeper reads with
//!   (continuations, escapes, `#`/`!` comments, `=`/`:`/space separators).
//! - `document`: [`ZooCfg`], the line model: typed getters, `set`, `remove`.
//! - `server_line`: [`ServerSpec`], the value of a `server.N` line.
//! - `rewrite`: the migration's edit: server lines to Service names, and
//!   `quorumListenOnAllIPs=true`.
//! - `meaning`: [`Meaning`], configs compared by what ZooKeeper reads, since
//!   a 3.5+ server rewrites its own `zoo.cfg` at start.
//! - `diff`: a unified diff for `plan` output.
//!
//! # Dynamic mode
//!
//! With `dynamicConfigFile` set, `zoo.cfg` may not hold `server.N` lines
//! (ZooKeeper refuses to start) and the dynamic file holds only them:
//! rewrite the dynamic file's servers with [`ZooCfg::rewrite_servers`] and
//! set `quorumListenOnAllIPs` in `zoo.cfg` (ZooKeeper ignores any other key
//! in the dynamic file, and refuses a `version=` key there).

mod diff;
mod document;
mod meaning;
mod properties;
mod rewrite;
mod server_line;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod proptests;

pub use diff::diff;
pub use document::{Property, ZooCfg};
pub use meaning::{Meaning, semantic_eq};
pub use properties::LineEnding;
pub use rewrite::ClientAddrRewrite;
pub use server_line::{ClientAddr, Role, ServerEntry, ServerSpec};

/// Keys zkmigrate reads or writes, spelled as ZooKeeper spells them.
pub mod keys {
    /// Path of the 3.5+ dynamic config file holding the `server.N` lines.
    pub const DYNAMIC_CONFIG_FILE: &str = "dynamicConfigFile";
    /// The client port.
    pub const CLIENT_PORT: &str = "clientPort";
    /// The address the client port binds to; host-specific, dropped for Pods.
    pub const CLIENT_PORT_ADDRESS: &str = "clientPortAddress";
    /// Snapshot directory.
    pub const DATA_DIR: &str = "dataDir";
    /// Transaction log directory (defaults to `dataDir`).
    pub const DATA_LOG_DIR: &str = "dataLogDir";
    /// Bind quorum and election ports on all interfaces: needed once peers
    /// are named by ClusterIPs, which are on no interface.
    pub const QUORUM_LISTEN_ON_ALL_IPS: &str = "quorumListenOnAllIPs";
    /// 3.5.3+: whether `reconfig` is allowed (default false).
    pub const RECONFIG_ENABLED: &str = "reconfigEnabled";
    /// The config version, hex; in `conf` output and `/zookeeper/config`.
    pub const VERSION: &str = "version";
    /// The prefix of server lines.
    pub const SERVER_PREFIX: &str = "server.";
}

/// Everything that can go wrong reading or editing a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZooCfgError {
    /// `Properties.load` rejects a malformed `\uXXXX` escape too.
    #[error("failed to parse line {line}: malformed \\uXXXX escape")]
    MalformedEscape {
        /// 1-based line number.
        line: usize,
    },
    /// A `server.` key whose id is not a number.
    #[error("failed to parse `{key}` on line {line}: the server id is not a number")]
    InvalidServerId {
        /// 1-based line number.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// A server value, parsed on its own, that ZooKeeper would not accept.
    #[error("failed to parse server `{value}`: {reason}")]
    InvalidServerSpec {
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `server.N` line that ZooKeeper would not accept.
    #[error("failed to parse server.{id} on line {line} (`{value}`): {reason}")]
    InvalidServerLine {
        /// 1-based line number.
        line: usize,
        /// The server id.
        id: u32,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A typed key whose value does not parse.
    #[error("failed to parse {key} on line {line}: `{value}` is not {expected}")]
    InvalidValue {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
        /// The (trimmed) value.
        value: String,
        /// What was expected, e.g. "a port".
        expected: &'static str,
    },
    /// The rewrite was given no new host for a server in the file.
    #[error(
        "failed to rewrite server.{id} on line {line}: the plan has no new host for server {id}"
    )]
    NoNewHost {
        /// 1-based line number.
        line: usize,
        /// The server id.
        id: u32,
    },
    /// The rewrite was given a host that cannot stand in a server line.
    #[error("failed to rewrite server.{id}: `{host}` is not a valid host name or address")]
    InvalidNewHost {
        /// The server id.
        id: u32,
        /// The host given.
        host: String,
    },
    /// `server.N` lines next to `dynamicConfigFile`, which ZooKeeper refuses.
    #[error(
        "failed to rewrite server.{id} on line {line}: with dynamicConfigFile set, server lines must be in the dynamic file"
    )]
    ServersBesideDynamicFile {
        /// 1-based line number.
        line: usize,
        /// The server id.
        id: u32,
    },
}

/// The config version in a dynamic file's name (`zoo.cfg.dynamic.100000000`
/// is version `0x100000000`), as ZooKeeper's `getVersionFromFilename` reads
/// it: the hex digits after the last `.` of the file name. Accepts a bare
/// name or a path. `None` when there is no such suffix (or it would overflow
/// Java's `long`), which ZooKeeper treats as version 0.
pub fn dynamic_file_version(path_or_name: &str) -> Option<u64> {
    let name = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let (_, suffix) = name.rsplit_once('.')?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(suffix, 16)
        .ok()
        .filter(|v| i64::try_from(*v).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_file_versions() {
        assert_eq!(
            dynamic_file_version("zoo.cfg.dynamic.100000000"),
            Some(0x1_0000_0000)
        );
        assert_eq!(
            dynamic_file_version("/etc/zookeeper/conf/zoo.cfg.dynamic.a0000002b"),
            Some(0xa_0000_002b)
        );
        assert_eq!(
            dynamic_file_version("/etc/zookeeper/conf/zoo.cfg.dynamic"),
            None
        );
        assert_eq!(
            dynamic_file_version("/etc/zoo.cfg.dynamic.next/zoo.cfg"),
            None
        );
        assert_eq!(dynamic_file_version("zoo.cfg.dynamic."), None);
        assert_eq!(dynamic_file_version("zoo.cfg.dynamic.-1"), None);
        assert_eq!(
            dynamic_file_version("zoo.cfg.dynamic.8000000000000000"),
            None
        );
        assert_eq!(dynamic_file_version("dynamic"), None);
    }
}
