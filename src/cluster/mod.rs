//! The I/O edge that fills the cluster view: object stores, fed by kube-rs watchers in cluster
//! mode or by a manifest directory in the built-in default.

pub mod audit;
pub mod client;
pub mod ingest;
pub mod lease;
pub mod list;
pub mod manifests;
pub mod openreports;
pub mod producers;
pub mod selfsigned;
pub mod view;
pub mod watch;
pub mod worker_pools;
