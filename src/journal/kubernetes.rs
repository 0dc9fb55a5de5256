//! The `kubernetes` backend: the journal in a ConfigMap, locked by a Lease,
//! both `zkmigrate-<plan>` in the plan's namespace and labelled as
//! zkmigrate's other objects.
//!
//! - **Lock.** The Lease ([`super::lease::decide`]): created, or taken when
//!   free; refused while another runner's is live, and when expired unless
//!   the operator passes `--steal-lease`. Every Lease write carries the
//!   `resourceVersion` it read, so of two runners racing one wins and the
//!   other gets a 409, reads again and is refused.
//! - **Renewal.** A tokio task renews the Lease every third of its
//!   duration. What it last achieved is shared with the writer: a journal
//!   write is refused once the Lease was found taken, or once its last
//!   successful renewal is a full duration old (fail closed: the run stops
//!   before its next action).
//! - **Writes.** Every change replaces the ConfigMap with the
//!   `resourceVersion` of the last write before the call returns; a 409
//!   means someone else wrote it, and fails closed. Transient failures are
//!   retried (bounded, as the k8s boundary does), never a 409, except that
//!   a 409 after a retried update whose first attempt did land (the
//!   ConfigMap holds exactly our document) is our own write.
//! - **Release.** The Lease's holder is cleared when the run ends, halted
//!   or failed included; a killed run's Lease expires.
//! - **Readers** (`status`) get the ConfigMap without the Lease.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

use super::lease::{self, LeaseDecision, LeaseView};
use super::model::Journal;
use super::{Clock, JournalError, file};
use crate::k8s::{Cluster, MANAGED_BY_LABEL};
use crate::plan::ValidatedPlan;

/// Every create and update: no dry run, our field manager.
static POST: std::sync::LazyLock<PostParams> = std::sync::LazyLock::new(|| PostParams {
    field_manager: Some(crate::k8s::FIELD_MANAGER.to_string()),
    ..PostParams::default()
});

/// The ConfigMap key that holds the journal document.
pub const JOURNAL_KEY: &str = "journal.json";

/// How a Lease write ended: how to go on.
enum Written {
    Ok,
    /// 409: someone wrote the Lease since we read it.
    Conflict,
}

/// The shared word between the renewal task and the writer.
#[derive(Debug)]
struct Hold {
    /// The Lease is ours until then (last successful renewal + duration,
    /// the renewal's time taken before its request was sent).
    valid_until: SystemTime,
    /// Why the Lease is no longer ours, once it is known.
    lost: Option<String>,
}

/// The ConfigMap and Lease of one plan in one namespace.
#[derive(Debug, Clone)]
pub struct KubeNames {
    /// Both objects' name, `zkmigrate-<plan>`.
    pub name: String,
    /// The plan's namespace.
    pub namespace: String,
    /// The labels both carry.
    pub labels: BTreeMap<String, String>,
}

impl KubeNames {
    pub fn of(plan: &ValidatedPlan) -> KubeNames {
        KubeNames {
            name: plan.state_object_name(),
            namespace: plan.kubernetes.namespace.clone(),
            labels: crate::manifests::labels::common(plan),
        }
    }

    /// How the journal is named in errors: `ConfigMap NS/NAME`.
    pub fn journal_path(&self) -> PathBuf {
        PathBuf::from(format!("ConfigMap {}/{}", self.namespace, self.name))
    }

    fn lease_text(&self) -> String {
        format!("Lease {}/{}", self.namespace, self.name)
    }
}

