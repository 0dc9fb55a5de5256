//! Step `peers` (DESIGN 5.4): every server, the leader included, comes to
//! name its peers by their Service names before any host is replaced.
//!
//! Three actions, each check / apply / verify / undo:
//!
//! - `VerifyResolution` (read-only, so never "already done": it runs on
//!   every attempt, a resume included): from every host, each Service name
//!   resolves (`getent hosts`, the host's own resolver, as ZooKeeper's JVM
//!   will) to its Service's ClusterIP, read from the cluster, and `conf`
//!   through `<ClusterIP>:<clientPort>` (bash `/dev/tcp`, on the host)
//!   reports the right `serverId`. A server that cannot resolve its peers at
//!   start forms no quorum, so this refuses before the first restart.
//!   zkmigrate's own resolver view (hickory) is not checked here: zkmigrate
//!   talks to the hosts' addresses in this step, never to the names.
//! - `RewriteConfig{id}`: [`build::peer_config_files`] is the edit (the
//!   same function renders the plan's diff, so plan and act agree). The
//!   edit is idempotent, so "already done" is "rewriting what is on disk
//!   changes nothing" (or changes nothing ZooKeeper reads: a 3.5+ server in
//!   dynamic mode rewrites zoo.cfg itself at start). Each file is backed up
//!   once to `<path>.zkmigrate-backup` with `cp -p`; an existing backup is
//!   never overwritten, as it holds the pre-migration original.
//! - `RestartServer{id}` (gated by the loop): done when the running server's
//!   `conf` membership already lists the Service names. 3.4 prints no
//!   membership: there the check cannot tell and says "needed", so a second
//!   run on 3.4 restarts again (gated, one at a time; safe, not free).

mod manual;
pub use manual::{intro, manual};

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use tracing::Instrument;

use crate::engine::action::Action;
use crate::engine::build;
use crate::engine::context::{Ctx, Observed, StepError};
use crate::engine::world::HostFacts;
use crate::hosts::{HostSession, shell_quote};
use crate::observe::conf::{Conf, parse_conf};
use crate::observe::{Word, four_letter_word};
use crate::plan::ServerId;
use crate::zoocfg::{ZooCfg, semantic_eq};

/// Suffix of the pre-migration copy of each rewritten file.
pub const BACKUP_SUFFIX: &str = ".zkmigrate-backup";

/// Bound on one probe run on a host (name lookup, `conf` through a
/// ClusterIP): a ClusterIP with no endpoint would otherwise hang in SYN
/// retries for minutes.
const PROBE_TIMEOUT_SECS: u32 = 10;

/// Copies `$1` to `$2` (mode, owner and times kept) unless `$2` exists;
/// through a temporary file, so a crash leaves no half backup.
const BACKUP_ONCE: &str = r#"set -e
if [ -e "$2" ] || [ -L "$2" ]; then exit 0; fi
tmp="$2.zkmigrate.$$"
trap 'rm -f -- "$tmp"' EXIT
cp -p -- "$1" "$tmp"
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$2"
trap - EXIT"#;

/// `conf` through `$0:$1` with bash's `/dev/tcp`: the word without a
/// newline, the reply read to EOF (DESIGN 7).
const CONF_THROUGH: &str = r#"exec 3<>"/dev/tcp/$0/$1" && printf conf >&3 && cat <&3"#;

fn span(action: &Action) -> tracing::Span {
    match action.server() {
        Some(id) => tracing::info_span!("action", action = %action.id(), server_id = %id),
        None => tracing::info_span!("action", action = %action.id()),
    }
}

fn not_peers(action: &Action) -> StepError {
    StepError::Other(format!("run {}: not an action of step peers", action.id()))
}

/// Is the action's effect already there?
pub async fn check(ctx: &Ctx, action: &Action) -> Result<Observed, StepError> {
    let span = span(action);
    async {
        match action {
            // A read-only verification is never "already done".
            Action::VerifyResolution => Ok(Observed::Needed),
            Action::RewriteConfig { server } => check_rewrite(ctx, action, *server).await,
            Action::RestartServer { server } => check_restart(ctx, *server).await,
            _ => Err(not_peers(action)),
        }
    }
    .instrument(span)
    .await
}

