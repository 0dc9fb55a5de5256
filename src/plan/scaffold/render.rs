//! A [`Scaffold`] as a commented plan file. Pure: the same scaffold gives
//! the same bytes (no date, no local path), so a plan written by `init`
//! can be diffed against a later run.
//!
//! The layout follows `plans/three-node-systemd.yaml`: a comment before
//! each section saying what it is and, marked `CHECK`, what `init` could
//! not observe and chose a default for. Every value that came from a server
//! or the command line goes through `yaml::scalar`, which quotes what YAML
//! would read as something else (`no`, `1e3`, `null`), and every such
//! value in a comment through `yaml::comment_safe`, so a server cannot
//! break the file with what it reports.

use super::yaml::{Out, comment_safe, scalar};
use super::{Membership, Scaffold, ScaffoldError, ServerSketch, ServiceManager, join_ids};
use crate::plan::{self, ValidatedPlan};

/// `kubernetes.target.storage.size` unless the data is large.
const DEFAULT_STORAGE_GIB: u64 = 10;
/// The name `render_checked` gives the text in validation messages.
const SOURCE_NAME: &str = "the generated plan";

/// The scaffold as plan text, validated: the text and the plan it loads
/// as. A scaffold that would not load (an IPv6 member address, say) is an
/// error carrying the plan's own messages.
pub fn render_checked(scaffold: &Scaffold) -> Result<(String, ValidatedPlan), ScaffoldError> {
    let text = render(scaffold);
    let plan = plan::parse(&text, SOURCE_NAME).map_err(ScaffoldError::Invalid)?;
    Ok((text, plan))
}

/// The scaffold as plan text.
pub fn render(s: &Scaffold) -> String {
    let mut out = Out::default();
    header(&mut out, s);
    out.line(0, "apiVersion: zkmigrate/v1");
    out.line(0, "kind: MigrationPlan");
    out.comment(
        0,
        "CHECK: the migration's name, in the zkmigrate/plan label of every object it creates and in the journal's file name; a DNS-1123 label.",
    );
    out.field(0, "name", &scalar(&s.settings.name), None);
    out.blank();
    out.line(0, "ensemble:");
    servers(&mut out, s);
    out.comment(
        2,
        "The ports of every server (the server.N lines and each server's clientPort).",
    );
    out.field(2, "clientPort", &s.client_port.to_string(), None);
    out.field(2, "quorumPort", &s.quorum_port.to_string(), None);
    out.field(2, "electionPort", &s.election_port.to_string(), None);
    config_path(&mut out, s);
    access(&mut out, s);
    service(&mut out, s);
    out.blank();
    kubernetes(&mut out, s);
    out.blank();
    settings_sections(&mut out, s);
    out.text
}

fn header(out: &mut Out, s: &Scaffold) {
    let connect: Vec<String> = s.connect.iter().map(ToString::to_string).collect();
    out.comment(
        0,
        &format!(
            "A starting plan for the ZooKeeper ensemble at {}, written by `zkmigrate init`.",
            connect.join(", ")
        ),
    );
    out.comment(0, "");
    out.comment(
        0,
        "What the servers reported is filled in as they reported it. What they cannot report is a default marked CHECK: read every CHECK and correct what does not fit (each field is described in docs/plan-file.md), then",
    );
    out.line(
        0,
        "#   zkmigrate plan --offline -f PLAN   # validates this file",
    );
    out.line(
        0,
        "#   zkmigrate check -f PLAN            # preflight: ensemble, hosts, cluster, network",
    );
    out.comment(0, "");
    let version = match (&s.version, mixed_versions(s)) {
        (None, _) => "version unknown (no server answered `srvr`)".to_string(),
        (Some(v), false) => v.to_string(),
        (Some(v), true) => format!("{v} and later (mixed)"),
    };
    let members = match &s.membership {
        Membership::FromConf {
            reported_by,
            dynamic,
        } => format!(
            "the members from the `conf` of server{} {}{}{}",
            super::plural(reported_by.len()),
            join_ids(reported_by),
            if reported_by.len() > 1 {
                ", which agree"
            } else {
                ""
            },
            if *dynamic {
                " (a 3.5+ dynamic configuration)"
            } else {
                ""
            }
        ),
        Membership::FromAnswers => {
            "the servers that answered (3.4's `conf` lists no members)".to_string()
        }
    };
    let mut observed = format!("Observed: ZooKeeper {version}; {members}.");
    if !s.conf_via_admin.is_empty() {
        observed.push_str(&format!(
            " `conf` of server{} {} came from the AdminServer (the four-letter word is not whitelisted): `check` needs srvr, mntr, conf and cons whitelisted, or the AdminServer reachable.",
            super::plural(s.conf_via_admin.len()),
            join_ids(&s.conf_via_admin)
        ));
    }
    out.comment(0, &observed);
    for note in &s.notes {
        let stop = if note.ends_with(['.', '?', ')']) {
            ""
        } else {
            "."
        };
        out.comment(0, "");
        out.comment(0, &format!("CHECK: {note}{stop}"));
    }
}

