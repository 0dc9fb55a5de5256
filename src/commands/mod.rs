//! One module per command of the CLI (DESIGN section 4). Each takes its
//! parsed arguments, calls the pure core and the I/O boundaries, prints
//! through [`crate::output::Printer`], and says which exit code the run ends
//! with. Nothing here decides policy: that lives in the modules it calls.

mod check;
mod completions;
mod init;
mod man;
mod manifests;
mod plan;
mod rbac;
mod rollback;
mod runbook;
mod status;
mod step;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use crate::observe::ObserveError;
use crate::plan::PlanError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Manifests(#[from] crate::manifests::ManifestsError),
    #[error(transparent)]
    Init(#[from] init::InitError),
    #[error("failed to write the output: {0}")]
    Output(#[from] std::io::Error),
    /// A step stopped: halted (3), waiting for --confirm (4) or failed (1).
    #[error(transparent)]
    Step(crate::engine::context::StepError),
    /// The engine could not start (journal lock, hosts, cluster).
    #[error("{0}")]
    Engine(String),
}

impl CommandError {
    /// The exit code this failure ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::Plan(e) if e.is_invalid() => Exit::Usage,
            CommandError::Manifests(e) if e.is_usage() => Exit::Usage,
            CommandError::Init(e) if e.is_usage() => Exit::Usage,
            CommandError::Step(e) => e.exit(),
            _ => Exit::Error,
        }
    }
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<Exit, CommandError> {
    match cli.command {
        Command::Init(args) => init::run(&args).await,
        Command::Plan {
            plan,
            output,
            offline,
        } => plan::run(&plan.file, output, offline).await,
        Command::Status { plan, output } => status::run(&plan.file, output).await,
        Command::Check { plan, output } => {
            check::run(
                &plan.file,
                output,
                cli.global.log_format == crate::cli::LogFormat::Json,
            )
            .await
        }
        Command::Step(args) => {
            step::run(&args, cli.global.log_format == crate::cli::LogFormat::Json).await
        }
        Command::Rollback {
            plan,
            to,
            yes,
            steal_lease,
        } => {
            rollback::run(
                &plan.file,
                to,
                yes,
                steal_lease,
                cli.global.log_format == crate::cli::LogFormat::Json,
            )
            .await
        }
        Command::Runbook { plan, output } => runbook::run(&plan.file, output.as_deref()),
        Command::Manifests { plan, step, server } => manifests::run(&plan.file, step, server),
        Command::Rbac { plan, output } => rbac::run(&plan.file, output),
        Command::Completions { shell } => completions::run(shell),
        Command::Man { output } => man::run(output.as_deref()),
    }
}
