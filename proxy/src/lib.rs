//! Agent Security Gateway (`asg`): an inspecting proxy between AI agents,
//! LLM APIs and tool servers.
//!
//! Architecture, by module:
//! * [`decision`]: the decision core (detectors, policy, scoring,
//!   redaction), the `asg-core` crate. Pure; knows nothing of pingora,
//!   storage or files.
//! * [`datapath`]: listeners, dialect parsers and body rewriting on pingora.
//!   Extracts what to inspect, asks the core, enforces the answer.
//! * [`state`]: sessions, approvals and audit on sled.
//! * [`edge`]: the admin listener: health, metrics, inspect and operator API.
//! * [`kube`]: the Kubernetes sidecar injector (webhook, `kube-inject`, `pod-init`).
//! * [`telemetry`]: OpenTelemetry traces over OTLP (off unless configured).
//! * [`metrics`], [`inspect_slots`], [`util`]: below the data path and the
//!   edge, which both use them (the two never import each other).
//! * [`app`] and [`config`] wire them together; [`cli`] is the `asg` command.
//!   `proxy/tests/layers.rs` checks that references point down only.

pub mod app;
pub mod cli;
pub mod config;
pub mod datapath;
pub mod edge;
pub mod inspect_slots;
pub mod kube;
pub mod metrics;
pub mod state;
pub mod telemetry;
pub mod util;

/// The decision core lives in its own crate (`proxy/core`, `asg-core`) so the
/// compiler keeps it free of I/O; this name keeps `crate::decision::…` paths.
pub use asg_core as decision;