/// The journal held under the Lease.
#[derive(Debug)]
pub struct KubeLock {
    cluster: Cluster,
    names: KubeNames,
    identity: String,
    /// The ConfigMap's resourceVersion as of our last write.
    resource_version: String,
    hold: Arc<Mutex<Hold>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

fn api_err(
    cluster: &Cluster,
    action: &'static str,
    kind: &str,
    name: &str,
    e: kube::Error,
) -> JournalError {
    JournalError::Kubernetes(cluster.api_error(action, kind, name, e))
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Transient, and not a 409: a write with a resourceVersion that got 409
/// lost a race, and sending it again cannot win.
fn retry_write(e: &kube::Error) -> bool {
    status_code(e) != Some(409) && crate::k8s::is_transient(e)
}

fn view(lease: &Lease) -> LeaseView {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseView {
        holder: spec.holder_identity,
        renewed: spec
            .renew_time
            .or(spec.acquire_time)
            .map(|t| SystemTime::from(t.0)),
        duration: spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

fn micro(t: SystemTime) -> Option<MicroTime> {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .ok()
        .map(MicroTime)
}

fn is_ours(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(crate::k8s::FIELD_MANAGER)
}

impl KubeLock {
    /// Takes the Lease and opens (or creates) the journal in the ConfigMap.
    /// On any refusal nothing is changed; on an error after the Lease was
    /// taken, the Lease is released again.
    pub async fn open(
        cluster: &Cluster,
        plan: &ValidatedPlan,
        clock: &Clock,
        steal_lease: bool,
    ) -> Result<(KubeLock, Journal), JournalError> {
        let names = KubeNames::of(plan);
        let duration = plan.policy.lease_duration;
        let identity = lease::identity();
        let taken_at = acquire(cluster, &names, &identity, duration, steal_lease).await?;
        let hold = Arc::new(Mutex::new(Hold {
            valid_until: taken_at + duration,
            lost: None,
        }));
        let mut lock = KubeLock {
            cluster: cluster.clone(),
            names,
            identity,
            resource_version: String::new(),
            hold,
            renewer: None,
        };
        lock.renewer = Some(tokio::spawn(renew(
            cluster.clone(),
            lock.names.clone(),
            lock.identity.clone(),
            duration,
            lock.hold.clone(),
        )));
        match lock.load_or_create(plan, clock).await {
            Ok(journal) => Ok((lock, journal)),
            Err(e) => {
                lock.release().await;
                Err(e)
            }
        }
    }

    /// Who holds the Lease (this run).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    async fn load_or_create(
        &mut self,
        plan: &ValidatedPlan,
        clock: &Clock,
    ) -> Result<Journal, JournalError> {
        let path = self.names.journal_path();
        let api: Api<ConfigMap> =
            Api::namespaced(self.cluster.client().clone(), &self.names.namespace);
        let name = self.names.name.clone();
        let found = self
            .cluster
            .retrying("get", "ConfigMap", &name, || api.get_opt(&name))
            .await
            .map_err(|e| api_err(&self.cluster, "get", "ConfigMap", &name, e))?;
        match found {
            Some(cm) => {
                if !is_ours(cm.metadata.labels.as_ref()) {
                    return Err(JournalError::NotOurs {
                        object: path.display().to_string(),
                    });
                }
                let journal = parse_config_map(&path, &cm)?;
                let plan_hash = plan.hash();
                if journal.plan_hash != plan_hash {
                    return Err(JournalError::PlanChanged {
                        path,
                        journal_hash: journal.plan_hash,
                        plan_hash,
                    });
                }
                self.resource_version = cm.metadata.resource_version.unwrap_or_default();
                Ok(journal)
            }
            None => {
                let journal = Journal::new(plan, clock.now());
                self.check_held()?;
                let cm = self.config_map(&journal, None);
                let created = self
                    .cluster
                    .retrying_if("create", "ConfigMap", &name, retry_write, || {
                        api.create(&POST, &cm)
                    })
                    .await;
                match created {
                    Ok(cm) => {
                        self.resource_version = cm.metadata.resource_version.unwrap_or_default();
                        tracing::info!(configmap = %path.display(), plan = %plan.name, "journal created");
                        Ok(journal)
                    }
                    Err(e) if status_code(&e) == Some(409) => Err(JournalError::Conflict {
                        object: path.display().to_string(),
                    }),
                    Err(e) => Err(api_err(&self.cluster, "create", "ConfigMap", &name, e)),
                }
            }
        }
    }

    fn config_map(&self, journal: &Journal, resource_version: Option<String>) -> ConfigMap {
        let text = String::from_utf8_lossy(&file::render(journal)).into_owned();
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.names.name.clone()),
                namespace: Some(self.names.namespace.clone()),
                labels: Some(self.names.labels.clone()),
                resource_version,
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(JOURNAL_KEY.to_string(), text)])),
            ..ConfigMap::default()
        }
    }

    /// Refuses when the Lease is known lost or its last renewal is a full
    /// duration old.
    fn check_held(&self) -> Result<(), JournalError> {
        let hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = &hold.lost {
            return Err(JournalError::LeaseLost {
                lease: self.names.lease_text(),
                reason: reason.clone(),
            });
        }
        if SystemTime::now() >= hold.valid_until {
            return Err(JournalError::LeaseLost {
                lease: self.names.lease_text(),
                reason: format!(
                    "it was not renewed in time and expired at {}",
                    humantime::format_rfc3339_millis(hold.valid_until)
                ),
            });
        }
        Ok(())
    }

    /// Writes `journal` over the ConfigMap, conditional on the version of
    /// our last write, once the Lease is checked to be ours.
    pub async fn persist(&mut self, journal: &Journal) -> Result<(), JournalError> {
        self.check_held()?;
        let name = self.names.name.clone();
        let api: Api<ConfigMap> =
            Api::namespaced(self.cluster.client().clone(), &self.names.namespace);
        let cm = self.config_map(journal, Some(self.resource_version.clone()));
        let attempts = AtomicUsize::new(0);
        let result = self
            .cluster
            .retrying_if("update", "ConfigMap", &name, retry_write, || {
                attempts.fetch_add(1, Ordering::SeqCst);
                api.replace(&name, &POST, &cm)
            })
            .await;
        let written = match result {
            Ok(written) => written,
            Err(e) if status_code(&e) == Some(409) => {
                // A retried update whose first attempt landed finds its own
                // write: the ConfigMap holds exactly this document.
                let current = if attempts.load(Ordering::SeqCst) > 1 {
                    api.get_opt(&name).await.ok().flatten()
                } else {
                    None
                };
                match current.filter(|c| c.data == cm.data) {
                    Some(current) => current,
                    None => {
                        return Err(JournalError::Conflict {
                            object: self.names.journal_path().display().to_string(),
                        });
                    }
                }
            }
            Err(e) => return Err(api_err(&self.cluster, "update", "ConfigMap", &name, e)),
        };
        self.resource_version = written.metadata.resource_version.unwrap_or_default();
        Ok(())
    }

    /// Stops renewing and clears the Lease's holder (best effort: a Lease
    /// that cannot be released expires on its own).
    pub async fn release(&mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
            let _ = task.await;
        }
        let api: Api<Lease> = Api::namespaced(self.cluster.client().clone(), &self.names.namespace);
        let name = self.names.name.clone();
        for _ in 0..3 {
            let Ok(Some(mut current)) = api.get_opt(&name).await else {
                break;
            };
            if view(&current).holder.as_deref() != Some(self.identity.as_str()) {
                break;
            }
            if let Some(spec) = current.spec.as_mut() {
                spec.holder_identity = None;
            }
            match api.replace(&name, &POST, &current).await {
                Ok(_) => {
                    tracing::info!(lease = %self.names.lease_text(), "lease released");
                    return;
                }
                Err(e) if status_code(&e) == Some(409) => continue,
                Err(e) => {
                    tracing::warn!(lease = %self.names.lease_text(), error = %e, "failed to release the lease; it expires on its own");
                    return;
                }
            }
        }
    }
}

