//! The few YAML text helpers `render` writes with: lines, wrapped comment
//! paragraphs, trailing comments at one column, and scalars quoted only
//! where YAML would read them as something other than the string. Pure.
//!
//! Why not serialize with serde: the plan is mostly comments, placed
//! between keys; a serializer would drop them, and the example plans show
//! that a plan an operator edits is written as prose around values.

/// Where trailing comments start, as in the example plans.
const COMMENT_COLUMN: usize = 32;
/// Comment paragraphs are wrapped to this width.
const WIDTH: usize = 78;

/// The text being written, line by line.
#[derive(Default)]
pub(super) struct Out {
    pub(super) text: String,
}

impl Out {
    pub(super) fn line(&mut self, indent: usize, line: &str) {
        self.text.push_str(&" ".repeat(indent));
        self.text.push_str(line);
        self.text.push('\n');
    }

    pub(super) fn blank(&mut self) {
        self.text.push('\n');
    }

    /// A comment paragraph, wrapped; an empty one is a lone `#`.
    pub(super) fn comment(&mut self, indent: usize, text: &str) {
        if text.is_empty() {
            return self.line(indent, "#");
        }
        for line in wrap(text, WIDTH.saturating_sub(indent + 2)) {
            self.line(indent, &format!("# {line}"));
        }
    }

    /// A `# - item` of a list in a comment, its continuation indented.
    pub(super) fn list_item(&mut self, text: &str) {
        for (i, line) in wrap(text, WIDTH - 4).into_iter().enumerate() {
            let bullet = if i == 0 { "- " } else { "  " };
            self.line(0, &format!("# {bullet}{line}"));
        }
    }

    /// `key: value`, with a trailing comment at [`COMMENT_COLUMN`].
    pub(super) fn field(&mut self, indent: usize, key: &str, value: &str, comment: Option<&str>) {
        let mut line = format!("{}{key}: {value}", " ".repeat(indent));
        if let Some(comment) = comment {
            let pad = COMMENT_COLUMN.saturating_sub(line.chars().count()).max(1);
            line.push_str(&" ".repeat(pad));
            line.push_str("# ");
            line.push_str(&comment_safe(comment));
        }
        self.text.push_str(&line);
        self.text.push('\n');
    }
}

/// Words of `text` in lines of at most `width` characters (a longer word
/// gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let text = comment_safe(text);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// Control characters (a newline would end the comment) escaped.
pub(super) fn comment_safe(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect()
}

/// A string as a YAML scalar: plain when YAML reads it back as the same
/// string, else double-quoted (a JSON string is a valid YAML one).
pub(super) fn scalar(value: &str) -> String {
    if is_plain_safe(value) {
        value.to_string()
    } else {
        serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
    }
}

fn is_plain_safe(value: &str) -> bool {
    let mut chars = value.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._/-:@~".contains(c);
    const SPECIAL: [&str; 12] = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf", "infinity",
    ];
    // `.inf`, `-.nan`, `+Infinity` are floats in YAML.
    let lower = value.to_ascii_lowercase();
    let lower = lower.trim_start_matches(['+', '-', '.']);
    let numeric_like = value.parse::<f64>().is_ok()
        || value
            .chars()
            .all(|c| c.is_ascii_digit() || "_:.+-".contains(c))
            && value.matches('.').count() <= 1
        || (value.len() > 1
            && value.starts_with('0')
            && matches!(value.as_bytes()[1], b'x' | b'o' | b'b'));
    (first.is_ascii_alphanumeric() || first == '/' || first == '.')
        && value.chars().all(allowed)
        && !value.ends_with(':')
        && !SPECIAL.contains(&lower)
        && !numeric_like
}
