//! The validated plan: the typed values every later stage takes.
//!
//! A value of these types has passed every rule of `validate`, so the
//! builders, the steps and the runbook use them as they are and never check
//! them again (STYLE convention 3). Constructors that could break a rule are
//! private to the `plan` module; the fields are public to read.
//!
//! The types derive `Serialize` because the plan hash (DESIGN section 6) is
//! the SHA-256 of their canonical JSON, and because `plan -o json` may show
//! them. They do not derive `Deserialize` (but for the checked [`ServerId`]):
//! the only way in is the plan file and its validation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::steps::StepName;

/// A ZooKeeper server id (the `myid`), 1 to 255.
///
/// ZooKeeper itself accepts larger ids, but 255 is the upper bound of the
/// plan contract (DESIGN section 3) and keeps every id fit for a Kubernetes
/// label value and a StatefulSet ordinal map.
///
/// It deserializes from a number and refuses 0, so a journal or report that
/// stores ids reads them back checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8")]
pub struct ServerId(u8);

impl ServerId {
    /// The id, or `None` when it is outside 1..=255.
    pub fn new(id: i64) -> Option<ServerId> {
        match u8::try_from(id) {
            Ok(0) | Err(_) => None,
            Ok(id) => Some(ServerId(id)),
        }
    }

    /// The id as a number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for ServerId {
    type Error = String;

    fn try_from(id: u8) -> Result<Self, Self::Error> {
        ServerId::new(i64::from(id)).ok_or_else(|| format!("server id {id} is outside 1..255"))
    }
}

impl FromStr for ServerId {
    type Err = String;

    /// Parses a myid as written in a `myid` file or a `server.N` key.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id: i64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a server id"))?;
        ServerId::new(id).ok_or_else(|| format!("server id {id} is outside 1..255"))
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One ZooKeeper server of the ensemble, as it runs on its host today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    /// The myid; matches the host's myid file and its `server.N` line.
    pub id: ServerId,
    /// How zkmigrate reaches the host: the ssh destination, or the `{host}`
    /// of an exec prefix. Never starts with `-` and holds no whitespace.
    pub host: String,
    /// The address peers and clients use today: an IPv4 address or a DNS
    /// name (EndpointSlices are IPv4, DESIGN section 5.2).
    pub address: String,
}

/// The ensemble as it runs on the hosts (the plan's `ensemble` section,
/// without the server list, which is [`ValidatedPlan::servers`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ensemble {
    /// Port clients connect to (default 2181).
    pub client_port: u16,
    /// Port followers use to reach the leader (default 2888).
    pub quorum_port: u16,
    /// Port used for leader election (default 3888).
    pub election_port: u16,
    /// Absolute path of `zoo.cfg` on every host.
    pub config_path: String,
    /// How zkmigrate runs commands on the hosts.
    pub access: Access,
    /// Shell commands that manage the ZooKeeper service on a host.
    pub service: ServiceCommands,
}

/// How zkmigrate runs commands on a host: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Access {
    /// Over the system `ssh` (with ControlMaster).
    Ssh(SshAccess),
    /// By running a local command prefix (e.g. `ip netns exec {host}`).
    Exec(ExecAccess),
}

/// Options for reaching the hosts over ssh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SshAccess {
    /// Remote user; `None` leaves it to ssh (its config, or the local user).
    pub user: Option<String>,
    /// Remote port (default 22).
    pub port: u16,
    /// Private key file, as written in the plan; a leading `~/` is for the
    /// ssh boundary to expand, so the plan hash does not depend on `$HOME`.
    pub identity_file: Option<String>,
    /// OpenSSH options in `Key=Value` form, each passed as `-o Key=Value`.
    pub options: Vec<String>,
    /// Bastions to go through, in order (`ssh -J`), as `[user@]host[:port]`.
    pub jump_hosts: Vec<String>,
}

/// A local command prefix that runs a command "on" a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecAccess {
    /// The prefix; each element may hold `{host}` and `{id}`.
    pub prefix: Vec<String>,
}

