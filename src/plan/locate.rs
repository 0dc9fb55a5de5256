//! Turns a position in the plan file into a field path
//! (`ensemble.servers[1]`), for the errors serde reports by position only.
//!
//! serde-saphyr's deserialization errors (unknown key, missing key, wrong
//! type) carry a line and column but not the path of the field, and the
//! plan's errors all name one. Rather than thread a path tracker through
//! serde, this replays the YAML's events with the same parser serde-saphyr
//! uses (`granit_parser`, re-exported by it) and keeps a stack of keys and
//! sequence indices until it reaches the node at that position. It handles
//! block and flow style alike; when the text cannot be parsed or nothing
//! starts at the position, there is simply no path.
//!
//! A position on a mapping key names the mapping that holds the key: an
//! unknown key `bogus` in the second server reads
//! `ensemble.servers[1]: unknown field `bogus``.

use serde_saphyr::granit_parser::{Event, Parser};

/// One open collection while replaying the events.
enum Frame {
    Mapping {
        path: String,
        /// The next node is a key (else the value of `key`).
        expect_key: bool,
        key: String,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
}

/// The field path of the node that starts at `line:column` (both 1-based,
/// as serde-saphyr reports them). `Some("")` is the document's root.
pub fn path_at(text: &str, line: u64, column: u64) -> Option<String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    while let Some(Ok((event, span))) = parser.next_event() {
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Alias(..)
        );
        if !is_node {
            if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
                stack.pop();
            }
            continue;
        }
        let (path, is_key) = node_path(&mut stack, &event);
        // granit columns are 0-based, serde-saphyr's 1-based.
        let here = span.start.line() as u64 == line && span.start.col() as u64 + 1 == column;
        if here {
            return Some(path);
        }
        // A collection used as a mapping key has no path of its own; its
        // children inherit the mapping's, which is the best there is.
        let child_path = if is_key { parent_path(&stack) } else { path };
        match event {
            Event::MappingStart(..) => stack.push(Frame::Mapping {
                path: child_path,
                expect_key: true,
                key: String::new(),
            }),
            Event::SequenceStart(..) => stack.push(Frame::Sequence {
                path: child_path,
                next_index: 0,
            }),
            _ => {}
        }
    }
    None
}

/// The path of the node that `event` starts, and whether it is a mapping
/// key; advances the enclosing frame past it.
fn node_path(stack: &mut [Frame], event: &Event<'_>) -> (String, bool) {
    match stack.last_mut() {
        None => (String::new(), false),
        Some(Frame::Sequence { path, next_index }) => {
            let item = format!("{path}[{next_index}]");
            *next_index += 1;
            (item, false)
        }
        Some(Frame::Mapping {
            path,
            expect_key,
            key,
        }) => {
            if *expect_key {
                *expect_key = false;
                *key = match event {
                    Event::Scalar(value, ..) => value.to_string(),
                    _ => "?".to_string(),
                };
                (path.clone(), true)
            } else {
                *expect_key = true;
                let child = match path.is_empty() {
                    true => key.clone(),
                    false => format!("{path}.{key}"),
                };
                (child, false)
            }
        }
    }
}

fn parent_path(stack: &[Frame]) -> String {
    match stack.last() {
        Some(Frame::Mapping { path, .. } | Frame::Sequence { path, .. }) => path.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: x
ensemble:
  servers:
    - id: 1
      host: a
    - { id: 2, host: b, bogus: 3 }
  clientPort: 2181
";

    #[test]
    fn a_value_is_named_by_its_key_path() {
        assert_eq!(path_at(TEXT, 1, 7).as_deref(), Some("name"));
        assert_eq!(
            path_at(TEXT, 4, 11).as_deref(),
            Some("ensemble.servers[0].id")
        );
        assert_eq!(path_at(TEXT, 7, 15).as_deref(), Some("ensemble.clientPort"));
    }

    #[test]
    fn a_key_is_named_by_the_mapping_that_holds_it() {
        // `bogus` in the flow mapping of the second server.
        assert_eq!(path_at(TEXT, 6, 25).as_deref(), Some("ensemble.servers[1]"));
        assert_eq!(path_at(TEXT, 5, 7).as_deref(), Some("ensemble.servers[0]"));
    }

    #[test]
    fn a_mapping_start_is_named_by_its_own_path() {
        // The first key of a block mapping starts where the mapping does.
        assert_eq!(path_at(TEXT, 1, 1).as_deref(), Some(""));
        assert_eq!(path_at(TEXT, 3, 3).as_deref(), Some("ensemble"));
        assert_eq!(path_at(TEXT, 6, 7).as_deref(), Some("ensemble.servers[1]"));
    }

    #[test]
    fn nothing_at_a_position_or_unparsable_text_gives_none() {
        assert_eq!(path_at(TEXT, 40, 1), None);
        assert_eq!(path_at("a: [\n", 2, 1), None);
    }
}
