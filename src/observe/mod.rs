//! The ZooKeeper boundary for reading: four-letter words and the AdminServer,
//! parsed into typed observations, and the pure health predicates the safety
//! gates are built from (DESIGN sections 2, 5.1 and 7).
//!
//! The pipeline inside the module is `wire -> text or JSON -> typed word ->
//! EnsembleObservation -> conditions -> HealthReport`:
//!
//! - [`fourlw`]: the only code that talks to the client port: send a word with
//!   no trailing newline, read to EOF under a deadline and a size cap, and
//!   tell refusals (not whitelisted, not serving) from network failures.
//! - [`admin`]: the AdminServer fallback: a minimal HTTP/1.1 GET and the
//!   mapping of its JSON into the *same* typed words, so callers never care
//!   which path answered.
//! - [`srvr`], [`mntr`], [`conf`], [`cons`]: pure parsers, one per word, for
//!   the 3.4 and the 3.5+ formats. They take `&str` (callers decode lossily)
//!   and never panic; unknown keys are kept, missing essential ones are an
//!   error naming the key.
//! - [`zxid`]: [`Zxid`] (epoch and counter) and [`Version`] (with the
//!   ZOOKEEPER-3829 check).
//! - [`probe`]: [`ServerProbe`], one server's words, 4lw first and the
//!   AdminServer when a word is not whitelisted or the port does not answer.
//! - [`ensemble`]: [`observe_ensemble`] queries every expected server at once
//!   into an [`EnsembleObservation`], a snapshot that is plain data.
//! - [`health`]: pure functions of that snapshot: quorum, the leader by
//!   quorum agreement, sync and lag, and [`Condition`]s that combine into a
//!   [`HealthReport`] listing every failing reason as data ("Nothing silent").
//!
//! Why parsers return their own [`ParseError`] rather than [`ObserveError`]:
//! they are pure and know no address; the I/O layer wraps a `ParseError` into
//! [`ObserveError::Parse`] together with the address and the word, so the
//! module still surfaces one error enum to its callers.

pub mod admin;
pub mod conf;
pub mod cons;
pub mod ensemble;
pub mod fourlw;
pub mod health;
pub mod mntr;
pub mod probe;
pub mod srvr;
pub mod zxid;

use std::fmt;
use std::time::Duration;

pub use conf::{Conf, Role, ServerLine};
pub use cons::{Connection, Cons, Ruok};
pub use ensemble::{
    EnsembleObservation, FailureKind, ObservationFailure, ObserveOptions, ServerEntry,
    ServerObservation, Source, Target, observe_ensemble,
};
pub use fourlw::four_letter_word;
pub use health::{
    Check, Condition, Failure, HealthReport, LeaderGrace, LeaderJudgement, LeaderVerdict,
};
pub use mntr::Mntr;
pub use probe::ServerProbe;
pub use srvr::{Latency, Mode, Srvr, Stat};
pub use zxid::{Version, Zxid};

/// A four-letter word zkmigrate sends. Only read-only words: zkmigrate never
/// sends a word that changes server state (`srst`, `crst`, `kill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Word {
    /// Server summary: version, zxid, mode.
    Srvr,
    /// Monitoring keys (`zk_*`); the leader adds sync counters.
    Mntr,
    /// The running configuration; 3.5+ adds `membership:`.
    Conf,
    /// One line per client connection.
    Cons,
    /// `imok` when the process runs; it is not readiness (DESIGN 7).
    Ruok,
    /// `srvr` plus the client list.
    Stat,
}

impl Word {
    /// The four bytes sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Word::Srvr => "srvr",
            Word::Mntr => "mntr",
            Word::Conf => "conf",
            Word::Cons => "cons",
            Word::Ruok => "ruok",
            Word::Stat => "stat",
        }
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reply that could not be read as the word it answers: what was missing
/// or malformed. Pure parsers return it; I/O wraps it with the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse `{word}` reply: {reason}")]
pub struct ParseError {
    /// The word (or AdminServer command) whose reply was parsed.
    pub word: &'static str,
    /// What was wrong, naming the key or line.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(word: &'static str, reason: impl Into<String>) -> Self {
        Self {
            word,
            reason: reason.into(),
        }
    }
}

