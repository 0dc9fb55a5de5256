//! Step `peers` by hand: the same checks, the same config edit and the
//! same gated rolling restart, followers first and the leader last.
//!
//! The edit: the engine computes the new zoo.cfg with
//! [`crate::engine::build::peer_config_files`] from the host's file (which
//! the runbook does not read); by hand, [`REWRITE`] makes the same change
//! with sed and awk (`server.N` host part to the Service name, the rest of
//! the line kept; `quorumListenOnAllIPs=true` set in place or added after
//! the last server line; every other line untouched), after the engine's
//! own once-only backup ([`super::BACKUP_ONCE`]) to the same backup path,
//! so `zkmigrate rollback` restores a hand-made edit as its own.

use crate::engine::action::Action;
use crate::engine::build::MigrationPlan;
use crate::hosts::shell_quote;
use crate::plan::ServerId;
use crate::runbook::{Manual, Shell};

/// `$1` the config, `$2` the Service name pattern (sed, with `\2` for the
/// id): rewrites the server lines, sets `quorumListenOnAllIPs=true`,
/// replaces the file atomically, keeping its mode and owner.
pub const REWRITE: &str = r#"set -e
cfg=$1 tmp="$1.zkmigrate.$$"
trap 'rm -f -- "$tmp"' EXIT
cp -p -- "$cfg" "$tmp"
sed -E "s/^(server\.([0-9]+)[[:space:]]*=[[:space:]]*)[^:;]+:/\1$2:/" "$cfg" |
  awk '{ line[NR] = $0 }
    /^[[:space:]]*quorumListenOnAllIPs[[:space:]]*=/ { q = NR }
    /^server\.[0-9]+[[:space:]]*=/ { last = NR }
    END {
      for (i = 1; i <= NR; i++) {
        print (i == q ? "quorumListenOnAllIPs=true" : line[i])
        if (!q && i == last) print "quorumListenOnAllIPs=true"
      }
      if (!q && !last) print "quorumListenOnAllIPs=true"
    }' >"$tmp"
mv -f -- "$tmp" "$cfg"
trap - EXIT"#;

pub fn intro(sh: &Shell, computed: &MigrationPlan) -> String {
    let order: Vec<String> = computed.order.iter().map(ToString::to_string).collect();
    let who = match computed.leader {
        Some(l) => format!(
            "When this runbook was written server {l} led, so the order is {}. Leadership can \
             move: before",
            order.join(", ")
        ),
        None => format!(
            "The runbook was written without looking at the ensemble, so the servers are listed \
             by id ({}). Before",
            order.join(", ")
        ),
    };
    format!(
        "Every server, the leader included, comes to name its peers by their Service names \
         before any host is replaced (DESIGN 5.4). One rolling restart, one server at a time, \
         **followers first, the leader last**: the leader's restart costs one election, and it \
         must come after every follower already names the Services.\n\n\
         {who} each server's `restart`, find the leader (`. {}; zk_leader`) and, if it is \
         the server you are about to take while a follower still has the old config, take that \
         follower first (its `rewrite` and `restart`) and come back. zkmigrate does the same: \
         it observes the leader again before each action.\n",
        sh.helpers_file()
    )
}

pub fn manual(sh: &Shell, action: &Action) -> Manual {
    match action {
        Action::VerifyResolution => resolution(sh),
        Action::RewriteConfig { server } => rewrite(sh, *server),
        Action::RestartServer { server } => restart(sh, *server),
        _ => Manual::default(),
    }
}

