//! A small valid plan for unit tests across the crate (three servers,
//! exec access, the given target kind), so tests do not each carry a copy.

use super::ValidatedPlan;

/// Three servers (10.0.0.11-13, hosts h1-h3), exec access through
/// `ip netns exec {host}`, namespace `zookeeper`, target `kind`
/// (`StatefulSet` or `PerServer`) named `zk`.
pub fn three_servers(kind: &str) -> ValidatedPlan {
    let text = format!(
        r#"
apiVersion: zkmigrate/v1
kind: MigrationPlan
name: orders
ensemble:
  servers:
    - {{ id: 1, host: h1, address: 10.0.0.11 }}
    - {{ id: 2, host: h2, address: 10.0.0.12 }}
    - {{ id: 3, host: h3, address: 10.0.0.13 }}
  access:
    exec: {{ prefix: ["ip", "netns", "exec", "{{host}}"] }}
  service: {{ start: a, stop: b, restart: c, disable: d, enable: e }}
kubernetes:
  namespace: zookeeper
  target: {{ kind: {kind}, name: zk, image: "zookeeper:3.8", storage: {{ size: 1Gi }} }}
"#
    );
    super::parse(&text, "test.yaml").expect("valid plan")
}
