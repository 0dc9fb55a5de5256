//! Subresources: `status` and `scale` of a StatefulSet, `log` of a Pod
//! (tail, previous, follow until the Pod is gone).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::harness::{Lab, deadline_for, kube_err};

fn sts(name: &str, replicas: i32) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "zookeeper", "image": "zookeeper:3.8"}]}
            }
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_scale_subresources() {
    let lab = Lab::start(6).await;
    let api: Api<StatefulSet> = Api::namespaced(lab.client.clone(), "default");
    api.create(&PostParams::default(), &sts("zk", 3))
        .await
        .unwrap();
    let o = api
        .patch_status(
            "zk",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 2}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(o.status.as_ref().unwrap().replicas, 2);
    assert_eq!(
        o.spec.as_ref().unwrap().replicas,
        Some(3),
        "status writes leave spec"
    );
    let o = api
        .patch(
            "zk",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(
        o.status.as_ref().unwrap().replicas,
        2,
        "main writes leave status"
    );
    let mut o = api.get_status("zk").await.unwrap();
    o.status.as_mut().unwrap().replicas = 3;
    let o = api
        .replace_status("zk", &PostParams::default(), &o)
        .await
        .unwrap();
    assert_eq!(o.status.unwrap().replicas, 3);

    let scale = api.get_scale("zk").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=zk")
    );
    let scale = api
        .patch_scale(
            "zk",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(5));
    assert_eq!(api.get("zk").await.unwrap().spec.unwrap().replicas, Some(5));
    let mut stale = api.get_scale("zk").await.unwrap();
    let mut fresh = stale.clone();
    fresh.spec.as_mut().unwrap().replicas = Some(1);
    api.replace_scale("zk", &PostParams::default(), &fresh)
        .await
        .unwrap();
    stale.spec.as_mut().unwrap().replicas = Some(4);
    let e = kube_err(
        api.replace_scale("zk", &PostParams::default(), &stale)
            .await,
    );
    assert_eq!(e.code, 409);
    assert_eq!(api.get("zk").await.unwrap().spec.unwrap().replicas, Some(1));
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_logs_tail_and_follow() {
    let lab = Lab::start(9).await;
    let pods: Api<Pod> = Api::namespaced(lab.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "zk-0"},
        "spec": {"containers": [{"name": "zookeeper", "image": "zookeeper:3.8"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let log = lab.log_path("default", "zk-0", "zookeeper");
    std::fs::write(&log, "one\ntwo\nthree\n").unwrap();
    assert_eq!(
        pods.logs("zk-0", &Default::default()).await.unwrap(),
        "one\ntwo\nthree\n"
    );
    let lp = kube::api::LogParams {
        tail_lines: Some(2),
        ..Default::default()
    };
    assert_eq!(pods.logs("zk-0", &lp).await.unwrap(), "two\nthree\n");
    let lp = kube::api::LogParams {
        previous: true,
        ..Default::default()
    };
    assert_eq!(kube_err(pods.logs("zk-0", &lp).await).code, 400);

    let lp = kube::api::LogParams {
        follow: true,
        tail_lines: Some(1),
        ..Default::default()
    };
    use futures::AsyncBufReadExt;
    let mut lines = pods.log_stream("zk-0", &lp).await.unwrap().lines();
    let first = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first, "three");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"four\n"))
        .unwrap();
    let next_line = tokio::time::timeout(Duration::from_secs(5), lines.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next_line, "four");
    // The Pod goes: the stream ends.
    pods.delete("zk-0", &DeleteParams::default()).await.unwrap();
    let end = tokio::time::timeout(deadline_for(5), async {
        while let Some(l) = lines.next().await {
            l.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the follow ends when the Pod is gone");
    lab.stop().await;
}
