//! `zkmigrate man [-o DIR]`: man pages from the command line's own help
//! (clap_mangen): `zkmigrate.1`, and with `-o DIR` one page per command
//! too (`zkmigrate-step.1`, ...), as packagers install them. The pages are
//! the `--help` text, so they cannot say something the binary does not do.

use std::path::Path;

use clap::CommandFactory;
use clap_mangen::Man;

use super::CommandError;
use crate::cli::Cli;
use crate::exit::Exit;
use crate::output::Printer;

/// Every page: (file name, roff text), `zkmigrate.1` first, then one per
/// command in the order of `zkmigrate --help`.
pub fn pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    let mut command = Cli::command().disable_help_subcommand(true);
    // Building names each command `zkmigrate-<name>`, its page's title.
    command.build();
    // Every page's source (its footer) is zkmigrate and its version, not
    // the command's own name.
    let source = format!(
        "zkmigrate {}",
        command.get_version().unwrap_or(env!("CARGO_PKG_VERSION"))
    );
    let mut pages = Vec::new();
    for page in std::iter::once(command.clone()).chain(command.get_subcommands().cloned()) {
        let man = Man::new(page).source(source.clone());
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        pages.push((man.get_filename(), roff));
    }
    Ok(pages)
}

/// Runs `zkmigrate man [-o DIR]`: `zkmigrate.1` on stdout, or every page
/// written into DIR (created if missing) and their paths on stdout.
pub fn run(dir: Option<&Path>) -> Result<Exit, CommandError> {
    let pages = pages()?;
    let Some(dir) = dir else {
        let (_, main) = &pages[0];
        Printer.text(&String::from_utf8_lossy(main))?;
        return Ok(Exit::Done);
    };
    std::fs::create_dir_all(dir)?;
    let mut written = String::new();
    for (file, roff) in &pages {
        let path = dir.join(file);
        std::fs::write(&path, roff)?;
        written.push_str(&format!("{}\n", path.display()));
    }
    Printer.text(&written)?;
    Ok(Exit::Done)
}
