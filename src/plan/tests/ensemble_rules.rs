//! One test per rule of the `ensemble` section: the error names the right
//! field path and, where the rule is about one value, its position.

use super::{BASE, base_with, edit, error_at, pos, valid};
use crate::plan::parse;

#[test]
fn duplicate_id_names_both_servers_and_the_line() {
    let text = base_with("id: 3", "id: 2");
    let error = error_at(&text, "ensemble.servers[2].id", "duplicate server id 2");
    assert_eq!(
        error.message,
        "duplicate server id 2 (first at ensemble.servers[1])"
    );
    assert_eq!(error.position, pos(12, 11));
    let rendered = parse(&text, "plans/x.yaml").unwrap_err().to_string();
    assert_eq!(
        rendered,
        "plans/x.yaml:12:11: ensemble.servers[2].id: duplicate server id 2 (first at ensemble.servers[1])"
    );
}

#[test]
fn duplicate_address_ignores_case_and_root_dot() {
    let text = base_with("10.0.0.13", "10.0.0.11");
    error_at(
        &text,
        "ensemble.servers[2].address",
        "duplicate address \"10.0.0.11\" (first at ensemble.servers[0])",
    );
    let text = edit(
        &base_with("10.0.0.11", "zk-a.prod"),
        "10.0.0.12",
        "ZK-A.prod.",
    );
    error_at(&text, "ensemble.servers[1].address", "duplicate address");
}

#[test]
fn duplicate_host() {
    let text = base_with("host: zk3", "host: zk1");
    error_at(
        &text,
        "ensemble.servers[2].host",
        "duplicate host \"zk1\" (first at ensemble.servers[0])",
    );
}

#[test]
fn ids_outside_1_to_255() {
    for bad in ["0", "256", "-1"] {
        let text = base_with("id: 3", &format!("id: {bad}"));
        let error = error_at(&text, "ensemble.servers[2].id", "outside 1..255");
        assert_eq!(error.position, pos(12, 11));
    }
    assert_eq!(
        valid(&base_with("id: 3", "id: 255")).servers[2].id.get(),
        255
    );
}

#[test]
fn even_voters_are_an_error_unless_allowed() {
    let four = base_with(
        "      address: 10.0.0.13\n",
        "      address: 10.0.0.13\n    - { id: 4, host: zk4, address: 10.0.0.14 }\n",
    );
    let error = error_at(&four, "ensemble.servers", "4 voters");
    assert!(
        error.message.contains("policy.allowEvenVoters"),
        "{}",
        error.message
    );
    assert_eq!(error.position, pos(6, 5));

    let allowed = valid(&format!("{four}policy:\n  allowEvenVoters: true\n"));
    assert_eq!(allowed.servers.len(), 4);
    assert_eq!(allowed.warnings.len(), 1);
    assert_eq!(allowed.warnings[0].field.path, "ensemble.servers");
    assert!(
        allowed.warnings[0]
            .to_string()
            .starts_with("test.yaml:6:5: ensemble.servers: 4 voters")
    );
}

#[test]
fn a_single_server_is_a_warning() {
    let one = BASE.replace(
        "    - id: 2\n      host: zk2\n      address: 10.0.0.12\n    - id: 3\n      host: zk3\n      address: 10.0.0.13\n",
        "",
    );
    let plan = valid(&one);
    assert_eq!(plan.servers.len(), 1);
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].field.message.contains("single server"));
}

#[test]
fn at_least_one_server() {
    let none = BASE.replace(
        "\n    - id: 1\n      host: zk1\n      address: 10.0.0.11\n    - id: 2\n      host: zk2\n      address: 10.0.0.12\n    - id: 3\n      host: zk3\n      address: 10.0.0.13",
        " []",
    );
    error_at(&none, "ensemble.servers", "at least one server");
}

#[test]
fn ports_must_be_1_to_65535_and_distinct() {
    let text = base_with(
        "  access:\n",
        "  clientPort: 0\n  quorumPort: 70000\n  access:\n",
    );
    let error = error_at(&text, "ensemble.clientPort", "port 0 is outside 1..65535");
    assert_eq!(error.position, pos(15, 15));
    error_at(&text, "ensemble.quorumPort", "port 70000");
    let text = base_with("  access:\n", "  electionPort: 2181\n  access:\n");
    error_at(&text, "ensemble.electionPort", "also ensemble.clientPort");
    error_at(
        &base_with("{ user: root }", "{ user: root, port: 0 }"),
        "ensemble.access.ssh.port",
        "port 0",
    );
}

