//! The parts of `kubectl devenv forward`: local ports and client commands
//! (pure), the pod watch, and the per-connection port-forward streams.

pub mod clients;
pub mod listener;
pub mod notice;
pub mod pods;
pub mod ports;
pub mod sessions;
pub mod spdy;
pub mod stream;
pub mod tasks;
pub mod tunnel;
pub mod websocket;
