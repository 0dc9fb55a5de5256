//! The operator's runbook (DESIGN 4, `zkmigrate runbook`): the computed
//! plan ([`crate::engine::build`], the one `plan` and `step` run) as
//! Markdown, every action in the engine's order with the exact commands an
//! operator would run by hand, what to expect, how to undo it, and the
//! quorum-first gate before every action the engine gates.
//!
//! Pure: a function of the validated plan and the computed plan. The text
//! of each action lives beside the step's code (`manual` in each module of
//! [`crate::engine::steps`]), so a change to a step shows in its runbook;
//! this module only lays the sections out and renders the blocks.
//!
//! Every command block is machine-followable: a fenced `sh` block whose
//! info string names the action and the block's role,
//! ```` ```sh action="peers/restart/2" role="run" ````, with roles `setup`,
//! `gate`, `run`, `verify` and `undo` (a preflight check is a `verify`).
//! A `verify` or `gate` block exits 0 exactly when what it checks holds,
//! so a script can follow the runbook and stop where a person would.

pub mod shell;

use crate::engine::action::Action;
use crate::engine::build::MigrationPlan;
use crate::engine::steps;
use crate::plan::ValidatedPlan;
use crate::steps::StepName;

pub use shell::Shell;

/// What the runbook says about one action: written by the action's step
/// module, rendered by [`render`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manual {
    /// Why the action is there and what the engine does around it, beyond
    /// the one-line description (Markdown; may be empty).
    pub about: String,
    /// The commands that make the effect hold (a read-only check: the
    /// commands that check it).
    pub run: Option<String>,
    /// What the operator should see (Markdown).
    pub expect: String,
    /// Commands that exit 0 exactly when the effect holds.
    pub verify: Option<String>,
    /// How to take the effect back (Markdown).
    pub undo: String,
    /// The commands of the undo, when there are any.
    pub undo_run: Option<String>,
}

/// The role of a command block, in its info string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Setup,
    Gate,
    Run,
    Verify,
    Undo,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Setup => "setup",
            Role::Gate => "gate",
            Role::Run => "run",
            Role::Verify => "verify",
            Role::Undo => "undo",
        }
    }
}

/// One fenced, machine-followable block.
pub fn block(action: &str, role: Role, commands: &str) -> String {
    let body = commands.trim_end_matches('\n');
    format!(
        "```sh action=\"{action}\" role=\"{}\"\n{body}\n```\n",
        role.as_str()
    )
}

/// The gate the engine runs before a disruptive action (DESIGN 2), as
/// commands: wait, within `progressDeadline`, until the quorum-first
/// checks hold.
fn gate(sh: &Shell, action: &Action) -> String {
    let deadline = Shell::secs(sh.plan.policy.progress_deadline);
    let extra = match action {
        Action::FenceHost { .. } => {
            " The engine also requires here that every other voter has the leader's Zxid \
             (ZOOKEEPER-2325), which `zk_quorum_ok` checks for every voter before any action."
        }
        _ => "",
    };
    format!(
        "**Gate** (the engine runs it before this action; wait, do not skip): every voter \
         serving, exactly one leader, on the leader `mntr` shows `zk_synced_followers` = {} \
         and `zk_pending_syncs` = 0, no voter's `srvr` Zxid behind the leader's (asked after it). \
         Without the server this action takes down, {} of {} voters remain: still a quorum.{extra} \
         `zk_await` gives up after `progressDeadline` ({}); the engine halts there too.\n\n{}",
        sh.plan.servers.len().saturating_sub(1),
        sh.plan.servers.len().saturating_sub(1),
        sh.plan.servers.len(),
        humantime::format_duration(sh.plan.policy.progress_deadline),
        block(
            &action.id(),
            Role::Gate,
            &format!("{}\nzk_await {deadline} zk_quorum_ok", sh.source_helpers())
        )
    )
}

