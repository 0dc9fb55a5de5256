//! A unified diff of two config texts, for `plan` and the runbook: the
//! operator reviews exactly which lines of `zoo.cfg` change.
//!
//! Line-based, longest common subsequence, three lines of context, in the
//! format of GNU `diff -u` (hunk ranges `start,count`, `,1` omitted, an
//! empty range numbered by the line before it, and `\ No newline at end of
//! file`). Configs are small; the quadratic table runs only on what is left
//! after the common head and tail are cut off.

const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep,
    Delete,
    Insert,
}

/// The unified diff turning `old` into `new`, with the given file labels;
/// empty when the texts are equal.
pub fn diff(old: &str, new: &str, label_old: &str, label_new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = edit_script(&a, &b);

    let mut out = format!("--- {label_old}\n+++ {label_new}\n");
    // (op, line text) with the old/new line positions before each op.
    let mut positions = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0, 0);
    for op in &ops {
        positions.push((i, j));
        match op {
            Op::Keep => (i, j) = (i + 1, j + 1),
            Op::Delete => i += 1,
            Op::Insert => j += 1,
        }
    }
    for (start, end) in hunks(&ops) {
        let old_count = ops[start..end]
            .iter()
            .filter(|op| **op != Op::Insert)
            .count();
        let new_count = ops[start..end]
            .iter()
            .filter(|op| **op != Op::Delete)
            .count();
        let (old_start, new_start) = positions[start];
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_start, old_count),
            range(new_start, new_count)
        ));
        for (k, op) in ops[start..end].iter().enumerate() {
            let (i, j) = positions[start + k];
            let (sign, line) = match op {
                Op::Keep => (' ', a[i]),
                Op::Delete => ('-', a[i]),
                Op::Insert => ('+', b[j]),
            };
            out.push(sign);
            match line.strip_suffix('\n') {
                Some(text) => {
                    out.push_str(text);
                    out.push('\n');
                }
                None => {
                    out.push_str(line);
                    out.push_str("\n\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

/// `start,count` as GNU diff prints it, from a 0-based start.
fn range(start: usize, count: usize) -> String {
    match count {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{count}", start + 1),
    }
}

/// The shortest edit script; within a change, deletions come first.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);

    // lcs[i][j]: length of the LCS of ma[i..] and mb[j..].
    let width = mb.len() + 1;
    let mut lcs = vec![0u32; (ma.len() + 1) * width];
    for i in (0..ma.len()).rev() {
        for j in (0..mb.len()).rev() {
            lcs[i * width + j] = if ma[i] == mb[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let mut ops = vec![Op::Keep; head];
    let (mut i, mut j) = (0, 0);
    while i < ma.len() || j < mb.len() {
        if i < ma.len() && j < mb.len() && ma[i] == mb[j] {
            ops.push(Op::Keep);
            (i, j) = (i + 1, j + 1);
        } else if j == mb.len()
            || (i < ma.len() && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
        {
            ops.push(Op::Delete);
            i += 1;
        } else {
            ops.push(Op::Insert);
            j += 1;
        }
    }
    ops.extend(std::iter::repeat_n(Op::Keep, tail));
    ops
}

/// Op index ranges of the hunks: each change with up to three kept lines
/// around it, merged when the context of two changes would touch.
fn hunks(ops: &[Op]) -> Vec<(usize, usize)> {
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    let mut k = 0;
    while k < ops.len() {
        if ops[k] == Op::Keep {
            k += 1;
            continue;
        }
        let change_start = k;
        while k < ops.len() && ops[k] != Op::Keep {
            k += 1;
        }
        let start = change_start.saturating_sub(CONTEXT);
        let end = (k + CONTEXT).min(ops.len());
        match hunks.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => hunks.push((start, end)),
        }
    }
    hunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(diff("a\n", "a\n", "x", "y"), "");
    }

    // Each expected output below is what GNU `diff -u` prints for the same
    // inputs (with the timestamps left out of the labels).
    #[test]
    fn one_hunk_with_context() {
        let old = "1\n2\n3\n4\nserver.1=a:1:2\n5\n6\n7\n8\n";
        let new = "1\n2\n3\n4\nserver.1=b:1:2\nq=true\n5\n6\n7\n8\n";
        assert_eq!(
            diff(old, new, "zoo.cfg", "zoo.cfg (new)"),
            "--- zoo.cfg\n+++ zoo.cfg (new)\n@@ -2,7 +2,8 @@\n 2\n 3\n 4\n-server.1=a:1:2\n+server.1=b:1:2\n+q=true\n 5\n 6\n 7\n"
        );
    }

    #[test]
    fn separate_and_merged_hunks() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
        let new = "A\nb\nc\nd\ne\nf\ng\nh\nI\nj\nk\nl\n";
        assert_eq!(
            diff(old, new, "o", "n"),
            "--- o\n+++ n\n@@ -1,4 +1,4 @@\n-a\n+A\n b\n c\n d\n@@ -6,7 +6,7 @@\n f\n g\n h\n-i\n+I\n j\n k\n l\n"
        );
        let new = "A\nb\nc\nd\ne\nf\ng\nH\ni\nj\nk\nl\n";
        assert_eq!(
            diff(old, new, "o", "n"),
            "--- o\n+++ n\n@@ -1,11 +1,11 @@\n-a\n+A\n b\n c\n d\n e\n f\n g\n-h\n+H\n i\n j\n k\n"
        );
    }

    #[test]
    fn empty_sides_and_single_lines() {
        assert_eq!(
            diff("", "a\n", "o", "n"),
            "--- o\n+++ n\n@@ -0,0 +1 @@\n+a\n"
        );
        assert_eq!(
            diff("a\nb\n", "", "o", "n"),
            "--- o\n+++ n\n@@ -1,2 +0,0 @@\n-a\n-b\n"
        );
        assert_eq!(
            diff("x\na\n", "x\n", "o", "n"),
            "--- o\n+++ n\n@@ -1,2 +1 @@\n x\n-a\n"
        );
    }

    #[test]
    fn missing_final_newline() {
        assert_eq!(
            diff("a\nb", "a\nb\nq=true", "o", "n"),
            "--- o\n+++ n\n@@ -1,2 +1,3 @@\n a\n-b\n\\ No newline at end of file\n+b\n+q=true\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn crlf_lines_keep_their_cr() {
        assert_eq!(
            diff("a\r\nb\r\n", "a\r\nc\r\n", "o", "n"),
            "--- o\n+++ n\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n"
        );
    }
}
