//! Assembling the pingora server: the proxy service on the main listener,
//! the admin router as a background service, and sidecar-friendly server
//! settings (worker threads, short graceful shutdown).
//! It lives in the composition root because it joins both layers: the data
//! path and the edge never import each other.

use crate::app::App;
use crate::edge::admin::AdminService;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Build and run until a signal stops the process.
pub fn run(app: Arc<App>, admin_listener: std::net::TcpListener) -> ! {
    let cfg = &app.proxy;
    let threads = cfg.threads;
    let mut conf = ServerConf {
        threads,
        // pingora sleeps the whole grace period on SIGTERM (default 300 s);
        // keep it well inside Kubernetes' 30 s termination window.
        grace_period_seconds: Some(5),
        graceful_shutdown_timeout_seconds: Some(5),
        pid_file: cfg.data_dir.join("asg.pid").to_string_lossy().into_owned(),
        upgrade_sock: cfg
            .data_dir
            .join("asg-upgrade.sock")
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    };
    if let Some(extra) = &cfg.upstream_ca {
        match upstream_roots(extra, &cfg.data_dir) {
            Ok(path) => conf.ca_file = Some(path),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        }
    }
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    // The proxy listener, fronted for CONNECT / transparent mode.
    if let Err(e) = crate::datapath::front::add_services(&mut server, app.clone()) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }

    let mut admin = background_service(
        "admin",
        AdminService {
            app: app.clone(),
            listener: Mutex::new(Some(admin_listener)),
        },
    );
    admin.threads = Some(threads);
    server.add_service(admin);

    exit_when_a_listener_fails();
    tracing::info!(listen = %cfg.listen, admin = %app.edge.admin_addr, transparent = cfg.transparent_listen.as_deref().unwrap_or("off"), forward_proxy = cfg.forward_proxy, policy = %app.policy.current().version, threads, "asg running");
    server.run_forever()
}

/// pingora binds its listeners inside a service thread and panics there when an address is
/// taken, which leaves the process running: `/ready` answers while the proxy port belongs to
/// someone else. The start-up bind check cannot close that window (another process may take the
/// port in between), so a listener that fails to bind ends the process with one clear line.
fn exit_when_a_listener_fails() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        match listener_failure(msg) {
            Some(line) => {
                eprintln!("error: {line}");
                std::process::exit(2);
            }
            None => default(info),
        }
    }));
}

/// The message for a panic that is pingora failing to build its listeners, if it is one.
fn listener_failure(panic_message: &str) -> Option<String> {
    let detail = panic_message.strip_prefix("Failed to build listeners")?;
    let detail = detail.trim_start_matches([':', ' ']);
    Some(format!("cannot listen: {detail}"))
}

/// System roots plus the operator's extra CA, as one PEM bundle: pingora's
/// rustls connector takes a single CA file that *replaces* the system store.
fn upstream_roots(extra: &Path, data_dir: &Path) -> Result<String, String> {
    let extra_pem = std::fs::read(extra)
        .map_err(|e| format!("cannot read upstream CA {}: {e}", extra.display()))?;
    if !String::from_utf8_lossy(&extra_pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "upstream CA {} holds no PEM certificate",
            extra.display()
        ));
    }
    let mut bundle = Vec::new();
    for cert in rustls_native_certs::load_native_certs().unwrap_or_default() {
        bundle.extend_from_slice(crate::datapath::tls::ca::pem_encode(cert.as_ref()).as_bytes());
    }
    bundle.extend_from_slice(&extra_pem);
    let path = data_dir.join("upstream-roots.pem");
    let mut f = std::fs::File::create(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(&bundle)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::listener_failure;

    #[test]
    fn only_a_listener_panic_ends_the_process() {
        let line = listener_failure(
            "Failed to build listeners: BindError context: bind() failed on 127.0.0.1:9 cause: Address in use",
        )
        .unwrap();
        assert!(line.starts_with("cannot listen: BindError"), "{line}");
        assert!(line.contains("127.0.0.1:9") && line.contains("in use"));
        assert_eq!(listener_failure("index out of bounds"), None);
    }
}