fn resolution(sh: &Shell) -> Manual {
    let plan = sh.plan;
    let port = plan.ensemble.client_port;
    let mut lines = vec!["ok=0".to_string()];
    for s in &plan.servers {
        lines.push(format!(
            "ip_{}=$({})",
            s.id,
            sh.kubectl(&format!(
                "get service {} -o jsonpath='{{.spec.clusterIP}}'",
                shell_quote(&plan.service_name(s.id))
            ))
        ));
    }
    for host in &plan.servers {
        // `ID=NAME=CLUSTERIP` per Service; the ClusterIPs are filled in by
        // the local shell, in the double-quoted remote command.
        let targets: Vec<String> = plan
            .servers
            .iter()
            .map(|s| format!("{}={}=$ip_{}", s.id, plan.service_host(s.id), s.id))
            .collect();
        lines.push(sh.on_host_script_word(
            host.id,
            &resolve_script(port),
            &format!("\"sh -s -- {}\"", targets.join(" ")),
            "|| ok=1",
        ));
    }
    lines.push("[ \"$ok\" = 0 ]".into());
    Manual {
        about: "A server that cannot resolve its peers at start forms no quorum: before the \
                first restart, from every host, every Service name resolves (the host's own \
                resolver, as the JVM will) to its ClusterIP and `conf` through that ClusterIP \
                (bash's `/dev/tcp`, on the host) names the right server."
            .into(),
        run: Some(lines.join("\n")),
        expect: "no output and exit 0.".into(),
        undo: "nothing to undo (read-only).".into(),
        ..Manual::default()
    }
}

