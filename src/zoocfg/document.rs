//! [`ZooCfg`]: a config file as a list of lines, each keeping its raw text
//! and line ending, with the typed view ZooKeeper takes of it.
//!
//! Reading follows ZooKeeper: keys and values are trimmed like Java's
//! `String.trim`, and the last occurrence of a key wins (a `Properties` is a
//! hash table). Edits work on raw text and touch only the lines they must;
//! after each edit the text is read again, so the typed view never drifts
//! from what the rendered file says.

use std::collections::BTreeMap;
use std::fmt;

use super::properties::{self, Line, LineEnding, LineKind, escape_key, escape_value, java_trim};
use super::server_line::{ServerEntry, ServerSpec};
use super::{ZooCfgError, keys};

/// A parsed `zoo.cfg` or dynamic config file. Renders back byte-for-byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooCfg {
    pub(super) lines: Vec<Line>,
}

/// One `key=value` entry as ZooKeeper reads it (trimmed), with its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property<'a> {
    /// 1-based line the entry starts on.
    pub line: usize,
    /// The key, unescaped and trimmed.
    pub key: &'a str,
    /// The value, unescaped and trimmed.
    pub value: &'a str,
}

impl ZooCfg {
    /// Reads a config. Fails only where `Properties.load` fails (a malformed
    /// `\uXXXX` escape); `server.N` values are checked by [`Self::servers`].
    pub fn parse(text: &str) -> Result<Self, ZooCfgError> {
        Ok(Self {
            lines: properties::read_lines(text)?,
        })
    }

