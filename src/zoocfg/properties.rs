//! The `java.util.Properties` line grammar, which is how ZooKeeper reads
//! `zoo.cfg` and its dynamic config files (`QuorumPeerConfig.parse` calls
//! `Properties.load`).
//!
//! This is the bottom of [`super`]: it cuts a text into logical lines, each
//! keeping its exact raw bytes and line ending (so rendering is lossless), and
//! reads each entry's key and value the way `Properties` does:
//!
//! - a natural line ends at `\n`, `\r\n` or a lone `\r`;
//! - a line that is blank or starts (after spaces, tabs, form feeds) with `#`
//!   or `!` is ignored, and a comment is never continued;
//! - a line ending in an odd number of backslashes continues on the next
//!   natural line, whose leading whitespace is skipped;
//! - the key ends at the first unescaped `=`, `:` or whitespace; whitespace
//!   and one `=`/`:` after it are skipped; the rest, trailing whitespace
//!   included, is the value (ZooKeeper trims it later);
//! - `\uXXXX`, `\t`, `\n`, `\r`, `\f` are escapes, `\x` stands for `x`.
//!
//! One deliberate difference: ZooKeeper reads bytes as ISO-8859-1, this module
//! reads a Rust `&str` (UTF-8). Configs are ASCII in practice, and values this
//! module writes escape anything outside printable ASCII as `\uXXXX`, which
//! both readings agree on.

use super::ZooCfgError;

/// How a line ends, kept per line so that rendering is byte-exact and new
/// lines can use the file's own convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
    /// A lone `\r` (which `Properties` accepts as a line end).
    Cr,
    /// No terminator: the last line of a file without a final newline.
    None,
}

impl LineEnding {
    /// The terminator's bytes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lf => "\n",
            Self::CrLf => "\r\n",
            Self::Cr => "\r",
            Self::None => "",
        }
    }
}

/// One logical line: its raw text (without its final terminator, but with
/// the terminators of any continued natural lines inside) and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) raw: String,
    pub(crate) ending: LineEnding,
    pub(crate) kind: LineKind,
    /// 1-based number of the natural line this logical line starts on.
    pub(crate) number: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineKind {
    Blank,
    Comment,
    Entry(Entry),
}

/// A `key=value` entry as `Properties` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The unescaped key.
    pub(crate) key: String,
    /// The unescaped value, trailing whitespace included.
    pub(crate) value: String,
    /// Byte offset in `raw` where the value's text starts (`raw.len()` if
    /// the value is empty).
    pub(crate) value_start: usize,
    /// Whether anything (separator or whitespace) sits between key and value.
    pub(crate) has_separator: bool,
    /// The file ended while this line asked for a continuation (a trailing
    /// backslash): appending after it needs care.
    pub(crate) open: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\x0c')
}

/// Trims like Java's `String.trim`: every char up to U+0020 on both ends.
pub(crate) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Finds the natural line starting at `start`: (end of content, ending,
/// start of the next line).
fn natural_line(text: &str, start: usize) -> (usize, LineEnding, usize) {
    let bytes = text.as_bytes();
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => return (i, LineEnding::Lf, i + 1),
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => return (i, LineEnding::CrLf, i + 2),
            b'\r' => return (i, LineEnding::Cr, i + 1),
            _ => i += 1,
        }
    }
    (bytes.len(), LineEnding::None, bytes.len())
}

