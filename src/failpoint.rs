//! Crash and pause points at the engine's journaled boundaries, for the
//! crash matrix (docs/reliability.md) and the fault tests. Compiled in only
//! with the `failpoints` cargo feature, which release builds do not carry:
//! without it [`boundary`] is an empty function.
//!
//! A boundary is named after the journal record just written (or, for
//! `applied`, the effect just made and not yet journaled):
//!
//! - `step/<step>@running`, `step/<step>@done`: a step's status written;
//! - `<action id>@intent`: the intent journaled, nothing applied yet;
//! - `<action id>@applied`: applied, not yet verified or journaled done;
//! - `<action id>@done`: journaled done.
//!
//! Driven by the environment, read at each boundary:
//!
//! - `ZKMIGRATE_CRASH_LEDGER=FILE`: at the first boundary whose name is not
//!   yet a line of FILE, append the name to FILE (synced), say so on stderr,
//!   and die by SIGKILL (no destructor runs, nothing is flushed: a crash).
//!   Resuming the same migration again and again with one ledger crashes
//!   once at every boundary in turn, and the ledger lists them in order.
//! - `ZKMIGRATE_CRASH_ONLY=PAT[,PAT...]`: only boundaries that one of the
//!   patterns selects count (the sample CI runs); see [`selects`].
//! - `ZKMIGRATE_PAUSE_AT=NAME` with `ZKMIGRATE_PAUSE_FILE=FILE`: at boundary
//!   or point NAME, create FILE and wait until it is removed, so that a test
//!   can do something to the world in the middle of an action.
//!
//! Points ([`point`]) only pause, never crash: `host/<id>/<what>` before
//! every command on a server's host (e.g. `host/1/write
//! /etc/zookeeper/conf/zoo.cfg`), inside an action.

/// Crosses the boundary `name` (see the module header).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn boundary(_name: impl FnOnce() -> String) {}

/// Passes the point `name` (see the module header).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn point(_name: impl FnOnce() -> String) {}

/// Passes the point `name` (see the module header).
#[cfg(feature = "failpoints")]
pub async fn point(name: impl FnOnce() -> String) {
    pause_if_asked(&name()).await;
}

#[cfg(feature = "failpoints")]
async fn pause_if_asked(name: &str) {
    if let (Ok(at), Ok(file)) = (
        std::env::var("ZKMIGRATE_PAUSE_AT"),
        std::env::var("ZKMIGRATE_PAUSE_FILE"),
    ) && at == name
    {
        pause(name, std::path::Path::new(&file)).await;
    }
}

/// Crosses the boundary `name` (see the module header).
#[cfg(feature = "failpoints")]
pub async fn boundary(name: impl FnOnce() -> String) {
    let name = name();
    tracing::debug!(boundary = %name, "failpoint boundary");
    pause_if_asked(&name).await;
    if let Ok(ledger) = std::env::var("ZKMIGRATE_CRASH_LEDGER") {
        let only = std::env::var("ZKMIGRATE_CRASH_ONLY").unwrap_or_default();
        if selects(&only, &name) {
            crash_unless_listed(&name, std::path::Path::new(&ledger));
        }
    }
}

/// Whether `only` (comma-separated patterns; none: every boundary) selects
/// the boundary `name`. A pattern matches when its `*`-separated parts
/// occur in `name` in order: `peers/restart/*@applied` selects
/// `peers/restart/2@applied`, `@intent` every intent.
pub fn selects(only: &str, name: &str) -> bool {
    let patterns: Vec<&str> = only.split(',').filter(|p| !p.is_empty()).collect();
    patterns.is_empty() || patterns.iter().any(|p| matches(p, name))
}

fn matches(pattern: &str, name: &str) -> bool {
    let mut rest = name;
    for part in pattern.split('*') {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(feature = "failpoints")]
async fn pause(name: &str, file: &std::path::Path) {
    if let Err(e) = std::fs::write(file, name) {
        eprintln!("failpoint: cannot create {}: {e}", file.display());
        return;
    }
    eprintln!(
        "failpoint: paused at {name} until {} is removed",
        file.display()
    );
    while file.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    eprintln!("failpoint: resumed at {name}");
}

#[cfg(feature = "failpoints")]
fn crash_unless_listed(name: &str, ledger: &std::path::Path) {
    use std::io::Write;
    let listed = std::fs::read_to_string(ledger).unwrap_or_default();
    if listed.lines().any(|l| l == name) {
        return;
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ledger)
        .and_then(|mut f| {
            writeln!(f, "{name}")?;
            f.sync_all()
        });
    if let Err(e) = written {
        eprintln!(
            "failpoint: cannot write the ledger {}: {e}",
            ledger.display()
        );
        return;
    }
    eprintln!("failpoint: crash at {name}");
    // SIGKILL ourselves: std has no kill(2) and unsafe code is forbidden.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    // Not reached; if kill could not run, a crash without it.
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn every_boundary_counts_without_a_pattern() {
        assert!(selects("", "peers/restart/2@intent"));
    }

    #[test]
    fn patterns_select_by_substring() {
        assert!(selects("replace,peers/", "peers/restart/2@intent"));
        assert!(selects("replace,peers/", "replace/pod/1@done"));
        assert!(!selects("replace,peers/", "services/service/1@done"));
        assert!(!selects("@intent", "step/clients@running"));
    }

    #[test]
    fn stars_match_any_run_of_characters_in_order() {
        assert!(selects(
            "peers/restart/*@applied",
            "peers/restart/2@applied"
        ));
        assert!(!selects("peers/restart/*@applied", "peers/restart/2@done"));
        assert!(!selects(
            "peers/restart/*@applied",
            "peers/rewrite/2@applied"
        ));
        assert!(selects("x,replace/*/3@*", "replace/fence/3@intent"));
        assert!(!selects("@applied*@applied", "peers/restart/2@applied"));
    }
}
