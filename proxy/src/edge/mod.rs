//! The edge: the admin listener (health, readiness, metrics, the inspect
//! API, and the operator API) with authentication, roles and rate limits.

// axum handlers return `Result<_, Response>` by design; boxing every error
// response would only add noise.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod approvals;
pub mod auth;
pub mod config;
pub mod guard;
pub mod http;
pub mod idle;
pub mod inspect_api;
/// Metrics live below the layers (`crate::metrics`); this name keeps old paths.
pub use crate::metrics;
pub mod operator;
pub mod ratelimit;
