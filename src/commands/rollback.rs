//! `zkmigrate rollback`: undo completed (and begun) steps in reverse, under
//! the journal's lock ([`crate::engine::rollback`]). Rolling back restarts
//! servers: without `--yes` it needs a terminal to ask on.

use std::io::IsTerminal;
use std::path::Path;

use super::CommandError;
use crate::engine::context::{Ctx, RunOptions, StepError};
use crate::exit::Exit;
use crate::hosts::HostAccess;
use crate::journal::{JournalStore, LockOptions};
use crate::plan;
use crate::progress::Progress;
use crate::steps::StepName;

pub async fn run(
    plan_file: &Path,
    to: Option<StepName>,
    yes: bool,
    steal_lease: bool,
    json_logs: bool,
) -> Result<Exit, CommandError> {
    let plan = plan::load(plan_file)?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CommandError::Step(StepError::Refused {
                action: "rollback".into(),
                observed: "no --yes and no terminal to ask on".into(),
                expected: "the operator's go-ahead (rollback restarts servers)".into(),
                next: "Run again with --yes.".into(),
            }));
        }
        eprint!(
            "roll back {} of plan {}? [y/N] ",
            to.map(|t| format!("every step after {t}"))
                .unwrap_or_else(|| "every step".into()),
            plan.name
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing was changed");
            return Ok(Exit::Error);
        }
    }
    let hosts = HostAccess::from_plan(&plan).map_err(|e| CommandError::Engine(e.to_string()))?;
    let cluster = crate::k8s::connect(&plan.kubernetes)
        .await
        .map_err(|e| CommandError::Engine(e.to_string()))?;
    let options = LockOptions {
        steal_lease,
        ..LockOptions::default()
    };
    let mut journal = JournalStore::from_plan(&plan)
        .open_locked(&plan, Some(&cluster), options)
        .await
        .map_err(|e| CommandError::Engine(e.to_string()))?;
    let ctx = Ctx {
        plan_file: plan_file.to_path_buf(),
        hosts,
        cluster,
        progress: Progress::for_stderr(json_logs),
        opts: RunOptions {
            yes,
            ..RunOptions::default()
        },
        plan,
    };
    let result = crate::engine::rollback::rollback(&ctx, &mut journal, to).await;
    journal.release().await;
    result.map_err(CommandError::Step)
}
