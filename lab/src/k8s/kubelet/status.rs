//! A Pod's status from what the kubelet knows of its containers: phase,
//! conditions, container statuses. Pure.
//!
//! Where it sits: the Pod worker keeps one [`ContainerStatus`] per
//! container, renders [`pod_status`] after every change and writes it
//! through the status subresource when it differs from the last write.
//! Phase follows `pkg/kubelet/kubelet_pods.go` (`getPhase`); conditions
//! follow `pkg/kubelet/status/generate.go` (reasons `ContainersNotReady`,
//! `ContainersNotInitialized`, messages listing the containers), with a
//! condition's `lastTransitionTime` moving only when its status changes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A container's state, as `ContainerState` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        started_at: String,
        finished_at: String,
        container_id: String,
    },
}

impl State {
    pub fn waiting(reason: &str, message: Option<String>) -> State {
        State::Waiting {
            reason: reason.into(),
            message,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated {
                exit_code,
                reason,
                started_at,
                finished_at,
                container_id,
            } => json!({"terminated": {
                "exitCode": exit_code, "reason": reason, "startedAt": started_at,
                "finishedAt": finished_at, "containerID": container_id}}),
        }
    }
}

/// The reason a runtime gives a container that exited with `code`.
pub fn exit_reason(code: i32) -> &'static str {
    if code == 0 { "Completed" } else { "Error" }
}

/// What the kubelet knows of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub name: String,
    /// The image as the runtime names it (normalised once resolved).
    pub image: String,
    /// Empty until the image is "pulled".
    pub image_id: String,
    pub container_id: Option<String>,
    pub state: State,
    /// The previous run's termination.
    pub last: Option<State>,
    pub ready: bool,
    pub restart_count: u32,
}

impl ContainerStatus {
    pub fn new(name: &str, image: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            image: image.into(),
            image_id: String::new(),
            container_id: None,
            state: State::waiting("ContainerCreating", None),
            last: None,
            ready: false,
            restart_count: 0,
        }
    }

    pub fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn succeeded(&self) -> bool {
        matches!(self.state, State::Terminated { exit_code: 0, .. })
    }

    fn failed_last(&self) -> bool {
        matches!(self.state, State::Terminated { exit_code, .. } if exit_code != 0)
            || matches!(
                (&self.state, &self.last),
                (State::Waiting { .. }, Some(State::Terminated { exit_code, .. })) if *exit_code != 0
            )
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.ready,
            "started": self.running(),
            "restartCount": self.restart_count,
            "state": self.state.to_json(),
            "lastState": self.last.as_ref().map(State::to_json).unwrap_or_else(|| json!({})),
        });
        if let Some(id) = &self.container_id {
            v["containerID"] = json!(id);
        }
        v
    }
}

/// `getPhase` of the kubelet for the statuses of a Pod's init and regular
/// containers.
pub fn phase(
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
    restart_policy: &str,
) -> &'static str {
    if restart_policy == "Never" && init.iter().any(ContainerStatus::failed_last) {
        return "Failed";
    }
    if init.iter().any(|c| !c.succeeded()) {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated { exit_code, .. } => {
                stopped += 1;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting { .. } if c.last.is_some() => stopped += 1,
            State::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ => "Failed",
        }
    } else {
        "Pending"
    }
}

/// One condition: (status, reason, message, lastTransitionTime).
type Condition = (bool, Option<String>, Option<String>, String);

/// Pod conditions with their transition times.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    map: BTreeMap<&'static str, Condition>,
}

/// The order `kubectl describe` lists them in.
const ORDER: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

impl Conditions {
    /// Sets condition `kind`; its transition time moves only if `status`
    /// changed.
    pub fn set(
        &mut self,
        kind: &'static str,
        status: bool,
        reason: Option<String>,
        message: Option<String>,
        now: &str,
    ) {
        let time = match self.map.get(kind) {
            Some((old, _, _, t)) if *old == status => t.clone(),
            _ => now.to_string(),
        };
        self.map.insert(kind, (status, reason, message, time));
    }

    pub fn to_json(&self) -> Value {
        let list: Vec<Value> = ORDER
            .iter()
            .filter_map(|k| self.map.get(k).map(|c| (k, c)))
            .map(|(k, (status, reason, message, time))| {
                let mut c = json!({"type": k, "status": if *status { "True" } else { "False" },
                    "lastProbeTime": null, "lastTransitionTime": time});
                if let Some(r) = reason {
                    c["reason"] = json!(r);
                }
                if let Some(m) = message {
                    c["message"] = json!(m);
                }
                c
            })
            .collect();
        json!(list)
    }
}

