//! The plan file (`apiVersion: zkmigrate/v1`, DESIGN section 3): read it,
//! check it, and hand every later stage a [`ValidatedPlan`].
//!
//! The pipeline is `text -> file (serde) -> validate -> ValidatedPlan`:
//!
//! - `file`: serde structs that mirror the YAML and reject unknown keys.
//! - `validate`: every rule of the contract, with defaults filled in, into
//!   the typed values of `types`. It collects *all* errors, each naming its
//!   field path and, from serde-saphyr's spans, its line and column, so an
//!   operator fixes a plan in one pass.
//! - `types`: [`ValidatedPlan`] and the values it holds ([`ServerId`],
//!   [`ServiceNameTemplate`], [`Chroot`], durations, [`StepName`]s). Nothing
//!   downstream re-validates them.
//! - `hash`: the plan hash the journal stores (everything but `policy`).
//! - `formats`: the name and quantity formats the rules are made of.
//! - `locate`: finds the field path of a position, for serde's own errors.
//! - [`scaffold`]: the other way round: a starting plan file written from a
//!   live ensemble's observations (`zkmigrate init`), checked by `parse`.
//!
//! No I/O happens here but reading the file in [`load`].
//!
//! [`StepName`]: crate::steps::StepName

mod file;
mod formats;
mod hash;
mod locate;
pub mod scaffold;
#[cfg(test)]
pub(crate) mod testing;
mod types;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::MessageFormatter;

pub use types::{
    Access, Chroot, Clients, Ensemble, ExecAccess, Kubernetes, Policy, Server, ServerId,
    ServiceCommands, ServiceNameTemplate, SshAccess, StateBackend, Storage, Target, TargetKind,
    ValidatedPlan,
};

/// The only `apiVersion` this build reads.
pub const API_VERSION: &str = "zkmigrate/v1";

/// The only `kind` of a plan file.
pub const KIND: &str = "MigrationPlan";

/// A line and column in the plan file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1 (in characters).
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One broken rule: the field, where it is written, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `ensemble.servers[1].id`; empty for the
    /// document itself.
    pub path: String,
    /// Where the field's value (or the key, for an unknown key) starts.
    pub position: Option<Position>,
    /// What is wrong, in lower case.
    pub message: String,
}

impl FieldError {
    /// `source:line:col: path: message`, the form editors jump to.
    pub fn render(&self, source_name: &str) -> String {
        let mut out = source_name.to_string();
        if let Some(position) = self.position {
            out.push_str(&format!(":{position}"));
        }
        if !self.path.is_empty() {
            out.push_str(&format!(": {}", self.path));
        }
        out.push_str(&format!(": {}", self.message));
        out
    }
}

/// Something validation accepted but an operator should read before
/// migrating (an even number of voters under `policy.allowEvenVoters`, a
/// single server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The plan file, as named to [`parse`].
    pub source_name: String,
    /// The field the warning is about.
    pub field: FieldError,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field.render(&self.source_name))
    }
}

/// Why a plan could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("failed to read plan file {}", path.display())]
    Read {
        /// The plan file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid plan: YAML syntax, an unknown key, or broken
    /// rules. Every error found, one per line.
    #[error("{}", render_errors(source_name, errors))]
    Invalid {
        /// The plan file, as named to [`parse`].
        source_name: String,
        /// Every error, in the order they appear in the file.
        errors: Vec<FieldError>,
    },
}

impl PlanError {
    /// Whether the plan itself is at fault (the CLI's exit code 2), rather
    /// than reading it (exit code 1).
    pub fn is_invalid(&self) -> bool {
        matches!(self, PlanError::Invalid { .. })
    }

    /// The field errors, empty for a read error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            PlanError::Invalid { errors, .. } => errors,
            PlanError::Read { .. } => &[],
        }
    }
}

fn render_errors(source_name: &str, errors: &[FieldError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.render(source_name)).collect();
    lines.join("\n")
}

/// Reads and validates the plan file at `path`. Relative state paths are
/// resolved against the file's directory (see [`ValidatedPlan::state_file`]).
pub fn load(path: &Path) -> Result<ValidatedPlan, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut plan = parse(&text, &path.display().to_string())?;
    let dir = path.parent().unwrap_or(Path::new(""));
    plan.base_dir = Some(match dir.as_os_str().is_empty() {
        true => PathBuf::from("."),
        false => dir.to_path_buf(),
    });
    Ok(plan)
}

/// Validates a plan given as text; `source_name` names it in messages
/// (usually the file's path).
pub fn parse(text: &str, source_name: &str) -> Result<ValidatedPlan, PlanError> {
    let invalid = |errors: Vec<FieldError>| PlanError::Invalid {
        source_name: source_name.to_string(),
        errors,
    };
    // The version first: a plan of another version gets one clear error,
    // not a list of keys this version does not know.
    let header: file::RawHeader =
        serde_saphyr::from_str(text).map_err(|e| invalid(vec![deserialize_error(text, &e)]))?;
    let header_errors = validate::check_header(&header);
    if !header_errors.is_empty() {
        return Err(invalid(header_errors));
    }
    let raw: file::RawPlan =
        serde_saphyr::from_str(text).map_err(|e| invalid(vec![deserialize_error(text, &e)]))?;
    validate::validate(raw, source_name).map_err(invalid)
}

/// A serde-saphyr error as a [`FieldError`]: its message without the
/// location suffix, its position, and the path found at that position.
fn deserialize_error(text: &str, error: &serde_saphyr::Error) -> FieldError {
    let inner = error.without_snippet();
    let message = serde_saphyr::UserMessageFormatter.format_message(inner);
    // The formatter's text comes from the input in part (keys, values):
    // keep control characters out of the terminal.
    let message: String = message
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    let position = error.location().filter(|l| l.line() > 0).map(|l| Position {
        line: l.line(),
        column: l.column(),
    });
    let path = position
        .and_then(|p| locate::path_at(text, p.line, p.column))
        .unwrap_or_default();
    FieldError {
        path,
        position,
        message,
    }
}
