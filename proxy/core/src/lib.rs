//! The decision core: detectors, policy, scoring, redaction.
//!
//! Nothing here knows about pingora, HTTP or storage. The data path hands
//! in a [`subject::Subject`] and acts on the [`engine::Assessment`] it gets
//! back; the edge does the same for the `/inspect/*` API.

pub mod approvals;
pub mod detectors;
pub mod engine;
pub mod normalize;
pub mod pipeline;
pub mod policy;
pub mod redact;
pub mod report;
pub mod session;
pub mod sources;
pub mod subject;
pub mod types;
pub mod util;

pub use engine::{assess, assess_with_history, decide, kept_secrets, Assessment, Masking};
pub use policy::Policy;
pub use subject::{Subject, Surface, TextPart, ToolCall};
pub use types::{Decision, DetectorId, Finding, Severity};
