//! `kubectl devenv sync`: one-way upload of a local tree into the dev pod's
//! code directory, then pushing changes as they happen.
//!
//! Pure parts, unit-tested: [`scan`] (what to send, with the ignore rules),
//! [`manifest`] (what the pod holds), [`plan`] (the difference, and the
//! bounded deletes), [`pack`] (one gzip'd tar stream per batch). The I/O:
//! [`remote`] (scripts run through exec with the container's own `tar`),
//! [`watch`] (notify plus a debouncer) and [`session`] (following the pod).

pub mod manifest;
pub mod pack;
pub mod plan;
pub mod scan;

/// Sync's directory inside the code directory, in the pod: manifest,
/// journal, lock, staging. Never synced from the local tree.
pub const META_DIR: &str = ".devenv-sync";
