//! The AdminServer fallback (3.5+, Jetty, plain HTTP on `admin.serverPort`):
//! a minimal HTTP/1.1 GET over a tokio socket, and the mapping of its JSON
//! into the same typed words the four-letter path yields, so callers never
//! care which path answered.
//!
//! What the AdminServer of 3.8 really returns (captured in
//! `tests/fixtures/observe/zk-3.8.0-admin/`), and how it is mapped:
//! - `srvr`: `server_stats.server_state`, `last_processed_zxid` as a decimal
//!   number, `node_count` at the top level; no proposal sizes on followers.
//! - `monitor`: the `mntr` keys without their `zk_` prefix; the prefix is put
//!   back so [`Mntr`] accessors work unchanged.
//! - `configuration`: no membership at all, so `voting_view` is fetched too.
//!   It lists voters only (observers are absent), and a static config gives
//!   the client address of the answering server only.
//! - `connections`: a list of objects; the session id is a decimal number.
//! - Refusals: a command that cannot run answers 200 with `"error": "This
//!   ZooKeeper instance is not currently serving requests"`; `monitor`
//!   without quorum fails with HTTP 500 (a NullPointerException in 3.8.0).
//!
//! Why not a crate: five GETs of small JSON do not justify an HTTP client in
//! the dependency tree; this reads to EOF with `Connection: close`.

use std::time::Duration;

use serde_json::Value;

mod json;

pub use json::{conf_from_json, cons_from_json, mntr_from_json, srvr_from_json};

use super::conf::Conf;
use super::cons::{Cons, Ruok};
use super::fourlw::exchange;
use super::mntr::Mntr;
use super::srvr::Srvr;
use super::{ObserveError, ParseError};

const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Fetches `/commands/<command>` from the AdminServer at `addr` and
/// returns its JSON, with HTTP and command errors turned into [`ObserveError`].
pub async fn admin_command(
    addr: &str,
    command: &'static str,
    timeout: Duration,
) -> Result<Value, ObserveError> {
    let path = format!("/commands/{command}");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    let raw = exchange(
        addr,
        request.as_bytes(),
        timeout,
        MAX_RESPONSE_BYTES,
        command,
    )
    .await?;
    let parse_err = |reason: String| ObserveError::Parse {
        addr: addr.to_string(),
        word: command,
        source: ParseError::new(command, reason),
    };
    let (status, body) = split_http_response(&raw).map_err(parse_err)?;
    if status != 200 {
        return Err(ObserveError::HttpStatus {
            addr: addr.to_string(),
            path,
            status,
        });
    }
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| parse_err(format!("body is not JSON: {e}")))?;
    match json.get("error").and_then(Value::as_str) {
        Some(msg) if msg == NOT_SERVING => Err(ObserveError::NotServing {
            addr: addr.to_string(),
            word: command,
        }),
        Some(msg) => Err(ObserveError::AdminCommand {
            addr: addr.to_string(),
            command,
            message: msg.to_string(),
        }),
        None => Ok(json),
    }
}

/// `srvr` through the AdminServer.
pub async fn admin_srvr(addr: &str, timeout: Duration) -> Result<Srvr, ObserveError> {
    let json = admin_command(addr, "srvr", timeout).await?;
    srvr_from_json(&json).map_err(|e| wrap(addr, "srvr", e))
}

/// `mntr` through the AdminServer (`monitor`).
pub async fn admin_mntr(addr: &str, timeout: Duration) -> Result<Mntr, ObserveError> {
    let json = admin_command(addr, "monitor", timeout).await?;
    mntr_from_json(&json).map_err(|e| wrap(addr, "monitor", e))
}

/// `conf` through the AdminServer: `configuration` plus `voting_view` for
/// the membership.
pub async fn admin_conf(addr: &str, timeout: Duration) -> Result<Conf, ObserveError> {
    let (configuration, voting) = tokio::join!(
        admin_command(addr, "configuration", timeout),
        admin_command(addr, "voting_view", timeout)
    );
    conf_from_json(&configuration?, Some(&voting?)).map_err(|e| wrap(addr, "configuration", e))
}

/// `cons` through the AdminServer (`connections`).
pub async fn admin_cons(addr: &str, timeout: Duration) -> Result<Cons, ObserveError> {
    let json = admin_command(addr, "connections", timeout).await?;
    cons_from_json(&json).map_err(|e| wrap(addr, "connections", e))
}

/// `ruok` through the AdminServer: any answer without an error is `imok`.
pub async fn admin_ruok(addr: &str, timeout: Duration) -> Result<Ruok, ObserveError> {
    admin_command(addr, "ruok", timeout)
        .await
        .map(|_| Ruok::Imok)
}

fn wrap(addr: &str, word: &'static str, source: ParseError) -> ObserveError {
    ObserveError::Parse {
        addr: addr.to_string(),
        word,
        source,
    }
}

/// Splits an HTTP/1.x response into its status and body (de-chunked).
pub fn split_http_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("no end of HTTP headers")?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let body = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad HTTP status line `{status_line}`"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k == "content-length" {
            length = v.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else {
        body[..length.unwrap_or(body.len()).min(body.len())].to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").ok_or("truncated chunk size")?;
        let size_str = String::from_utf8_lossy(&body[..line_end]);
        let size_hex = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn http_responses() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(split_http_response(raw).unwrap(), (200, b"{}".to_vec()));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(
            split_http_response(raw).unwrap(),
            (200, b"{\"a\":1}".to_vec())
        );
        let raw = b"HTTP/1.1 500 Server Error\r\nConnection: close\r\n\r\n<html>";
        assert_eq!(split_http_response(raw).unwrap().0, 500);
        assert!(split_http_response(b"garbage").is_err());
        assert!(split_http_response(b"SSH-2.0\r\n\r\n").is_err());
    }

    proptest! {
        #[test]
        fn http_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = split_http_response(&b);
            let mut with_head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            with_head.extend_from_slice(&b);
            let _ = split_http_response(&with_head);
        }
    }
}