/// Makes the action's effect hold (idempotent).
pub async fn apply(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    let span = span(action);
    async {
        match action {
            Action::VerifyResolution => Ok(()),
            Action::RewriteConfig { server } => apply_rewrite(ctx, action, *server).await,
            Action::RestartServer { server } => apply_restart(ctx, action, *server).await,
            _ => Err(not_peers(action)),
        }
    }
    .instrument(span)
    .await
}

/// Confirms the effect holds; returns what shows it.
pub async fn verify(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let span = span(action);
    async {
        match action {
            Action::VerifyResolution => verify_resolution(ctx, action).await,
            Action::RewriteConfig { server } => verify_rewrite(ctx, action, *server).await,
            Action::RestartServer { server } => verify_restart(ctx, action, *server).await,
            _ => Err(not_peers(action)),
        }
    }
    .instrument(span)
    .await
}

/// Takes the effect back (rollback, DESIGN 5.7): the rewrite restores the
/// backups; the restart restarts again (after the rewrite's undo), gated.
pub async fn undo(ctx: &Ctx, action: &Action) -> Result<(), StepError> {
    let span = span(action);
    async {
        match action {
            Action::VerifyResolution => Ok(()),
            Action::RewriteConfig { server } => undo_rewrite(ctx, *server).await,
            Action::RestartServer { server } => {
                ctx.gate(*server, false).await?;
                restart(ctx, *server).await?;
                ctx.await_synced(*server).await?;
                tracing::info!("server restarted on its restored config");
                Ok(())
            }
            _ => Err(not_peers(action)),
        }
    }
    .instrument(span)
    .await
}

fn next_resume(ctx: &Ctx) -> String {
    format!("`zkmigrate step -f {} --resume`", ctx.plan_file.display())
}

// ---- VerifyResolution ------------------------------------------------------

async fn verify_resolution(ctx: &Ctx, action: &Action) -> Result<String, StepError> {
    let plan = &ctx.plan;
    // A server that does not serve now (its restart failed, or a crash
    // came between its restart and its verification and it still starts)
    // cannot answer `conf` through its Service: its name is checked, and
    // its restart's verification then waits for it to sync through the
    // Service names.
    let seen = ctx.observe().await?;
    let serving: Vec<ServerId> = plan
        .servers
        .iter()
        .map(|s| s.id)
        .filter(|id| {
            seen.observation(u64::from(id.get()))
                .is_some_and(|o| o.srvr.mode.is_voting_member())
        })
        .collect();
    let port = plan.ensemble.client_port;
    // The ClusterIP of every Service, as the cluster has it.
    let mut expected = Vec::new();
    for s in &plan.servers {
        let name = plan.service_name(s.id);
        let svc: Option<Service> = ctx.cluster.get_opt(&name).await?;
        let ip = svc
            .and_then(|svc| svc.spec)
            .and_then(|spec| spec.cluster_ip)
            .filter(|ip| !ip.is_empty() && ip != "None");
        let Some(ip) = ip else {
            return Err(StepError::refused(
                action,
                format!("Service {name} is missing or has no ClusterIP"),
                format!("a ClusterIP Service {name} for server {}", s.id),
                format!(
                    "Nothing was changed. Run the services step: `zkmigrate step -f {} --until services`.",
                    ctx.plan_file.display()
                ),
            ));
        };
        expected.push((s.id, plan.service_host(s.id), ip));
    }
    let mut wrong = Vec::new();
    for host in &plan.servers {
        let session = ctx.session(host.id).await?;
        for (id, fqdn, ip) in &expected {
            let ask_conf = serving.contains(id);
            if let Some(problem) = probe_from_host(&session, *id, fqdn, ip, port, ask_conf).await? {
                wrong.push(format!("from the host of server {}: {problem}", host.id));
            }
        }
        let _ = session.close().await;
    }
    if !wrong.is_empty() {
        return Err(StepError::refused(
            action,
            wrong.join("; "),
            "every Service name resolving, on every host, to its ClusterIP, and `conf` through it reporting that server's id",
            format!(
                "Nothing was changed. Check the hosts' resolver (resolv.conf search and nameserver reaching the cluster DNS) and the route to the ClusterIPs, then {}.",
                next_resume(ctx)
            ),
        ));
    }
    let names: Vec<String> = expected
        .iter()
        .map(|(id, fqdn, ip)| {
            if serving.contains(id) {
                format!("{fqdn}={ip} (serverId={id})")
            } else {
                format!("{fqdn}={ip} (server {id} not serving now: name checked, `conf` not)")
            }
        })
        .collect();
    tracing::info!(
        hosts = plan.servers.len(),
        "every host resolves every Service"
    );
    Ok(format!(
        "from all {} hosts: {}",
        plan.servers.len(),
        names.join(", ")
    ))
}

