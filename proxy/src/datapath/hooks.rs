//! The seam between the wire and the session layer.
//!
//! [`enforce`](super::enforce) and the stream rewriters stay free of
//! storage and of deciding: they hand what they observed to a
//! [`SessionHooks`], which runs the decision pipeline
//! ([`crate::decision::pipeline`]) in the request's session — its state,
//! its approval gate, its record — and map the [`Outcome`] onto the wire.
//! [`NoSession`] runs the same pipeline without a session (unit tests,
//! and traffic without session tracking): nothing is loaded or recorded,
//! and a call that needs approval is refused as such.

use crate::decision::pipeline::{
    self, Channel, Earlier, Inputs, Observed, Outcome, Phase, Scoring, StateView, Who,
};
use crate::decision::redact::Masker;
use crate::decision::{Masking, Policy, Subject};
use serde_json::Value;

/// One observation of a proxied stage, as the wire side sees it.
pub struct Judge<'a> {
    pub policy: &'a Policy,
    pub masker: &'a Masker,
    pub request_id: &'a str,
    pub dialect: &'a str,
    pub phase: Phase,
    pub subject: &'a Subject,
    pub masking: Masking,
    /// Calls of this stage judged before (a stream's earlier calls).
    pub earlier: &'a [Earlier],
}

impl Judge<'_> {
    /// The observation on a channel without a session layer.
    pub fn observed<'b>(&'b self, route: &'b str, holds: bool) -> Observed<'b> {
        Observed {
            phase: self.phase,
            channel: Channel::Proxy {
                route,
                dialect: self.dialect,
                holds,
            },
            subject: self.subject,
            scoring: Scoring::PerPart,
            masking: self.masking,
        }
    }
}

pub trait SessionHooks: Send + Sync {
    /// The stage's body was parsed (identity may be read from it); the
    /// stage's scopes are loaded.
    fn begin(&self, _body: &Value) {}
    /// Decide through the pipeline.
    fn judge(&self, j: &Judge<'_>) -> Outcome {
        let inp = Inputs {
            policy: j.policy,
            masker: j.masker,
            binding_key: &[],
            request_id: j.request_id,
            who: Who::default(),
            state: StateView::Off,
            now_ms: crate::state::now_ms(),
            permit: None,
            held: false,
            earlier: j.earlier,
        };
        // Nobody to bind an approval to: no gate steps are asked for.
        pipeline::run(&inp, &j.observed("", false), |_| Vec::new())
    }
}

/// No session layer.
pub struct NoSession;

impl SessionHooks for NoSession {}