impl ExecAccess {
    /// The prefix for one server, with `{host}` and `{id}` filled in.
    pub fn render(&self, server: &Server) -> Vec<String> {
        let id = server.id.to_string();
        self.prefix
            .iter()
            .map(|part| part.replace("{host}", &server.host).replace("{id}", &id))
            .collect()
    }
}

/// Shell commands run on a host to manage its ZooKeeper service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceCommands {
    /// Starts the service.
    pub start: String,
    /// Stops the service.
    pub stop: String,
    /// Restarts the service.
    pub restart: String,
    /// Keeps the service from starting again (boot, supervisor, config
    /// management); the fence of DESIGN section 2 relies on it.
    pub disable: String,
    /// Undoes `disable` (rollback).
    pub enable: String,
}

/// Where the ensemble goes in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kubernetes {
    /// Kubeconfig context; `None` is the current context.
    pub context: Option<String>,
    /// Namespace of every object zkmigrate creates (a DNS-1123 label).
    pub namespace: String,
    /// Cluster DNS domain (default `cluster.local`).
    pub cluster_domain: String,
    /// Name of the per-server Service.
    pub service_name: ServiceNameTemplate,
    /// The workload that runs the Pods.
    pub target: Target,
}

/// The per-server Service name, e.g. `zk-{id}`. Always holds `{id}`, and
/// renders to a DNS-1035 label (a valid Service name) for every server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ServiceNameTemplate(pub(super) String);

impl ServiceNameTemplate {
    /// The Service name of server `id`.
    pub fn render(&self, id: ServerId) -> String {
        self.0.replace("{id}", &id.to_string())
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The workload kind that runs the Pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TargetKind {
    /// One StatefulSet for the ensemble; a ConfigMap maps ordinals to myids.
    StatefulSet,
    /// One StatefulSet of one replica per server.
    PerServer,
}

/// The workload that replaces the hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// StatefulSet or PerServer.
    pub kind: TargetKind,
    /// Name of the StatefulSet, or the prefix of the per-server ones.
    pub name: String,
    /// The ZooKeeper image (the official image's entrypoint contract).
    pub image: String,
    /// The data volume of each Pod.
    pub storage: Storage,
}

impl Target {
    /// The StatefulSet that runs server `id`: `name` for the StatefulSet
    /// kind, `name-{id}` for PerServer. Validation checked every one of
    /// these is a valid StatefulSet name.
    pub fn statefulset_name(&self, id: ServerId) -> String {
        match self.kind {
            TargetKind::StatefulSet => self.name.clone(),
            TargetKind::PerServer => format!("{}-{id}", self.name),
        }
    }
}

/// The persistent volume of each Pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// A Kubernetes quantity, e.g. `10Gi`.
    pub size: String,
    /// StorageClass; `None` uses the cluster default, `Some("")` asks for
    /// no class (pre-provisioned volumes), as in Kubernetes itself.
    pub storage_class_name: Option<String>,
}

/// What clients need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Clients {
    /// Appended to the new connection string; `None` when the plan sets no
    /// chroot or sets `/`.
    pub chroot: Option<Chroot>,
}

/// A ZooKeeper chroot: starts with `/`, does not end with `/`, no empty,
/// `.` or `..` segment, and nothing that would break a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Chroot(pub(super) String);

impl Chroot {
    /// The chroot, e.g. `/kafka`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Chroot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Timeouts and gates. Not part of the plan hash: an operator may raise a
/// timeout after a halt and resume (DESIGN section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Most a server may take to sync after a (re)start (default 10m).
    #[serde(serialize_with = "serialize_duration")]
    pub sync_timeout: Duration,
    /// Halt when zxid lag has not shrunk for this long (default 2m).
    #[serde(serialize_with = "serialize_duration")]
    pub progress_deadline: Duration,
    /// How often waits observe the ensemble (default 200ms); never zero.
    #[serde(serialize_with = "serialize_duration")]
    pub poll_interval: Duration,
    /// Steps that run only with `--confirm STEP`, in run order, no
    /// duplicates (default `[clients]`).
    pub confirm: Vec<StepName>,
    /// Accept an even number of voters with a warning instead of an error.
    pub allow_even_voters: bool,
    /// How long the kubernetes state backend's Lease holds without renewal
    /// (default 15s, whole seconds, 3s to 5m); renewed every third of it.
    #[serde(serialize_with = "serialize_duration")]
    pub lease_duration: Duration,
}

