//! `zkmigrate completions SHELL`: the shell's completion script for the
//! command line as clap knows it (clap_complete), so completions never lag
//! behind a new command or flag.

use clap::CommandFactory;
use clap_complete::Shell;

use super::CommandError;
use crate::cli::Cli;
use crate::exit::Exit;
use crate::output::Printer;

/// The completion script of `shell` for `zkmigrate`.
pub fn script(shell: Shell) -> String {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "zkmigrate", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `zkmigrate completions SHELL`: the script on stdout.
pub fn run(shell: Shell) -> Result<Exit, CommandError> {
    Printer.text(&script(shell))?;
    Ok(Exit::Done)
}
