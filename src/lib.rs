//! harness-guard: a Kubernetes admission webhook for kagent `AgentHarness` objects and the
//! OpenShell sandbox pods they run in.
//!
//! ```text
//!   kube-apiserver ──TLS (h2 | http/1.1)──▶ server/   accept loop, TLS reload, routes
//!                                             │
//!                                         admission.rs  AdmissionReview ⇄ core, no I/O
//!                                             │
//!                                           core/     PURE: validate, mutate, enforce
//!                                             │          over a read-only ClusterView
//!                                          cluster/   object stores + index, fed by watchers
//!                                                     (cluster mode) or manifests (default)
//! ```
//! Decisions are plain functions of (object, view, policy); everything that waits, reads a file
//! or speaks HTTP lives around them.
#![forbid(unsafe_code)]

/// The allocator is set here, not in `main.rs`, so that every binary built from this crate (the
/// server, and the load tool that measures it) runs on what ships: `docs/performance.md`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod admission;
pub mod app;
pub mod certs;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod core;
pub mod report;
pub mod server;
pub mod serving;
pub mod telemetry;
