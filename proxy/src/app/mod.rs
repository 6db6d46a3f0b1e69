//! The running gateway's shared state, built once at startup and shared
//! (behind `Arc`) by the data path and the admin listener.

mod error;
mod listening;
pub mod policy;
/// The optional transformer second opinion on injection (tract), installed
/// into the core at start (feature `second-stage`).
#[cfg(feature = "second-stage")]
pub mod second_stage;
pub mod serve;
pub use error::StartupError;

use crate::config::{AuditConfig, Config};
use crate::datapath::config::ProxyConfig;
use crate::datapath::forward::Forwarding;
use crate::datapath::resolve::Resolver;
use crate::datapath::route::RouteTable;
use crate::decision::redact::Masker;
use crate::edge::config::EdgeConfig;
use crate::inspect_slots::InspectSlots;
use crate::metrics::Metrics;
use crate::state::config::StateConfig;
use crate::state::{load_or_create_mask_key, Store};
use policy::PolicyStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct App {
    /// Each layer's settings, split from the configuration once, here.
    pub proxy: ProxyConfig,
    pub edge: EdgeConfig,
    pub state: StateConfig,
    pub audit: AuditConfig,
    pub policy: Arc<PolicyStore>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub masker: Masker,
    pub routes: RouteTable,
    pub resolver: Resolver,
    pub started: Instant,
    /// Forward-proxy and transparent-mode state (routes by host, overrides).
    pub forwarding: Forwarding,
    proxy_listening: AtomicBool,
    /// Keys the binding fingerprints of approvals (derived from the mask
    /// key, so fingerprints are stable across restarts); with shared state
    /// the fleet's key is used instead (see [`App::binding_key`]).
    local_binding_key: [u8; 32],
    /// `asg control`: the operator side of a fleet, without a proxy.
    pub control: bool,
    /// Bounds inspection work in flight (proxy and inspect API).
    pub inspect_slots: InspectSlots,
}

impl App {
    /// Load policy, open the store, build routes. Every failure is one
    /// clear sentence for the operator.
    pub fn build(config: Config) -> Result<Arc<App>, StartupError> {
        Self::build_with(config, false)
    }

    /// `asg control`: the same state, policy and admin router, on the
    /// fleet's shared state (required), with the audit views on its tail.
    pub fn build_control(config: Config) -> Result<Arc<App>, StartupError> {
        let app = Self::build_with(config, true)?;
        app.store.serve_fleet_tail();
        Ok(app)
    }

    fn build_with(config: Config, control: bool) -> Result<Arc<App>, StartupError> {
        let metrics = Arc::new(Metrics::new());
        let policy_dir = config
            .policy_dir
            .is_dir()
            .then(|| config.policy_dir.clone());
        let policy = policy::load(&config.policy, policy_dir.as_deref())?;
        let policy = PolicyStore::new(policy, &config.policy, policy_dir, metrics.clone());
        let state = config.state_config();
        let store = Store::open(&state.data_dir)?;
        store.caps.set(
            state.max_sessions,
            state.max_agents,
            state.max_pending_approvals,
        );
        let evicted = metrics.limits.evicted.clone();
        store.caps.observe(Arc::new(move |scope, reason, n| {
            evicted.with_label_values(&[scope, reason]).inc_by(n)
        }));
        if config.audit.stdout {
            store.audit_to_stdout();
        }
        let mask_key = load_or_create_mask_key(&state.data_dir)?;
        let masker = Masker::new(mask_key);
        let binding_key = derive_binding_key(&mask_key);
        if let Some(shared) = open_shared(&config)? {
            shared.backend().metrics().register(metrics.registry())?;
            tracing::info!(backend = %shared.backend().describe(), durability = %shared.health().durability, "sessions, approvals, permits and risk are shared; audit stays in the data folder");
            store.share(shared);
        }
        let routes = RouteTable::new(&config.effective_routes())?;
        let forwarding = Forwarding::new(config.forward_config()?)?;
        let limits = &config.limits;
        let inspect_slots = InspectSlots::new(
            limits.inspect_slots(),
            limits.inspect_queue,
            limits.inspect_wait(),
            metrics.limits.slots.clone(),
        );
        Ok(Arc::new(App {
            inspect_slots,
            proxy: config.proxy_config(),
            edge: config.edge_config()?,
            state,
            audit: config.audit,
            policy,
            store: Arc::new(store),
            metrics,
            masker,
            routes,
            resolver: Resolver::new(),
            started: Instant::now(),
            forwarding,
            proxy_listening: AtomicBool::new(false),
            local_binding_key: binding_key,
            control,
        }))
    }

    /// The key approval fingerprints are made with: the fleet's, when the
    /// state is shared (until it is read, the shared store refuses every
    /// approval step, so a fingerprint made with the local key goes nowhere).
    pub fn binding_key(&self) -> [u8; 32] {
        self.store
            .shared()
            .and_then(|s| s.binding_key())
            .unwrap_or(self.local_binding_key)
    }

    /// Whether this process listens on the proxy (and transparent) addresses. pingora binds them
    /// asynchronously after the admin listener is up, so readiness asks (once they are held,
    /// they stay held).
    pub fn proxy_listening(&self) -> bool {
        if self.proxy_listening.load(Ordering::Relaxed) {
            return true;
        }
        let ok = std::iter::once(&self.proxy.listen)
            .chain(self.proxy.transparent_listen.as_ref())
            .all(|addr| listening::held_by_this_process(addr));
        if ok {
            self.proxy_listening.store(true, Ordering::Relaxed);
        }
        ok
    }
}

/// `ASG_STATE_URL`: connect to the shared state (a bad URL, or a store
/// that cannot be reached at start, is one clear sentence).
fn open_shared(config: &Config) -> Result<Option<crate::state::shared::Shared>, StartupError> {
    let Some(url) = &config.state_url else {
        return Ok(None);
    };
    let password = config.state_password.as_ref().map(|p| p.0.as_str());
    let parsed =
        crate::state::redis::url::StateUrl::parse(url, config.state_prefix.as_deref(), password)
            .map_err(crate::state::shared::SharedStateError::from)?;
    let mut opts = crate::state::redis::RedisOptions::default();
    // The name other gateways and the console show for this one.
    if let Some(host) = crate::config::env::standard("HOSTNAME") {
        opts.gateway = host;
    }
    // Decided approvals stay listed as long as the audit keeps records
    // (0 = forever keeps the backend's default of 30 days).
    if config.audit.max_age_days > 0 {
        opts.approval_keep = Duration::from_secs(config.audit.max_age_days * 86_400);
    }
    Ok(Some(crate::state::shared::Shared::start(parsed, opts)?))
}

/// A separate key for approval bindings, so a mask digest and a binding
/// fingerprint are never computed with the same key.
fn derive_binding_key(mask_key: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"asg/binding-key/v1");
    h.update(mask_key);
    h.finalize().into()
}