/// Cuts `text` into logical lines. Fails only on a malformed `\uXXXX`
/// escape, which `Properties.load` rejects too.
pub(crate) fn read_lines(text: &str) -> Result<Vec<Line>, ZooCfgError> {
    let mut lines = Vec::new();
    let mut pos = 0;
    let mut number = 1;
    while pos < text.len() {
        let start = pos;
        let first_number = number;
        let (end, ending, next) = natural_line(text, pos);
        if ending != LineEnding::None {
            number += 1;
        }
        let content = &text[pos..end];
        let lead = content.bytes().take_while(|b| is_ws(*b)).count();
        let kind = match content.as_bytes().get(lead) {
            None => Some(LineKind::Blank),
            Some(b'#' | b'!') => Some(LineKind::Comment),
            Some(_) => None,
        };
        if let Some(kind) = kind {
            lines.push(Line {
                raw: content.to_owned(),
                ending,
                kind,
                number: first_number,
            });
            pos = next;
            continue;
        }

        // An entry: join continued natural lines, remembering where each
        // char sits in the raw text so the value can be replaced in place.
        let mut chars: Vec<(usize, char)> = Vec::new();
        let (mut seg_start, mut seg_end, mut seg_ending, mut seg_next) =
            (pos + lead, end, ending, next);
        let mut open = false;
        let (raw_end, line_ending) = loop {
            let before = chars.len();
            chars.extend(
                text[seg_start..seg_end]
                    .char_indices()
                    .map(|(i, c)| (seg_start + i, c)),
            );
            let backslashes = chars[before..]
                .iter()
                .rev()
                .take_while(|(_, c)| *c == '\\')
                .count();
            if backslashes % 2 == 0 {
                break (seg_end, seg_ending);
            }
            chars.pop();
            if seg_ending == LineEnding::None || seg_next >= text.len() {
                // JDK 17 keeps this line even when empty, except after a
                // final `\r\n` (it reads the `\n` before it sees the end).
                open = !(chars.is_empty() && seg_ending == LineEnding::CrLf);
                break (seg_next, LineEnding::None);
            }
            let (e, end_kind, n) = natural_line(text, seg_next);
            if end_kind != LineEnding::None {
                number += 1;
            }
            let lead = text[seg_next..e].bytes().take_while(|b| is_ws(*b)).count();
            (seg_start, seg_end, seg_ending, seg_next) = (seg_next + lead, e, end_kind, n);
            if chars.is_empty() && matches!(text.as_bytes().get(seg_start), Some(b'#' | b'!')) {
                // JDK 9+ reads a comment wherever the buffer is still empty,
                // even on a continued line (JDK 8 did not); the lines go.
                break (seg_end, seg_ending);
            }
        };
        let kind = if chars.is_empty() && !open {
            // Only continuation backslashes, whitespace and maybe a comment:
            // `Properties` drops such a line, as it drops a blank one.
            LineKind::Blank
        } else {
            let entry = split_entry(&chars, start, raw_end, open)
                .map_err(|()| ZooCfgError::MalformedEscape { line: first_number })?;
            LineKind::Entry(entry)
        };
        lines.push(Line {
            raw: text[start..raw_end].to_owned(),
            ending: line_ending,
            kind,
            number: first_number,
        });
        pos = seg_next;
    }
    Ok(lines)
}

/// Splits a joined logical line into key and value, as `Properties.load0`.
fn split_entry(
    chars: &[(usize, char)],
    start: usize,
    raw_end: usize,
    open: bool,
) -> Result<Entry, ()> {
    let limit = chars.len();
    let mut key_len = 0;
    let mut value_start = limit;
    let mut has_sep = false;
    let mut has_separator = false;
    let mut escaped = false;
    while key_len < limit {
        let c = chars[key_len].1;
        if (c == '=' || c == ':') && !escaped {
            value_start = key_len + 1;
            has_sep = true;
            has_separator = true;
            break;
        } else if matches!(c, ' ' | '\t' | '\x0c') && !escaped {
            value_start = key_len + 1;
            has_separator = true;
            break;
        }
        escaped = c == '\\' && !escaped;
        key_len += 1;
    }
    while value_start < limit {
        let c = chars[value_start].1;
        if !matches!(c, ' ' | '\t' | '\x0c') {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    let value_offset = chars.get(value_start).map_or(raw_end, |(i, _)| *i) - start;
    Ok(Entry {
        key: unescape(&chars[..key_len])?,
        value: unescape(&chars[value_start..])?,
        value_start: value_offset,
        has_separator,
        open,
    })
}

/// `Properties.loadConvert`, on UTF-16 units so that `\uXXXX` surrogate
/// pairs combine as in Java.
fn unescape(chars: &[(usize, char)]) -> Result<String, ()> {
    let mut out: Vec<u16> = Vec::with_capacity(chars.len());
    let mut iter = chars.iter().map(|(_, c)| *c);
    let mut buf = [0u16; 2];
    while let Some(c) = iter.next() {
        let c = if c == '\\' {
            match iter.next() {
                Some('u') => {
                    let mut unit: u32 = 0;
                    for _ in 0..4 {
                        let digit = iter.next().and_then(|d| d.to_digit(16)).ok_or(())?;
                        unit = unit * 16 + digit;
                    }
                    out.push(unit as u16);
                    continue;
                }
                Some('t') => '\t',
                Some('r') => '\r',
                Some('n') => '\n',
                Some('f') => '\x0c',
                Some(other) => other,
                None => break,
            }
        } else {
            c
        };
        out.extend_from_slice(c.encode_utf16(&mut buf));
    }
    Ok(String::from_utf16_lossy(&out))
}

/// Escapes a key for a new line: everything `Properties` would otherwise
/// read as a separator, comment or escape.
pub(crate) fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, c) in key.chars().enumerate() {
        match c {
            '=' | ':' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            _ => push_escaped(&mut out, c),
        }
    }
    out
}

