//! `asg injector`, `asg kube-inject`, `asg pod-init`: Kubernetes.

use super::fail;
use crate::kube::settings::{Mode, Settings};
use crate::kube::{kube_inject, pod_init, server};
use clap::Args;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
#[command(after_help = crate::config::env::help(crate::config::env::Command::Injector))]
pub struct InjectorArgs {
    /// Address of the HTTPS webhook listener.
    #[arg(long, env = "ASG_INJECTOR_LISTEN", default_value = "0.0.0.0:9443")]
    listen: String,
    /// Serving certificate (PEM chain); reloaded when the file changes.
    #[arg(long, env = "ASG_INJECTOR_TLS_CERT")]
    tls_cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long, env = "ASG_INJECTOR_TLS_KEY")]
    tls_key: PathBuf,
    /// Injector settings (YAML), e.g. the chart's ConfigMap [default: built-in].
    #[arg(long, short, env = "ASG_INJECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Plain-HTTP listener for /metrics and /healthz [default: off].
    #[arg(long, env = "ASG_INJECTOR_METRICS_LISTEN")]
    metrics_listen: Option<String>,
}

#[derive(Args)]
pub struct KubeInjectArgs {
    /// YAML file (one or more documents); `-` reads standard input.
    #[arg(long, short = 'f')]
    filename: String,
    /// Output file [default: standard output].
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Injector settings (YAML), the same file the webhook reads.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Namespace of documents that name none.
    #[arg(long, short, default_value = "default")]
    namespace: String,
    /// The asg image (overrides the settings).
    #[arg(long)]
    image: Option<String>,
    /// Default mode (overrides the settings; pod annotations still win).
    #[arg(long, value_parser = ["proxy-env", "transparent"])]
    mode: Option<String>,
    /// Target Kubernetes version: native sidecars from 1.29 on, classic before.
    #[arg(long, value_name = "MAJOR.MINOR")]
    kube_version: Option<String>,
}

#[derive(Args)]
pub struct PodInitArgs {
    /// The interception CA certificate(s) agents trust (PEM).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Folder for ca.pem and bundle.pem (system roots + the CA).
    #[arg(long)]
    trust_dir: Option<PathBuf>,
    /// Install the transparent-mode redirect rules (needs NET_ADMIN).
    #[arg(long)]
    iptables: bool,
    /// The sidecar's transparent listener port.
    #[arg(long, default_value_t = 15001)]
    proxy_port: u16,
    /// Destination ports to redirect.
    #[arg(long, value_delimiter = ',', default_value = "80,443")]
    ports: Vec<u16>,
    /// The sidecar's uid and gid (never redirected).
    #[arg(long)]
    uid: Option<u32>,
    #[arg(long)]
    gid: Option<u32>,
    /// Destinations never redirected (CIDRs, comma-separated).
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// ip6tables rules too: auto (when the pod has IPv6), on, off.
    #[arg(long, default_value = "auto")]
    ipv6: String,
    /// Only wait until the sidecar's admin listener (host:port) answers /ready.
    #[arg(long, value_name = "HOST:PORT")]
    wait_ready: Option<String>,
    /// Seconds --wait-ready waits.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

pub fn injector(args: InjectorArgs) -> i32 {
    // The injector reads no gateway configuration, only the log filter.
    let mut logging = crate::config::Config {
        log_format: crate::config::LogFormat::Json,
        ..Default::default()
    };
    if let Err(e) = crate::config::env::apply_only(&mut logging, &["ASG_LOG"]) {
        return fail(e);
    }
    super::init_logging(&logging);
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    server::run(server::Options {
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        settings,
        metrics_listen: args.metrics_listen,
    })
}

/// `1.29` or `v1.29.3` → (1, 29).
fn minor_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.trim_end_matches('+').parse().ok()?;
    Some((major, minor))
}

pub fn kube_inject(args: KubeInjectArgs) -> i32 {
    let mut settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Some(image) = args.image {
        settings.image = image;
    }
    if let Some(m) = args.mode.as_deref().and_then(Mode::parse) {
        settings.mode = m;
    }
    if let Some(v) = &args.kube_version {
        match minor_version(v) {
            Some(mm) => settings.native_sidecars = mm >= (1, 29),
            None => {
                return fail(format!(
                    "--kube-version {v:?} is not MAJOR.MINOR (e.g. 1.29)"
                ))
            }
        }
    }
    if let Err(e) = settings.validate() {
        return fail(e);
    }
    let text = if args.filename == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            return fail(format!("cannot read standard input: {e}"));
        }
        s
    } else {
        match std::fs::read_to_string(&args.filename) {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot read {}: {e}", args.filename)),
        }
    };
    let out = match kube_inject::inject_stream(&text, &args.namespace, &settings) {
        Ok(o) => o,
        Err(e) => return fail(format!("{}: {e}", args.filename)),
    };
    for n in &out.notes {
        eprintln!("{n}");
    }
    match &args.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, out.yaml) {
                return fail(format!("cannot write {}: {e}", p.display()));
            }
        }
        None => print!("{}", out.yaml),
    }
    0
}

pub fn pod_init(args: PodInitArgs) -> i32 {
    let opts = pod_init::Options {
        ca_cert: args.ca_cert,
        trust_dir: args.trust_dir,
        iptables: args.iptables,
        proxy_port: args.proxy_port,
        ports: args.ports,
        uid: args.uid,
        gid: args.gid,
        exclude: args.exclude,
        ipv6: args.ipv6,
        wait_ready: args.wait_ready,
        timeout: Duration::from_secs(args.timeout),
    };
    match pod_init::run(&opts) {
        Ok(()) => 0,
        Err(e) => fail(format!("asg pod-init: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::minor_version;

    #[test]
    fn kube_versions() {
        assert_eq!(minor_version("1.29"), Some((1, 29)));
        assert_eq!(minor_version("v1.28.3"), Some((1, 28)));
        assert_eq!(minor_version("1.30+"), Some((1, 30)));
        assert_eq!(minor_version("latest"), None);
    }
}