/// From one host: `fqdn` resolves to exactly `ip`, and (with `ask_conf`)
/// `conf` through `ip:port` reports `id`. `None` when both hold, else what
/// was seen.
async fn probe_from_host(
    session: &HostSession,
    id: ServerId,
    fqdn: &str,
    ip: &str,
    port: u16,
    ask_conf: bool,
) -> Result<Option<String>, StepError> {
    let lookup = session
        .run(&format!(
            "timeout {PROBE_TIMEOUT_SECS} getent hosts {}",
            shell_quote(fqdn)
        ))
        .await?;
    let mut resolved: Vec<String> = lookup
        .stdout_text()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    resolved.sort();
    resolved.dedup();
    if resolved.as_slice() != [ip.to_string()] {
        let seen = if resolved.is_empty() {
            format!("does not resolve (getent exit {})", lookup.status)
        } else {
            format!("resolves to {}", resolved.join(", "))
        };
        return Ok(Some(format!("{fqdn} {seen}, not its ClusterIP {ip}")));
    }
    if !ask_conf {
        return Ok(None);
    }
    let conf = session
        .run(&format!(
            "timeout {PROBE_TIMEOUT_SECS} bash -c {} {} {}",
            shell_quote(CONF_THROUGH),
            shell_quote(ip),
            port
        ))
        .await?;
    let text = conf.stdout_text();
    match parse_conf(&text).ok().and_then(|c| c.server_id) {
        Some(got) if got == u64::from(id.get()) => Ok(None),
        Some(got) => Ok(Some(format!(
            "{ip}:{port} ({fqdn}) answers serverId={got}, not {id}"
        ))),
        None => Ok(Some(format!(
            "{ip}:{port} ({fqdn}) gave no `conf` reply (exit {}{})",
            conf.status,
            match conf.stderr_text().as_str() {
                "" => String::new(),
                e => format!(": {e}"),
            }
        ))),
    }
}

// ---- RewriteConfig ---------------------------------------------------------

/// The host's zoo.cfg and, in 3.5+ dynamic mode, the dynamic file, as now.
async fn read_config(ctx: &Ctx, session: &HostSession) -> Result<HostFacts, StepError> {
    let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
    let config = text(session.read_file(&ctx.plan.ensemble.config_path).await?);
    let dynamic_path = config
        .as_deref()
        .and_then(|c| ZooCfg::parse(c).ok())
        .and_then(|c| c.dynamic_config_file().map(str::to_string));
    let dynamic = match dynamic_path {
        Some(path) => text(session.read_file(&path).await?).map(|t| (path, t)),
        None => None,
    };
    Ok(HostFacts {
        config,
        dynamic,
        ..HostFacts::default()
    })
}

/// `(path, now, after the rewrite)` for each file, or a refusal.
async fn planned_files(
    ctx: &Ctx,
    action: &Action,
    session: &HostSession,
) -> Result<Vec<(String, String, String)>, StepError> {
    let facts = read_config(ctx, session).await?;
    build::peer_config_files(&ctx.plan, &facts).map_err(|why| {
        StepError::refused(
            action,
            why,
            format!(
                "a readable {} whose server lines zkmigrate can rewrite",
                ctx.plan.ensemble.config_path
            ),
            format!(
                "Nothing was changed. Fix the config on the host, then {}.",
                next_resume(ctx)
            ),
        )
    })
}

/// Whether `now` already is the rewrite: byte for byte, or by meaning (a
/// 3.5+ server in dynamic mode rewrites zoo.cfg itself at start).
fn already_rewritten(now: &str, new: &str) -> bool {
    if now == new {
        return true;
    }
    match (ZooCfg::parse(now), ZooCfg::parse(new)) {
        (Ok(a), Ok(b)) => semantic_eq(&a, &b).unwrap_or(false),
        _ => false,
    }
}

