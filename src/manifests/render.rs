//! Multi-document YAML of the objects, as `kubectl apply -f` reads it:
//! comments first (a title and the notes), then each object as its own
//! document, each opened by `---` and, where it has them, its own comment
//! lines (`zkmigrate rbac` says there why each rule of its Role is there).
//!
//! serde-saphyr (DESIGN 1: serde_yaml is unmaintained) with block scalars,
//! so a `zoo.cfg` in a ConfigMap reads as the file it is.

use serde::Serialize;

use super::{Manifests, ManifestsError};

/// The YAML of `manifests`, under `# title` and one `# note` per note.
pub fn render_yaml(title: &str, manifests: &Manifests) -> Result<String, ManifestsError> {
    let header: Vec<String> = title
        .lines()
        .map(str::to_string)
        .chain(manifests.notes.iter().map(|note| format!("note: {note}")))
        .collect();
    let documents: Vec<(&[String], _)> = manifests
        .objects
        .iter()
        .map(|object| (&[][..], object))
        .collect();
    render_documents(&header, &documents)
}

/// The YAML of `documents` under the comment lines `header`: each
/// document opened by `---`, then its own comment lines, then the object.
pub fn render_documents<T: Serialize>(
    header: &[String],
    documents: &[(&[String], T)],
) -> Result<String, ManifestsError> {
    let mut out = String::new();
    for line in header {
        out.push_str(&comment(line));
    }
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = true;
    // A long one-line string (a Pod's shell command) stays one line: a
    // folded scalar would split a command across lines for the reader.
    options.folded_wrap_chars = usize::MAX;
    for (comments, object) in documents {
        out.push_str("---\n");
        for line in comments.iter() {
            out.push_str(&comment(line));
        }
        let yaml = serde_saphyr::to_string_with_options(object, options.clone())
            .map_err(|e| ManifestsError::Render(e.to_string()))?;
        out.push_str(&yaml);
        if !yaml.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// One comment line; a line break in the text would end the comment, so
/// it cannot stay one.
fn comment(text: &str) -> String {
    format!("# {}\n", text.replace(['\n', '\r'], " "))
}