    /// The file's text: exactly the parsed input, plus any edits.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&line.raw);
            out.push_str(line.ending.as_str());
        }
        out
    }

    /// The file's own line ending (that of its first terminated line), used
    /// for new lines; `\n` for a file with none.
    pub fn line_ending(&self) -> LineEnding {
        self.lines
            .iter()
            .map(|l| l.ending)
            .find(|e| *e != LineEnding::None)
            .unwrap_or(LineEnding::Lf)
    }

    /// Every entry in file order, duplicates included.
    pub fn properties(&self) -> impl Iterator<Item = Property<'_>> {
        self.lines.iter().filter_map(|line| match &line.kind {
            LineKind::Entry(e) => Some(Property {
                line: line.number,
                key: java_trim(&e.key),
                value: java_trim(&e.value),
            }),
            _ => None,
        })
    }

    /// The effective (last) value of `key`, trimmed as ZooKeeper trims it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.property(key).map(|p| p.value)
    }

    fn property(&self, key: &str) -> Option<Property<'_>> {
        self.properties().filter(|p| p.key == key).last()
    }

    /// The effective `server.N` entries, by id (a later line for the same id
    /// wins, as in ZooKeeper). Fails on the first line ZooKeeper would refuse.
    pub fn servers(&self) -> Result<Vec<ServerEntry>, ZooCfgError> {
        let mut servers = BTreeMap::new();
        for property in self.properties() {
            if let Some(entry) = server_entry(property)? {
                servers.insert(entry.id, entry);
            }
        }
        Ok(servers.into_values().collect())
    }

    /// `dynamicConfigFile`: set in 3.5+ dynamic mode, where the server lines
    /// live in that file.
    pub fn dynamic_config_file(&self) -> Option<&str> {
        self.get(keys::DYNAMIC_CONFIG_FILE)
    }

    /// `clientPort`, if set.
    pub fn client_port(&self) -> Result<Option<u16>, ZooCfgError> {
        self.parsed(keys::CLIENT_PORT, "a port (0-65535)", |v| v.parse().ok())
    }

    /// `clientPortAddress`, if set (host-specific: dropped for Pods).
    pub fn client_port_address(&self) -> Option<&str> {
        self.get(keys::CLIENT_PORT_ADDRESS)
    }

    /// `dataDir`, if set.
    pub fn data_dir(&self) -> Option<&str> {
        self.get(keys::DATA_DIR)
    }

    /// `dataLogDir`, if set (ZooKeeper then uses `dataDir`).
    pub fn data_log_dir(&self) -> Option<&str> {
        self.get(keys::DATA_LOG_DIR)
    }

    /// `quorumListenOnAllIPs`, read like Java's `Boolean.parseBoolean`:
    /// `true` in any case is true, anything else (or no key) is false.
    pub fn quorum_listen_on_all_ips(&self) -> bool {
        self.get(keys::QUORUM_LISTEN_ON_ALL_IPS)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `reconfigEnabled`, read like [`Self::quorum_listen_on_all_ips`]
    /// (false when absent, the 3.5.3+ default).
    pub fn reconfig_enabled(&self) -> bool {
        self.get(keys::RECONFIG_ENABLED)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `version` (hex), as in `conf` output and `/zookeeper/config`.
    pub fn version(&self) -> Result<Option<u64>, ZooCfgError> {
        self.parsed(keys::VERSION, "a hex version", |v| {
            u64::from_str_radix(v, 16).ok()
        })
    }

    fn parsed<T>(
        &self,
        key: &str,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ZooCfgError> {
        let Some(p) = self.property(key) else {
            return Ok(None);
        };
        parse(p.value)
            .map(Some)
            .ok_or_else(|| ZooCfgError::InvalidValue {
                line: p.line,
                key: key.to_owned(),
                value: p.value.to_owned(),
                expected,
            })
    }

    /// Sets `key` to `value`. If the key exists, the value of its effective
    /// (last) line is replaced in place, keeping the key, separator and
    /// spacing as written (and the line untouched if it already says
    /// `value`); otherwise `key=value` is appended at the end of the file.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.last_index(key) {
            Some(_) if self.get(key) == Some(value) => {}
            Some(index) => self.replace_value(index, value, true),
            None => self.insert_after(self.lines.len().checked_sub(1), key, value),
        }
    }

    /// Removes every line setting `key` (all of them: removing only the last
    /// would let an earlier one take effect). Returns how many were removed.
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.lines.len();
        self.lines
            .retain(|line| !matches!(&line.kind, LineKind::Entry(e) if java_trim(&e.key) == key));
        let removed = before - self.lines.len();
        if removed > 0 {
            self.reread();
        }
        removed
    }

    pub(super) fn last_index(&self, key: &str) -> Option<usize> {
        self.lines
            .iter()
            .rposition(|line| matches!(&line.kind, LineKind::Entry(e) if java_trim(&e.key) == key))
    }

    /// Replaces the value of the entry at `index`, keeping the raw text
    /// before it and, if `keep_trailing`, the whitespace after it.
    pub(super) fn replace_value(&mut self, index: usize, value: &str, keep_trailing: bool) {
        let line = &mut self.lines[index];
        let LineKind::Entry(entry) = &line.kind else {
            return;
        };
        let (before, old) = line.raw.split_at(entry.value_start);
        let mut raw = before.to_owned();
        if entry.open && raw.ends_with('\\') {
            // The continuation backslash at the end of the file: the new
            // value goes where the next line would have been.
            raw.pop();
        }
        if !entry.has_separator {
            raw.push('=');
        }
        raw.push_str(&escape_value(value));
        if keep_trailing && !old.contains('\\') {
            raw.push_str(&old[old.trim_end_matches([' ', '\t', '\x0c']).len()..]);
        }
        line.raw = raw;
        self.reread();
    }

    /// Inserts `key=value` after the line at `index` (or as the only line),
    /// with the file's line ending. After a last line without a newline, that
    /// line gets one and the new line goes without, as the file did.
    pub(super) fn insert_after(&mut self, index: Option<usize>, key: &str, value: &str) {
        let ending = self.line_ending();
        let raw = format!("{}={}", escape_key(key), escape_value(value));
        let Some(index) = index else {
            self.lines.insert(
                0,
                Line {
                    raw,
                    ending,
                    kind: LineKind::Blank,
                    number: 1,
                },
            );
            self.reread();
            return;
        };
        let previous = &mut self.lines[index];
        let mut new_ending = ending;
        if previous.ending == LineEnding::None {
            if matches!(&previous.kind, LineKind::Entry(e) if e.open)
                && previous.raw.ends_with('\\')
            {
                // A trailing backslash would swallow the new line: give the
                // continuation an empty line to end on.
                previous.raw.push_str(ending.as_str());
            }
            // After a continuation's lone `\r`, a `\n` would join it into one
            // `\r\n` and the new line would be swallowed again.
            previous.ending = if previous.raw.ends_with('\r') {
                LineEnding::Cr
            } else {
                ending
            };
            new_ending = LineEnding::None;
        }
        self.lines.insert(
            index + 1,
            Line {
                raw,
                ending: new_ending,
                kind: LineKind::Blank,
                number: 0,
            },
        );
        self.reread();
    }

    /// Reads the rendered text again so kinds, offsets and line numbers
    /// match it. Edits write only escaped text and never join lines, so this
    /// cannot fail; if it did, the lines (and so the rendering) stay as they
    /// are.
    fn reread(&mut self) {
        if let Ok(lines) = properties::read_lines(&self.render()) {
            self.lines = lines;
        }
    }
}