async fn check_rewrite(ctx: &Ctx, action: &Action, id: ServerId) -> Result<Observed, StepError> {
    let session = ctx.session(id).await?;
    let files = planned_files(ctx, action, &session).await?;
    let _ = session.close().await;
    if files
        .iter()
        .all(|(_, now, new)| already_rewritten(now, new))
    {
        let paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
        let verb = if paths.len() == 1 { "names" } else { "name" };
        return Ok(Observed::Done(format!(
            "{} already {verb} the Services, with quorumListenOnAllIPs=true",
            paths.join(" and ")
        )));
    }
    Ok(Observed::Needed)
}

async fn apply_rewrite(ctx: &Ctx, action: &Action, id: ServerId) -> Result<(), StepError> {
    let session = ctx.session(id).await?;
    let files = planned_files(ctx, action, &session).await?;
    for (path, now, new) in &files {
        if already_rewritten(now, new) {
            continue;
        }
        let backup = format!("{path}{BACKUP_SUFFIX}");
        session
            .run_checked(&format!(
                "sh -c {} sh {} {}",
                shell_quote(BACKUP_ONCE),
                shell_quote(path),
                shell_quote(&backup)
            ))
            .await?;
        // Mode, owner and group carry over (the write copies the original).
        session
            .write_file_atomic(path, new.as_bytes(), None)
            .await?;
        tracing::info!(path = %path, backup = %backup, "config rewritten");
    }
    let _ = session.close().await;
    Ok(())
}

async fn verify_rewrite(ctx: &Ctx, action: &Action, id: ServerId) -> Result<String, StepError> {
    let session = ctx.session(id).await?;
    let files = planned_files(ctx, action, &session).await?;
    let mut shown = Vec::new();
    for (path, now, new) in &files {
        if !already_rewritten(now, new) {
            return Err(StepError::refused(
                action,
                format!("{path} on the host of server {id} still differs from the rewrite"),
                "the file as zkmigrate wrote it",
                format!(
                    "Something else rewrote the file (configuration management?). Stop it from doing so, then {}.",
                    next_resume(ctx)
                ),
            ));
        }
        let backup = format!("{path}{BACKUP_SUFFIX}");
        let kept = session.file_exists(&backup).await?;
        shown.push(if kept {
            format!("{path} names the Services (original in {backup})")
        } else {
            format!("{path} names the Services")
        });
    }
    let _ = session.close().await;
    Ok(shown.join("; "))
}

async fn undo_rewrite(ctx: &Ctx, id: ServerId) -> Result<(), StepError> {
    let session = ctx.session(id).await?;
    let config_path = ctx.plan.ensemble.config_path.clone();
    let config_backup = format!("{config_path}{BACKUP_SUFFIX}");
    let mut restore = vec![config_path.clone()];
    // The dynamic file the original zoo.cfg names (a 3.5+ server may since
    // have moved on to a newer `zoo.cfg.dynamic.<version>`).
    if let Some(bytes) = session.read_file(&config_backup).await?
        && let Ok(cfg) = ZooCfg::parse(&String::from_utf8_lossy(&bytes))
        && let Some(dynamic) = cfg.dynamic_config_file()
    {
        restore.push(dynamic.to_string());
    }
    for path in restore {
        let backup = format!("{path}{BACKUP_SUFFIX}");
        if let Some(original) = session.read_file(&backup).await? {
            session.write_file_atomic(&path, &original, None).await?;
            tracing::info!(path = %path, "config restored from its backup");
        }
    }
    let _ = session.close().await;
    Ok(())
}

// ---- RestartServer ---------------------------------------------------------

/// The server's `conf`, asked at its current endpoint; `None` when it does
/// not answer.
async fn running_conf(ctx: &Ctx, id: ServerId) -> Result<Option<Conf>, StepError> {
    let targets = ctx.targets().await?;
    let Some(target) = targets.iter().find(|t| t.id == u64::from(id.get())) else {
        return Ok(None);
    };
    let reply = four_letter_word(&target.client, Word::Conf, Duration::from_secs(5)).await;
    Ok(reply.ok().and_then(|text| parse_conf(&text).ok()))
}

