//! The zkmigrate plan `zklab up` writes for its lab (DESIGN section 3): the
//! lab's hosts reached over SSH with the lab key, the service commands of
//! the lab's service script, and the lab's Kubernetes as the target.
//!
//! Rendered as text (the lab does not depend on zkmigrate); zkmigrate's own
//! tests validate it with zkmigrate's parser.

use crate::host::{self, ZkSettings};
use crate::layout::{Layout, Machine};
use crate::ssh;
use crate::topology::Target;

/// The plan's YAML.
pub fn render(layout: &Layout, servers: u8, target: Target, zk: &ZkSettings) -> String {
    let mut out = format!(
        "# Plan for lab {name}, written by `zklab up`. Run zkmigrate from the lab's\n\
         # operator machine: zklab run --name {name} --on ops -- zkmigrate plan -f {plan}\n\
         apiVersion: zkmigrate/v1\n\
         kind: MigrationPlan\n\
         name: {name}\n\
         ensemble:\n\
         \x20 servers:\n",
        name = layout.name,
        plan = layout.plan_file().display(),
    );
    for k in 1..=servers {
        out.push_str(&format!(
            "    - {{ id: {k}, host: {host}, address: {addr} }}\n",
            host = Machine::Host(k).short(),
            addr = Machine::Host(k).addr(),
        ));
    }
    let options: Vec<String> = ssh::client_options(layout)
        .iter()
        .map(|o| format!("{o:?}"))
        .collect();
    let svc = host::SERVICE;
    out.push_str(&format!(
        "  clientPort: {client}\n\
         \x20 quorumPort: {quorum}\n\
         \x20 electionPort: {election}\n\
         \x20 configPath: {config}\n\
         \x20 access:\n\
         \x20   ssh:\n\
         \x20     user: root\n\
         \x20     port: 22\n\
         \x20     identityFile: {key}\n\
         \x20     options: [{options}]\n\
         \x20 service:\n\
         \x20   start: {svc} start\n\
         \x20   stop: {svc} stop\n\
         \x20   restart: {svc} restart\n\
         \x20   disable: {svc} disable\n\
         \x20   enable: {svc} enable\n\
         kubernetes:\n\
         \x20 namespace: zookeeper\n\
         \x20 clusterDomain: cluster.local\n\
         \x20 serviceName: \"zk-{{id}}\"\n\
         \x20 target:\n\
         \x20   kind: {target}\n\
         \x20   name: zk\n\
         \x20   image: zookeeper:3.8\n\
         \x20   storage: {{ size: 1Gi }}\n\
         policy:\n\
         \x20 syncTimeout: 2m\n\
         \x20 progressDeadline: 1m\n\
         \x20 pollInterval: 200ms\n\
         \x20 confirm: [clients]\n\
         state:\n\
         \x20 backend: file\n\
         \x20 path: {state}\n",
        client = zk.client_port,
        quorum = zk.quorum_port,
        election = zk.election_port,
        config = host::CONFIG_PATH,
        key = layout.ssh_key().display(),
        options = options.join(", "),
        target = match target {
            Target::StatefulSet => "StatefulSet",
            Target::PerServer => "PerServer",
        },
        state = layout
            .root
            .join("state")
            .join(format!("{}.json", layout.name))
            .display(),
    ));
    out
}
