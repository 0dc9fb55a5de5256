//! [`ServerProbe`]: one server's words, whichever path answers. The
//! four-letter word is tried first (every version has it); the AdminServer
//! is asked when the word is not whitelisted or the client port does not
//! answer four-letter words (disabled, timed out, closed without a reply).
//!
//! A `NotServing` refusal is final: the AdminServer would say the same, and
//! "not serving" is exactly what a gate needs to hear. When both paths fail,
//! both reasons are returned ([`ObserveError::BothPathsFailed`]).

use std::future::Future;
use std::time::Duration;

use tracing::debug;

use super::conf::{Conf, parse_conf};
use super::cons::{Cons, Ruok, parse_cons, parse_ruok};
use super::fourlw::four_letter_word;
use super::mntr::{Mntr, parse_mntr};
use super::srvr::{Srvr, parse_srvr};
use super::{ObserveError, ParseError, Word, admin};

/// Which path produced an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    FourLetterWord,
    AdminServer,
}

/// How to reach one server.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    /// The client port address, `host:port`.
    pub client: String,
    /// The AdminServer address, `host:port`; `None` disables the fallback.
    pub admin: Option<String>,
    /// Deadline for each exchange.
    pub timeout: Duration,
}

impl ServerProbe {
    /// A probe of the client port only.
    pub fn new(client: impl Into<String>, timeout: Duration) -> Self {
        Self {
            client: client.into(),
            admin: None,
            timeout,
        }
    }

    /// Adds an AdminServer address for the fallback.
    pub fn with_admin(mut self, admin: impl Into<String>) -> Self {
        self.admin = Some(admin.into());
        self
    }

    /// `srvr`, and which path answered.
    pub async fn srvr(&self) -> Result<(Srvr, Source), ObserveError> {
        self.ask(Word::Srvr, parse_srvr, |a, t| async move {
            admin::admin_srvr(&a, t).await
        })
        .await
    }

    /// `mntr`.
    pub async fn mntr(&self) -> Result<(Mntr, Source), ObserveError> {
        self.ask(Word::Mntr, parse_mntr, |a, t| async move {
            admin::admin_mntr(&a, t).await
        })
        .await
    }

    /// `conf`.
    pub async fn conf(&self) -> Result<(Conf, Source), ObserveError> {
        self.ask(Word::Conf, parse_conf, |a, t| async move {
            admin::admin_conf(&a, t).await
        })
        .await
    }

    /// `cons`.
    pub async fn cons(&self) -> Result<(Cons, Source), ObserveError> {
        self.ask(Word::Cons, parse_cons, |a, t| async move {
            admin::admin_cons(&a, t).await
        })
        .await
    }

    /// `ruok`: liveness of the process only, never readiness.
    pub async fn ruok(&self) -> Result<(Ruok, Source), ObserveError> {
        self.ask(Word::Ruok, parse_ruok, |a, t| async move {
            admin::admin_ruok(&a, t).await
        })
        .await
    }

    async fn ask<T, F, Fut>(
        &self,
        word: Word,
        parse: fn(&str) -> Result<T, ParseError>,
        via_admin: F,
    ) -> Result<(T, Source), ObserveError>
    where
        F: FnOnce(String, Duration) -> Fut,
        Fut: Future<Output = Result<T, ObserveError>>,
    {
        let four = match four_letter_word(&self.client, word, self.timeout).await {
            Ok(text) => {
                return parse(&text)
                    .map(|v| (v, Source::FourLetterWord))
                    .map_err(|source| ObserveError::Parse {
                        addr: self.client.clone(),
                        word: word.as_str(),
                        source,
                    });
            }
            Err(e) => e,
        };
        if !should_fall_back(&four) {
            return Err(four);
        }
        let Some(admin_addr) = &self.admin else {
            return Err(four);
        };
        debug!(addr = %self.client, %word, error = %four, "four-letter word failed, asking the AdminServer");
        match via_admin(admin_addr.clone(), self.timeout).await {
            Ok(v) => Ok((v, Source::AdminServer)),
            Err(admin) => Err(ObserveError::BothPathsFailed {
                addr: self.client.clone(),
                word: word.as_str(),
                four_letter: Box::new(four),
                admin: Box::new(admin),
            }),
        }
    }
}

/// The four-letter failures the AdminServer may get around: the word is
/// refused by policy, or the port does not speak four-letter words.
/// `Refused` is included: a server may bind its client port on another
/// address (`clientPortAddress`) while its AdminServer answers.
pub fn should_fall_back(e: &ObserveError) -> bool {
    matches!(
        e,
        ObserveError::NotWhitelisted { .. }
            | ObserveError::EmptyReply { .. }
            | ObserveError::Timeout { .. }
            | ObserveError::Io { .. }
            | ObserveError::Refused { .. }
            | ObserveError::Connect { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fixtures::read;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A fake client port that answers every connection with `reply`, and a
    /// fake AdminServer that answers every GET with `body`.
    async fn fake(reply: String) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        addr
    }

    fn http(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn four_letter_word_first() {
        let client = fake(read("zk-3.8.0/leader-3.srvr.txt")).await;
        let probe = ServerProbe::new(client, Duration::from_secs(5)).with_admin("127.0.0.1:1");
        let (s, path) = probe.srvr().await.unwrap();
        assert_eq!((s.zxid.epoch(), path), (1, Source::FourLetterWord));
    }

    #[tokio::test]
    async fn falls_back_when_not_whitelisted() {
        let client = fake(read("zk-3.8.0-session/not-whitelisted.mntr.txt")).await;
        let admin = fake(http(&read("zk-3.8.0-admin/leader-3.monitor.json"))).await;
        let probe = ServerProbe::new(client.clone(), Duration::from_secs(5));
        let e = probe.mntr().await.unwrap_err();
        assert!(matches!(e, ObserveError::NotWhitelisted { .. }), "{e}");
        let (m, path) = probe.with_admin(admin).mntr().await.unwrap();
        assert_eq!((m.synced_followers(), path), (Some(2), Source::AdminServer));
    }

    #[tokio::test]
    async fn not_serving_is_final_and_both_failures_are_kept() {
        let client = fake(read("zk-3.8.0-session/lost-quorum-3.srvr.txt")).await;
        let probe = ServerProbe::new(client, Duration::from_secs(5)).with_admin("127.0.0.1:1");
        let e = probe.srvr().await.unwrap_err();
        assert!(matches!(e, ObserveError::NotServing { .. }), "{e}");

        let client = fake(read("zk-3.8.0-session/not-whitelisted.conf.txt")).await;
        let admin = fake("HTTP/1.1 500 Server Error\r\n\r\n".into()).await;
        let e = ServerProbe::new(client, Duration::from_secs(5))
            .with_admin(admin)
            .conf()
            .await
            .unwrap_err();
        let ObserveError::BothPathsFailed {
            four_letter, admin, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert!(matches!(**four_letter, ObserveError::NotWhitelisted { .. }));
        assert!(matches!(
            **admin,
            ObserveError::HttpStatus { status: 500, .. }
        ));
    }
}
