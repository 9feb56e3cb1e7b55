//! The pure core: given an object and a read-only view of the cluster, what is the verdict or
//! the patch. No I/O, no async, no logging: every function here is tested without a network.

pub mod audit;
pub mod enforce;
pub mod explain;
pub mod finding;
pub mod index;
pub mod message;
pub mod model;
pub mod mutate;
pub mod names;
pub mod openreports;
pub mod policy;
pub mod reduce;
pub mod references;
pub mod sandbox;
pub mod validate;
pub mod verdict;
pub mod view;
