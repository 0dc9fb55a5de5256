//! Injected failures and slowness of the API server (`zklab fault api`).
//!
//! The fault is a small JSON file (`<lab>/faults/api.json`, written by
//! `zklab fault api` in another process) carrying an absolute expiry time,
//! so a fault never outlives its `--for`, whoever forgets to clear it. The
//! server stats the file on every resource request and re-reads it only
//! when its identity (inode, mtime, size) changes: the writer replaces it
//! by rename, so a new fault is a new inode and its `--every` count starts
//! afresh.
//!
//! Only resource requests are affected: discovery (`/api`, `/apis`,
//! `/version`, `/openapi`), health and `/metrics` never fail and are never
//! slowed, so clients keep finding the resources and a benchmark can keep
//! counting. The answers are the `Status` objects the real server sends
//! for the same codes: `NewInternalError` (500), `NewServiceUnavailable`
//! (503), `NewTooManyRequests` with `Retry-After: 1` as API Priority and
//! Fairness rejects (429), `NewConflict` with the optimistic-concurrency
//! wording (409).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Response;
use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{self, Body};
use crate::k8s::error::ApiError;

/// The schema version of the fault file.
pub const FAULT_FILE_VERSION: u32 = 1;

/// The status codes a fault may answer with.
pub const FAULT_CODES: [u16; 4] = [500, 503, 429, 409];

/// The verbs a fault may match (RBAC's, as `RequestInfo` derives them).
pub const FAULT_VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// The wording of the real server's optimistic-concurrency conflict
/// (`registry/generic/registry/store.go`, `OptimisticLockErrorMsg`).
pub const CONFLICT_WHY: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// The fault file (`<lab>/faults/api.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiFault {
    /// [`FAULT_FILE_VERSION`].
    pub version: u32,
    /// Answer matching requests with this code (one of [`FAULT_CODES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Fail only every Nth matching request (1: each one).
    #[serde(default = "one")]
    pub every: u32,
    /// Delay every matching request by this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_ms: Option<u64>,
    /// The verbs matched; empty matches every verb.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// When the fault ends, in milliseconds since the Unix epoch.
    pub expires_at_unix_ms: u64,
}

fn one() -> u32 {
    1
}

impl ApiFault {
    /// Why the fault cannot be applied, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != FAULT_FILE_VERSION {
            return Err(format!(
                "version {} is not {FAULT_FILE_VERSION}",
                self.version
            ));
        }
        if let Some(code) = self.status
            && !FAULT_CODES.contains(&code)
        {
            return Err(format!(
                "status {code} is not one of {}",
                codes_text(&FAULT_CODES)
            ));
        }
        if self.status.is_none() && self.slow_ms.is_none() {
            return Err("neither a status nor a delay".into());
        }
        if self.every == 0 {
            return Err("every must be at least 1".into());
        }
        if let Some(v) = self
            .verbs
            .iter()
            .find(|v| !FAULT_VERBS.contains(&v.as_str()))
        {
            return Err(format!(
                "verb {v:?} is not one of {}",
                FAULT_VERBS.join(", ")
            ));
        }
        Ok(())
    }

    /// Whether it still holds at `now_ms` (ms since the epoch).
    pub fn active(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_unix_ms
    }

    /// Whether it applies to a request with `verb`.
    pub fn matches(&self, verb: &str) -> bool {
        self.verbs.is_empty() || self.verbs.iter().any(|v| v == verb)
    }

    /// What to do with the `nth` matching request (1-based) at `now_ms`.
    pub fn decide(&self, verb: &str, nth: u64, now_ms: u64) -> Decision {
        if !self.active(now_ms) || !self.matches(verb) {
            return Decision::default();
        }
        Decision {
            delay: self.slow_ms.map(Duration::from_millis),
            fail: self
                .status
                .filter(|_| nth.is_multiple_of(u64::from(self.every.max(1)))),
        }
    }
}

