//! The journal document (DESIGN section 6): what it holds and the pure
//! transitions the engine records. No I/O here; `file` persists it.
//!
//! Every transition is a function of the document and a timestamp, so the
//! store can apply it to a copy, persist the copy, and only then make it
//! the current state: a failed write never leaves memory and disk apart.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::JournalError;
use crate::plan::ValidatedPlan;
use crate::steps::StepName;

/// The only journal schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A point in time, written as RFC 3339 in UTC with milliseconds
/// (`2025-03-01T12:00:00.000Z`). Kept at millisecond precision in memory
/// too, so that the journal in memory equals the journal on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// `time`, truncated to the millisecond.
    pub fn at(time: SystemTime) -> Timestamp {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map(|d| Duration::from_millis(d.as_millis() as u64))
            .unwrap_or_default();
        Timestamp(UNIX_EPOCH + millis)
    }

    /// The time.
    pub fn get(self) -> SystemTime {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text)
            .map(Timestamp::at)
            .map_err(|e| serde::de::Error::custom(format!("bad timestamp {text:?}: {e}")))
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Started and not finished: under the lock, the process that ran it is
    /// gone (a crash or a halt), and `step --resume` continues it.
    Running,
    /// Completed and verified.
    Done,
    /// Halted or failed; resumable after the cause is fixed.
    Failed,
    /// Undone by `rollback`.
    RolledBack,
}

impl StepStatus {
    /// The name as written in the journal and `status -o json`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::RolledBack => "rolled-back",
        }
    }
}

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionStatus {
    /// Known to the step, not yet attempted.
    Pending,
    /// About to be applied (recorded before `apply`): its effect may or may
    /// not hold; resume observes which.
    Intent,
    /// Applied and verified.
    Done,
    /// Apply or verify failed.
    Failed,
    /// Undone by `rollback`.
    Undone,
}

/// One action of a step, by its stable id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionRecord {
    /// Stable across runs of the same plan, `STEP/...`, e.g.
    /// `peers/restart/2`: the first segment names its step.
    pub id: String,
    /// Where it stands.
    pub status: ActionStatus,
    /// When the latest attempt was recorded as intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it reached done, failed or undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// What was observed (e.g. the backup file's name, the failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One step and its actions, in the order they were first attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepRecord {
    /// The step.
    pub name: StepName,
    /// Where it stands.
    pub status: StepStatus,
    /// When it last became `running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it last became done, failed or rolled-back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Its actions.
    pub actions: Vec<ActionRecord>,
}

/// The journal: one per plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Journal {
    /// Always [`SCHEMA_VERSION`]; checked before anything else is read.
    pub schema_version: u32,
    /// The plan's name.
    pub plan_name: String,
    /// [`ValidatedPlan::hash`] of the plan that wrote it.
    pub plan_hash: String,
    /// When it was last written.
    pub updated_at: Timestamp,
    /// Every step, in run order ([`StepName::ALL`]).
    pub steps: Vec<StepRecord>,
}

/// A step found `running` when the journal was opened: the previous run
/// stopped inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptedStep<'a> {
    /// The step.
    pub step: StepName,
    /// The action recorded as intent and never finished, if the run died
    /// inside one (its effect may or may not hold); `None` when it died
    /// between actions.
    pub action: Option<&'a ActionRecord>,
}

impl Journal {
    /// A fresh journal for `plan`: every step pending, no actions.
    pub fn new(plan: &ValidatedPlan, now: SystemTime) -> Journal {
        Journal {
            schema_version: SCHEMA_VERSION,
            plan_name: plan.name.clone(),
            plan_hash: plan.hash(),
            updated_at: Timestamp::at(now),
            steps: StepName::ALL
                .into_iter()
                .map(|name| StepRecord {
                    name,
                    status: StepStatus::Pending,
                    started_at: None,
                    finished_at: None,
                    actions: Vec::new(),
                })
                .collect(),
        }
    }

