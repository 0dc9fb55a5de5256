//! `zkmigrate rbac`: the least-privilege ServiceAccount, Role and
//! RoleBinding zkmigrate needs to run the plan (issue 7, item 5), as
//! commented multi-document YAML or as one JSON `List`, for `kubectl apply
//! -f -` or review.
//!
//! It reads the plan and nothing else, like `manifests`: the Role is the
//! permission table of `k8s::permissions` for this plan, the same table the
//! preflight's access review asks about, so what this prints is what
//! preflight will demand, no more and no less.

use std::path::Path;

use serde::Serialize;

use super::CommandError;
use crate::cli::ObjectsFormat;
use crate::exit::Exit;
use crate::manifests::{self, RbacObject};
use crate::output::Printer;
use crate::plan::{self, ValidatedPlan};

/// `-o json`: the objects as a `v1` `List`, which `kubectl apply -f`
/// takes as it is.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct List {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<RbacObject>,
}

/// Runs `zkmigrate rbac -f PLAN [-o yaml|json]`.
pub fn run(path: &Path, output: ObjectsFormat) -> Result<Exit, CommandError> {
    let plan = plan::load(path)?;
    for warning in &plan.warnings {
        tracing::warn!(%warning, "plan accepted with a warning");
    }
    let rbac = manifests::rbac(&plan);
    match output {
        ObjectsFormat::Json => Printer.json(&List {
            api_version: "v1",
            kind: "List",
            items: rbac.objects(),
        })?,
        ObjectsFormat::Yaml => Printer.text(&render_yaml(&plan, &rbac)?)?,
    }
    Ok(Exit::Done)
}

/// The YAML: what it is and what it leaves out in the header, why each
/// rule is there above the Role.
fn render_yaml(
    plan: &ValidatedPlan,
    rbac: &manifests::Rbac,
) -> Result<String, manifests::ManifestsError> {
    let name = manifests::rbac_name(plan);
    let ns = &plan.kubernetes.namespace;
    let hash = plan.hash();
    let mut header = vec![
        format!(
            "zkmigrate rbac of plan {} (hash {}): ServiceAccount, Role and RoleBinding {name} in namespace {ns}",
            plan.name,
            &hash[..hash.len().min(12)]
        ),
        "The Role grants what zkmigrate requests of the API server for this plan and nothing more;".into(),
        "preflight checks these same permissions (SelfSubjectAccessReview) before anything changes.".into(),
        "Not granted here, because the cluster's default RBAC lets every authenticated user:".into(),
    ];
    header.extend(
        manifests::not_granted(plan)
            .iter()
            .map(|l| format!("  {l}")),
    );
    header.push(format!(
        "To run zkmigrate with your own credentials instead of the ServiceAccount, bind the Role to yourself: \
         kubectl -n {ns} create rolebinding {name}-operator --role {name} --user YOUR-USER"
    ));
    let mut role_comments = vec!["Why each rule is there:".to_string()];
    role_comments.extend(
        manifests::rule_comments(rbac)
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    let binding_comments = vec![format!(
        "A Pod (a Job's) runs as it with `serviceAccountName: {name}`; see docs/in-cluster.md."
    )];
    let objects = rbac.objects();
    let documents: Vec<(&[String], &RbacObject)> = vec![
        (&[], &objects[0]),
        (&role_comments, &objects[1]),
        (&binding_comments, &objects[2]),
    ];
    manifests::render_documents(&header, &documents)
}
