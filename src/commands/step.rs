//! `zkmigrate step`: run the next step (or all, or up to one) under the
//! journal's lock, through the engine's loop ([`crate::engine::run`]).
//! A halt exits 3, a step waiting for `--confirm` exits 4.

use std::path::Path;

use super::CommandError;
use crate::cli::StepArgs;
use crate::engine::context::{Ctx, RunOptions};
use crate::engine::run::{StepRequest, run_steps};
use crate::exit::Exit;
use crate::hosts::HostAccess;
use crate::journal::{JournalStore, LockOptions};
use crate::plan;
use crate::progress::Progress;

pub async fn run(args: &StepArgs, json_logs: bool) -> Result<Exit, CommandError> {
    let plan_file: &Path = &args.plan.file;
    let plan = plan::load(plan_file)?;
    // Connect before touching the journal: a step that cannot reach the
    // hosts or the cluster leaves no journal behind.
    let hosts = HostAccess::from_plan(&plan).map_err(|e| CommandError::Engine(e.to_string()))?;
    let cluster = crate::k8s::connect(&plan.kubernetes)
        .await
        .map_err(|e| CommandError::Engine(e.to_string()))?;
    let options = LockOptions {
        steal_lease: args.steal_lease,
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
            yes: args.yes,
            confirm: args.confirm.clone(),
            force: args.force,
            resume: args.resume,
        },
        plan,
    };
    let request = StepRequest {
        all: args.all,
        until: args.until,
    };
    let result = run_steps(&ctx, &mut journal, request).await;
    // Halted or failed too: the next run must not wait for the Lease.
    journal.release().await;
    result.map_err(CommandError::Step)
}
