//! Waiting for the cluster, by watch.
//!
//! Every wait is one `watcher` stream (kube-runtime): a list, then a watch
//! from its resourceVersion, re-listed by the watcher itself after a 410 or
//! a dropped connection. Nothing here polls or sleeps: the condition is
//! evaluated on each event, so a wait ends within one event of the world
//! changing (STYLE convention 8, as kube-runtime's `wait.rs`).
//!
//! Conditions are pure predicates of the observed object (`None`: it does
//! not exist), as in kube-runtime's `Condition`; [`pod_is_ready`] and
//! [`has_endpoints`] are public so the engine's `check` uses the same
//! predicate as its wait. Each wait is bounded by its timeout, and the
//! timeout error says what was seen last ("phase Pending, container zk
//! waiting: ImagePullBackOff"), because "timed out" alone tells the
//! operator nothing.
//!
//! Watch errors that a retry can cure (a dropped connection, 410 Gone,
//! 429, 5xx) are logged and the watcher's back-off continues; a 4xx such
//! as 403 ends the wait at once.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use tokio::time::Instant;

use super::error::{K8sError, is_transient};
use super::{Cluster, NamespacedObject, SLICE_CONTROLLER, SLICE_MANAGED_BY_LABEL};

/// Whether the Pod exists and its `Ready` condition is `True`.
pub fn pod_is_ready(pod: Option<&Pod>) -> bool {
    pod.and_then(|p| p.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Whether the slice holds at least one endpoint with an address.
pub fn has_endpoints(slice: &EndpointSlice) -> bool {
    slice.endpoints.iter().any(|e| !e.addresses.is_empty())
}

/// A Pod's state in a few words, for a timeout's "last seen".
fn describe_pod(pod: Option<&Pod>) -> String {
    let Some(pod) = pod else {
        return "no such Pod".to_string();
    };
    let Some(status) = &pod.status else {
        return "no status yet (not scheduled)".to_string();
    };
    let mut words = vec![format!(
        "phase {}",
        status.phase.as_deref().unwrap_or("unknown")
    )];
    for c in status.container_statuses.iter().flatten() {
        let state = c.state.as_ref();
        if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.as_deref().unwrap_or("waiting");
            let message = waiting
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            words.push(format!("container {} waiting: {reason}{message}", c.name));
        } else if let Some(done) = state.and_then(|s| s.terminated.as_ref()) {
            words.push(format!(
                "container {} terminated with exit code {}",
                c.name, done.exit_code
            ));
        } else {
            let ready = if c.ready { "ready" } else { "not ready" };
            words.push(format!(
                "container {} running, {ready}, {} restarts",
                c.name, c.restart_count
            ));
        }
    }
    words.join(", ")
}

/// An object's presence in a few words, for a timeout's "last seen".
fn describe_presence<K: NamespacedObject>(obj: Option<&K>) -> String {
    match obj {
        None => format!("no such {}", K::kind(&())),
        Some(obj) => format!(
            "the {} (resourceVersion {})",
            K::kind(&()),
            obj.meta().resource_version.as_deref().unwrap_or("unknown")
        ),
    }
}

/// Whether a watch error ends the wait: an answer that will not change
/// (403, 404 of an unserved kind, ...) rather than a failure to get one.
fn is_fatal(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => !is_transient(e),
        watcher::Error::WatchError(status) => {
            !matches!(status.code, 410 | 429 | 500 | 502 | 503 | 504)
        }
        watcher::Error::NoResourceVersion => true,
    }
}

impl Cluster {
    /// Watches object `name` until `cond` holds of it (`None`: it does not
    /// exist) and returns it as last seen; a [`K8sError::Timeout`] after
    /// `timeout`.
    pub async fn await_condition<K: NamespacedObject>(
        &self,
        name: &str,
        cond: impl Fn(Option<&K>) -> bool,
        timeout: Duration,
    ) -> Result<Option<K>, K8sError> {
        let what = format!("{} {name} in the awaited state", K::kind(&()));
        self.await_named(name, &what, cond, describe_presence::<K>, timeout)
            .await
    }

