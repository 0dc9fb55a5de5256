//! The exact commands of the runbook, as text (pure): ssh to a host with
//! the plan's user, port, key, options and jump hosts (or the plan's exec
//! prefix), kubectl with the plan's context and namespace, four-letter
//! words sent as zkmigrate sends them (no newline, read to EOF, DESIGN 7),
//! and the helper file every gate and wait of the runbook uses.
//!
//! Every operand is quoted with [`shell_quote`] (the quoting zkmigrate's
//! own messages use), except a leading `~/` of the key file, which is left
//! to the operator's shell to expand as the plan means it.

use crate::hosts::shell_quote;
use crate::manifests::labels;
use crate::plan::{Access, ServerId, TargetKind, ValidatedPlan};

/// Renders the commands of one plan.
#[derive(Debug, Clone)]
pub struct Shell<'a> {
    pub plan: &'a ValidatedPlan,
    /// The plan file as the operator named it (for `zkmigrate` commands).
    pub plan_file: String,
}

/// The field manager zkmigrate applies with (server-side apply).
const FIELD_MANAGER: &str = "zkmigrate";

impl<'a> Shell<'a> {
    pub fn new(plan: &'a ValidatedPlan, plan_file: impl Into<String>) -> Shell<'a> {
        Shell {
            plan,
            plan_file: plan_file.into(),
        }
    }

    /// The file the setup block writes and every helper-using block sources.
    pub fn helpers_file(&self) -> String {
        format!("./zkmigrate-runbook-{}.sh", self.plan.name)
    }

    /// `. ./zkmigrate-runbook-NAME.sh`: the first line of a block that
    /// uses the helpers.
    pub fn source_helpers(&self) -> String {
        format!(". {}", self.helpers_file())
    }

    /// `command` run on server `id`'s host, as zkmigrate runs it.
    pub fn on_host(&self, id: ServerId, command: &str) -> String {
        self.on_host_word(id, &shell_quote(command))
    }

    /// Like [`Shell::on_host`] with the command already one shell word
    /// (quoted by the caller, e.g. to let the local shell fill a variable).
    pub fn on_host_word(&self, id: ServerId, word: &str) -> String {
        let Some(server) = self.plan.server(id) else {
            return format!("# server {id} is not in the plan");
        };
        match &self.plan.ensemble.access {
            Access::Ssh(ssh) => {
                let mut words = vec!["ssh".to_string()];
                if ssh.port != 22 {
                    words.push(format!("-p {}", ssh.port));
                }
                if let Some(key) = &ssh.identity_file {
                    words.push(format!("-i {}", home_path(key)));
                }
                for option in &ssh.options {
                    words.push(format!("-o {}", shell_quote(option)));
                }
                if !ssh.jump_hosts.is_empty() {
                    words.push(format!("-J {}", shell_quote(&ssh.jump_hosts.join(","))));
                }
                let target = match &ssh.user {
                    Some(user) => format!("{user}@{}", server.host),
                    None => server.host.clone(),
                };
                words.push(shell_quote(&target));
                words.push(word.to_string());
                words.join(" ")
            }
            Access::Exec(exec) => {
                let mut words: Vec<String> =
                    exec.render(server).iter().map(|w| shell_quote(w)).collect();
                words.extend(["sh".into(), "-c".into(), word.to_string()]);
                words.join(" ")
            }
        }
    }

    /// `script` run by `sh -s` on server `id`'s host, from a quoted
    /// here-document, with `args` as its positional parameters (each
    /// quoted here).
    pub fn on_host_script(&self, id: ServerId, script: &str, args: &[&str]) -> String {
        self.on_host_script_then(id, script, args, "")
    }

    /// Like [`Shell::on_host_script`], with `then` (e.g. `|| ok=1`) after
    /// the command, on its first line (a here-document ends the command).
    pub fn on_host_script_then(
        &self,
        id: ServerId,
        script: &str,
        args: &[&str],
        then: &str,
    ) -> String {
        let mut words = vec!["sh -s --".to_string()];
        words.extend(args.iter().map(|a| shell_quote(a)));
        self.on_host_script_word(id, script, &shell_quote(&words.join(" ")), then)
    }

    /// Like [`Shell::on_host_script_then`] with the remote command already
    /// one shell word (e.g. double-quoted, for a variable of the local
    /// shell).
    pub fn on_host_script_word(
        &self,
        id: ServerId,
        script: &str,
        word: &str,
        then: &str,
    ) -> String {
        let then = match then {
            "" => String::new(),
            t => format!(" {t}"),
        };
        format!(
            "{} <<'SCRIPT'{then}\n{}\nSCRIPT",
            self.on_host_word(id, word),
            script.trim_end_matches('\n')
        )
    }

    /// `kubectl [--context C] --namespace NS ARGS`.
    pub fn kubectl(&self, args: &str) -> String {
        let k = &self.plan.kubernetes;
        match &k.context {
            Some(context) => format!(
                "kubectl --context {} --namespace {} {args}",
                shell_quote(context),
                shell_quote(&k.namespace)
            ),
            None => format!("kubectl --namespace {} {args}", shell_quote(&k.namespace)),
        }
    }

    /// Server-side apply of `yaml`, as zkmigrate applies (field manager
    /// `zkmigrate`), from a quoted here-document.
    pub fn apply_yaml(&self, yaml: &str) -> String {
        format!(
            "{} <<'EOF'\n{}EOF",
            self.kubectl(&format!(
                "apply --server-side --field-manager={FIELD_MANAGER} -f -"
            )),
            with_newline(yaml)
        )
    }

    /// Like [`Shell::apply_yaml`], with `@NAME@` placeholders filled in by
    /// `sed` from shell variables at run time (values known only then).
    pub fn apply_yaml_filled(&self, yaml: &str, fills: &[(&str, &str)]) -> String {
        let script: Vec<String> = fills
            .iter()
            .map(|(name, value)| format!("-e \"s/@{name}@/{value}/g\""))
            .collect();
        format!(
            "sed {} <<'EOF' | {}\n{}EOF",
            script.join(" "),
            self.kubectl(&format!(
                "apply --server-side --field-manager={FIELD_MANAGER} -f -"
            )),
            with_newline(yaml)
        )
    }

    /// A four-letter word to an address, as zkmigrate sends it.
    pub fn word_at(&self, address: &str, word: &str) -> String {
        format!(
            "printf {word} | nc -w 2 {} {}",
            shell_quote(address),
            self.plan.ensemble.client_port
        )
    }

    /// A four-letter word to server `id` at its host address.
    pub fn host_word(&self, id: ServerId, word: &str) -> String {
        let address = self
            .plan
            .server(id)
            .map(|s| s.address.clone())
            .unwrap_or_default();
        self.word_at(&address, word)
    }

    /// `zkmigrate SUBCOMMAND -f PLAN ARGS`.
    pub fn zkmigrate(&self, subcommand: &str, args: &str) -> String {
        let mut out = format!("zkmigrate {subcommand} -f {}", shell_quote(&self.plan_file));
        if !args.is_empty() {
            out.push(' ');
            out.push_str(args);
        }
        out
    }

    /// Seconds, for `zk_await` (at least 1).
    pub fn secs(d: std::time::Duration) -> u64 {
        d.as_secs().max(1)
    }

    /// `pollInterval` as `sleep` takes it (seconds, with a fraction).
    fn poll(&self) -> String {
        let ms = self.plan.policy.poll_interval.as_millis().max(50);
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }

    /// The text of the helper file: the functions the gates and waits of
    /// the runbook call, with the plan's values written in.
    pub fn helpers(&self) -> String {
        let plan = self.plan;
        let ids: Vec<String> = plan.servers.iter().map(|s| s.id.to_string()).collect();
        let mut services = String::new();
        let mut hosts = String::new();
        for s in &plan.servers {
            services.push_str(&format!(
                "    {}) printf %s {} ;;\n",
                s.id,
                shell_quote(&plan.service_name(s.id))
            ));
            hosts.push_str(&format!(
                "    {}) printf %s {} ;;\n",
                s.id,
                shell_quote(&s.address)
            ));
        }
        let kubectl = self.kubectl("\"$@\"");
        let port = plan.ensemble.client_port;
        let voters = plan.servers.len();
        let poll = self.poll();
        let slice_label = labels::SLICE_SERVICE_NAME;
        let ordinals = match plan.kubernetes.target.kind {
            TargetKind::StatefulSet => format!(
                r#"
# zk_ordinal ID: the StatefulSet ordinal pinned for server ID (replace/ordinals).
zk_ordinal() {{
  zk_kubectl get configmap {cm} -o go-template='{{{{range $k, $v := .data}}}}{{{{if eq $v "'"$1"'"}}}}{{{{$k}}}}{{{{end}}}}{{{{end}}}}'
}}
"#,
                cm = shell_quote(&labels::ordinals_config_map_name(plan))
            ),
            TargetKind::PerServer => String::new(),
        };
        format!(
            r#"# Helpers of the runbook of plan {name}, written by `zkmigrate runbook`.
# Source it (`. {file}`) in the shell that runs the runbook's blocks.
# Each function prints what it saw; the checks return 0 when they hold.

zk_kubectl() {{ {kubectl}; }}

# zk_service ID: the name of server ID's Service.
zk_service() {{
  case "$1" in
{services}    *) return 1 ;;
  esac
}}

# zk_host_address ID: the address server ID has on its host (the plan's).
zk_host_address() {{
  case "$1" in
{hosts}    *) return 1 ;;
  esac
}}

# zk_addr ID: where server ID answers now, as zkmigrate asks it: the
# address in its Service's EndpointSlices (its host until the replace step
# switches the Service, then its Pod), or its host before the services step.
zk_addr() {{
  _a=$(zk_kubectl get endpointslices -l "{slice_label}=$(zk_service "$1")" \
    -o jsonpath='{{.items[*].endpoints[*].addresses[*]}}' 2>/dev/null) || _a=
  if [ -z "$_a" ] && ! zk_kubectl get service "$(zk_service "$1")" >/dev/null 2>&1; then
    _a=$(zk_host_address "$1")
  fi
  printf '%s\n' "${{_a%% *}}"
}}

# zk_published ID POD: POD has an IP and server ID's Service's slices hold
# exactly it (the Pod is published: it needs that to join).
zk_published() {{
  _ip=$(zk_kubectl get pod "$2" -o jsonpath='{{.status.podIP}}' 2>/dev/null) || _ip=
  _a=$(zk_kubectl get endpointslices -l "{slice_label}=$(zk_service "$1")" \
    -o jsonpath='{{.items[*].endpoints[*].addresses[*]}}' 2>/dev/null) || _a=
  echo "Pod $2 at ${{_ip:-no IP}}; Service endpoints: ${{_a:-none}}"
  [ -n "$_ip" ] && [ "$_a" = "$_ip" ]
}}

# zk_word ID WORD: a four-letter word to server ID, without a newline, the
# reply read to EOF (DESIGN 7).
zk_word() {{
  _a=$(zk_addr "$1")
  [ -n "$_a" ] || return 1
  printf %s "$2" | nc -w 2 "$_a" {port}
}}

# zk_srvr_field ID FIELD: one line of server ID's srvr (Mode, Zxid).
zk_srvr_field() {{ zk_word "$1" srvr 2>/dev/null | sed -n "s/^$2: //p"; }}

# zk_mntr_key ID KEY: one key of server ID's mntr.
zk_mntr_key() {{ zk_word "$1" mntr 2>/dev/null | awk -v k="$2" '$1 == k {{ print $2 }}'; }}

# zk_leader: the id of the server that says Mode: leader (exactly one).
zk_leader() {{
  _l= _n=0
  for _id in {ids}; do
    if [ "$(zk_srvr_field "$_id" Mode)" = leader ]; then _l=$_id; _n=$((_n + 1)); fi
  done
  [ "$_n" = 1 ] && printf '%s\n' "$_l"
}}

# zk_lag LEADER SERVER: how far the zxid SERVER is behind LEADER (hex
# zxids), as zkmigrate counts it: the counters' difference in one epoch,
# the leader's counter when SERVER is from an older epoch, 0 when SERVER is
# not behind; `unknown` without both.
zk_lag() {{
  if [ -z "$1" ] || [ -z "$2" ]; then echo unknown; return; fi
  _le=$(($1 >> 32)) _lc=$(($1 & 0xffffffff)) _se=$(($2 >> 32)) _sc=$(($2 & 0xffffffff))
  if [ "$_se" -gt "$_le" ]; then echo 0
  elif [ "$_se" -lt "$_le" ]; then echo "$_lc"
  elif [ "$_sc" -ge "$_lc" ]; then echo 0
  else echo $((_lc - _sc)); fi
}}

# zk_quorum_ok: the quorum-first gate of DESIGN 2, as zkmigrate judges it:
# every voter serving (Mode leader or follower), exactly one leader, the
# leader's mntr zk_synced_followers = {followers} and zk_pending_syncs = 0,
# no voter's Zxid behind the leader's (the leader is asked first, then each
# voter: a voter that has what the leader had is not behind, under load too).
zk_quorum_ok() {{
  _ok=0 _leader= _laddr= _addrs=
  for _id in {ids}; do _addrs="$_addrs $_id=$(zk_addr "$_id")"; done
  for _t in $_addrs; do
    _id=${{_t%%=*}} _a=${{_t#*=}}
    _mode=$(printf srvr | nc -w 2 "$_a" {port} 2>/dev/null | sed -n 's/^Mode: //p') || _mode=
    echo "server $_id at ${{_a:-no address}}: Mode: ${{_mode:-none}}"
    case "$_mode" in
      leader) [ -z "$_leader" ] || _ok=1; _leader=$_id; _laddr=$_a ;;
      follower) ;;
      *) _ok=1 ;;
    esac
  done
  [ -n "$_leader" ] || {{ echo "no leader"; return 1; }}
  _mntr=$(printf mntr | nc -w 2 "$_laddr" {port} 2>/dev/null) || _mntr=
  _synced=$(printf '%s\n' "$_mntr" | awk '$1 == "zk_synced_followers" {{ print $2 }}')
  _pending=$(printf '%s\n' "$_mntr" | awk '$1 == "zk_pending_syncs" {{ print $2 }}')
  echo "leader $_leader: zk_synced_followers=${{_synced:-none}} zk_pending_syncs=${{_pending:-none}}"
  [ "$_synced" = {followers} ] || _ok=1
  [ "${{_pending:-0}}" = 0 ] || _ok=1
  _lz=$(printf srvr | nc -w 2 "$_laddr" {port} 2>/dev/null | sed -n 's/^Zxid: //p') || _lz=
  for _t in $_addrs; do
    _id=${{_t%%=*}} _a=${{_t#*=}}
    [ "$_id" != "$_leader" ] || continue
    _z=$(printf srvr | nc -w 2 "$_a" {port} 2>/dev/null | sed -n 's/^Zxid: //p') || _z=
    _lag=$(zk_lag "$_lz" "$_z")
    echo "server $_id: Zxid ${{_z:-none}}, lag $_lag behind the leader's ${{_lz:-none}}"
    [ "$_lag" = 0 ] || _ok=1
  done
  return $_ok
}}

# zk_synced ID: server ID serves (follower or leader) and the gate holds.
zk_synced() {{
  case "$(zk_srvr_field "$1" Mode)" in
    leader|follower) zk_quorum_ok ;;
    *) echo "server $1 does not serve"; return 1 ;;
  esac
}}

# zk_await SECONDS CHECK...: run CHECK every pollInterval ({poll} s) until it
# holds; give up (exit 1) after SECONDS, as zkmigrate halts.
zk_await() {{
  _end=$(($(date +%s) + $1)); shift
  until "$@" >/tmp/zk_await.$$ 2>&1; do
    if [ "$(date +%s)" -ge "$_end" ]; then
      cat /tmp/zk_await.$$; rm -f /tmp/zk_await.$$
      echo "gave up: $* did not hold" >&2; return 1
    fi
    sleep {poll}
  done
  cat /tmp/zk_await.$$; rm -f /tmp/zk_await.$$
}}
{ordinals}"#,
            name = plan.name,
            file = self.helpers_file(),
            ids = ids.join(" "),
            followers = voters.saturating_sub(1),
        )
    }
}