impl Drop for KubeLock {
    fn drop(&mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
    }
}

/// Reads the journal from the ConfigMap without the Lease; `None` when
/// there is none yet.
pub async fn read(cluster: &Cluster, names: &KubeNames) -> Result<Option<Journal>, JournalError> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().clone(), &names.namespace);
    let found = cluster
        .retrying("get", "ConfigMap", &names.name, || api.get_opt(&names.name))
        .await
        .map_err(|e| api_err(cluster, "get", "ConfigMap", &names.name, e))?;
    found
        .map(|cm| parse_config_map(&names.journal_path(), &cm))
        .transpose()
}

fn parse_config_map(path: &std::path::Path, cm: &ConfigMap) -> Result<Journal, JournalError> {
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(JOURNAL_KEY))
        .ok_or_else(|| JournalError::Malformed {
            path: path.to_path_buf(),
            reason: format!("it has no key {JOURNAL_KEY}"),
        })?;
    file::parse(path, text.as_bytes())
}

/// Takes the Lease for `identity`, or says who holds it. Returns when it
/// was taken (the time read before the write was sent).
async fn acquire(
    cluster: &Cluster,
    names: &KubeNames,
    identity: &str,
    duration: Duration,
    steal: bool,
) -> Result<SystemTime, JournalError> {
    let api: Api<Lease> = Api::namespaced(cluster.client().clone(), &names.namespace);
    let name = &names.name;
    // A lost race (409) reads again: the next decision names the winner.
    for _ in 0..3 {
        let found = cluster
            .retrying("get", "Lease", name, || api.get_opt(name))
            .await
            .map_err(|e| api_err(cluster, "get", "Lease", name, e))?;
        if let Some(lease) = &found
            && !is_ours(lease.metadata.labels.as_ref())
        {
            return Err(JournalError::NotOurs {
                object: names.lease_text(),
            });
        }
        let now = SystemTime::now();
        let decision = lease::decide(
            found.as_ref().map(view).as_ref(),
            identity,
            &Clock::fixed(now),
            steal,
        );
        let spec = |transitions: i32| LeaseSpec {
            holder_identity: Some(identity.to_string()),
            lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: micro(now),
            renew_time: micro(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let written = match (decision, found) {
            (LeaseDecision::Refuse(holder), _) => {
                return Err(JournalError::LeaseHeld {
                    lease: names.lease_text(),
                    holder: Box::new(holder),
                });
            }
            (LeaseDecision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(names.namespace.clone()),
                        labels: Some(names.labels.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(0)),
                };
                write_lease(cluster, name, "create", || api.create(&POST, &lease)).await?
            }
            (LeaseDecision::Take { transitions }, Some(mut lease)) => {
                lease.spec = Some(spec(transitions));
                write_lease(cluster, name, "update", || api.replace(name, &POST, &lease)).await?
            }
            (
                LeaseDecision::Steal {
                    previous,
                    transitions,
                },
                Some(mut lease),
            ) => {
                tracing::warn!(
                    lease = %names.lease_text(),
                    previous = %previous,
                    "taking over an expired lease (--steal-lease)"
                );
                lease.spec = Some(spec(transitions));
                write_lease(cluster, name, "update", || api.replace(name, &POST, &lease)).await?
            }
            // Our own identity is new in every process: only a Lease
            // written by this very run would match.
            (LeaseDecision::Renew, Some(mut lease)) => {
                lease.spec = Some(LeaseSpec {
                    lease_transitions: Some(view(&lease).transitions),
                    ..spec(0)
                });
                write_lease(cluster, name, "update", || api.replace(name, &POST, &lease)).await?
            }
            (_, None) => continue,
        };
        match written {
            Written::Ok => {
                tracing::info!(lease = %names.lease_text(), %identity, "lease taken");
                return Ok(now);
            }
            Written::Conflict => continue,
        }
    }
    Err(JournalError::Conflict {
        object: names.lease_text(),
    })
}

async fn write_lease<F, Fut>(
    cluster: &Cluster,
    name: &str,
    action: &'static str,
    op: F,
) -> Result<Written, JournalError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Lease, kube::Error>>,
{
    match cluster
        .retrying_if(action, "Lease", name, retry_write, op)
        .await
    {
        Ok(_) => Ok(Written::Ok),
        Err(e) if status_code(&e) == Some(409) => Ok(Written::Conflict),
        Err(e) => Err(api_err(cluster, action, "Lease", name, e)),
    }
}

/// The renewal task: every third of the duration, renews the Lease if it
/// is still ours; records when it is found taken or could not be renewed
/// before it expired, and stops.
async fn renew(
    cluster: Cluster,
    names: KubeNames,
    identity: String,
    duration: Duration,
    hold: Arc<Mutex<Hold>>,
) {
    let api: Api<Lease> = Api::namespaced(cluster.client().clone(), &names.namespace);
    let period = duration / 3;
    let lose = |reason: String| {
        tracing::warn!(lease = %names.lease_text(), %reason, "lease lost");
        hold.lock().unwrap_or_else(|p| p.into_inner()).lost = Some(reason);
    };
    let mut wait = period;
    loop {
        tokio::time::sleep(wait).await;
        let now = SystemTime::now();
        let valid_until = hold.lock().unwrap_or_else(|p| p.into_inner()).valid_until;
        let failure = match api.get_opt(&names.name).await {
            Ok(None) => return lose("it was deleted".into()),
            Ok(Some(mut lease)) => {
                let current = view(&lease);
                if current.holder.as_deref() != Some(identity.as_str()) {
                    let holder = current
                        .holder
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| "nobody".into());
                    return lose(format!("it is now held by {holder}"));
                }
                if let Some(spec) = lease.spec.as_mut() {
                    spec.renew_time = micro(now);
                }
                match api.replace(&names.name, &POST, &lease).await {
                    Ok(_) => {
                        hold.lock().unwrap_or_else(|p| p.into_inner()).valid_until = now + duration;
                        tracing::debug!(lease = %names.lease_text(), "lease renewed");
                        wait = period;
                        continue;
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        // A 409 means the Lease changed since our read: the next read
        // tells by whom. Anything else is retried until the Lease expires.
        if SystemTime::now() >= valid_until {
            return lose(format!(
                "it could not be renewed before it expired at {}: {}",
                humantime::format_rfc3339_millis(valid_until),
                cluster.api_error("renew", "Lease", &names.name, failure)
            ));
        }
        tracing::warn!(lease = %names.lease_text(), error = %failure, "failed to renew the lease; retrying");
        wait = Duration::from_millis(500).min(period);
    }
}