    /// The record of `step`. Every step has one: `new` makes them all and
    /// reading refuses a journal without them.
    pub fn step(&self, step: StepName) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.name == step)
    }

    /// The record of action `id`, if it was ever recorded.
    pub fn action(&self, id: &str) -> Option<&ActionRecord> {
        let step = step_of(id).ok()?;
        self.step(step)?.actions.iter().find(|a| a.id == id)
    }

    /// The step a previous run left `running`, with its unfinished action.
    ///
    /// A running step counts even with no action in intent: under the lock
    /// no live process runs it, so the run that did stopped inside the
    /// step, and `step` must refuse without `--resume` either way. Resume
    /// then re-observes the world (DESIGN section 2); the action tells the
    /// operator where it stopped.
    pub fn interrupted_step(&self) -> Option<InterruptedStep<'_>> {
        let record = self
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Running)?;
        Some(InterruptedStep {
            step: record.name,
            action: record
                .actions
                .iter()
                .find(|a| a.status == ActionStatus::Intent),
        })
    }

    /// The first step that is not done, in run order.
    pub fn next_step(&self) -> Option<StepName> {
        self.steps
            .iter()
            .find(|s| s.status != StepStatus::Done)
            .map(|s| s.name)
    }

    /// Refuses a document whose steps are not exactly [`StepName::ALL`] in
    /// order, or whose actions sit under the wrong step.
    pub(super) fn check_shape(&self) -> Result<(), String> {
        let names: Vec<StepName> = self.steps.iter().map(|s| s.name).collect();
        if names != StepName::ALL {
            return Err(format!("steps are {names:?}, expected {:?}", StepName::ALL));
        }
        for step in &self.steps {
            for action in &step.actions {
                if step_of(&action.id).ok() != Some(step.name) {
                    return Err(format!(
                        "action {:?} is recorded under step {}",
                        action.id, step.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sets a step's status; `running` stamps its start, done, failed and
    /// rolled-back its finish.
    pub(super) fn set_step_status(&mut self, step: StepName, status: StepStatus, now: SystemTime) {
        self.updated_at = Timestamp::at(now);
        if let Some(record) = self.steps.iter_mut().find(|s| s.name == step) {
            record.status = status;
            match status {
                StepStatus::Running => {
                    record.started_at = Some(Timestamp::at(now));
                    record.finished_at = None;
                }
                StepStatus::Pending => {
                    record.started_at = None;
                    record.finished_at = None;
                }
                StepStatus::Done | StepStatus::Failed | StepStatus::RolledBack => {
                    record.finished_at = Some(Timestamp::at(now));
                }
            }
        }
    }

    /// Records that action `id` is about to be applied: appended on its
    /// first attempt, reset to intent on a retry or resume.
    pub(super) fn record_intent(&mut self, id: &str, now: SystemTime) -> Result<(), JournalError> {
        let step = step_of(id)?;
        self.updated_at = Timestamp::at(now);
        let record = self.step_mut(step);
        let fresh = ActionRecord {
            id: id.to_string(),
            status: ActionStatus::Intent,
            started_at: Some(Timestamp::at(now)),
            finished_at: None,
            detail: None,
        };
        match record.actions.iter_mut().find(|a| a.id == id) {
            Some(action) => *action = fresh,
            None => record.actions.push(fresh),
        }
        Ok(())
    }

    /// Records how action `id` ended. It must have been recorded before:
    /// an outcome without an intent would mean an apply the journal never
    /// knew about.
    pub(super) fn record_outcome(
        &mut self,
        id: &str,
        status: ActionStatus,
        detail: Option<String>,
        now: SystemTime,
    ) -> Result<(), JournalError> {
        let step = step_of(id)?;
        self.updated_at = Timestamp::at(now);
        let action = self
            .step_mut(step)
            .actions
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| JournalError::UnknownAction { id: id.to_string() })?;
        action.status = status;
        action.finished_at = Some(Timestamp::at(now));
        action.detail = detail;
        Ok(())
    }

    fn step_mut(&mut self, step: StepName) -> &mut StepRecord {
        // `check_shape` (on read) and `new` guarantee every step is there;
        // should it not be, the record is added rather than panicking.
        let index = match self.steps.iter().position(|s| s.name == step) {
            Some(index) => index,
            None => {
                self.steps.push(StepRecord {
                    name: step,
                    status: StepStatus::Pending,
                    started_at: None,
                    finished_at: None,
                    actions: Vec::new(),
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[index]
    }
}

/// The step an action id belongs to: its first `/`-separated segment.
pub fn step_of(id: &str) -> Result<StepName, JournalError> {
    let first = id.split('/').next().unwrap_or_default();
    let valid = id.len() > first.len() + 1 && !id.split('/').any(str::is_empty);
    match first.parse::<StepName>() {
        Ok(step) if valid => Ok(step),
        _ => Err(JournalError::BadActionId { id: id.to_string() }),
    }
}
