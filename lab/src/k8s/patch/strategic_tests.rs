//! Strategic merge patch on realistic objects, byte-exact.

use serde_json::{Value, json};

use super::strategic_merge_patch;
use crate::k8s::resources;

fn service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "zk", "namespace": "default", "labels": {"app": "zk", "tier": "db"}},
        "spec": {
            "clusterIP": "10.96.0.10",
            "selector": {"app": "zk"},
            "ports": [
                {"name": "client", "port": 2181, "protocol": "TCP", "targetPort": 2181},
                {"name": "metrics", "port": 7000, "protocol": "TCP", "targetPort": 7000},
            ],
        },
    })
}

fn stateful_set() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "zk", "namespace": "default", "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 3,
            "template": {"spec": {
                "containers": [{
                    "name": "zookeeper", "image": "zookeeper:3.8",
                    "env": [
                        {"name": "ZOO_MY_ID", "value": "1"},
                        {"name": "ZOO_SERVERS", "value": "server.1=zk-0:2888:3888;2181"},
                    ],
                    "ports": [{"containerPort": 2181, "name": "client", "protocol": "TCP"}],
                }],
                "tolerations": [{"key": "a", "operator": "Exists"}],
                "volumes": [{"name": "conf", "emptyDir": {}}],
            }},
        },
    })
}

fn smp(obj: &Value, patch: Value, kind: &str) -> String {
    let resource = match kind {
        "Service" => resources::services(),
        _ => resources::statefulsets(),
    };
    strategic_merge_patch(resource, obj, &patch)
        .expect("patch applies")
        .to_string()
}

#[test]
fn service_ports_merge_by_port_and_new_ports_keep_patch_order() {
    let out = smp(
        &service(),
        json!({"metadata": {"labels": {"tier": null}},
        "spec": {"ports": [
            {"port": 2181, "targetPort": 12181},
            {"name": "admin", "port": 8080, "protocol": "TCP", "targetPort": 8080},
        ]}}),
        "Service",
    );
    assert_eq!(
        out,
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"labels":{"app":"zk"},"name":"zk","namespace":"default"},"spec":{"clusterIP":"10.96.0.10","ports":[{"name":"client","port":2181,"protocol":"TCP","targetPort":12181},{"name":"admin","port":8080,"protocol":"TCP","targetPort":8080},{"name":"metrics","port":7000,"protocol":"TCP","targetPort":7000}],"selector":{"app":"zk"}}}"#
    );
}

#[test]
fn container_env_merges_by_name_in_set_element_order() {
    // What `kubectl apply` (client side) sends when one env var changes
    // and one is added.
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "zookeeper"}],
        "containers": [{
            "$setElementOrder/env": [
                {"name": "ZOO_MY_ID"}, {"name": "ZOO_4LW_COMMANDS_WHITELIST"}, {"name": "ZOO_SERVERS"},
            ],
            "env": [
                {"name": "ZOO_4LW_COMMANDS_WHITELIST", "value": "*"},
                {"name": "ZOO_SERVERS", "value": "server.1=zk-0:2888:3888;2181 server.2=zk-1:2888:3888;2181"},
            ],
            "name": "zookeeper",
        }],
    }}}});
    let out = smp(&stateful_set(), patch, "StatefulSet");
    assert_eq!(
        out,
        r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"finalizers":["a","b"],"name":"zk","namespace":"default"},"spec":{"replicas":3,"template":{"spec":{"containers":[{"env":[{"name":"ZOO_MY_ID","value":"1"},{"name":"ZOO_4LW_COMMANDS_WHITELIST","value":"*"},{"name":"ZOO_SERVERS","value":"server.1=zk-0:2888:3888;2181 server.2=zk-1:2888:3888;2181"}],"image":"zookeeper:3.8","name":"zookeeper","ports":[{"containerPort":2181,"name":"client","protocol":"TCP"}]}],"tolerations":[{"key":"a","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"conf"}]}}}}"#
    );
}

#[test]
fn patch_delete_and_replace_directives() {
    let out = smp(
        &stateful_set(),
        json!({"spec": {"template": {"spec": {
            "containers": [{"name": "zookeeper", "env": [{"$patch": "delete", "name": "ZOO_MY_ID"}],
                            "ports": [{"$patch": "replace"}, {"containerPort": 12181, "name": "client"}]}],
            // tolerations has no patch strategy: the list is replaced.
            "tolerations": [{"key": "b", "operator": "Exists"}],
        }}}}),
        "StatefulSet",
    );
    assert_eq!(
        out,
        r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"finalizers":["a","b"],"name":"zk","namespace":"default"},"spec":{"replicas":3,"template":{"spec":{"containers":[{"env":[{"name":"ZOO_SERVERS","value":"server.1=zk-0:2888:3888;2181"}],"image":"zookeeper:3.8","name":"zookeeper","ports":[{"containerPort":12181,"name":"client"}]}],"tolerations":[{"key":"b","operator":"Exists"}],"volumes":[{"emptyDir":{},"name":"conf"}]}}}}"#
    );
    let deleted = smp(
        &service(),
        json!({"metadata": {"labels": {"$patch": "delete"}}, "spec": {"selector": {"$patch": "replace", "role": "zk"}}}),
        "Service",
    );
    assert!(deleted.contains(r#""labels":{}"#), "{deleted}");
    assert!(deleted.contains(r#""selector":{"role":"zk"}"#), "{deleted}");
}

#[test]
fn retain_keys_and_primitive_lists() {
    let out = smp(
        &stateful_set(),
        json!({
            "metadata": {"finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"]},
            "spec": {"template": {"spec": {"volumes": [{
                "name": "conf",
                "$retainKeys": ["configMap", "name"],
                "configMap": {"name": "zk-conf"},
            }]}}},
        }),
        "StatefulSet",
    );
    assert_eq!(
        out,
        r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"finalizers":["c","a"],"name":"zk","namespace":"default"},"spec":{"replicas":3,"template":{"spec":{"containers":[{"env":[{"name":"ZOO_MY_ID","value":"1"},{"name":"ZOO_SERVERS","value":"server.1=zk-0:2888:3888;2181"}],"image":"zookeeper:3.8","name":"zookeeper","ports":[{"containerPort":2181,"name":"client","protocol":"TCP"}]}],"tolerations":[{"key":"a","operator":"Exists"}],"volumes":[{"configMap":{"name":"zk-conf"},"name":"conf"}]}}}}"#
    );
}

#[test]
fn malformed_directives_are_refused_as_the_real_server_does() {
    let st = resources::statefulsets();
    let err = |patch: Value| {
        strategic_merge_patch(st, &stateful_set(), &patch)
            .map_err(|e| (e.code, e.message))
            .expect_err("refused")
    };
    assert_eq!(
        err(
            json!({"spec": {"template": {"spec": {"volumes": [{"name": "conf", "$retainKeys": ["name"], "configMap": {}}]}}}})
        ),
        (400, "invalid patch format of retainKeys".into())
    );
    assert_eq!(
        err(json!({"metadata": {"finalizers": [["a"]]}})),
        (
            422,
            "the server rejected our request due to an error in our request".into()
        )
    );
    assert_eq!(
        err(json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})).0,
        500
    );
    assert_eq!(err(json!([1])).0, 400);
}
