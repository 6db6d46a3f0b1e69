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
pub mod idle;
pub mod inspect_api;
pub mod metrics;
pub mod operator;
pub mod ratelimit;
