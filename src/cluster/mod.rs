//! Everything that talks to the API server: connecting, server-side apply,
//! the stack's objects, nodes, the wait, and the probes the commands make.
//! Commands translate their flags into calls here and into pure planners;
//! nothing else in the crate holds a client.

pub(crate) mod apply;
mod client;
pub(crate) mod exec;
pub(crate) mod nodes;
pub(crate) mod preflight;
pub(crate) mod probe;
pub(crate) mod prune;
mod scope;
pub(crate) mod stack;
pub(crate) mod wait;
pub(crate) mod workloads;

pub(crate) use client::*;
pub(crate) use scope::{ResourceScope, Scope};
