//! Everything that talks to the API server: connecting, server-side apply,
//! the stack's objects, nodes, the wait, and the probes the commands make.
//! Commands translate their flags into calls here and into pure planners;
//! nothing else in the crate holds a client.

pub mod apply;
mod client;
pub mod exec;
pub mod nodes;
pub mod preflight;
pub mod probe;
pub mod prune;
mod scope;
pub mod stack;
pub mod wait;
pub mod workloads;

pub use client::*;
pub use scope::{ResourceScope, Scope};
