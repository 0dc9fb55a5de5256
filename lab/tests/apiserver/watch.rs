//! Watches: kube-runtime's watcher through a label selector (objects
//! leaving the selector are deletions), and a raw watch resuming from a
//! resourceVersion with bookmarks and `timeoutSeconds`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

use super::harness::{Lab, cm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kube_runtime_watcher_sees_creates_changes_and_deletes() {
    let lab = Lab::start(3).await;
    let cms: Api<ConfigMap> = Api::namespaced(lab.client.clone(), "default");
    let pp = PostParams::default();
    cms.create(&pp, &cm("before", &[("app", "zk")], "0"))
        .await
        .unwrap();
    let config = watcher::Config::default().labels("app=zk");
    let mut events = watcher(cms.clone(), config).boxed();
    // The initial list.
    let mut seen_init = Vec::new();
    loop {
        match next(&mut events).await {
            watcher::Event::InitApply(o) => seen_init.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen_init, ["before"]);
    cms.create(&pp, &cm("w", &[("app", "zk")], "1"))
        .await
        .unwrap();
    cms.create(&pp, &cm("other", &[("app", "web")], "1"))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    // Relabelled out of the selector: the watcher sees it go.
    cms.patch(
        "before",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    let mut log = Vec::new();
    while log.len() < 4 {
        match next(&mut events).await {
            watcher::Event::Apply(o) => log.push(format!(
                "apply {} {}",
                o.metadata.name.unwrap(),
                o.data.unwrap_or_default()["k"]
            )),
            watcher::Event::Delete(o) => log.push(format!("delete {}", o.metadata.name.unwrap())),
            _ => {}
        }
    }
    assert_eq!(log, ["apply w 1", "apply w 2", "delete before", "delete w"]);
    lab.stop().await;
}

async fn next<S, T>(s: &mut S) -> T
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the stream goes on")
        .expect("no watch error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_watches_resume_send_bookmarks_and_time_out() {
    let lab = Lab::start(4).await;
    let cms: Api<ConfigMap> = Api::namespaced(lab.client.clone(), "default");
    let a = cms
        .create(&PostParams::default(), &cm("a", &[], "1"))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.unwrap();
    cms.create(&PostParams::default(), &cm("b", &[], "1"))
        .await
        .unwrap();
    // From `a`'s version: only `b`, then bookmarks, then the end at the
    // timeout.
    let started = std::time::Instant::now();
    let wp = WatchParams::default().timeout(2);
    let events: Vec<WatchEvent<ConfigMap>> = cms
        .watch(&wp, &rv)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    match &events[0] {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("expected ADDED b, got {other:?}"),
    }
    let bookmarks: Vec<&String> = events[1..]
        .iter()
        .map(|e| match e {
            WatchEvent::Bookmark(b) => &b.metadata.resource_version,
            other => panic!("expected only bookmarks, got {other:?}"),
        })
        .collect();
    assert!(!bookmarks.is_empty(), "bookmarks every 300 ms over 2 s");
    let now = lab.store.resource_version().to_string();
    assert_eq!(bookmarks.last().unwrap().as_str(), now);
    lab.stop().await;
}