#[test]
fn hosts_are_plain_words() {
    error_at(
        &base_with("host: zk2", "host: \"\""),
        "ensemble.servers[1].host",
        "must not be empty",
    );
    error_at(
        &base_with("host: zk2", "host: -oProxyCommand=x"),
        "ensemble.servers[1].host",
        "must not start with '-'",
    );
    error_at(
        &base_with("host: zk2", "host: \"zk 2\""),
        "ensemble.servers[1].host",
        "whitespace",
    );
}

#[test]
fn addresses_are_ipv4_or_dns_names() {
    error_at(
        &base_with("10.0.0.12", "\"\""),
        "ensemble.servers[1].address",
        "must not be empty",
    );
    error_at(
        &base_with("10.0.0.12", "\"fd00::12\""),
        "ensemble.servers[1].address",
        "IPv6",
    );
    error_at(
        &base_with("10.0.0.12", "zk_2.prod"),
        "ensemble.servers[1].address",
        "neither an IPv4 address nor a DNS name",
    );
    assert_eq!(
        valid(&base_with("10.0.0.12", "zk2.prod.internal")).servers[1].address,
        "zk2.prod.internal"
    );
}

#[test]
fn access_is_exactly_one_of_ssh_or_exec() {
    let both = base_with(
        "    ssh: { user: root }\n",
        "    ssh: { user: root }\n    exec: { prefix: [sudo] }\n",
    );
    error_at(&both, "ensemble.access", "both ssh and exec");
    let neither = base_with("  access:\n    ssh: { user: root }\n", "  access: {}\n");
    error_at(&neither, "ensemble.access", "one of ssh or exec");
}

#[test]
fn exec_prefix_placeholders() {
    let exec = |prefix: &str| {
        base_with(
            "ssh: { user: root }",
            &format!("exec: {{ prefix: {prefix} }}"),
        )
    };
    let plan = valid(&exec("[ip, netns, exec, \"{host}\"]"));
    assert!(matches!(plan.ensemble.access, crate::plan::Access::Exec(_)));
    error_at(
        &exec("[ip, netns, exec, \"{hostname}\"]"),
        "ensemble.access.exec.prefix[3]",
        "unknown placeholder {hostname}",
    );
    error_at(
        &exec("[ip, netns, exec, zk]"),
        "ensemble.access.exec.prefix",
        "neither {host} nor {id}",
    );
    error_at(
        &exec("[]"),
        "ensemble.access.exec.prefix",
        "at least the command",
    );
    error_at(
        &exec("[\"\", \"{host}\"]"),
        "ensemble.access.exec.prefix[0]",
        "must not be empty",
    );
}

#[test]
fn ssh_options_and_jump_hosts() {
    let ssh = |fields: &str| base_with("{ user: root }", &format!("{{ user: root, {fields} }}"));
    error_at(
        &ssh("options: [\"-v\"]"),
        "ensemble.access.ssh.options[0]",
        "must not start with '-'",
    );
    // Written as ssh arguments: both "-o" entries are pointed at.
    let as_args = ssh("options: [\"-o\", \"BatchMode=yes\", \"-oConnectTimeout=5\"]");
    error_at(&as_args, "ensemble.access.ssh.options[0]", "without -o");
    error_at(&as_args, "ensemble.access.ssh.options[2]", "without -o");
    assert_eq!(super::errors(&as_args).len(), 2);
    error_at(
        &ssh("options: [StrictHostKeyChecking]"),
        "ensemble.access.ssh.options[0]",
        "Key=Value",
    );
    error_at(
        &ssh("jumpHosts: [\"a,b\"]"),
        "ensemble.access.ssh.jumpHosts[0]",
        "','",
    );
    let no_user = base_with("{ user: root }", "{ user: \"\" }");
    error_at(&no_user, "ensemble.access.ssh.user", "must not be empty");
}

#[test]
fn service_commands_must_not_be_empty() {
    error_at(
        &base_with("disable: systemctl disable zookeeper", "disable: \" \""),
        "ensemble.service.disable",
        "must not be empty",
    );
}

#[test]
fn config_path_is_absolute() {
    let text = base_with("  access:\n", "  configPath: conf/zoo.cfg\n  access:\n");
    error_at(&text, "ensemble.configPath", "absolute");
}