/// The server entry a property stands for, if its key is `server.N`.
pub(super) fn server_entry(p: Property<'_>) -> Result<Option<ServerEntry>, ZooCfgError> {
    let Some(id) = p.key.strip_prefix(keys::SERVER_PREFIX) else {
        return Ok(None);
    };
    let id: u32 = id.parse().map_err(|_| ZooCfgError::InvalidServerId {
        line: p.line,
        key: p.key.to_owned(),
    })?;
    let spec = ServerSpec::parse(p.value).map_err(|e| match e {
        ZooCfgError::InvalidServerSpec { value, reason } => ZooCfgError::InvalidServerLine {
            line: p.line,
            id,
            value,
            reason,
        },
        other => other,
    })?;
    Ok(Some(ServerEntry {
        id,
        spec,
        line: p.line,
    }))
}

impl fmt::Display for ZooCfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::str::FromStr for ZooCfg {
    type Err = ZooCfgError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoocfg::{ClientAddr, Role};

    const STATIC: &str = "\
# The number of milliseconds of each tick
tickTime=2000
initLimit = 10\t
syncLimit:5
dataDir   /var/lib/zookeeper
clientPort=2181

server.1=zk1.example.com:2888:3888
server.2 = 10.0.0.12:2888:3888:participant;2181
server.3=[fd00::13]:2888:3888:observer;[fd00::13]:2181
";

    fn cfg(text: &str) -> ZooCfg {
        ZooCfg::parse(text).unwrap()
    }

    #[test]
    fn renders_what_it_parsed() {
        for text in [
            STATIC,
            "",
            "\n",
            "a=1",
            "a=1\r\nb=2\r\n",
            "a\\\n b\n!x\r\r",
            "k=v\\",
        ] {
            assert_eq!(cfg(text).render(), text);
        }
    }