fn mixed_versions(s: &Scaffold) -> bool {
    let mut triples = s
        .servers
        .iter()
        .filter_map(|v| v.version.as_ref())
        .map(|v| (v.major, v.minor, v.patch));
    match triples.next() {
        Some(first) => triples.any(|t| t != first),
        None => false,
    }
}

fn servers(out: &mut Out, s: &Scaffold) {
    match s.membership {
        Membership::FromConf { .. } => out.comment(
            2,
            "Each member as the ensemble lists it: `address` is the address of its server.N line, which peers and clients use today. CHECK `host`: how zkmigrate reaches that server's machine over ssh (a name from your ssh config is fine).",
        ),
        Membership::FromAnswers => out.comment(
            2,
            "CHECK every server against the server.N lines of zoo.cfg on the hosts (3.4 lists no members: these are the servers that answered, at the addresses they were reached by): make each `address` exactly what those lines say, which `zkmigrate check` compares. `host` is how zkmigrate reaches the machine over ssh.",
        ),
    }
    out.line(2, "servers:");
    for server in &s.servers {
        out.field(
            4,
            "- id",
            &server.id.to_string(),
            Some(&server_comment(server)),
        );
        out.field(6, "host", &scalar(&server.host), None);
        out.field(6, "address", &scalar(&server.address), None);
    }
}

/// `leader, 3.8.0, dataDir /var/lib/zookeeper (594B)`.
fn server_comment(server: &ServerSketch) -> String {
    let mut parts = Vec::new();
    if let Some(mode) = &server.mode {
        parts.push(comment_safe(mode.as_str()));
    }
    if let Some(version) = &server.version {
        parts.push(version.to_string());
    }
    if let Some(dir) = &server.data_dir {
        let size = server
            .data_bytes
            .map(|b| format!(" ({})", human_bytes(b)))
            .unwrap_or_default();
        parts.push(format!("dataDir {}{size}", comment_safe(dir)));
    }
    if let Some(dir) = &server.data_log_dir {
        parts.push(format!("dataLogDir {}", comment_safe(dir)));
    }
    match (&server.reached_at, parts.is_empty()) {
        (None, _) => "not asked: from the membership".to_string(),
        (Some(_), true) => "answered `conf` only".to_string(),
        (Some(_), false) => parts.join(", "),
    }
}

fn config_path(out: &mut Out, s: &Scaffold) {
    match &s.settings.config_path {
        Some(_) => out.comment(
            2,
            "The path of zoo.cfg on every host, as given with --config-path (`conf` does not report it).",
        ),
        None => out.comment(
            2,
            "CHECK: the path of zoo.cfg on every host; `conf` does not report it. This is the path of Debian's and Ubuntu's zookeeper package; the Apache tarball keeps it in its conf/ directory, Confluent's packages in /etc/kafka/zookeeper.properties.",
        ),
    }
    if matches!(s.membership, Membership::FromConf { dynamic: true, .. }) {
        out.comment(
            2,
            "The server lines live in a dynamic file (dynamicConfigFile): configPath stays zoo.cfg, which names that file, and zkmigrate rewrites the file it names.",
        );
    }
    let path = s
        .settings
        .config_path
        .as_deref()
        .unwrap_or("/etc/zookeeper/conf/zoo.cfg");
    out.field(2, "configPath", &scalar(path), None);
}

