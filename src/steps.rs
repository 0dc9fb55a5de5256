//! The migration's steps, in the order they run (DESIGN section 5).
//!
//! Names are part of the contract: they appear in the plan file
//! (`policy.confirm`), on the command line (`--until`, `--confirm`, `--to`)
//! and in `status -o json`.

use serde::{Deserialize, Serialize};

/// One step of the migration.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum StepName {
    /// Check the ensemble, the cluster and the network prerequisites.
    Preflight,
    /// One selector-less ClusterIP Service and hand-managed EndpointSlice per server.
    Services,
    /// Clients move to the Service names.
    Clients,
    /// Rewrite every `server.N` line to the Service names; one rolling restart.
    Peers,
    /// Replace the hosts one at a time with Pods that keep the same myid.
    Replace,
    /// Verify the end state and hand over.
    Finalize,
}

impl StepName {
    /// Every step, in order.
    pub const ALL: [StepName; 6] = [
        StepName::Preflight,
        StepName::Services,
        StepName::Clients,
        StepName::Peers,
        StepName::Replace,
        StepName::Finalize,
    ];

    /// The name as written in plan files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Preflight => "preflight",
            StepName::Services => "services",
            StepName::Clients => "clients",
            StepName::Peers => "peers",
            StepName::Replace => "replace",
            StepName::Finalize => "finalize",
        }
    }
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StepName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepName::ALL
            .into_iter()
            .find(|step| step.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = StepName::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown step {s:?}; expected one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for step in StepName::ALL {
            assert_eq!(step.as_str().parse::<StepName>().unwrap(), step);
            let json = serde_json::to_string(&step).unwrap();
            assert_eq!(json, format!("\"{}\"", step.as_str()));
        }
        assert!("replace-all".parse::<StepName>().is_err());
    }

    #[test]
    fn all_is_in_run_order() {
        let mut sorted = StepName::ALL;
        sorted.sort();
        assert_eq!(sorted, StepName::ALL);
    }
}
