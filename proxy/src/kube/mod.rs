//! Kubernetes: the sidecar injector and its offline twin.
//!
//! * [`admission`]: `AdmissionReview` v1 in, a base64 JSON Patch out;
//! * [`template`]: the mutation itself (sidecar, init container, agent
//!   environment, volumes), one function shared by the webhook and
//!   `asg kube-inject` ([`kube_inject`]);
//! * [`choices`]: what a pod's labels and annotations ask for;
//! * [`settings`]: the injector's settings file (rendered by the Helm chart);
//! * [`server`] and [`tls_reload`]: the HTTPS listener, its certificate
//!   reloaded when the mounted Secret changes;
//! * [`pod_init`]: what the injected init container runs (`asg pod-init`):
//!   the CA trust bundle and, in transparent mode, the redirect rules.
//!
//! An edge component: it rewrites pod specs and never inspects traffic or
//! decides anything about it; the sidecar it adds does that.

pub mod admission;
pub mod choices;
pub mod kube_inject;
pub mod pod_init;
pub mod server;
pub mod settings;
pub mod template;
pub mod tls_reload;

/// The sidecar container (the gateway).
pub const SIDECAR: &str = "asg";
/// The init container (trust bundle, redirect rules).
pub const INIT: &str = "asg-init";
/// Prefix of every label and annotation the injector reads or writes.
pub const PREFIX: &str = "asg.dev/";
/// Pod label or annotation: `"true"` opts in, `"false"` opts out.
pub const INJECT: &str = "asg.dev/inject";
/// Written on injected pods: what was injected (idempotence, debugging).
pub const STATUS: &str = "asg.dev/status";
