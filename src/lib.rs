//! zkmigrate: move a live ZooKeeper ensemble from hosts into Kubernetes with
//! no downtime and no lost write.
//!
//! # Layout
//!
//! The pipeline is `plan file -> ValidatedPlan -> observe -> compute plan ->
//! act`, and the modules follow it. Everything but the three I/O boundaries
//! (ZooKeeper, hosts, Kubernetes) is a pure function of data.
//!
//! - [`plan`]: the plan file (`zkmigrate/v1`): serde structs that reject
//!   unknown fields, validated into a [`plan::ValidatedPlan`] that every later
//!   stage takes and none re-validates.
//! - [`steps`]: the names of the migration steps, in order.
//! - [`zoocfg`]: a lossless model of `zoo.cfg` and dynamic config files:
//!   parse, rewrite the `server.N` lines, render byte-for-byte.
//! - [`observe`]: the ZooKeeper boundary for reading: four-letter words and
//!   the AdminServer, parsed into typed observations, and the pure health
//!   predicates the safety gates are built from.
//! - [`hosts`]: the hosts boundary: run a service command, read and
//!   atomically replace a file, see which ports listen, on one server's
//!   host, over ssh (ControlMaster) or a local exec prefix.
//! - [`k8s`]: the Kubernetes boundary: one client from the kubeconfig,
//!   server-side apply that never forces silently, waits by watch, the
//!   preflight's permission and foreign-object checks, Events on Services.
//! - [`journal`]: where the migration stands (DESIGN section 6): a
//!   versioned JSON document held under an exclusive lock and written
//!   atomically; the engine records intent before every action.
//! - [`engine`]: the migration engine: actions as data, the pure plan
//!   builder, the quorum-first gate, the step loop.
//! - [`failpoint`]: crash and pause points at the journaled boundaries,
//!   compiled in only with the `failpoints` feature (the crash matrix).
//! - [`manifests`]: the Kubernetes objects of the migration (per-server
//!   Services and host EndpointSlices, the Pods' zoo.cfg and ordinals
//!   ConfigMaps, StatefulSets, PodDisruptionBudget), built purely from the
//!   plan and what was observed, and rendered as YAML.
//! - [`runbook`]: the Markdown runbook of the computed plan: every action
//!   with the commands to do it by hand, its check and its undo, the gates
//!   between them; each step writes its own part (`manual`).
//! - [`commands`]: one module per CLI command; each turns parsed arguments
//!   into calls of the modules above and output through [`output`].
//! - [`output`]: the one printer for user-facing text and JSON.
//! - [`cli`]: the command line (clap), and [`exit`]: its exit codes.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod exit;
pub mod failpoint;
pub mod hosts;
pub mod journal;
pub mod k8s;
pub mod manifests;
pub mod observe;
pub mod output;
pub mod plan;
pub mod progress;
pub mod runbook;
pub mod steps;
pub mod zoocfg;