fn codes_text(codes: &[u16]) -> String {
    codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a fault does to one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long before serving.
    pub delay: Option<Duration>,
    /// Then answer with this code instead of serving.
    pub fail: Option<u16>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The identity of one version of the file: a rename makes a new inode.
type Stamp = (u64, Option<SystemTime>, u64);

#[derive(Default)]
struct Cached {
    stamp: Option<Stamp>,
    fault: Option<ApiFault>,
    /// Matching requests seen under this fault.
    matched: u64,
}

/// The fault file as the API server sees it.
pub struct FaultSource {
    path: Option<PathBuf>,
    cached: Mutex<Cached>,
}

impl FaultSource {
    /// Reads `path` (none: the server never injects anything).
    pub fn new(path: Option<PathBuf>) -> FaultSource {
        FaultSource {
            path,
            cached: Mutex::new(Cached::default()),
        }
    }

    /// What to do with a resource request with `verb`, now.
    pub fn decide(&self, verb: &str) -> Decision {
        let Some(path) = &self.path else {
            return Decision::default();
        };
        let stamp = std::fs::metadata(path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.ino(), m.modified().ok(), m.len())
        });
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.stamp != stamp {
            let fault = stamp.and_then(|_| read_fault(path));
            *cached = Cached {
                stamp,
                fault,
                matched: 0,
            };
        }
        let Some(fault) = cached.fault.clone() else {
            return Decision::default();
        };
        let now = now_unix_ms();
        if !fault.active(now) || !fault.matches(verb) {
            return Decision::default();
        }
        cached.matched += 1;
        fault.decide(verb, cached.matched, now)
    }
}

fn read_fault(path: &std::path::Path) -> Option<ApiFault> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str::<ApiFault>(&text)
        .map_err(|e| e.to_string())
        .and_then(|f| f.validate().map(|()| f))
    {
        Ok(f) => {
            tracing::info!(path = %path.display(), fault = ?f, "API fault loaded");
            Some(f)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring a bad API fault file");
            None
        }
    }
}

/// The object a request is about, for the Status `details`.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    /// Plural resource, e.g. `pods`.
    pub resource: &'a str,
    pub group: &'a str,
    /// Empty for collections.
    pub name: &'a str,
}

/// The injected error for `code`, worded as the real server words it.
pub fn injected_error(code: u16, target: &Target<'_>) -> ApiError {
    match code {
        409 => ApiError::conflict(target.resource, target.group, target.name, CONFLICT_WHY),
        429 => ApiError::too_many_requests("Too many requests, please try again later."),
        503 => {
            let mut e = ApiError::internal(
                "the server is currently unable to handle the request (zklab fault api)",
            );
            e.code = 503;
            e.reason = "ServiceUnavailable".into();
            e
        }
        _ => ApiError::internal("Internal error occurred: zklab fault api: injected failure"),
    }
}