/// Sets the Initialized, ContainersReady and Ready conditions from the
/// container statuses (PodScheduled and PodReadyToStartContainers are the
/// caller's).
pub fn derive_conditions(
    conds: &mut Conditions,
    init: &[ContainerStatus],
    containers: &[ContainerStatus],
    phase: &str,
    now: &str,
) {
    let pending_init: Vec<&str> = init
        .iter()
        .filter(|c| !c.succeeded())
        .map(|c| c.name.as_str())
        .collect();
    if pending_init.is_empty() {
        conds.set("Initialized", true, None, None, now);
    } else {
        conds.set(
            "Initialized",
            false,
            Some("ContainersNotInitialized".into()),
            Some(format!(
                "containers with incomplete status: [{}]",
                pending_init.join(" ")
            )),
            now,
        );
    }
    let unready: Vec<&str> = containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    if phase == "Succeeded" || phase == "Failed" {
        for k in ["ContainersReady", "Ready"] {
            conds.set(k, false, Some("PodCompleted".into()), None, now);
        }
    } else if unready.is_empty() {
        conds.set("ContainersReady", true, None, None, now);
        conds.set("Ready", true, None, None, now);
    } else {
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        conds.set(
            "ContainersReady",
            false,
            Some("ContainersNotReady".into()),
            Some(message.clone()),
            now,
        );
        conds.set(
            "Ready",
            false,
            Some("ContainersNotReady".into()),
            Some(message),
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(state: State, last: Option<State>) -> ContainerStatus {
        ContainerStatus {
            state,
            last,
            ..ContainerStatus::new("zk", "zookeeper")
        }
    }

    fn term(code: i32) -> State {
        State::Terminated {
            exit_code: code,
            reason: exit_reason(code).into(),
            started_at: "t0".into(),
            finished_at: "t1".into(),
            container_id: "x".into(),
        }
    }

    #[test]
    fn phase_follows_get_phase() {
        let run = || State::Running {
            started_at: "t".into(),
        };
        let backoff = || State::waiting("CrashLoopBackOff", None);
        assert_eq!(
            phase(
                &[],
                &[c(State::waiting("ErrImagePull", None), None)],
                "Always"
            ),
            "Pending"
        );
        assert_eq!(phase(&[], &[c(run(), None)], "Always"), "Running");
        assert_eq!(
            phase(&[], &[c(backoff(), Some(term(1)))], "Always"),
            "Running"
        );
        assert_eq!(phase(&[], &[c(term(0), None)], "Never"), "Succeeded");
        assert_eq!(phase(&[], &[c(term(1), None)], "Never"), "Failed");
        assert_eq!(phase(&[], &[c(term(1), None)], "OnFailure"), "Running");
        assert_eq!(
            phase(
                &[c(run(), None)],
                &[c(State::waiting("PodInitializing", None), None)],
                "Always"
            ),
            "Pending"
        );
        assert_eq!(phase(&[c(term(2), None)], &[], "Never"), "Failed");
        assert_eq!(
            phase(&[c(term(0), None)], &[c(run(), None)], "Never"),
            "Running"
        );
    }

    #[test]
    fn conditions_move_their_time_only_on_change() {
        let mut conds = Conditions::default();
        let unready = [c(
            State::Running {
                started_at: "t".into(),
            },
            None,
        )];
        derive_conditions(&mut conds, &[], &unready, "Running", "T1");
        let mut ready = unready.clone();
        ready[0].ready = true;
        derive_conditions(&mut conds, &[], &unready, "Running", "T2");
        let j = conds.to_json();
        let ready_cond = j
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready_cond["lastTransitionTime"], "T1");
        assert_eq!(ready_cond["reason"], "ContainersNotReady");
        assert_eq!(
            ready_cond["message"],
            "containers with unready status: [zk]"
        );
        derive_conditions(&mut conds, &[], &ready, "Running", "T3");
        let j = conds.to_json();
        let ready_cond = j
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(
            (
                ready_cond["status"].as_str(),
                ready_cond["lastTransitionTime"].as_str()
            ),
            (Some("True"), Some("T3"))
        );
        assert!(ready_cond.get("reason").is_none());
    }

    #[test]
    fn container_status_json_has_every_field() {
        let mut s = c(
            State::waiting("CrashLoopBackOff", Some("back-off 10s".into())),
            Some(term(1)),
        );
        s.restart_count = 2;
        let j = s.to_json();
        assert_eq!(j["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(j["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(j["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(j["restartCount"], 2);
        assert_eq!(j["started"], false);
        assert_eq!(j["ready"], false);
    }
}
