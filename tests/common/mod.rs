//! Shared test helpers. Each test binary uses a different subset.
#![allow(dead_code)]

pub mod fake_apiserver;
pub mod fixtures;
pub mod server;
pub mod tls;
pub mod view;