/// Everything that can go wrong while observing a server. Each variant names
/// the address it concerns so that a halt can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The address did not resolve (a DNS name) or resolved to nothing.
    #[error("failed to resolve {addr}: {source}")]
    Resolve {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// Nothing listens on the port: the process is down or the port is wrong.
    #[error("failed to connect to {addr}: connection refused")]
    Refused { addr: String },
    /// Connecting failed for another reason (unreachable network, reset).
    #[error("failed to connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The exchange did not finish within the deadline.
    #[error("failed to get `{word}` from {addr}: no complete reply within {after:?}")]
    Timeout {
        addr: String,
        word: &'static str,
        after: Duration,
    },
    /// Reading or writing failed after connecting.
    #[error("failed to get `{word}` from {addr}: {source}")]
    Io {
        addr: String,
        word: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The server closed the connection without a byte: a 3.4 server does
    /// this for a word it does not know or has disabled.
    #[error("failed to get `{word}` from {addr}: the server closed the connection without a reply")]
    EmptyReply { addr: String, word: &'static str },
    /// The reply grew past the size cap.
    #[error("failed to get `{word}` from {addr}: reply larger than {cap} bytes")]
    TooLarge {
        addr: String,
        word: &'static str,
        cap: usize,
    },
    /// `4lw.commands.whitelist` does not allow the word.
    #[error(
        "failed to get `{word}` from {addr}: the word is not in the server's 4lw.commands.whitelist"
    )]
    NotWhitelisted { addr: String, word: &'static str },
    /// The process runs but has no quorum (or is still starting).
    #[error(
        "failed to get `{word}` from {addr}: this ZooKeeper instance is not currently serving requests"
    )]
    NotServing { addr: String, word: &'static str },
    /// The reply arrived but is not the expected format.
    #[error("failed to read `{word}` reply from {addr}: {source}")]
    Parse {
        addr: String,
        word: &'static str,
        #[source]
        source: ParseError,
    },
    /// The AdminServer answered with an HTTP status other than 200.
    #[error("failed to get {path} from the AdminServer at {addr}: HTTP status {status}")]
    HttpStatus {
        addr: String,
        path: String,
        status: u16,
    },
    /// The AdminServer answered 200 but with a command error.
    #[error("failed to run AdminServer command {command} at {addr}: {message}")]
    AdminCommand {
        addr: String,
        command: &'static str,
        message: String,
    },
    /// No AdminServer address is known for this server, so no fallback.
    #[error("failed to fall back to the AdminServer for {addr}: no admin port configured")]
    NoAdminPort { addr: String },
    /// Both paths failed; both reasons are kept.
    #[error(
        "failed to get `{word}` from {addr} by four-letter word ({four_letter}) or AdminServer ({admin})"
    )]
    BothPathsFailed {
        addr: String,
        word: &'static str,
        four_letter: Box<ObserveError>,
        admin: Box<ObserveError>,
    },
}

impl ObserveError {
    /// True when the server process answered but refused for lack of quorum.
    pub fn is_not_serving(&self) -> bool {
        match self {
            ObserveError::NotServing { .. } => true,
            ObserveError::BothPathsFailed {
                four_letter, admin, ..
            } => four_letter.is_not_serving() || admin.is_not_serving(),
            _ => false,
        }
    }

    /// True when nothing answered on the network (refused, timed out, reset):
    /// the server is down or unreachable from here.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ObserveError::Refused { .. }
            | ObserveError::Connect { .. }
            | ObserveError::Timeout { .. }
            | ObserveError::Resolve { .. } => true,
            ObserveError::BothPathsFailed { four_letter, .. } => four_letter.is_unreachable(),
            _ => false,
        }
    }
}

/// Decode a reply lossily: a server's bytes are not trusted to be UTF-8, and
/// a parser must see text, never fail on encoding.
pub fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Fixture files from `tests/fixtures/observe`, read at test time.
    use std::path::PathBuf;

    pub fn read(rel: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/observe")
            .join(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        super::decode(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes from a socket, decoded as the client decodes them,
        /// never panic any parser.
        #[test]
        fn no_parser_panics_on_bytes(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let s = super::decode(&b);
            let _ = super::srvr::parse_srvr(&s);
            let _ = super::srvr::parse_stat(&s);
            let _ = super::mntr::parse_mntr(&s);
            let _ = super::conf::parse_conf(&s);
            let _ = super::cons::parse_cons(&s);
            let _ = super::cons::parse_ruok(&s);
            let _ = super::admin::split_http_response(&b);
            let _ = super::fourlw::classify_reply("a:1", super::Word::Srvr, s);
        }
    }
}
