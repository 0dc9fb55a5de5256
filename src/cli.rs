//! The command line of `zkmigrate` (DESIGN section 4), as clap derive types.
//!
//! The doc comments here are the `--help` text, so they are written for the
//! operator. Commands map one-to-one onto the migration's verbs; the flags
//! that change what `step` may do (`--yes`, `--confirm`, `--force`) are
//! explicit because a migration of a production ensemble must never do more
//! than the operator asked for.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plan::scaffold::{self, DEFAULT_NAMESPACE, Endpoint};
use crate::steps::StepName;

/// Move a live ZooKeeper ensemble from hosts into Kubernetes, with no
/// downtime and no lost write.
///
/// A resumable state machine over five steps (preflight, services, clients,
/// peers, replace) and a final check (finalize), gated on the quorum being
/// synced before every disruptive action.
///
/// Exit codes: 0 done; 1 error; 2 usage or invalid plan; 3 halted by a
/// safety gate (resumable); 4 waiting for --confirm.
#[derive(Debug, Parser)]
#[command(name = "zkmigrate", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Format of the logs on stderr. Filter them with ZKMIGRATE_LOG (or
    /// RUST_LOG), e.g. `ZKMIGRATE_LOG=zkmigrate=debug`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How a command prints its result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Tables and prose for a person.
    #[default]
    Text,
    /// Stable, machine-readable JSON.
    Json,
}

/// How a command that prints Kubernetes objects prints them on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ObjectsFormat {
    /// Multi-document YAML with comments, for `kubectl apply -f`.
    #[default]
    Yaml,
    /// One JSON document: a `v1` `List` of the objects (no comments).
    Json,
}

