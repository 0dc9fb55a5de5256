//! The plan hash the journal stores (DESIGN section 6).
//!
//! It is the SHA-256 of the canonical JSON of the validated plan without
//! `policy`: after a halt an operator may raise a timeout and resume, but
//! any change to what the migration does (a server, an address, a name,
//! the target) makes `step --resume` refuse the journal.
//!
//! Canonical because it is computed from the validated values, not the
//! text: comments, key order, flow or block style, and spelling out a
//! default do not change it. Struct fields serialize in declaration order
//! and no map is involved, so the bytes are stable for a given build.
//! Adding a field to the validated types changes every hash: a journal
//! written by an older zkmigrate is then refused, which is the safe side.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::API_VERSION;
use super::types::{Clients, Ensemble, Kubernetes, Server, StateBackend, ValidatedPlan};

/// What the hash covers: everything but `policy` (and the warnings and
/// base directory, which are not part of the plan).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Hashed<'a> {
    api_version: &'a str,
    name: &'a str,
    servers: &'a [Server],
    ensemble: &'a Ensemble,
    kubernetes: &'a Kubernetes,
    clients: &'a Clients,
    state: &'a StateBackend,
}

impl ValidatedPlan {
    /// The plan hash: 64 lower-case hex digits.
    pub fn hash(&self) -> String {
        let hashed = Hashed {
            api_version: API_VERSION,
            name: &self.name,
            servers: &self.servers,
            ensemble: &self.ensemble,
            kubernetes: &self.kubernetes,
            clients: &self.clients,
            state: &self.state,
        };
        // Serializing these types cannot fail (string keys, no maps, no
        // paths that may not be UTF-8); should it ever, the error text is
        // hashed instead, which no journal will match.
        let bytes = serde_json::to_vec(&hashed)
            .unwrap_or_else(|e| format!("unserializable plan: {e}").into_bytes());
        let digest = Sha256::digest(&bytes);
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}
