//! The lab's Kubernetes control plane (DESIGN section 8, issue 4): an API
//! server that the real kube client and kubectl talk to, and the
//! controllers, kubelet, proxy and DNS that make its objects real.
//!
//! # Layout
//!
//! - [`resources`]: the served kinds (one table for discovery, routing and
//!   storage keys).
//! - [`error`]: API errors as `Status` objects.
//! - [`store`]: objects, resourceVersions, watch history, admission hook,
//!   graceful Pod deletion.

pub mod error;
pub mod resources;
pub mod store;
