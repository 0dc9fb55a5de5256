//! Progress on every wait (DESIGN 4: "progress bars (indicatif) on every
//! wait, on stderr"): what is awaited, for how long, and the value being
//! watched ("server 2: zxid lag 1203").
//!
//! One [`Progress`] handle per run, handed to every wait; each wait opens a
//! [`WaitBar`] and ends it with [`WaitBar::finish`] or [`WaitBar::abandon`].
//! Two renderings behind the one API, chosen once when the handle is made:
//!
//! - **Bars**: spinners with the elapsed time and a message on a
//!   `MultiProgress` drawn to stderr, when stderr is a terminal and logs are
//!   text.
//! - **Log**: when stderr is not a terminal (CI, a pipe, tests) or logs are
//!   JSON, nothing is drawn; the same updates go to `tracing` at a low rate
//!   (the first message, then at most one per [`LOG_EVERY`]; finish and
//!   abandon always), so a log stays readable and a JSON log stays JSON.
//!
//! Why the rate limit lives here and not in the callers: waits poll every
//! few hundred milliseconds and set a message on every poll; a bar absorbs
//! that for free, a log would not.

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// At most one progress log line per wait in this interval (log rendering).
pub const LOG_EVERY: Duration = Duration::from_secs(10);

const SPINNER_TEMPLATE: &str = "{spinner:.cyan} [{elapsed:>4}] {prefix}: {wide_msg}";
const TICK: Duration = Duration::from_millis(120);

/// How progress is rendered; see the module header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// Spinners on stderr.
    Bars,
    /// `tracing` events at a low rate.
    Log,
}

/// The run's progress display. Cheap to clone; clones draw on the same
/// stderr area.
#[derive(Debug, Clone)]
pub struct Progress {
    rendering: Rendering,
    multi: Option<MultiProgress>,
    log_every: Duration,
}

impl Progress {
    /// Bars when stderr is a terminal and `json_logs` is false; else logs.
    pub fn for_stderr(json_logs: bool) -> Progress {
        if !json_logs && std::io::stderr().is_terminal() {
            Progress::bars()
        } else {
            Progress::log()
        }
    }

    /// Always bars on stderr (indicatif still hides them on a non-terminal).
    pub fn bars() -> Progress {
        Progress {
            rendering: Rendering::Bars,
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            log_every: LOG_EVERY,
        }
    }

    /// Never draws; updates go to `tracing` at most once per `LOG_EVERY`.
    pub fn log() -> Progress {
        Progress {
            rendering: Rendering::Log,
            multi: None,
            log_every: LOG_EVERY,
        }
    }

    /// The same with another rate (tests, or a caller that wants every update).
    pub fn with_log_every(mut self, every: Duration) -> Progress {
        self.log_every = every;
        self
    }

    pub fn rendering(&self) -> Rendering {
        self.rendering
    }

    /// Runs `f` with the bars cleared, so that a line written to stderr
    /// (a log event, a prompt) is not torn by a redraw.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.multi {
            Some(multi) => multi.suspend(f),
            None => f(),
        }
    }

    /// Starts showing a wait for `what` (e.g. "server 2 to sync").
    pub fn wait(&self, what: &str) -> WaitBar {
        let bar = self.multi.as_ref().map(|multi| {
            let style = ProgressStyle::with_template(SPINNER_TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = multi.add(ProgressBar::new_spinner().with_style(style));
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(TICK);
            bar
        });
        tracing::debug!(wait = what, "waiting");
        WaitBar {
            what: what.to_string(),
            bar,
            started: Instant::now(),
            log_every: self.log_every,
            state: Mutex::new(LogState::default()),
        }
    }
}

#[derive(Debug, Default)]
struct LogState {
    last_logged: Option<Instant>,
    ended: bool,
}

/// One wait on the display. Dropped without [`finish`](WaitBar::finish) or
/// [`abandon`](WaitBar::abandon), its spinner is cleared.
#[derive(Debug)]
pub struct WaitBar {
    what: String,
    bar: Option<ProgressBar>,
    started: Instant,
    log_every: Duration,
    state: Mutex<LogState>,
}

impl WaitBar {
    /// What is awaited, as given to [`Progress::wait`].
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Time since the wait started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The value watched right now, e.g. "server 2: zxid lag 1203".
    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        if let Some(bar) = &self.bar {
            bar.set_message(message);
            return;
        }
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let due = state
            .last_logged
            .is_none_or(|at| now.saturating_duration_since(at) >= self.log_every);
        if due {
            state.last_logged = Some(now);
            tracing::info!(
                wait = %self.what,
                elapsed_ms = self.elapsed().as_millis() as u64,
                "{message}"
            );
        }
    }

    /// Ends the wait as done, with a last message ("synced after 3.2s").
    pub fn finish(&self, message: impl Into<String>) {
        let message = message.into();
        self.end();
        match &self.bar {
            Some(bar) => bar.finish_with_message(message),
            None => tracing::info!(
                wait = %self.what,
                elapsed_ms = self.elapsed().as_millis() as u64,
                "{message}"
            ),
        }
    }

    /// Ends the wait as failed; the spinner stays with the message.
    pub fn abandon(&self, message: impl Into<String>) {
        let message = message.into();
        self.end();
        match &self.bar {
            Some(bar) => bar.abandon_with_message(message),
            None => tracing::warn!(
                wait = %self.what,
                elapsed_ms = self.elapsed().as_millis() as u64,
                "{message}"
            ),
        }
    }

    fn end(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ended = true;
    }
}

impl Drop for WaitBar {
    fn drop(&mut self) {
        let ended = self
            .state
            .get_mut()
            .map_or_else(|e| e.into_inner().ended, |s| s.ended);
        if let (Some(bar), false) = (&self.bar, ended) {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_rendering_draws_nothing_and_tracks_the_wait() {
        let progress = Progress::log();
        assert_eq!(progress.rendering(), Rendering::Log);
        let wait = progress.wait("server 2 to sync");
        assert_eq!(wait.what(), "server 2 to sync");
        assert!(wait.bar.is_none());
        wait.set_message("server 2: zxid lag 1203");
        let first = wait.state.lock().unwrap().last_logged;
        assert!(first.is_some(), "the first update is logged at once");
        wait.set_message("server 2: zxid lag 10");
        assert_eq!(
            wait.state.lock().unwrap().last_logged,
            first,
            "a second update within LOG_EVERY is not logged"
        );
        wait.finish("synced");
        assert!(wait.state.lock().unwrap().ended);
    }

    #[test]
    fn log_rate_can_be_lowered_to_every_update() {
        let wait = Progress::log()
            .with_log_every(Duration::ZERO)
            .wait("the gate before server 1");
        wait.set_message("a");
        let first = wait.state.lock().unwrap().last_logged;
        wait.set_message("b");
        let second = wait.state.lock().unwrap().last_logged;
        assert!(second >= first && second.is_some());
    }

    #[test]
    fn bars_on_a_hidden_target_accept_every_call() {
        // Under `cargo test` stderr is captured, not a terminal: indicatif
        // hides the target, and the calls must still be harmless.
        let progress = Progress::bars();
        let wait = progress.wait("server 3 to sync");
        wait.set_message("server 3: not serving yet");
        progress.suspend(|| ());
        wait.abandon("halted");
        let dropped = progress.wait("dropped without an end");
        drop(dropped);
    }
}
