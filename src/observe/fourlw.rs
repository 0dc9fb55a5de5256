//! The four-letter-word client: the only code in the module that talks to a
//! client port.
//!
//! The word goes out with **no trailing newline** and the reply is read to
//! EOF: with a newline the server may reset the connection before the reply
//! is read (DESIGN 7). One deadline covers connect, write and read, and the
//! reply is capped in size, so a wedged or hostile peer cannot hold a gate.
//! Refusals the server words as text (word not whitelisted, instance not
//! serving) become their own errors here, so parsers only see real replies.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::{ObserveError, Word, decode};

/// Replies larger than this are refused: a 3.8 `mntr` is about 20 KiB, a
/// `cons` of a busy server a few hundred KiB.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";
const NOT_WHITELISTED: &str = "is not executed because it is not in the whitelist.";

/// Sends `word` to `addr` (`host:port`) and returns the reply decoded
/// lossily, or the reason there is none. `timeout` bounds the whole exchange.
pub async fn four_letter_word(
    addr: &str,
    word: Word,
    timeout: Duration,
) -> Result<String, ObserveError> {
    let bytes = exchange(
        addr,
        word.as_str().as_bytes(),
        timeout,
        MAX_REPLY_BYTES,
        word.as_str(),
    )
    .await?;
    let text = decode(&bytes);
    classify_reply(addr, word, text)
}

/// Tells a refusal from a reply. Pure, so the refusal texts are tested
/// against captured output.
pub fn classify_reply(addr: &str, word: Word, text: String) -> Result<String, ObserveError> {
    let trimmed = text.trim();
    let w = word.as_str();
    if trimmed.is_empty() {
        Err(ObserveError::EmptyReply {
            addr: addr.to_string(),
            word: w,
        })
    } else if trimmed == NOT_SERVING {
        Err(ObserveError::NotServing {
            addr: addr.to_string(),
            word: w,
        })
    } else if trimmed.ends_with(NOT_WHITELISTED) && trimmed.len() < 100 {
        Err(ObserveError::NotWhitelisted {
            addr: addr.to_string(),
            word: w,
        })
    } else {
        Ok(text)
    }
}

/// Connects, writes `request`, reads to EOF; shared with the AdminServer
/// client. `what` names the exchange in errors.
pub(crate) async fn exchange(
    addr: &str,
    request: &[u8],
    timeout: Duration,
    cap: usize,
    what: &'static str,
) -> Result<Vec<u8>, ObserveError> {
    let deadline = Instant::now() + timeout;
    let timed_out = || ObserveError::Timeout {
        addr: addr.to_string(),
        word: what,
        after: timeout,
    };
    let io = |source: std::io::Error| ObserveError::Io {
        addr: addr.to_string(),
        word: what,
        source,
    };

    let mut stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) => return Err(connect_error(addr, e)),
        Ok(Ok(s)) => s,
    };
    timeout_at(deadline, stream.write_all(request))
        .await
        .map_err(|_| timed_out())?
        .map_err(io)?;

    let mut reply = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Err(timed_out()),
            // A reset after a complete reply is how some servers close; keep
            // what arrived and let the parser judge it.
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset && !reply.is_empty() => 0,
            Ok(Err(e)) => return Err(io(e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Ok(reply);
        }
        if reply.len() + n > cap {
            return Err(ObserveError::TooLarge {
                addr: addr.to_string(),
                word: what,
                cap,
            });
        }
        reply.extend_from_slice(&chunk[..n]);
    }
}

fn connect_error(addr: &str, e: std::io::Error) -> ObserveError {
    match e.kind() {
        ErrorKind::ConnectionRefused => ObserveError::Refused {
            addr: addr.to_string(),
        },
        // tokio resolves names inside connect; a name that does not resolve
        // surfaces as an error without a connect-specific kind.
        ErrorKind::InvalidInput | ErrorKind::NotFound => ObserveError::Resolve {
            addr: addr.to_string(),
            source: e,
        },
        _ if e.raw_os_error().is_none() && e.to_string().contains("lookup") => {
            ObserveError::Resolve {
                addr: addr.to_string(),
                source: e,
            }
        }
        _ => ObserveError::Connect {
            addr: addr.to_string(),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::fixtures::read;
    use tokio::net::TcpListener;

    const A: &str = "127.0.0.9:2181";

    #[test]
    fn classifies_captured_refusals() {
        for w in ["mntr", "conf", "cons"] {
            let text = read(&format!("zk-3.8.0-session/not-whitelisted.{w}.txt"));
            let word = match w {
                "mntr" => Word::Mntr,
                "conf" => Word::Conf,
                _ => Word::Cons,
            };
            let e = classify_reply(A, word, text).unwrap_err();
            assert!(matches!(e, ObserveError::NotWhitelisted { .. }), "{e}");
            assert!(e.to_string().contains(A));
        }
        for w in ["srvr", "mntr", "conf", "cons"] {
            let text = read(&format!("zk-3.8.0-session/lost-quorum-3.{w}.txt"));
            let e = classify_reply(A, Word::Srvr, text).unwrap_err();
            assert!(e.is_not_serving(), "{e}");
        }
        let e = classify_reply(A, Word::Srvr, String::new()).unwrap_err();
        assert!(matches!(e, ObserveError::EmptyReply { .. }));
        let ok = read("zk-3.8.0/leader-3.srvr.txt");
        assert_eq!(classify_reply(A, Word::Srvr, ok.clone()).unwrap(), ok);
    }

    /// A fake server that checks the request bytes, then replies and closes.
    async fn serve_once(reply: &'static [u8]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 4];
            s.read_exact(&mut req).await.unwrap();
            s.write_all(reply).await.unwrap();
            req.to_vec()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn sends_four_bytes_and_reads_to_eof() {
        let (addr, task) = serve_once(b"imok").await;
        let reply = four_letter_word(&addr, Word::Ruok, Duration::from_secs(5)).await;
        assert_eq!(reply.unwrap(), "imok");
        assert_eq!(task.await.unwrap(), b"ruok");
    }

    #[tokio::test]
    async fn refused_and_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // accepts but never answers
        let e = four_letter_word(&addr, Word::Srvr, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, ObserveError::Timeout { .. }), "{e}");
        assert!(e.is_unreachable());
        drop(listener);
        let e = four_letter_word(&addr, Word::Srvr, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(e, ObserveError::Refused { .. }), "{e}");
        assert!(e.to_string().contains(&addr));
    }

    #[tokio::test]
    async fn caps_the_reply() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let junk = vec![b'x'; 64 * 1024];
            while s.write_all(&junk).await.is_ok() {}
        });
        let e = exchange(&addr, b"mntr", Duration::from_secs(5), 100_000, "mntr")
            .await
            .unwrap_err();
        assert!(
            matches!(e, ObserveError::TooLarge { cap: 100_000, .. }),
            "{e}"
        );
    }
}
