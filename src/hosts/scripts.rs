//! What runs on a host, as data: the POSIX `sh` scripts behind the file
//! operations, and the parser of `/proc/net/tcp`. Pure, so the exact text
//! sent to a host is tested without one.
//!
//! Scripts take their operands as positional parameters (`sh -c SCRIPT sh
//! ARG...`), never spliced into the text, so a path with spaces or quotes
//! is one argument on every transport. Only POSIX `sh` and coreutils (or
//! busybox) are assumed on a host: no `ss`, no `python`.

/// The exit status the read and exists scripts use for "no such file",
/// distinct from anything `sh`, `cat` or a lost connection return.
pub const ABSENT: i32 = 44;

/// `$1`: print the file, or exit [`ABSENT`] when there is none.
pub const READ_FILE: &str = r#"if [ -e "$1" ] || [ -L "$1" ]; then exec cat -- "$1"; fi
exit 44"#;

/// `$1`: exit 0 when a file (or symlink) is there, [`ABSENT`] when not.
pub const FILE_EXISTS: &str = r#"if [ -e "$1" ] || [ -L "$1" ]; then exit 0; fi
exit 44"#;

/// `$1` to `$2`, then the directory synced so the rename survives a crash.
pub const RENAME: &str = r#"set -e
mv -f -- "$1" "$2"
dir=$(dirname -- "$2")
sync -- "$dir" 2>/dev/null || sync"#;

/// Replaces `$1` (through a symlink, if it is one) with stdin: a temporary
/// file in the same directory that starts as a `cp -p` of the original (so
/// owner, group and mode carry over), has its contents overwritten, is
/// chmodded to `$2` when given, synced, and renamed over the original; then
/// the directory is synced. The temporary file is removed on any failure.
pub const WRITE_FILE_ATOMIC: &str = r#"set -e
target=$(readlink -f -- "$1" 2>/dev/null) || target=$1
[ -n "$target" ] || target=$1
dir=$(dirname -- "$target")
tmp="$dir/.$(basename -- "$target").zkmigrate.$$"
trap 'rm -f -- "$tmp"' EXIT
if [ -e "$target" ]; then cp -p -- "$target" "$tmp"; fi
cat > "$tmp"
if [ -n "$2" ]; then chmod -- "$2" "$tmp"; fi
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$target"
trap - EXIT
sync -- "$dir" 2>/dev/null || sync"#;

/// The kernel's TCP socket tables of the host's network namespace. IPv4
/// must be readable (an empty answer would read as "nothing listens",
/// which fencing must never conclude by mistake); IPv6 may be disabled.
pub const TCP_TABLES: &str = "cat /proc/net/tcp && { cat /proc/net/tcp6 2>/dev/null || true; }";

/// The TCP state `LISTEN` in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Which of `ports` have a listening socket in `tables` (the text of
/// `/proc/net/tcp` and `/proc/net/tcp6`), in the order of `ports`.
pub fn listening_ports(tables: &str, ports: &[u16]) -> Result<Vec<u16>, String> {
    let mut listening = Vec::new();
    for line in tables.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Header lines ("sl local_address ...") and blank lines.
        if fields.len() < 4 || !fields[0].ends_with(':') {
            continue;
        }
        let (local, state) = (fields[1], fields[3]);
        let port_hex = local
            .rsplit_once(':')
            .map(|(_, p)| p)
            .ok_or_else(|| format!("unexpected local address {local:?} in /proc/net/tcp"))?;
        let port = u16::from_str_radix(port_hex, 16)
            .map_err(|_| format!("unexpected port {port_hex:?} in /proc/net/tcp"))?;
        if state == LISTEN {
            listening.push(port);
        }
    }
    Ok(ports
        .iter()
        .copied()
        .filter(|p| listening.contains(p))
        .collect())
}

/// Single-quotes `word` for a POSIX shell, for messages and runbooks.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    match plain {
        true => word.to_string(),
        false => format!("'{}'", word.replace('\'', r"'\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower's table: 2181 and 3888 listen, 2888 is an outgoing
    /// connection to the leader, and 8080 listens on IPv6.
    const FOLLOWER: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B4D0A0A:0F30 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0B4D0A0A:0885 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0B4D0A0A:A1B2 0D4D0A0A:0B48 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_ports_are_those_in_state_listen_in_either_table() {
        assert_eq!(
            listening_ports(FOLLOWER, &[2181, 2888, 3888, 8080]).unwrap(),
            [2181, 3888, 8080]
        );
        assert_eq!(listening_ports(FOLLOWER, &[2888]).unwrap(), [] as [u16; 0]);
        assert_eq!(listening_ports("", &[2181]).unwrap(), [] as [u16; 0]);
    }

    #[test]
    fn a_garbled_table_is_an_error_not_an_empty_answer() {
        let garbled = "   0: 0B4D0A0A 00000000:0000 0A\n";
        assert!(listening_ports(garbled, &[2181]).is_err());
        let bad_port = "   0: 0B4D0A0A:XYZ 00000000:0000 0A\n";
        assert!(listening_ports(bad_port, &[2181]).is_err());
    }

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(
            shell_quote("/etc/zookeeper/conf/zoo.cfg"),
            "/etc/zookeeper/conf/zoo.cfg"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    /// The scripts under a real local `sh`, against a temporary directory.
    fn sh(script: &str, args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args(["-c", script, "sh"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap(), out.stdout)
    }

    #[test]
    fn the_file_scripts_work_under_a_local_posix_sh() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zoo cfg's");
        let path = file.to_str().unwrap();
        assert_eq!(sh(READ_FILE, &[path], b"").0, ABSENT);
        assert_eq!(sh(FILE_EXISTS, &[path], b"").0, ABSENT);

        assert_eq!(sh(WRITE_FILE_ATOMIC, &[path, "0640"], b"a=1\n").0, 0);
        assert_eq!(sh(READ_FILE, &[path], b""), (0, b"a=1\n".to_vec()));
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&file), 0o640);

        // Without a mode, the existing file's mode is kept.
        assert_eq!(sh(WRITE_FILE_ATOMIC, &[path, ""], b"a=2\n").0, 0);
        assert_eq!(std::fs::read(&file).unwrap(), b"a=2\n");
        assert_eq!(mode(&file), 0o640);

        // Through a symlink: the target is replaced, the link stays.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(
            sh(WRITE_FILE_ATOMIC, &[link.to_str().unwrap(), ""], b"a=3\n").0,
            0
        );
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"a=3\n");

        let aside = dir.path().join("aside");
        assert_eq!(sh(RENAME, &[path, aside.to_str().unwrap()], b"").0, 0);
        assert_eq!(sh(FILE_EXISTS, &[path], b"").0, ABSENT);
        assert_eq!(sh(FILE_EXISTS, &[aside.to_str().unwrap()], b"").0, 0);
        // Nothing but the files themselves is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