fn access(out: &mut Out, s: &Scaffold) {
    let first_host = s.servers.first().map(|v| v.host.as_str()).unwrap_or("HOST");
    let destination = match &s.settings.ssh_user {
        Some(user) => format!("{user}@{first_host}"),
        None => first_host.to_string(),
    };
    out.comment(
        2,
        "CHECK: how zkmigrate reaches the hosts: the system ssh, as this user, with no prompt (a key, an agent). The user runs the service commands below, and reads and replaces configPath and moves the myid file in dataDir aside, without sudo: root, or a user with those rights on every host. Try, for every host:",
    );
    out.line(
        2,
        &format!(
            "#   ssh -o BatchMode=yes {} true",
            comment_safe(&destination)
        ),
    );
    out.line(2, "access:");
    out.line(4, "ssh:");
    match &s.settings.ssh_user {
        Some(user) => out.field(6, "user", &scalar(user), None),
        None => out.line(
            6,
            "# user: root                  # omitted: ssh's own (its config, else your local user)",
        ),
    }
    out.field(6, "port", "22", None);
    match &s.settings.identity_file {
        Some(file) => out.field(6, "identityFile", &scalar(file), None),
        None => out.line(6, "# identityFile: ~/.ssh/id_ed25519"),
    }
    out.line(6, "# jumpHosts: [ops@bastion.example.net]");
    if s.settings.ssh_options.is_empty() {
        out.line(6, "# options: [StrictHostKeyChecking=yes]");
    } else {
        let options: Vec<String> = s.settings.ssh_options.iter().map(|o| scalar(o)).collect();
        out.field(6, "options", &format!("[{}]", options.join(", ")), None);
    }
}

fn service(out: &mut Out, s: &Scaffold) {
    let sudo = match s.settings.ssh_user.as_deref() {
        Some("root") | None => "",
        Some(_) => "sudo ",
    };
    let how = match &s.settings.service {
        ServiceManager::Systemd { given: false, .. } => "CHECK: how ZooKeeper is managed on the hosts. These are for Debian's zookeeper package under systemd (unit `zookeeper`: `systemctl status zookeeper` on a host shows it).".to_string(),
        ServiceManager::Systemd { unit, given: true } => format!(
            "CHECK: how ZooKeeper is managed on the hosts: the systemd unit `{}`, as given with --systemd-unit.",
            comment_safe(unit)
        ),
        ServiceManager::Script { path } => format!(
            "CHECK: how ZooKeeper is managed on the hosts: the script {}, as given with --service-script, with start, stop, restart, disable and enable.",
            comment_safe(path)
        ),
    };
    let mut text = format!(
        "{how} `disable` must keep the server from coming back by any path (boot, a supervisor, config management): the replace step relies on it so that one myid never runs in two places."
    );
    match (sudo.is_empty(), &s.settings.ssh_user) {
        (false, _) => text.push_str(
            " The ssh user is not root, so each command goes through sudo, which must not ask for a password.",
        ),
        (true, None) => text.push_str(" Prefix each with sudo if the ssh user is not root."),
        (true, Some(_)) => {}
    }
    out.comment(2, &text);
    out.line(2, "service:");
    let command = |verbs: &[&str]| {
        // The unit and the path were checked (no whitespace, nothing YAML
        // reads otherwise at the start): the commands need no quotes.
        verbs
            .iter()
            .map(|verb| match &s.settings.service {
                ServiceManager::Systemd { unit, .. } => format!("{sudo}systemctl {verb} {unit}"),
                ServiceManager::Script { path } => format!("{sudo}{path} {verb}"),
            })
            .collect::<Vec<_>>()
            .join(" && ")
    };
    let (disable, enable): (&[&str], &[&str]) = match &s.settings.service {
        ServiceManager::Systemd { .. } => (&["disable", "mask"], &["unmask", "enable"]),
        ServiceManager::Script { .. } => (&["disable"], &["enable"]),
    };
    out.field(4, "start", &command(&["start"]), None);
    out.field(4, "stop", &command(&["stop"]), None);
    out.field(4, "restart", &command(&["restart"]), None);
    out.field(4, "disable", &command(disable), None);
    out.field(4, "enable", &command(enable), None);
}