/// The whole runbook.
pub fn render(plan: &ValidatedPlan, plan_file: &str, computed: &MigrationPlan) -> String {
    let sh = Shell::new(plan, plan_file);
    let mut out = String::new();
    let hash = &computed.hash[..computed.hash.len().min(12)];
    out.push_str(&format!(
        "# Runbook: migrate ZooKeeper ensemble `{}` into Kubernetes\n\n",
        plan.name
    ));
    out.push_str(&format!(
        "Written by `zkmigrate runbook` from `{plan_file}` (plan hash `{hash}`). It is the plan \
         `zkmigrate plan` prints and `zkmigrate step` runs: the same actions, in the same order, \
         under the same ids (the ids of the journal and of `zkmigrate status`). Follow it by hand, \
         or read it before a run. Where the hand-run differs from what `zkmigrate step` does, \
         the action says so.\n\n"
    ));
    out.push_str(&format!(
        "- Servers: {}.\n- Kubernetes: namespace `{}`, {}, target {:?} `{}`, image `{}`.\n\
         - Policy: syncTimeout {}, progressDeadline {}, pollInterval {}.\n\n",
        plan.servers
            .iter()
            .map(|s| format!("{} (`{}`, {})", s.id, s.host, s.address))
            .collect::<Vec<_>>()
            .join(", "),
        plan.kubernetes.namespace,
        match &plan.kubernetes.context {
            Some(c) => format!("context `{c}`"),
            None => "the kubeconfig's current context".to_string(),
        },
        plan.kubernetes.target.kind,
        plan.kubernetes.target.name,
        plan.kubernetes.target.image,
        humantime::format_duration(plan.policy.sync_timeout),
        humantime::format_duration(plan.policy.progress_deadline),
        humantime::format_duration(plan.policy.poll_interval),
    ));
    out.push_str(
        "## How to follow it\n\n\
         Each action has an id (`step/verb[/server]`) and fenced `sh` blocks whose info string \
         names the action and the block's role: `setup`, `gate` (wait until it exits 0 before \
         the action), `run`, `verify` (exits 0 exactly when the effect holds), `undo`. \
         A script can pick out the blocks of one action or one server, e.g. every block whose \
         action ends in `/2`. Run the blocks in one shell, in the directory where the setup \
         block wrote the helper file; a block that fails (non-zero) means stop and look.\n\n\
         Tools on the machine that follows the runbook: `ssh` (or the plan's exec prefix), \
         `kubectl`, `nc`, `sed`, `awk`, and this runbook's helper file.\n\n",
    );
    out.push_str("### Setup: the helper file\n\n");
    out.push_str(
        "The gates and waits below call these shell functions. They ask the ensemble the way \
         zkmigrate does: four-letter words without a trailing newline, read to EOF, to each \
         server where its Service's EndpointSlice points (the host until the replace step \
         switches the Service, then the Pod).\n\n",
    );
    out.push_str(&block(
        "setup",
        Role::Setup,
        &format!(
            "cat > {} <<'HELPERS'\n{}HELPERS",
            sh.helpers_file(),
            sh.helpers()
        ),
    ));
    out.push('\n');

    for (n, step) in computed.steps.iter().enumerate() {
        out.push_str(&format!("## {}. {}\n\n", n + 1, step.name));
        out.push_str(&steps::intro(&sh, step.name, computed));
        out.push('\n');
        if plan.policy.needs_confirm(step.name) {
            out.push_str(&format!(
                "The plan's `policy.confirm` lists `{0}`: `zkmigrate step` stops before \
                 finishing this step until run with `--confirm {0}`. By hand, this is the \
                 moment to get that confirmation.\n\n",
                step.name
            ));
        }
        for planned in &step.actions {
            out.push_str(&render_action(
                &sh,
                &planned.action,
                planned.diff.as_deref(),
            ));
        }
    }

    if !computed.warnings.is_empty() {
        out.push_str("## Warnings\n\n");
        for w in &computed.warnings {
            out.push_str(&format!("- {w}\n"));
        }
        out.push('\n');
    }
    out
}

fn render_action(sh: &Shell, action: &Action, diff: Option<&str>) -> String {
    let id = action.id();
    let manual = steps::manual(sh, action);
    let mut out = format!("### `{id}`: {}\n\n", action.describe());
    out.push_str(&format!("<!-- action: {id} -->\n"));
    if !manual.about.is_empty() {
        out.push_str(&format!("{}\n\n", manual.about.trim_end()));
    }
    if action.disrupts() {
        out.push_str(&gate(sh, action));
        out.push('\n');
    }
    if let Some(run) = &manual.run {
        let role = match action.step() {
            StepName::Preflight => Role::Verify,
            _ => Role::Run,
        };
        out.push_str(if role == Role::Verify {
            "**Check**:\n\n"
        } else {
            "**Run**:\n\n"
        });
        out.push_str(&block(&id, role, run));
        out.push('\n');
    }
    if let Some(diff) = diff {
        out.push_str("What it changes:\n\n```diff\n");
        out.push_str(diff.trim_end_matches('\n'));
        out.push_str("\n```\n\n");
    }
    if !manual.expect.is_empty() {
        out.push_str(&format!("**Expect**: {}\n\n", manual.expect.trim_end()));
    }
    if let Some(verify) = &manual.verify {
        out.push_str(&block(&id, Role::Verify, verify));
        out.push('\n');
    }
    if !manual.undo.is_empty() || manual.undo_run.is_some() {
        out.push_str(&format!("**Undo**: {}\n\n", manual.undo.trim_end()));
        if let Some(undo) = &manual.undo_run {
            out.push_str(&block(&id, Role::Undo, undo));
            out.push('\n');
        }
    }
    out
}

/// The blocks of `markdown` for `action` (all roles, in order), as a
/// script following the runbook picks them: `(role, commands)`.
pub fn blocks_of(markdown: &str, action: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = markdown.lines();
    let opening = format!("```sh action=\"{action}\" role=\"");
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(&opening) else {
            continue;
        };
        let role = rest.trim_end_matches('"').to_string();
        let mut body = Vec::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            body.push(line);
        }
        out.push((role, body.join("\n") + "\n"));
    }
    out
}

#[cfg(test)]
mod tests;