/// Ids of the plan's servers whose membership line does not name the
/// Service (empty: all do); `None` when the membership is not printed (3.4).
fn members_not_on_services(ctx: &Ctx, conf: &Conf) -> Option<Vec<String>> {
    if conf.servers.is_empty() {
        return None;
    }
    Some(
        ctx.plan
            .servers
            .iter()
            .filter_map(|s| {
                let want = ctx.plan.service_host(s.id);
                match conf.server(u64::from(s.id.get())) {
                    Some(line) if line.host.eq_ignore_ascii_case(&want) => None,
                    Some(line) => Some(format!("server.{}={}", s.id, line.raw)),
                    None => Some(format!("server.{} missing", s.id)),
                }
            })
            .collect(),
    )
}

async fn check_restart(ctx: &Ctx, id: ServerId) -> Result<Observed, StepError> {
    let Some(conf) = running_conf(ctx, id).await? else {
        return Ok(Observed::Needed);
    };
    match members_not_on_services(ctx, &conf) {
        Some(old) if old.is_empty() => Ok(Observed::Done(format!(
            "server {id} already runs with the Service names (conf membership)"
        ))),
        Some(_) => Ok(Observed::Needed),
        // 3.4: no membership block; the running config cannot be told.
        None => Ok(Observed::Needed),
    }
}

async fn restart(ctx: &Ctx, id: ServerId) -> Result<(), StepError> {
    let session = ctx.session(id).await?;
    session
        .run_checked(&ctx.plan.ensemble.service.restart)
        .await?;
    let _ = session.close().await;
    Ok(())
}

async fn apply_restart(ctx: &Ctx, action: &Action, id: ServerId) -> Result<(), StepError> {
    // A restart on the old config would cost an election for nothing.
    let session = ctx.session(id).await?;
    let files = planned_files(ctx, action, &session).await?;
    let _ = session.close().await;
    if let Some((path, _, _)) = files
        .iter()
        .find(|(_, now, new)| !already_rewritten(now, new))
    {
        return Err(StepError::refused(
            action,
            format!("{path} on the host of server {id} does not name the Services"),
            "the rewritten config before the restart",
            format!(
                "Nothing was changed. The rewrite (peers/rewrite/{id}) runs first: {}.",
                next_resume(ctx)
            ),
        ));
    }
    tracing::info!(command = %ctx.plan.ensemble.service.restart, "restarting");
    restart(ctx, id).await
}

async fn verify_restart(ctx: &Ctx, action: &Action, id: ServerId) -> Result<String, StepError> {
    let passed = ctx.await_synced(id).await?;
    let conf = running_conf(ctx, id).await?;
    let on_services = match conf.as_ref().and_then(|c| members_not_on_services(ctx, c)) {
        Some(old) if !old.is_empty() => {
            return Err(StepError::refused(
                action,
                format!("server {id} restarted but runs with {}", old.join(", ")),
                "its membership naming the Services",
                format!(
                    "Check the config on the host and what the service command starts, then {}.",
                    next_resume(ctx)
                ),
            ));
        }
        Some(_) => "its membership names the Services",
        None => "membership not printed (3.4)",
    };
    let msg = format!(
        "server {id} restarted, serving and synced (leader {}); {on_services}",
        passed.leader
    );
    tracing::info!(leader = passed.leader, "server restarted and synced");
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_is_rewritten_when_bytes_or_meaning_match() {
        let new = "tickTime=500\nserver.1=zk-1.ns.svc.cluster.local:2888:3888\nquorumListenOnAllIPs=true\n";
        assert!(already_rewritten(new, new));
        // A 3.5+ server's own rewrite: comments gone, keys reordered.
        let by_server = "quorumListenOnAllIPs=true\ntickTime=500\nserver.1=zk-1.ns.svc.cluster.local:2888:3888:participant\n";
        assert!(already_rewritten(by_server, new));
        let old = "tickTime=500\nserver.1=10.0.0.11:2888:3888\n";
        assert!(!already_rewritten(old, new));
    }

    #[test]
    fn the_backup_script_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("zoo.cfg");
        let bak = dir.path().join("zoo.cfg.zkmigrate-backup");
        std::fs::write(&src, "original\n").unwrap();
        let run = || {
            let ok = std::process::Command::new("sh")
                .args(["-c", BACKUP_ONCE, "sh"])
                .arg(&src)
                .arg(&bak)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        };
        run();
        std::fs::write(&src, "rewritten\n").unwrap();
        run();
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), "original\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