/// Escapes a value for a new or replaced value: backslashes, control chars,
/// a leading space, and non-ASCII (ZooKeeper reads ISO-8859-1).
pub(crate) fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        if c == ' ' && i == 0 {
            out.push_str("\\ ");
        } else {
            push_escaped(&mut out, c);
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\x0c' => out.push_str("\\f"),
        ' '..='~' => out.push(c),
        _ => {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04X}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> (String, String) {
        let lines = read_lines(text).unwrap();
        let entries: Vec<_> = lines
            .iter()
            .filter_map(|l| match &l.kind {
                LineKind::Entry(e) => Some((e.key.clone(), e.value.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(entries.len(), 1, "{text:?} -> {lines:?}");
        entries[0].clone()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    // The expected pairs below were checked against the JDK's
    // `Properties.load` (and ZooKeeper 3.8.0's QuorumPeerConfig).
    #[test]
    fn reads_entries_like_java_properties() {
        assert_eq!(entry("a = b  \n"), kv("a", "b  "));
        assert_eq!(entry("server.1:h:1:2"), kv("server.1", "h:1:2"));
        assert_eq!(entry("k\\\n   v=x\\\n  y\n"), kv("kv", "xy"));
        assert_eq!(entry("q\\:r=s\\u0041"), kv("q:r", "sA"));
        assert_eq!(entry("last=1\\"), kv("last", "1"));
        assert_eq!(entry("  key   value"), kv("key", "value"));
        assert_eq!(entry("key  =  : v"), kv("key", ": v"));
        assert_eq!(entry("key"), kv("key", ""));
        assert_eq!(entry("=v"), kv("", "v"));
        assert_eq!(entry("a=\\\\"), kv("a", "\\"));
        assert_eq!(entry("a=b\\\r\n#c"), kv("a", "b#c"));
        assert_eq!(entry("\\\n  \n!c\nk=v"), kv("k", "v"));
        assert_eq!(entry("\\\n"), kv("", ""));
        assert_eq!(entry("k=v\n\\\r\n"), kv("k", "v"));
        assert_eq!(entry("\\\r\n#a=b\nk=v"), kv("k", "v"));
    }

    #[test]
    fn comments_blanks_and_line_endings() {
        let lines = read_lines("#c\\\nz=1\r\n  ! c2\r\r\n\t\n").unwrap();
        let kinds: Vec<_> = lines
            .iter()
            .map(|l| (l.raw.as_str(), l.ending, l.number))
            .collect();
        assert_eq!(
            kinds,
            [
                ("#c\\", LineEnding::Lf, 1),
                ("z=1", LineEnding::CrLf, 2),
                ("  ! c2", LineEnding::Cr, 3),
                ("", LineEnding::CrLf, 4),
                ("\t", LineEnding::Lf, 5),
            ]
        );
        assert!(matches!(lines[0].kind, LineKind::Comment));
        assert!(matches!(lines[3].kind, LineKind::Blank));
    }

    #[test]
    fn continuation_keeps_raw_text_and_value_offset() {
        let lines = read_lines("k = a\\\n  b  \nnext=1").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].raw, "k = a\\\n  b  ");
        assert_eq!(lines[1].number, 3);
        let LineKind::Entry(e) = &lines[0].kind else {
            panic!()
        };
        assert_eq!((e.value.as_str(), e.value_start), ("ab  ", 4));
    }

    #[test]
    fn open_continuation_at_end_of_file() {
        let lines = read_lines("a=b\\\n").unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (lines[0].raw.as_str(), lines[0].ending),
            ("a=b\\\n", LineEnding::None)
        );
        let LineKind::Entry(e) = &lines[0].kind else {
            panic!()
        };
        assert!(e.open);
        assert_eq!(e.value, "b");
    }

    #[test]
    fn malformed_unicode_escape_is_an_error() {
        assert_eq!(
            read_lines("\n\na=\\u12g4"),
            Err(ZooCfgError::MalformedEscape { line: 3 })
        );
        assert_eq!(
            read_lines("a=\\u12"),
            Err(ZooCfgError::MalformedEscape { line: 1 })
        );
    }

    #[test]
    fn escapes_round_trip() {
        let key = "#a b=c:d\\é";
        let value = " lead\ttab\\ é😀";
        let text = format!("{}={}", escape_key(key), escape_value(value));
        assert_eq!(
            text,
            "\\#a\\ b\\=c\\:d\\\\\\u00E9=\\ lead\\ttab\\\\ \\u00E9\\uD83D\\uDE00"
        );
        assert_eq!(entry(&text), kv(key, value));
    }

    #[test]
    fn java_trim_strips_control_chars() {
        assert_eq!(java_trim("\x01 a b\t\x0c "), "a b");
    }
}
