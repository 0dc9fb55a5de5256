//! `zkmigrate plan`: validate the plan file and summarise it.
//!
//! Today it stops at validation: the migration engine (issue 5) adds the
//! observed ensemble and the full, ordered action list with zoo.cfg diffs.
//! An invalid plan never reaches this module's output: `load` fails and the
//! CLI exits 2 with every error.

use std::path::Path;

use serde::Serialize;

use super::CommandError;
use crate::cli::OutputFormat;
use crate::exit::Exit;
use crate::output::{Printer, Table};
use crate::plan::{self, TargetKind, ValidatedPlan};

/// The JSON of `plan -o json` (stable field names).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanSummary<'a> {
    name: &'a str,
    hash: String,
    valid: bool,
    warnings: Vec<String>,
    servers: Vec<ServerSummary<'a>>,
    /// The connection string clients move to in the `clients` step.
    service_connection_string: String,
    /// False until the engine computes actions (issue 5).
    actions_computed: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerSummary<'a> {
    id: u8,
    host: &'a str,
    address: &'a str,
    service: String,
}

pub fn run(path: &Path, output: OutputFormat) -> Result<Exit, CommandError> {
    let plan = plan::load(path)?;
    for warning in &plan.warnings {
        tracing::warn!(%warning, "plan accepted with a warning");
    }
    let printer = Printer;
    match output {
        OutputFormat::Json => printer.json(&summary(&plan))?,
        OutputFormat::Text => printer.text(&render_text(&plan))?,
    }
    Ok(Exit::Done)
}

fn summary(plan: &ValidatedPlan) -> PlanSummary<'_> {
    PlanSummary {
        name: &plan.name,
        hash: plan.hash(),
        valid: true,
        warnings: plan.warnings.iter().map(ToString::to_string).collect(),
        servers: plan
            .servers
            .iter()
            .map(|s| ServerSummary {
                id: s.id.get(),
                host: &s.host,
                address: &s.address,
                service: plan.service_host(s.id),
            })
            .collect(),
        service_connection_string: plan.service_connection_string(),
        actions_computed: false,
    }
}

fn render_text(plan: &ValidatedPlan) -> String {
    let k = &plan.kubernetes;
    let target = match k.target.kind {
        TargetKind::StatefulSet => "StatefulSet",
        TargetKind::PerServer => "PerServer",
    };
    let mut out = format!(
        "plan {} is valid (hash {})\n\n",
        plan.name,
        &plan.hash()[..12]
    );
    let mut table = Table::new(["ID", "HOST", "ADDRESS", "SERVICE"]);
    for s in &plan.servers {
        table.row([
            s.id.to_string(),
            s.host.clone(),
            s.address.clone(),
            plan.service_host(s.id),
        ]);
    }
    out.push_str(&table.render());
    out.push_str(&format!(
        "\ntarget: {target} {} in namespace {}, image {}\n\
         clients move to: {}\n",
        k.target.name,
        k.namespace,
        k.target.image,
        plan.service_connection_string(),
    ));
    for w in &plan.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(
        "\nThe ordered action list (zoo.cfg diffs, objects to create) comes with the \
         migration engine, which is not built yet.\n",
    );
    out
}
