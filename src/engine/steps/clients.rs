//! Step `clients` (DESIGN 5.3): the operator moves the clients to the
//! Service names. zkmigrate cannot restart someone else's clients, so the
//! step shows what to do (the new connection string), who is connected
//! where (`cons` of every server, grouped by client address), and waits for
//! `--confirm clients` (exit 4 until then).
//!
//! The string and the inventory go to stderr through the progress display
//! (so a bar is not torn) and to the log; stdout stays for results. The
//! confirmation is needed only when the plan's `policy.confirm` lists
//! `clients` (the default); a plan that leaves it out completes the step
//! at once.

mod manual;
pub use manual::{intro, manual};

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::action::Action;
use crate::engine::context::{Ctx, Observed, StepError};
use crate::observe::ServerProbe;
use crate::output::Table;
use crate::steps::StepName;

pub async fn check(ctx: &Ctx, action: &Action) -> Result<Observed, StepError> {
    match action {
        // Showing is the effect: it is never "already there".
        Action::ShowConnectionString | Action::ClientInventory => Ok(Observed::Needed),
        Action::AwaitClientsConfirmed => Ok(match confirmation(ctx) {
            Some(how) => Observed::Done(how),
            None => Observed::Needed,
        }),
        other => Err(not_mine(other)),
    }
}

pub async fn apply(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    match action {
        Action::ShowConnectionString => {
            show_connection_string(ctx);
            Ok(())
        }
        Action::ClientInventory => {
            let table = inventory(ctx).await?;
            ctx.progress.suspend(|| eprint!("{table}"));
            Ok(())
        }
        Action::AwaitClientsConfirmed => match confirmation(ctx) {
            Some(_) => Ok(()),
            None => Err(StepError::AwaitingConfirm {
                step: StepName::Clients,
                what: format!(
                    "restart the clients with the new connection string {}",
                    ctx.plan.service_connection_string()
                ),
                plan: ctx.plan_file.display().to_string(),
            }),
        },
        other => Err(not_mine(other)),
    }
}

pub async fn verify(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    match action {
        Action::ShowConnectionString => Ok(format!(
            "new connection string: {}",
            ctx.plan.service_connection_string()
        )),
        Action::ClientInventory => Ok("client inventory shown".into()),
        Action::AwaitClientsConfirmed => confirmation(ctx)
            .ok_or_else(|| StepError::Other(format!("verify {}: not confirmed", action.id()))),
        other => Err(not_mine(other)),
    }
}

/// Nothing to take back: the clients are the operator's; rolling back past
/// this step means pointing them at the old string again.
pub async fn undo(_ctx: &Ctx, _action: &Action) -> Result<(), StepError> {
    Ok(())
}

fn not_mine(action: &Action) -> StepError {
    StepError::Other(format!(
        "run {}: not an action of step clients",
        action.id()
    ))
}

/// Why the step may complete, if it may.
fn confirmation(ctx: &Ctx) -> Option<String> {
    if ctx.opts.confirm.contains(&StepName::Clients) {
        Some("confirmed with --confirm clients".into())
    } else if !ctx.plan.policy.needs_confirm(StepName::Clients) {
        Some("the plan's policy.confirm does not hold the clients step back".into())
    } else {
        None
    }
}

fn show_connection_string(ctx: &Ctx) {
    let new = ctx.plan.service_connection_string();
    let old = ctx.plan.current_connection_string();
    tracing::info!(connection_string = %new, previous = %old, "the clients' new connection string");
    ctx.progress.suspend(|| {
        eprintln!("Clients: connect with the new connection string");
        eprintln!("  {new}");
        eprintln!("(today's {old} keeps working until the replace step)");
    });
}

/// `cons` of every server, sessions counted per client address: one row
/// per client, one column per server.
async fn inventory(ctx: &Ctx) -> Result<String, StepError> {
    let targets = ctx.targets().await?;
    let mut counts: BTreeMap<String, BTreeMap<u64, usize>> = BTreeMap::new();
    let mut problems = Vec::new();
    for t in &targets {
        match ServerProbe::new(t.client.clone(), Duration::from_secs(3))
            .cons()
            .await
        {
            Ok((cons, _)) => {
                for (client, n) in cons.by_client() {
                    counts.entry(client).or_default().insert(t.id, n);
                }
            }
            Err(e) => problems.push(format!("server {}: {e}", t.id)),
        }
    }
    let ids: Vec<u64> = targets.iter().map(|t| t.id).collect();
    let text = render_inventory(&ids, &counts, &problems);
    let sessions: usize = counts.values().flat_map(|m| m.values()).sum();
    tracing::info!(clients = counts.len(), sessions, "client inventory");
    Ok(text)
}

/// The inventory as text (pure).
pub fn render_inventory(
    servers: &[u64],
    counts: &BTreeMap<String, BTreeMap<u64, usize>>,
    problems: &[String],
) -> String {
    let mut header = vec!["CLIENT".to_string()];
    header.extend(servers.iter().map(|id| format!("SERVER {id}")));
    header.push("TOTAL".into());
    let mut table = Table::new(header);
    for (client, per_server) in counts {
        let mut row = vec![client.clone()];
        row.extend(
            servers
                .iter()
                .map(|id| per_server.get(id).map_or("-".into(), |n| n.to_string())),
        );
        row.push(per_server.values().sum::<usize>().to_string());
        table.row(row);
    }
    let mut out = format!("Client sessions per server ({} clients):\n", counts.len());
    out.push_str(&table.render());
    for p in problems {
        out.push_str(&format!("not counted: {p}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_has_a_row_per_client_and_a_column_per_server() {
        let mut counts = BTreeMap::new();
        counts.insert("10.77.0.4".to_string(), BTreeMap::from([(1, 2), (3, 1)]));
        counts.insert("10.77.0.9".to_string(), BTreeMap::from([(2, 1)]));
        let text = render_inventory(&[1, 2, 3], &counts, &["server 2: refused".into()]);
        assert_eq!(
            text,
            "Client sessions per server (2 clients):\n\
             CLIENT     SERVER 1  SERVER 2  SERVER 3  TOTAL\n\
             10.77.0.4  2         -         1         3\n\
             10.77.0.9  -         1         -         1\n\
             not counted: server 2: refused\n"
        );
    }
}
