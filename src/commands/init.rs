//! `zkmigrate init`: read a live ensemble and write a starting plan.
//!
//! The I/O half of [`crate::plan::scaffold`]: ask every `--connect` address
//! `conf` and `srvr` at once through [`ServerProbe`] (the four-letter word,
//! or the AdminServer on `--admin-port` when the word is not whitelisted),
//! hand the replies to the pure `assemble` and `render_checked`, and print
//! the plan on stdout or write it to `-o FILE`. Progress and the notes go
//! to stderr as logs, so `zkmigrate init ... > plan.yaml` holds the plan
//! alone.
//!
//! Nothing is written unless a valid plan came out: no server answered,
//! the servers disagree about the membership, or the result does not
//! validate, and the command fails before touching FILE. FILE is written
//! atomically (a temporary file beside it, fsync, rename), and without
//! `--force` an existing FILE is refused before the ensemble is even
//! asked, and again at the rename (no-clobber), so a file that appears in
//! between is not replaced either.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::join_all;
use tracing::{info, warn};

use super::CommandError;
use crate::cli::InitArgs;
use crate::exit::Exit;
use crate::observe::{ObservationFailure, ServerProbe};
use crate::output::Printer;
use crate::plan::scaffold::{
    self, Answer, Endpoint, Reply, ScaffoldError, ServiceManager, Settings,
};

/// How long each exchange with a server may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `-o FILE` exists and `--force` was not given.
    #[error(
        "failed to write the plan to {}: the file exists; pass --force to replace it (nothing was written)",
        path.display()
    )]
    Exists { path: PathBuf },
    /// Writing FILE failed.
    #[error("failed to write the plan to {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What the ensemble answered makes no plan.
    #[error(transparent)]
    Scaffold(#[from] ScaffoldError),
}

impl InitError {
    /// Whether the command line is at fault (exit 2) rather than the
    /// ensemble or the file system (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, InitError::Exists { .. })
    }
}

/// Runs `zkmigrate init`.
pub async fn run(args: &InitArgs) -> Result<Exit, CommandError> {
    // Checked before the ensemble is asked, so a refusal is immediate.
    if let Some(path) = &args.output {
        if !args.force && path.symlink_metadata().is_ok() {
            return Err(InitError::Exists { path: path.clone() }.into());
        }
        let dir = parent_dir(path);
        if !dir.is_dir() {
            return Err(InitError::Write {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} is not a directory", dir.display()),
                ),
            }
            .into());
        }
    }
    let service = match (&args.systemd_unit, &args.service_script) {
        (_, Some(path)) => ServiceManager::Script { path: path.clone() },
        (Some(unit), None) => ServiceManager::Systemd {
            unit: unit.clone(),
            given: true,
        },
        (None, None) => ServiceManager::default(),
    };
    let settings = Settings {
        identity_file: args.ssh_identity_file.clone(),
        ssh_options: args.ssh_option.clone(),
        config_path: args.config_path.clone(),
        service,
        ..Settings::new(
            args.name.as_deref().unwrap_or(&args.namespace),
            &args.namespace,
            args.ssh_user.clone().or_else(local_user),
        )
    };
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for endpoint in &args.connect {
        if !endpoints.contains(endpoint) {
            endpoints.push(endpoint.clone());
        }
    }
    let listed: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
    info!(servers = %listed.join(","), "reading the ensemble");
    let replies = join_all(endpoints.iter().map(|e| read_server(e, args.admin_port))).await;

    let scaffold = scaffold::assemble(&replies, settings).map_err(InitError::from)?;
    for note in &scaffold.notes {
        warn!("check: {note}");
    }
    let (text, plan) = scaffold::render_checked(&scaffold).map_err(InitError::from)?;
    for warning in &plan.warnings {
        warn!(%warning, "the plan is accepted with a warning");
    }
    match &args.output {
        None => Printer.text(&text)?,
        Some(path) => {
            write_plan(path, text.as_bytes(), args.force)?;
            info!(
                path = %path.display(),
                servers = plan.servers.len(),
                "wrote the plan; read every CHECK in it, then run `zkmigrate plan --offline -f` on it"
            );
        }
    }
    Ok(Exit::Done)
}

/// `conf` and `srvr` of one address, whichever path answers.
async fn read_server(endpoint: &Endpoint, admin_port: u16) -> Reply {
    let probe = ServerProbe::new(endpoint.to_string(), EXCHANGE_TIMEOUT)
        .with_admin(endpoint.with_port(admin_port));
    let (conf, srvr) = tokio::join!(probe.conf(), probe.srvr());
    let outcome = match conf {
        Ok((conf, conf_via)) => {
            info!(
                addr = %endpoint,
                server_id = conf.server_id,
                via = ?conf_via,
                members = conf.servers.len(),
                "read `conf`"
            );
            Ok(Answer {
                conf,
                conf_via,
                srvr: srvr.map(|(s, _)| s).map_err(|e| e.to_string()),
            })
        }
        Err(e) => {
            warn!(addr = %endpoint, error = %e, "no `conf` from this server");
            Err(ObservationFailure::from(&e))
        }
    };
    Reply {
        endpoint: endpoint.clone(),
        outcome,
    }
}

/// The user running zkmigrate, as ssh would log in by default.
fn local_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .find_map(|user| scaffold::check_ssh_user(&user).ok())
}

/// Writes the plan (see [`crate::output::write_file`]): an existing file
/// is replaced only with `force`.
fn write_plan(path: &Path, bytes: &[u8], force: bool) -> Result<(), InitError> {
    crate::output::write_file(path, bytes, force).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists if !force => InitError::Exists {
            path: path.to_path_buf(),
        },
        _ => InitError::Write {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// The directory `path` is written in.
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
