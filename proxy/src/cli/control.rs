//! `asg control`: the operator console and operator API as a process of
//! their own, against a fleet's shared state (`ASG_STATE_URL`).
//!
//! It serves the same admin router as a gateway, with the same keys and
//! roles (`ASG_ADMIN_AUTH`, `ASG_OPERATOR_KEYS` …): approvals from every
//! gateway are listed and resolved here (a held call continues on the
//! gateway that holds it), sessions and agents are the shared ones, and
//! the audit views show the fleet's tail (each gateway keeps its durable
//! audit log itself). It has no proxy listener.

use crate::app::App;
use crate::config::Config;
use crate::edge::admin::AdminService;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Mutex;

pub fn control(config_path: Option<PathBuf>) -> i32 {
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    super::init_logging(&config);
    if config.state_url.is_none() {
        return super::fail(
            "asg control serves a fleet's shared state: set ASG_STATE_URL (the gateways' redis:// URL)",
        );
    }
    let listener = match std::net::TcpListener::bind(&config.admin_listen) {
        Ok(l) => l,
        Err(e) => {
            return super::fail(format!(
                "cannot listen on {} (admin): {e}",
                config.admin_listen
            ))
        }
    };
    let app = match App::build_control(config) {
        Ok(a) => a,
        Err(e) => return super::fail(e),
    };
    let _watch = match app.policy.watch() {
        Ok(w) => w,
        Err(e) => return super::fail(format!("cannot watch the policy folder: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("asg-control")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return super::fail(format!("cannot start the runtime: {e}")),
    };
    tracing::info!(admin = %app.edge.admin_addr, "asg control running");
    runtime.block_on(async move {
        let (stop, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = stop.send(true);
        });
        AdminService {
            app,
            listener: Mutex::new(Some(listener)),
        }
        .start(watch)
        .await;
    });
    0
}