/// Run on a host with `ID=NAME=CLUSTERIP` arguments: each name resolves
/// (the host's resolver) to exactly its ClusterIP, and `conf` through it
/// names the server; prints what does not hold, exits 1 then.
fn resolve_script(port: u16) -> String {
    format!(
        r#"ok=0
for t in "$@"; do
  id=${{t%%=*}}; rest=${{t#*=}}; name=${{rest%%=*}}; ip=${{rest#*=}}
  got=$(timeout 10 getent hosts "$name" | awk '{{ print $1 }}' | sort -u | tr '\n' ' ')
  if [ "$got" != "$ip " ]; then echo "$(hostname): $name resolves to ${{got:-nothing}}, not its ClusterIP $ip"; ok=1; continue; fi
  timeout 10 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf conf >&3 && cat <&3' "$ip" {port} | grep -qx "serverId=$id" ||
    {{ echo "$(hostname): conf through $ip does not name server $id"; ok=1; }}
done
exit $ok"#
    )
}

fn rewrite(sh: &Shell, id: ServerId) -> Manual {
    let plan = sh.plan;
    let cfg = &plan.ensemble.config_path;
    let backup = format!("{cfg}{}", super::BACKUP_SUFFIX);
    // A sed replacement: `\2` is the id the expression captured.
    let pattern = service_host_pattern(sh, "\\2");
    let mut checks = vec!["grep -qx 'quorumListenOnAllIPs=true' \"$1\"".to_string()];
    for s in &plan.servers {
        checks.push(format!(
            "grep -Eq '^server\\.{}[[:space:]]*=[[:space:]]*{}:' \"$1\"",
            s.id,
            plan.service_host(s.id).replace('.', "\\.")
        ));
    }
    Manual {
        about: format!(
            "On the host: back up `{cfg}` once to `{backup}` (never overwritten: it holds the \
             pre-migration original), then rewrite its server lines. If the file sets \
             `dynamicConfigFile` (3.5+), the server lines live in that file: apply the same \
             edit to it (zkmigrate does, and backs it up the same way). `zkmigrate plan -f \
             PLAN` shows the exact diff zkmigrate writes, from the host's file."
        ),
        run: Some(format!(
            "{}\n{}",
            sh.on_host_script(id, super::BACKUP_ONCE, &[cfg, &backup]),
            sh.on_host_script(id, REWRITE, &[cfg, &pattern])
        )),
        expect: format!(
            "no output. The `server.N` lines name `{}` (ports and any `:participant;clientPort` \
             suffix kept) and `quorumListenOnAllIPs=true` is set; no other line changed. The \
             running server does not read it until its restart.",
            service_host_pattern(sh, "N")
        ),
        verify: Some(sh.on_host_script(id, &checks.join(" &&\n  "), &[cfg])),
        undo: format!(
            "put the backup back (the server reads it at its next restart: `peers/restart/{id}`'s undo)."
        ),
        undo_run: Some(sh.on_host(
            id,
            &format!("cp -p {} {}", shell_quote(&backup), shell_quote(cfg)),
        )),
    }
}

fn restart(sh: &Shell, id: ServerId) -> Manual {
    let plan = sh.plan;
    let sync = Shell::secs(plan.policy.sync_timeout);
    let deadline = Shell::secs(plan.policy.progress_deadline);
    let restart = &plan.ensemble.service.restart;
    let wait = format!(
        "{}\nzk_await {sync} zk_synced {id}\nzk_word {id} conf | grep -E '^server\\.[0-9]+='",
        sh.source_helpers()
    );
    Manual {
        about: format!(
            "Restart only once `peers/rewrite/{id}` verified: a restart on the old config costs \
             an election for nothing."
        ),
        run: Some(sh.on_host(id, restart)),
        expect: format!(
            "the restart command returns; within `syncTimeout` ({}) server {id} serves again \
             (`Mode: follower`, or `leader`) and the gate's checks hold again (the leader counts \
             it synced). On 3.5+, its `conf` lists every `server.N` at its Service name.",
            humantime::format_duration(plan.policy.sync_timeout)
        ),
        verify: Some(wait),
        undo: format!(
            "after `peers/rewrite/{id}`'s undo: gate, restart on the restored config, wait \
             synced, as above."
        ),
        undo_run: Some(format!(
            "{}\nzk_await {deadline} zk_quorum_ok\n{}\nzk_await {sync} zk_synced {id}",
            sh.source_helpers(),
            sh.on_host(id, restart)
        )),
    }
}

/// The Service DNS name with `id` standing for the server's id.
fn service_host_pattern(sh: &Shell, id: &str) -> String {
    let k = &sh.plan.kubernetes;
    format!(
        "{}.{}.svc.{}",
        k.service_name.as_str().replace("{id}", id),
        k.namespace,
        k.cluster_domain
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::build::peer_config_files;
    use crate::engine::world::HostFacts;
    use crate::plan::testing;

    /// The hand edit, run as the runbook runs it (`sh -s CONFIG PATTERN`
    /// on a copy of the file); the file's text after it.
    fn by_hand(text: &str, pattern: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, text).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", REWRITE, "sh"])
            .arg(&cfg)
            .arg(pattern)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&cfg).unwrap()
    }

    /// The runbook's edit writes the bytes the engine writes.
    #[test]
    fn the_hand_edit_equals_the_engines() {
        let plan = testing::three_servers("StatefulSet");
        let sh = Shell::new(&plan, "plan.yaml");
        let pattern = service_host_pattern(&sh, "\\2");
        let configs = [
            // 3.4: comments and keys around the server lines, kept.
            "# ensemble orders\ntickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zookeeper\nclientPort=2181\n\
             server.1=10.0.0.11:2888:3888\nserver.2=10.0.0.12:2888:3888\nserver.3=10.0.0.13:2888:3888\n\
             autopurge.snapRetainCount=3\n",
            // 3.5+: role and client address suffixes.
            "tickTime=2000\ndataDir=/var/lib/zookeeper\n\
             server.1=10.0.0.11:2888:3888:participant;0.0.0.0:2181\nserver.2=10.0.0.12:2888:3888:participant;0.0.0.0:2181\n\
             server.3=10.0.0.13:2888:3888:participant;0.0.0.0:2181\n",
            // The flag already there, set the other way.
            "tickTime=2000\nquorumListenOnAllIPs=false\ndataDir=/d\nclientPort=2181\n\
             server.1=10.0.0.11:2888:3888\nserver.2=10.0.0.12:2888:3888\nserver.3=10.0.0.13:2888:3888\n",
        ];
        for text in configs {
            let facts = HostFacts {
                config: Some(text.to_string()),
                ..HostFacts::default()
            };
            let files = peer_config_files(&plan, &facts).unwrap();
            let (_, _, engine) = &files[0];
            let hand = by_hand(text, &pattern);
            assert_eq!(&hand, engine, "from:\n{text}");
            // Twice is once.
            assert_eq!(by_hand(&hand, &pattern), hand);
        }
    }
}
