//! The parts of `kubectl devenv forward`: local ports and client commands
//! (pure), the pod watch, and the per-connection port-forward streams.

pub(crate) mod clients;
pub(crate) mod listener;
pub(crate) mod notice;
pub(crate) mod pods;
pub(crate) mod ports;
pub(crate) mod sessions;
pub(crate) mod spdy;
pub(crate) mod stream;
pub(crate) mod tasks;
pub(crate) mod tunnel;
pub(crate) mod websocket;