    /// Waits until Pod `name` is Ready.
    pub async fn await_pod_ready(&self, name: &str, timeout: Duration) -> Result<Pod, K8sError> {
        let what = format!("Pod {name} ready");
        let pod = self
            .await_named(name, &what, pod_is_ready, describe_pod, timeout)
            .await?;
        // `pod_is_ready` holds only of an existing Pod.
        pod.ok_or_else(|| K8sError::Timeout {
            what,
            namespace: self.namespace.clone(),
            timeout,
            last_seen: "no such Pod".to_string(),
        })
    }

    /// Waits until object `name` no longer exists (a terminating Pod is
    /// still there: it is gone when its processes are).
    pub async fn await_deleted<K: NamespacedObject>(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), K8sError> {
        let what = format!("{} {name} deleted", K::kind(&()));
        self.await_named(
            name,
            &what,
            |o: Option<&K>| o.is_none(),
            describe_presence::<K>,
            timeout,
        )
        .await
        .map(|_| ())
    }

    /// Waits until the EndpointSlice controller has a slice for `service`
    /// (labels `kubernetes.io/service-name=<service>` and managed-by
    /// `endpointslice-controller.k8s.io`) with at least one endpoint, and
    /// returns it. zkmigrate's own slices never match: their managed-by is
    /// `zkmigrate` (DESIGN section 5.5, the selector switch).
    pub async fn await_controller_slice(
        &self,
        service: &str,
        timeout: Duration,
    ) -> Result<EndpointSlice, K8sError> {
        let labels = format!(
            "kubernetes.io/service-name={service},{SLICE_MANAGED_BY_LABEL}={SLICE_CONTROLLER}"
        );
        let what =
            format!("an EndpointSlice of the controller with an endpoint for Service {service}");
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &self.namespace);
        let config = watcher::Config::default().labels(&labels);
        let mut stream = watcher(api, config).default_backoff().boxed();
        let deadline = Instant::now() + timeout;
        let mut last_seen = "no slice".to_string();
        loop {
            let event = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) | Ok(None) => {
                    return Err(K8sError::Timeout {
                        what,
                        namespace: self.namespace.clone(),
                        timeout,
                        last_seen,
                    });
                }
                Ok(Some(event)) => event,
            };
            match event {
                Ok(Event::Apply(slice) | Event::InitApply(slice)) => {
                    if has_endpoints(&slice) {
                        return Ok(slice);
                    }
                    last_seen = format!(
                        "slice {} with no endpoint",
                        slice.metadata.name.as_deref().unwrap_or("?")
                    );
                }
                Ok(Event::Delete(_) | Event::Init | Event::InitDone) => {}
                Err(err) => self.on_watch_error(&what, err)?,
            }
        }
    }

    /// The watch loop of one named object: tracks whether it exists across
    /// (re)lists as kube-runtime's `watch_object` does, and evaluates
    /// `cond` on every change.
    async fn await_named<K: NamespacedObject>(
        &self,
        name: &str,
        what: &str,
        cond: impl Fn(Option<&K>) -> bool,
        describe: impl Fn(Option<&K>) -> String,
        timeout: Duration,
    ) -> Result<Option<K>, K8sError> {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut stream = watcher(api, config).default_backoff().boxed();
        let deadline = Instant::now() + timeout;
        // What the last complete observation said (`None`: nothing yet).
        let mut current: Option<Option<K>> = None;
        let mut seen_in_list = false;
        loop {
            let event = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) | Ok(None) => {
                    let last_seen = match &current {
                        Some(obj) => describe(obj.as_ref()),
                        None => "nothing: the API server did not answer the watch".to_string(),
                    };
                    return Err(K8sError::Timeout {
                        what: what.to_string(),
                        namespace: self.namespace.clone(),
                        timeout,
                        last_seen,
                    });
                }
                Ok(Some(event)) => event,
            };
            let observed = match event {
                Ok(Event::Init) => {
                    seen_in_list = false;
                    continue;
                }
                Ok(Event::InitApply(obj)) => {
                    seen_in_list = true;
                    Some(obj)
                }
                Ok(Event::Apply(obj)) => Some(obj),
                Ok(Event::InitDone) if !seen_in_list => None,
                Ok(Event::InitDone) => continue,
                Ok(Event::Delete(_)) => None,
                Err(err) => {
                    self.on_watch_error(what, err)?;
                    continue;
                }
            };
            if cond(observed.as_ref()) {
                return Ok(observed);
            }
            current = Some(observed);
        }
    }

    /// Logs a watch error the watcher's back-off will retry, or ends the
    /// wait with it.
    fn on_watch_error(&self, what: &str, err: watcher::Error) -> Result<(), K8sError> {
        if is_fatal(&err) {
            let detail = match &err {
                watcher::Error::InitialListFailed(e)
                | watcher::Error::WatchStartFailed(e)
                | watcher::Error::WatchFailed(e) => super::error::describe(e),
                other => other.to_string(),
            };
            return Err(K8sError::Watch {
                what: what.to_string(),
                namespace: self.namespace.clone(),
                detail,
                source: Box::new(err),
            });
        }
        tracing::warn!(what, namespace = %self.namespace, error = %err, "watch failed; the watcher retries");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "zk-0"}, "status": status})).unwrap()
    }

    #[test]
    fn a_pod_is_ready_only_with_a_true_ready_condition() {
        assert!(!pod_is_ready(None));
        assert!(!pod_is_ready(Some(&pod(json!({"phase": "Pending"})))));
        let not_ready = pod(json!({"phase": "Running", "conditions": [
            {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]}));
        assert!(!pod_is_ready(Some(&not_ready)));
        let ready =
            pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}));
        assert!(pod_is_ready(Some(&ready)));
    }

    #[test]
    fn a_timeout_says_what_the_pod_was_doing() {
        let pulling = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "zk", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}));
        assert_eq!(
            describe_pod(Some(&pulling)),
            "phase Pending, container zk waiting: ImagePullBackOff (Back-off pulling image)"
        );
        let running = pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "zk", "image": "zookeeper:3.8", "imageID": "", "ready": false, "restartCount": 2,
            "state": {"running": {}}}]}));
        assert_eq!(
            describe_pod(Some(&running)),
            "phase Running, container zk running, not ready, 2 restarts"
        );
        assert_eq!(describe_pod(None), "no such Pod");
    }

    #[test]
    fn a_slice_needs_an_endpoint_with_an_address() {
        let slice = |endpoints: serde_json::Value| -> EndpointSlice {
            serde_json::from_value(json!({"metadata": {"name": "zk-1-abc"}, "addressType": "IPv4", "endpoints": endpoints}))
                .unwrap()
        };
        assert!(!has_endpoints(&slice(json!([]))));
        assert!(has_endpoints(&slice(
            json!([{"addresses": ["10.244.0.5"]}])
        )));
    }

    #[test]
    fn watch_errors_that_a_retry_cures_do_not_end_a_wait() {
        let status = |code: u16| {
            watcher::Error::WatchError(Box::new(
                kube::core::Status::failure("x", "y").with_code(code),
            ))
        };
        assert!(!is_fatal(&status(410)));
        assert!(!is_fatal(&status(503)));
        assert!(is_fatal(&status(403)));
        let forbidden = kube::Error::Api(
            kube::core::Status::failure("forbidden", "Forbidden")
                .with_code(403)
                .boxed(),
        );
        assert!(is_fatal(&watcher::Error::InitialListFailed(forbidden)));
    }
}
