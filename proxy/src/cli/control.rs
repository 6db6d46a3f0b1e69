//! `asg control`: the operator console and operator API as a process of
//! their own, against a fleet's shared state (`ASG_STATE_URL`).
//!
//! It serves the same admin router as a gateway, with the same keys and
//! roles (`ASG_ADMIN_AUTH`, `ASG_OPERATOR_KEYS` …): approvals from every
//! gateway are listed and resolved here (a held call continues on the
//! gateway that holds it), sessions and agents are the shared ones, and
//! the audit views show the fleet's tail (each gateway keeps its durable
//! audit log itself). It has no proxy listener.

use crate::app::policy::WatchHandle;
use crate::app::{App, StartupError};
use crate::config::Config;
use crate::edge::admin::AdminService;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Mutex;

pub fn control(config_path: Option<PathBuf>) -> i32 {
    let (app, listener, _watch) = match start(config_path) {
        Ok(started) => started,
        Err(e) => return super::fail(e),
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

fn start(
    config_path: Option<PathBuf>,
) -> Result<(std::sync::Arc<App>, std::net::TcpListener, WatchHandle), StartupError> {
    let config = Config::load(config_path.as_deref())?;
    super::init_logging(&config);
    if config.state_url.is_none() {
        return Err(StartupError::ControlWithoutSharedState);
    }
    let listener = super::bind(&config.admin_listen, "ASG_ADMIN_LISTEN")?;
    let app = App::build_control(config)?;
    let watch = app.policy.watch()?;
    Ok((app, listener, watch))
}