/// One object as YAML, for a here-document (no leading `---`).
pub fn object_yaml<T: serde::Serialize>(object: T) -> String {
    crate::manifests::render_documents::<T>(&[], &[(&[][..], object)])
        .map(|y| y.trim_start_matches("---\n").to_string())
        .unwrap_or_else(|e| format!("# failed to render: {e}\n"))
}

/// `~/rest` keeps `~/` unquoted (the shell expands it); anything else is
/// quoted whole.
pub fn home_path(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => format!("~/{}", shell_quote(rest)),
        None => shell_quote(path),
    }
}

fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing;

    #[test]
    fn a_home_relative_key_is_left_for_the_shell_to_expand() {
        assert_eq!(home_path("~/.ssh/id_ed25519"), "~/.ssh/id_ed25519");
        assert_eq!(home_path("~/my keys/k"), "~/'my keys/k'");
        assert_eq!(home_path("/etc/k'ey"), r"'/etc/k'\''ey'");
    }

    #[test]
    fn remote_commands_are_one_quoted_word() {
        let plan = testing::three_servers("StatefulSet");
        let sh = Shell::new(&plan, "plan.yaml");
        let id = ServerId::try_from(2).unwrap();
        // Exec access: the prefix, then `sh -c` with the command as one word.
        assert_eq!(
            sh.on_host(id, "echo 'a b' && true"),
            r"ip netns exec h2 sh -c 'echo '\''a b'\'' && true'"
        );
        // The quoted word comes back as the command itself.
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", shell_quote("it's $HOME"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $HOME");
    }

    #[test]
    fn ssh_carries_the_plans_user_port_key_options_and_jumps() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/five-node-kafka.yaml"),
        )
        .unwrap();
        let plan = crate::plan::parse(&text, "five-node-kafka.yaml").unwrap();
        let sh = Shell::new(&plan, "plans/five-node-kafka.yaml");
        let id = ServerId::try_from(4).unwrap();
        assert_eq!(
            sh.on_host(id, "sudo systemctl restart confluent-zookeeper"),
            "ssh -i ~/.ssh/kafka-ops -o StrictHostKeyChecking=yes -o ServerAliveInterval=15 \
             -J ops@bastion.dc2.example.net zkadmin@zk-b1.dc2.example.net \
             'sudo systemctl restart confluent-zookeeper'"
        );
        // No context in the plan: the kubeconfig's current one.
        assert_eq!(
            sh.kubectl("get pods"),
            "kubectl --namespace kafka-zookeeper get pods"
        );
    }

    #[test]
    fn placeholders_are_filled_at_run_time_and_the_yaml_is_not_expanded() {
        let plan = testing::three_servers("StatefulSet");
        let sh = Shell::new(&plan, "plan.yaml");
        let cmd = sh.apply_yaml_filled("a: $x\nb: @N@\n", &[("N", "$n")]);
        assert!(
            cmd.starts_with("sed -e \"s/@N@/$n/g\" <<'EOF' | kubectl"),
            "{cmd}"
        );
        assert!(cmd.ends_with("a: $x\nb: @N@\nEOF"), "{cmd}");
    }
}
