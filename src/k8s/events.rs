//! Events on the per-server Services: the migration's history where an
//! operator looks first, `kubectl describe svc zk-1` (issue 7, item 6).
//!
//! Best-effort by contract: an Event that cannot be written is logged and
//! dropped, never a reason to halt a migration. The journal is the record;
//! Events are the courtesy copy.
//!
//! The Event is a core v1 Event (what `kubectl describe` lists), its
//! `involvedObject` carrying the Service's uid, because describe selects
//! Events by kind, name, namespace *and* uid: an Event of a deleted and
//! re-created Service would not show.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

use super::{Cluster, FIELD_MANAGER};

/// Whether an Event reports normal progress or something to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The Event on `service` (whose uid is `uid`) at `now`. The name follows
/// client-go's recorder: `<object>.<hex nanoseconds>`, unique per object.
fn service_event(
    namespace: &str,
    service: &str,
    uid: &str,
    kind: EventType,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Event {
    let nanos = u128::try_from(now.as_nanosecond()).unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{service}.{nanos:x}")),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Service".to_string()),
            name: Some(service.to_string()),
            namespace: Some(namespace.to_string()),
            uid: Some(uid.to_string()),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(kind.as_str().to_string()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        source: Some(EventSource {
            component: Some(FIELD_MANAGER.to_string()),
            host: None,
        }),
        reporting_component: Some(FIELD_MANAGER.to_string()),
        reporting_instance: Some(FIELD_MANAGER.to_string()),
        ..Event::default()
    }
}

impl Cluster {
    /// Records a Normal Event on Service `service`, e.g. reason
    /// `SwitchedToPod`, best-effort: returns whether it was written.
    pub async fn record_event(&self, service: &str, reason: &str, message: &str) -> bool {
        self.record(service, EventType::Normal, reason, message)
            .await
    }

    /// Records a Warning Event on Service `service` (a halt, a gate that
    /// waits), best-effort: returns whether it was written.
    pub async fn record_warning(&self, service: &str, reason: &str, message: &str) -> bool {
        self.record(service, EventType::Warning, reason, message)
            .await
    }

    async fn record(&self, service: &str, kind: EventType, reason: &str, message: &str) -> bool {
        let uid = match self.get_opt::<Service>(service).await {
            Ok(Some(svc)) => svc.metadata.uid.unwrap_or_default(),
            Ok(None) => {
                tracing::debug!(service, reason, "no such Service; event not recorded");
                return false;
            }
            Err(e) => {
                tracing::warn!(service, reason, error = %e, "event not recorded");
                return false;
            }
        };
        let event = service_event(
            &self.namespace,
            service,
            &uid,
            kind,
            reason,
            message,
            Timestamp::now(),
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = PostParams::default();
        match self
            .retrying("create", "Event", service, || api.create(&params, &event))
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(service, reason, error = %super::error::describe(&e), "event not recorded");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_the_service_by_uid_as_describe_selects_it() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let event = service_event(
            "zookeeper",
            "zk-2",
            "u-1",
            EventType::Normal,
            "SwitchedToPod",
            "selector set to zk-1",
            now,
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["metadata"]["name"], "zk-2.18ea55ac4e7b4000");
        assert_eq!(
            json["involvedObject"],
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "name": "zk-2",
                "namespace": "zookeeper", "uid": "u-1"})
        );
        assert_eq!(json["type"], "Normal");
        assert_eq!(json["firstTimestamp"], "2026-11-22T10:00:00Z");
        assert_eq!(json["source"]["component"], "zkmigrate");
    }
}