/// The plan file every command reads.
#[derive(Debug, Args)]
pub struct PlanArg {
    /// The migration plan (YAML, `apiVersion: zkmigrate/v1`).
    #[arg(short = 'f', long = "file", value_name = "PLAN")]
    pub file: PathBuf,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a live ensemble and print a starting plan file: every server
    /// filled in from the servers' `conf` and `srvr`, and defaults marked
    /// CHECK for what cannot be observed (ssh access, service commands,
    /// the config path, the Kubernetes target). Changes nothing.
    Init(InitArgs),
    /// Observe the ensemble and cluster and print every action in order,
    /// with zoo.cfg diffs and the objects to create. Changes nothing.
    Plan {
        #[command(flatten)]
        plan: PlanArg,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
        /// Do not contact the ensemble or the hosts: plan from the plan file
        /// alone (no zoo.cfg diffs; the order is by id, since the leader is
        /// unknown). For review away from the network.
        #[arg(long)]
        offline: bool,
    },
    /// Run the preflight checks alone and print a table of them; exits
    /// non-zero if any fails.
    Check {
        #[command(flatten)]
        plan: PlanArg,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Run the next step (or all of them, or up to one). Refuses to start
    /// over an interrupted step unless --resume is given.
    Step(StepArgs),
    /// Where the journal stands, and a live table of the ensemble: id,
    /// address, where it runs, mode, zxid, lag, connections.
    Status {
        #[command(flatten)]
        plan: PlanArg,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Undo completed steps in reverse order.
    Rollback {
        #[command(flatten)]
        plan: PlanArg,
        /// Roll back to the state right after this step (default: undo all).
        #[arg(long, value_name = "STEP")]
        to: Option<StepName>,
        /// Do not ask before each disruptive action.
        #[arg(long)]
        yes: bool,
        /// Take over the kubernetes state backend's Lease when it expired
        /// while another runner held it (make sure that runner is gone).
        #[arg(long)]
        steal_lease: bool,
    },
    /// Write a Markdown runbook of the same plan: every action, the exact
    /// command an operator would run, how to verify it and how to undo it.
    Runbook {
        #[command(flatten)]
        plan: PlanArg,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the Kubernetes objects of the migration as YAML, for review or
    /// GitOps.
    Manifests {
        #[command(flatten)]
        plan: PlanArg,
        /// Only the objects of this step.
        #[arg(long, value_name = "STEP")]
        step: Option<StepName>,
        /// With `--step replace`: the objects as they are after this
        /// server's switch.
        #[arg(long, value_name = "ID", requires = "step")]
        server: Option<u8>,
    },
    /// Print the least-privilege ServiceAccount, Role and RoleBinding
    /// zkmigrate needs to run the plan, in the plan's namespace: exactly
    /// the permissions preflight checks, nothing more. Reads the plan only.
    Rbac {
        #[command(flatten)]
        plan: PlanArg,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: ObjectsFormat,
    },
    /// Print a shell completion script on stdout, e.g.
    /// `zkmigrate completions bash > /etc/bash_completion.d/zkmigrate`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page zkmigrate(1) on stdout, or write it and one page
    /// per command (zkmigrate-step(1), ...) into DIR.
    Man {
        /// Write every page into this directory instead.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
}

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The servers to read, by client address: HOST:PORT, comma-separated
    /// or repeated. On 3.5+ one serving server is enough (its `conf` lists
    /// every member) and more are checked to agree; on 3.4, whose `conf`
    /// lists no members, give every server.
    #[arg(
        long,
        required = true,
        value_name = "HOST:PORT",
        value_delimiter = ',',
        value_parser = parse_endpoint
    )]
    pub connect: Vec<Endpoint>,
    /// The Kubernetes namespace the servers move into.
    #[arg(long, value_name = "NS", default_value = DEFAULT_NAMESPACE, value_parser = parse_label)]
    pub namespace: String,
    /// The plan's name (labels, the journal file); default: the namespace.
    #[arg(long, value_name = "NAME", value_parser = parse_label)]
    pub name: Option<String>,
    /// The user zkmigrate logs in as over ssh; default: yours ($USER).
    #[arg(long, value_name = "USER", value_parser = parse_ssh_user)]
    pub ssh_user: Option<String>,
    /// The ssh key zkmigrate logs in with (`identityFile`); default: left
    /// to ssh (its config, an agent).
    #[arg(long, value_name = "FILE")]
    pub ssh_identity_file: Option<String>,
    /// An ssh option, `Key=value` (passed as `-o`); repeat for more.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_ssh_option)]
    pub ssh_option: Vec<String>,
    /// The path of zoo.cfg on every host (`conf` does not report it);
    /// default: Debian's, /etc/zookeeper/conf/zoo.cfg, marked CHECK.
    #[arg(long, value_name = "PATH", value_parser = parse_absolute_path)]
    pub config_path: Option<String>,
    /// ZooKeeper runs as this systemd unit on the hosts; default:
    /// `zookeeper` (Debian's package), marked CHECK.
    #[arg(long, value_name = "UNIT", value_parser = parse_unit, conflicts_with = "service_script")]
    pub systemd_unit: Option<String>,
    /// ZooKeeper is managed by this script on the hosts, which takes
    /// start, stop, restart, disable and enable.
    #[arg(long, value_name = "PATH", value_parser = parse_absolute_path)]
    pub service_script: Option<String>,
    /// The AdminServer's port (`admin.serverPort`), asked on the same host
    /// when a four-letter word is not whitelisted.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 8080,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub admin_port: u16,
    /// Write the plan to FILE (atomically) instead of stdout. An existing
    /// FILE is refused unless --force is given.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE when it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

fn parse_endpoint(value: &str) -> Result<Endpoint, String> {
    value.parse()
}

fn parse_label(value: &str) -> Result<String, String> {
    scaffold::check_label(value)
}

fn parse_ssh_user(value: &str) -> Result<String, String> {
    scaffold::check_ssh_user(value)
}

fn parse_ssh_option(value: &str) -> Result<String, String> {
    scaffold::check_ssh_option(value)
}

fn parse_absolute_path(value: &str) -> Result<String, String> {
    scaffold::check_absolute_path(value)
}

fn parse_unit(value: &str) -> Result<String, String> {
    scaffold::check_unit(value)
}

/// Arguments of `step`.
#[derive(Debug, Args)]
pub struct StepArgs {
    #[command(flatten)]
    pub plan: PlanArg,
    /// Run every remaining step.
    #[arg(long, conflicts_with = "until")]
    pub all: bool,
    /// Run the remaining steps up to and including STEP.
    #[arg(long, value_name = "STEP")]
    pub until: Option<StepName>,
    /// Continue an interrupted step, re-observing the world first.
    #[arg(long)]
    pub resume: bool,
    /// Do not ask before each disruptive action.
    #[arg(long)]
    pub yes: bool,
    /// Allow a step that the plan's `policy.confirm` holds back (repeatable).
    #[arg(long, value_name = "STEP")]
    pub confirm: Vec<StepName>,
    /// Proceed past refusals that the operator may override (e.g. the
    /// ZOOKEEPER-3829 version check).
    #[arg(long)]
    pub force: bool,
    /// Take over the kubernetes state backend's Lease when it expired while
    /// another runner held it (make sure that runner is gone first).
    #[arg(long)]
    pub steal_lease: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn step_takes_repeated_confirm_and_refuses_all_with_until() {
        let cli = Cli::try_parse_from([
            "zkmigrate",
            "step",
            "-f",
            "p.yaml",
            "--all",
            "--confirm",
            "clients",
            "--confirm",
            "replace",
            "--yes",
        ])
        .unwrap();
        let Command::Step(args) = cli.command else {
            panic!("not step")
        };
        assert!(args.all && args.yes && !args.resume);
        assert_eq!(args.confirm, vec![StepName::Clients, StepName::Replace]);

        let err = Cli::try_parse_from([
            "zkmigrate",
            "step",
            "-f",
            "p.yaml",
            "--all",
            "--until",
            "peers",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn an_unknown_step_name_is_a_usage_error() {
        let err = Cli::try_parse_from(["zkmigrate", "step", "-f", "p", "--until", "replace-all"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