impl Policy {
    /// Whether `step` needs `--confirm step` to run.
    pub fn needs_confirm(&self, step: StepName) -> bool {
        self.confirm.contains(&step)
    }
}

fn serialize_duration<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
}

/// Where the journal lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StateBackend {
    /// A JSON file, locked while a step runs. `path` is as written in the
    /// plan; see [`ValidatedPlan::state_file`] for the path to open.
    File {
        /// Default `.zkmigrate/<name>.json`.
        path: String,
    },
    /// A ConfigMap `zkmigrate-<name>` (key `journal.json`) and a Lease of
    /// the same name in the plan's namespace (`crate::journal`).
    Kubernetes,
}

/// A plan that passed validation: the single input of every later stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatedPlan {
    /// The plan's name (a DNS-1123 label): labels, state file, ConfigMap.
    pub name: String,
    /// The servers, sorted by id, ids and addresses unique. Lifted out of
    /// `ensemble` because nearly every stage iterates them.
    pub servers: Vec<Server>,
    /// Ports, config path, host access and service commands.
    pub ensemble: Ensemble,
    /// The Kubernetes side.
    pub kubernetes: Kubernetes,
    /// The clients' side.
    pub clients: Clients,
    /// Timeouts and gates (outside the hash).
    pub policy: Policy,
    /// The journal backend.
    pub state: StateBackend,
    /// What validation accepted but an operator should read (e.g. an even
    /// number of voters under `policy.allowEvenVoters`).
    #[serde(skip)]
    pub warnings: Vec<super::Warning>,
    /// The directory of the plan file when it was read by [`super::load`];
    /// relative state paths are resolved against it.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

impl ValidatedPlan {
    /// The server with this id.
    pub fn server(&self, id: ServerId) -> Option<&Server> {
        self.servers.iter().find(|server| server.id == id)
    }

    /// `address:clientPort` of a server as it runs on its host today.
    pub fn client_endpoint(&self, server: &Server) -> String {
        format!("{}:{}", server.address, self.ensemble.client_port)
    }

    /// The Service name of server `id`, e.g. `zk-1`.
    pub fn service_name(&self, id: ServerId) -> String {
        self.kubernetes.service_name.render(id)
    }

    /// The Service's DNS name, e.g. `zk-1.zookeeper.svc.cluster.local`.
    pub fn service_host(&self, id: ServerId) -> String {
        format!(
            "{}.{}.svc.{}",
            self.service_name(id),
            self.kubernetes.namespace,
            self.kubernetes.cluster_domain
        )
    }

    /// Today's connection string: every `address:clientPort`, plus chroot.
    pub fn current_connection_string(&self) -> String {
        let hosts: Vec<String> = self
            .servers
            .iter()
            .map(|s| self.client_endpoint(s))
            .collect();
        self.with_chroot(hosts.join(","))
    }

    /// The connection string clients move to in the clients step: every
    /// Service name with the client port, plus chroot.
    pub fn service_connection_string(&self) -> String {
        let hosts: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{}:{}", self.service_host(s.id), self.ensemble.client_port))
            .collect();
        self.with_chroot(hosts.join(","))
    }

    fn with_chroot(&self, hosts: String) -> String {
        match &self.clients.chroot {
            Some(chroot) => format!("{hosts}{chroot}"),
            None => hosts,
        }
    }

    /// The journal file to open, for the file backend: the plan's path,
    /// resolved against the plan file's directory when relative, so the
    /// journal does not depend on where the command runs.
    pub fn state_file(&self) -> Option<PathBuf> {
        match &self.state {
            StateBackend::File { path } => {
                let path = Path::new(path);
                Some(match &self.base_dir {
                    Some(dir) if path.is_relative() => dir.join(path),
                    _ => path.to_path_buf(),
                })
            }
            StateBackend::Kubernetes => None,
        }
    }

    /// The ConfigMap (and Lease) name of the kubernetes state backend.
    pub fn state_object_name(&self) -> String {
        format!("zkmigrate-{}", self.name)
    }
}
