//! `zklab fault api`: make the lab's API server fail or slow for a while.
//!
//! The API server runs in another process (`zklab controlplane`); the
//! fault reaches it as a file, `<lab>/faults/api.json`
//! ([`ApiFault`](crate::k8s::apiserver::faults::ApiFault), read by
//! [`crate::k8s::apiserver::faults`]). The file carries an absolute expiry,
//! so a fault ends on time whatever happens to this command; it is
//! replaced by rename, so the server never reads half a file and counts
//! `--every` afresh for each new fault.

use std::time::Duration;

use crate::LabError;
use crate::k8s::apiserver::faults::{
    ApiFault, FAULT_CODES, FAULT_FILE_VERSION, FAULT_VERBS, now_unix_ms,
};
use crate::layout::Layout;

/// What `zklab fault api` was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiFaultRequest {
    /// Answer with this code.
    pub status: Option<u16>,
    /// Delay by this much.
    pub slow: Option<Duration>,
    /// For this long.
    pub duration: Duration,
    /// Fail only every Nth matching request.
    pub every: u32,
    /// Only these verbs (empty: all).
    pub verbs: Vec<String>,
}

impl ApiFaultRequest {
    /// The fault file's content, expiring `duration` after `now_ms`; a
    /// usage error names what is wrong.
    pub fn to_fault(&self, now_ms: u64) -> Result<ApiFault, LabError> {
        let usage = |m: String| Err(LabError::Usage(m));
        if self.status.is_none() && self.slow.is_none() {
            return usage("say what to inject: --status CODE, --slow MS (or --clear)".into());
        }
        if let Some(code) = self.status
            && !FAULT_CODES.contains(&code)
        {
            return usage(format!(
                "--status {code} is not supported: use 500, 503, 429 (with Retry-After: 1) or 409 (Conflict)"
            ));
        }
        if self.duration.is_zero() {
            return usage("--for must be at least 1 second".into());
        }
        if self.every == 0 {
            return usage("--every must be at least 1".into());
        }
        if self.every > 1 && self.status.is_none() {
            return usage("--every applies to --status only".into());
        }
        if let Some(v) = self
            .verbs
            .iter()
            .find(|v| !FAULT_VERBS.contains(&v.as_str()))
        {
            return usage(format!(
                "--verbs: {v:?} is not a verb; use some of {}",
                FAULT_VERBS.join(",")
            ));
        }
        let fault = ApiFault {
            version: FAULT_FILE_VERSION,
            status: self.status,
            every: self.every,
            slow_ms: self.slow.map(|d| d.as_millis() as u64),
            verbs: self.verbs.clone(),
            expires_at_unix_ms: now_ms + self.duration.as_millis() as u64,
        };
        fault.validate().map_err(LabError::Usage)?;
        Ok(fault)
    }
}

/// Writes the fault for lab `layout`; it holds from now for the
/// request's duration. Returns what was written.
pub fn inject(layout: &Layout, request: &ApiFaultRequest) -> Result<ApiFault, LabError> {
    let fault = request.to_fault(now_unix_ms())?;
    let dir = layout.faults_dir();
    std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    let json = serde_json::to_string(&fault).map_err(|e| LabError::Stuck(e.to_string()))?;
    let tmp = dir.join(format!(".api.json.{}", std::process::id()));
    crate::host::write(&tmp, &format!("{json}\n"))?;
    let path = layout.api_fault_file();
    std::fs::rename(&tmp, &path).map_err(|source| LabError::Io {
        what: format!("rename {} to {}", tmp.display(), path.display()),
        source,
    })?;
    tracing::debug!(lab = %layout.name, ?fault, "API fault written");
    Ok(fault)
}

/// Ends any API fault of lab `layout` at once. Clearing none is harmless.
pub fn clear(layout: &Layout) -> Result<(), LabError> {
    let path = layout.api_fault_file();
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LabError::Io {
            what: format!("remove {}", path.display()),
            source,
        }),
    }
}

/// One line saying what `fault` does, for the operator.
pub fn describe(fault: &ApiFault, duration: Duration) -> String {
    let verbs = if fault.verbs.is_empty() {
        "every resource request".to_string()
    } else {
        format!("{} requests", fault.verbs.join("/"))
    };
    let mut parts = Vec::new();
    if let Some(ms) = fault.slow_ms {
        parts.push(format!("delays {verbs} by {ms} ms"));
    }
    if let Some(code) = fault.status {
        let which = if fault.every > 1 {
            format!("every {}th of the {verbs}", fault.every)
        } else {
            verbs.clone()
        };
        parts.push(format!("answers {which} with {code}"));
    }
    format!(
        "the API server {} for {} s (end it sooner with `zklab fault api --clear`)",
        parts.join(" and "),
        duration.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(status: Option<u16>, slow_ms: Option<u64>, secs: u64) -> ApiFaultRequest {
        ApiFaultRequest {
            status,
            slow: slow_ms.map(Duration::from_millis),
            duration: Duration::from_secs(secs),
            every: 1,
            verbs: Vec::new(),
        }
    }

    #[test]
    fn a_request_becomes_a_fault_that_expires_on_time() {
        let f = req(Some(503), None, 5).to_fault(1_000).unwrap();
        assert_eq!(f.status, Some(503));
        assert_eq!(f.expires_at_unix_ms, 6_000);
        let f = req(None, Some(300), 2).to_fault(0).unwrap();
        assert_eq!((f.slow_ms, f.status), (Some(300), None));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let err = |r: ApiFaultRequest| r.to_fault(0).unwrap_err().to_string();
        assert!(err(req(None, None, 5)).contains("--status CODE, --slow MS"));
        assert!(err(req(Some(404), None, 5)).starts_with("--status 404 is not supported"));
        assert!(err(req(Some(500), None, 0)).contains("--for"));
        let mut r = req(None, Some(10), 5);
        r.every = 2;
        assert!(err(r).contains("--every applies to --status only"));
        let mut r = req(Some(500), None, 5);
        r.verbs = vec!["get".into(), "bind".into()];
        assert!(err(r).contains("\"bind\" is not a verb"));
    }

    #[test]
    fn inject_replaces_and_clear_removes_the_file() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout {
            name: "fxunit".into(),
            root: root.path().to_path_buf(),
        };
        inject(&layout, &req(Some(500), None, 5)).unwrap();
        inject(&layout, &req(Some(409), None, 5)).unwrap();
        let text = std::fs::read_to_string(layout.api_fault_file()).unwrap();
        let f: ApiFault = serde_json::from_str(&text).unwrap();
        assert_eq!(f.status, Some(409));
        assert_eq!(
            std::fs::read_dir(layout.faults_dir()).unwrap().count(),
            1,
            "no temporary file left"
        );
        clear(&layout).unwrap();
        assert!(!layout.api_fault_file().exists());
        clear(&layout).unwrap();
    }
}