    #[test]
    fn typed_view() {
        let c = cfg(STATIC);
        assert_eq!(c.get("tickTime"), Some("2000"));
        assert_eq!(c.get("initLimit"), Some("10"));
        assert_eq!(c.get("syncLimit"), Some("5"));
        assert_eq!(c.data_dir(), Some("/var/lib/zookeeper"));
        assert_eq!(c.data_log_dir(), None);
        assert_eq!(c.client_port(), Ok(Some(2181)));
        assert_eq!(c.dynamic_config_file(), None);
        assert!(!c.quorum_listen_on_all_ips());
        assert!(!c.reconfig_enabled());
        let servers = c.servers().unwrap();
        let summary: Vec<_> = servers
            .iter()
            .map(|s| (s.id, s.line, s.spec.to_string()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, 8, "zk1.example.com:2888:3888".to_owned()),
                (2, 9, "10.0.0.12:2888:3888:participant;2181".to_owned()),
                (
                    3,
                    10,
                    "[fd00::13]:2888:3888:observer;[fd00::13]:2181".to_owned()
                ),
            ]
        );
        assert_eq!(servers[2].spec.role, Some(Role::Observer));
        assert_eq!(
            servers[2].spec.client,
            Some(ClientAddr {
                host: Some("fd00::13".to_owned()),
                port: 2181
            })
        );
    }

    #[test]
    fn last_occurrence_wins() {
        let c = cfg(
            "quorumListenOnAllIPs=false\nserver.1=a:1:2\nquorumListenOnAllIPs = TRUE \nserver.1=b:1:2\n",
        );
        assert!(c.quorum_listen_on_all_ips());
        let servers = c.servers().unwrap();
        assert_eq!(
            (
                servers.len(),
                servers[0].spec.host.as_str(),
                servers[0].line
            ),
            (1, "b", 4)
        );
    }

    #[test]
    fn errors_carry_line_numbers() {
        let c = cfg("a=1\n\nserver.x=h:1:2\n");
        assert_eq!(
            c.servers().unwrap_err().to_string(),
            "failed to parse `server.x` on line 3: the server id is not a number"
        );
        let c = cfg("# c\nserver.4 = h:2888\n");
        assert_eq!(
            c.servers().unwrap_err().to_string(),
            "failed to parse server.4 on line 2 (`h:2888`): \
             expected host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]"
        );
        let c = cfg("clientPort=21a81\n");
        assert_eq!(
            c.client_port().unwrap_err().to_string(),
            "failed to parse clientPort on line 1: `21a81` is not a port (0-65535)"
        );
        assert_eq!(
            ZooCfg::parse("a=1\nb=\\uzzzz\n").unwrap_err().to_string(),
            "failed to parse line 2: malformed \\uXXXX escape"
        );
    }

    #[test]
    fn set_replaces_in_place_keeping_spacing() {
        let mut c = cfg("a = 1  \r\nb=2\r\n");
        c.set("a", "10");
        assert_eq!(c.render(), "a = 10  \r\nb=2\r\n");
        c.set("b", "2");
        assert_eq!(c.render(), "a = 10  \r\nb=2\r\n");
        let mut c = cfg("flag\nx=1\n");
        c.set("flag", "on");
        assert_eq!(c.render(), "flag=on\nx=1\n");
        let mut c = cfg("a=1\na=2\n");
        c.set("a", "3");
        assert_eq!(c.render(), "a=1\na=3\n");
    }

    #[test]
    fn set_appends_with_the_files_line_ending() {
        let mut c = cfg("# c\r\na=1\r\n");
        c.set("b", "2");
        assert_eq!(c.render(), "# c\r\na=1\r\nb=2\r\n");
        let mut c = cfg("a=1\r\nb=1");
        c.set("c", "x y");
        assert_eq!(c.render(), "a=1\r\nb=1\r\nc=x y");
        let mut c = cfg("");
        c.set("a", " \\");
        assert_eq!(c.render(), "a=\\ \\\\\n");
        assert_eq!(c.get("a"), Some("\\"));
    }

    #[test]
    fn set_after_an_open_continuation() {
        let mut c = cfg("a=b\\");
        c.set("k", "v");
        assert_eq!(c.render(), "a=b\\\n\nk=v");
        assert_eq!((c.get("a"), c.get("k")), (Some("b"), Some("v")));
        let mut c = cfg("a=b\\\r");
        c.set("k", "v");
        assert_eq!(c.render(), "a=b\\\r\rk=v");
        let mut c = cfg("a=\\");
        c.set("a", "true");
        assert_eq!(c.render(), "a=true");
    }

    #[test]
    fn remove_drops_every_occurrence() {
        let mut c = cfg("clientPortAddress=10.0.0.1\nx=1\nclientPortAddress = 10.0.0.2\n");
        assert_eq!(c.remove("clientPortAddress"), 2);
        assert_eq!(c.render(), "x=1\n");
        assert_eq!(c.remove("clientPortAddress"), 0);
    }
}
