//! Why the gateway did not start: one sentence each (what, where, what to
//! do), printed by `asg` before it exits with status 2.

use crate::config::ConfigError;
use crate::datapath::forward::ForwardError;
use crate::datapath::route::RouteError;
use crate::datapath::tls::TlsError;
use crate::decision::policy::PolicyError;
use crate::state::{KeyError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot load policy: {0}")]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MaskKey(#[from] KeyError),
    #[error(transparent)]
    Routes(#[from] RouteError),
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `ASG_STATE_URL`: the URL, or the store behind it at start.
    #[error(transparent)]
    SharedState(#[from] crate::state::shared::SharedStateError),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    #[error("cannot register the shared-state metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr} ({var}): {source}")]
    Listen {
        addr: String,
        var: &'static str,
        source: std::io::Error,
    },
    #[error("cannot watch the policy folder: {0}")]
    PolicyWatch(#[from] notify::Error),
    #[error(
        "asg control serves a fleet's shared state: set ASG_STATE_URL (the gateways' redis:// URL)"
    )]
    ControlWithoutSharedState,
}