fn kubernetes(out: &mut Out, s: &Scaffold) {
    let largest = s.servers.iter().filter_map(|v| v.data_bytes).max();
    let version = s.version.as_ref().map(ToString::to_string);
    out.line(
        0,
        "# ------------------------------------------------------------------------",
    );
    out.comment(
        0,
        "CHECK THIS SECTION: where the servers go. init cannot see the cluster, so these are defaults that validate, not decisions:",
    );
    out.list_item("context and namespace: the cluster and the namespace to move the servers into;");
    out.list_item(
        "clusterDomain: the cluster's DNS domain (cluster.local unless it was set otherwise when the cluster was created);",
    );
    out.list_item(&format!(
        "target.image: an image with the official `zookeeper` image's entrypoint contract, at the hosts' version ({}), from a registry the cluster pulls from (a mirror in an air-gapped cluster);",
        version.as_deref().unwrap_or("unknown: set it")
    ));
    out.list_item(&format!(
        "target.storage: room for dataDir and its growth{}, and a StorageClass of fast disks;",
        largest
            .map(|b| format!(" (the largest today: {})", human_bytes(b)))
            .unwrap_or_default()
    ));
    out.list_item("target.kind: StatefulSet (one for the ensemble) or PerServer (one per server).");
    out.line(
        0,
        "# ------------------------------------------------------------------------",
    );
    out.line(0, "kubernetes:");
    out.line(
        2,
        "# context: prod               # the kubeconfig context; omitted: the current one",
    );
    out.field(2, "namespace", &scalar(&s.settings.namespace), None);
    out.field(2, "clusterDomain", "cluster.local", None);
    let services: Vec<String> = s.servers.iter().map(|v| format!("zk-{}", v.id)).collect();
    out.field(
        2,
        "serviceName",
        "\"zk-{id}\"",
        Some(&format!(
            "one ClusterIP Service per server: {}",
            services.join(", ")
        )),
    );
    out.line(2, "target:");
    out.field(4, "kind", "StatefulSet", None);
    out.field(4, "name", "zk", None);
    let image = match &version {
        Some(v) => format!("zookeeper:{v}"),
        // Validates, and fails at the pull rather than running a guess.
        None => "zookeeper:SET-THE-HOSTS-VERSION".to_string(),
    };
    out.field(4, "image", &image, None);
    out.line(4, "storage:");
    out.field(6, "size", &format!("{}Gi", storage_gib(largest)), None);
    out.line(
        6,
        "# storageClassName: fast-ssd   # omitted: the cluster's default StorageClass",
    );
}

/// Four times the largest data directory, rounded up to a GiB, and at
/// least the default.
fn storage_gib(largest: Option<u64>) -> u64 {
    const GIB: u64 = 1 << 30;
    let wanted = largest.unwrap_or(0).saturating_mul(4).div_ceil(GIB);
    wanted.max(DEFAULT_STORAGE_GIB)
}

fn settings_sections(out: &mut Out, s: &Scaffold) {
    out.comment(
        0,
        "CHECK: if clients connect with a chroot (Kafka's zookeeper.connect often ends in one, e.g. /kafka), set `chroot: /kafka` here: it is appended to the new connection string.",
    );
    out.line(0, "clients: {}");
    out.blank();
    out.comment(
        0,
        "Timeouts and gates (the defaults). Not part of the plan hash: after a halt, raise a timeout here and `step --resume`.",
    );
    out.line(0, "policy:");
    out.field(2, "syncTimeout", "10m", None);
    out.field(2, "progressDeadline", "2m", None);
    out.field(2, "pollInterval", "200ms", None);
    out.field(
        2,
        "confirm",
        "[clients]",
        Some("the clients step ends with `--confirm clients`"),
    );
    let voters = s.servers.len();
    if voters > 1 && voters.is_multiple_of(2) {
        out.comment(
            2,
            &format!(
                "CHECK: {voters} voters. An even number tolerates no more failures than {}, and the replace step always has one server down. Set so that this plan describes the ensemble as it runs: decide before migrating.",
                voters - 1
            ),
        );
        out.field(2, "allowEvenVoters", "true", None);
    }
    out.blank();
    out.comment(
        0,
        "The journal: a file beside this plan (a relative path is resolved against the plan's directory), locked while a step runs.",
    );
    out.line(0, "state:");
    out.field(2, "backend", "file", None);
    out.field(
        2,
        "path",
        &scalar(&format!(".zkmigrate/{}.json", s.settings.name)),
        None,
    );
}

/// `594B`, `1.5KiB`, `12.0GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    // No space before the unit: a wrapped comment keeps them together.
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}
