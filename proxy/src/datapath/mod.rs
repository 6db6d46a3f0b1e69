//! The data path: listeners, dialect parsers, body rewriting, on pingora.
//! It extracts what to inspect, asks the decision core, and enforces the
//! answer on the wire. It never decides policy itself.

pub mod body;
pub mod config;
pub mod dialect;
pub mod encoding;
pub mod enforce;
pub mod forward;
pub mod front;
pub mod gateway;
pub mod hooks;
pub mod identity;
pub mod inspect_slots;
pub mod iptables;
pub mod path_norm;
pub mod peer;
pub mod protocol;
pub mod resolve;
pub mod response_guard;
pub mod route;
pub mod server;
pub mod session_gate;
pub mod stream;
pub mod strict_json;
pub mod timeouts;
pub mod tls;
pub mod transparent;
pub mod tunnel;
pub mod ws;
