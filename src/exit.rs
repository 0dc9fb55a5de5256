//! Exit codes of `zkmigrate` (DESIGN section 4). Scripts and runbooks branch
//! on these, so they never change meaning.

/// The process exit code of a `zkmigrate` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Done = 0,
    /// An error: something failed that is not a safety gate.
    Error = 1,
    /// Bad usage or an invalid plan file; nothing was changed.
    Usage = 2,
    /// A safety gate halted the run; `step --resume` continues it.
    Halted = 3,
    /// The run waits for `--confirm STEP`.
    AwaitingConfirm = 4,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}