/// The response for an injected `code`: the `Status`, plus `Retry-After`
/// and `details.retryAfterSeconds` for 429, and for 500 the cause as
/// `NewInternalError` lists it.
pub fn injected_response(code: u16, target: &Target<'_>) -> Response<Body> {
    let e = injected_error(code, target);
    let mut status = e.to_status();
    match code {
        429 => status["details"] = json!({"retryAfterSeconds": 1}),
        500 => {
            status["details"] =
                json!({"causes": [{"message": "zklab fault api: injected failure"}]})
        }
        _ => {}
    }
    let mut r = http::json(code, &status);
    if code == 429 {
        r.headers_mut().insert(
            HeaderName::from_static("retry-after"),
            HeaderValue::from_static("1"),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(status: Option<u16>, every: u32, slow_ms: Option<u64>, verbs: &[&str]) -> ApiFault {
        ApiFault {
            version: FAULT_FILE_VERSION,
            status,
            every,
            slow_ms,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            expires_at_unix_ms: 10_000,
        }
    }

    #[test]
    fn the_file_format_is_exact() {
        let f = fault(Some(429), 2, None, &["get", "list"]);
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"version":1,"status":429,"every":2,"verbs":["get","list"],"expiresAtUnixMs":10000}"#
        );
        let back: ApiFault =
            serde_json::from_str(r#"{"version":1,"slowMs":300,"expiresAtUnixMs":5}"#).unwrap();
        assert_eq!(back, fault(None, 1, Some(300), &[]).with_expiry(5));
        assert!(
            serde_json::from_str::<ApiFault>(r#"{"version":1,"expiresAtUnixMs":5,"x":1}"#).is_err()
        );
    }

    impl ApiFault {
        fn with_expiry(mut self, ms: u64) -> ApiFault {
            self.expires_at_unix_ms = ms;
            self
        }
    }

    #[test]
    fn validation_names_what_is_wrong() {
        assert!(fault(Some(500), 1, None, &[]).validate().is_ok());
        assert!(fault(None, 1, Some(10), &["watch"]).validate().is_ok());
        let e = fault(Some(404), 1, None, &[]).validate().unwrap_err();
        assert_eq!(e, "status 404 is not one of 500, 503, 429, 409");
        assert!(fault(None, 1, None, &[]).validate().is_err());
        assert!(fault(Some(500), 0, None, &[]).validate().is_err());
        let e = fault(Some(500), 1, None, &["bind"]).validate().unwrap_err();
        assert!(
            e.starts_with("verb \"bind\" is not one of get, list"),
            "{e}"
        );
    }

    #[test]
    fn every_nth_matching_request_fails_until_expiry() {
        let f = fault(Some(503), 3, Some(20), &["get"]);
        let fails: Vec<bool> = (1..=6)
            .map(|n| f.decide("get", n, 0).fail.is_some())
            .collect();
        assert_eq!(fails, [false, false, true, false, false, true]);
        assert_eq!(f.decide("get", 1, 0).delay, Some(Duration::from_millis(20)));
        assert_eq!(f.decide("list", 3, 0), Decision::default(), "verb filter");
        assert_eq!(f.decide("get", 3, 10_000), Decision::default(), "expired");
    }

    #[test]
    fn injected_statuses_are_worded_as_the_real_ones() {
        let t = Target {
            resource: "statefulsets",
            group: "apps",
            name: "zk",
        };
        let s = injected_error(409, &t).to_status();
        assert_eq!(s["reason"], "Conflict");
        assert_eq!(
            s["message"],
            "Operation cannot be fulfilled on statefulsets.apps \"zk\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(s["details"]["kind"], "statefulsets");
        let s = injected_error(503, &t).to_status();
        assert_eq!(
            (s["code"].as_u64(), s["reason"].as_str()),
            (Some(503), Some("ServiceUnavailable"))
        );
        let r = injected_response(429, &t);
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let s = injected_error(500, &t).to_status();
        assert_eq!(s["reason"], "InternalError");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .starts_with("Internal error occurred: ")
        );
    }

    #[test]
    fn the_source_rereads_a_replaced_file_and_restarts_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.json");
        let src = FaultSource::new(Some(path.clone()));
        assert_eq!(src.decide("get"), Decision::default(), "no file");
        let far = now_unix_ms() + 60_000;
        let write = |f: &ApiFault| {
            let tmp = dir.path().join("tmp");
            std::fs::write(&tmp, serde_json::to_vec(f).unwrap()).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        write(&fault(Some(500), 2, None, &[]).with_expiry(far));
        assert_eq!(src.decide("get").fail, None);
        assert_eq!(src.decide("get").fail, Some(500));
        write(&fault(Some(409), 2, None, &[]).with_expiry(far));
        assert_eq!(src.decide("get").fail, None, "a new fault counts afresh");
        assert_eq!(src.decide("get").fail, Some(409));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(src.decide("get"), Decision::default(), "cleared");
    }
}
