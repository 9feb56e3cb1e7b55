//! Shared test helpers. Each test binary uses a different subset.
#![allow(dead_code)]

pub mod fixtures;
pub mod view;
