//! The one printer for what zkmigrate tells the operator on stdout.
//!
//! Results go to stdout (tables for a person, or JSON for a machine); logs
//! and progress go to stderr, so `-o json | jq` always sees clean JSON.
//! Tables are rendered by a pure function so that tests can assert them
//! byte for byte.

use std::io::{self, Write};

use serde::Serialize;

/// A plain-text table: a header row and rows of cells, columns padded to
/// their widest cell, two spaces apart, no trailing spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<I, S>(header: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are kept.
    pub fn row<I, S>(&mut self, cells: I) -> &mut Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// The table as text, one line per row, each ending in `\n`.
    pub fn render(&self) -> String {
        let columns = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Writes results to stdout.
#[derive(Debug, Default)]
pub struct Printer;

impl Printer {
    /// Prints text as is.
    pub fn text(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// Prints a value as pretty JSON followed by a newline.
    pub fn json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// Writes `bytes` to `path` atomically and durably, as a file the operator
/// shares and reviews (a plan, a runbook): a temporary file in the same
/// directory with the umask's mode (not a temporary file's 0600), fsync,
/// rename, fsync of the directory. Without `replace`, an existing `path`
/// is refused at the rename (`AlreadyExists`), so a file that appeared
/// meanwhile is not replaced either. On any error `path` is untouched.
pub fn write_file(path: &std::path::Path, bytes: &[u8], replace: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".zkmigrate-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    let persisted = match replace {
        true => temp.persist(path),
        false => temp.persist_noclobber(path),
    };
    persisted.map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_without_trailing_spaces() {
        let mut t = Table::new(["ID", "MODE", "ZXID"]);
        t.row(["1", "follower", "0x100000002"]);
        t.row(["12", "leader"]);
        assert_eq!(
            t.render(),
            "ID  MODE      ZXID\n\
             1   follower  0x100000002\n\
             12  leader\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(["A", "B"]).render(), "A  B\n");
    }
}
