//! The lab's Kubernetes control plane (DESIGN section 8, issue 4): an API
//! server that the real kube client and kubectl talk to, and the
//! controllers, kubelet, proxy and DNS that make its objects real.
//!
//! # Layout
//!
//! - [`resources`]: the served kinds (one table for discovery, routing and
//!   storage keys).
//! - [`apiserver`]: the HTTPS API server (TLS, tokens, discovery, routes, watch).
//! - [`error`]: API errors as `Status` objects.
//! - [`admission`]: defaulting, validation as the real API, ClusterIP allocation.
//! - [`store`]: objects, resourceVersions, watch history, admission hook,
//!   graceful Pod deletion.
//! - [`patch`]: JSON, merge, strategic merge patch and server-side apply.
//! - [`kubelet`]: binds Pods to the node and runs them for real (network
//!   namespace, bubblewrap sandbox, the `zookeeper` image, probes, logs).
//! - [`proxy`]: kube-proxy: ClusterIP DNAT (iptables) in every lab
//!   namespace, from Services and EndpointSlices.
//! - [`controllers`]: EndpointSlice, StatefulSet, claim binding, garbage
//!   collection and PDB status, in-process against the store.
//! - [`controlplane`]: all of the above as one process (`zklab controlplane`).
//! - [`dns`]: cluster DNS (`*.svc.cluster.local`, the lab host names).
//!
//! Every fallible API operation returns `Result<_, ApiError>`; `ApiError`
//! carries a whole `Status` (about 150 bytes). Errors are the rare path here
//! and are turned into HTTP responses at once, so clippy's
//! `result_large_err` is allowed for the module rather than boxing every
//! error at every call site.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod apiserver;
pub mod controllers;
pub mod controlplane;
pub mod dns;
pub mod error;
pub mod kubelet;
pub mod patch;
pub mod proxy;
pub mod resources;
pub mod store;
