//! The `asg` command line.

use crate::app::policy::DirSources;
use crate::app::{App, StartupError};
use crate::config::env::{self, Command as EnvFor};
use crate::config::{Config, LogFormat};
use crate::decision::policy::{Policy, PolicySource};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod control;
pub(crate) mod forward;
mod kube;

#[derive(Parser)]
#[command(
    name = "asg",
    version,
    about = "Agent Security Gateway: an inspecting proxy between AI agents, LLM APIs and tools",
    long_about = "Agent Security Gateway: a reverse proxy in front of LLM APIs (OpenAI Chat Completions and \
Responses, Anthropic Messages) and tool servers (MCP, plain HTTP tools). It inspects prompts, tool \
definitions, tool calls and tool results, masks secrets and personal data in both directions, and \
blocks dangerous tool use, according to a hot-reloaded policy profile.",
    after_help = env_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (proxy listener + admin listener).
    #[command(after_help = env_help())]
    Run {
        /// Configuration file (TOML); environment variables override it.
        #[arg(long, short, env = "ASG_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Serve the operator console and operator API of a fleet (gateways
    /// sharing ASG_STATE_URL) as a process of its own: no proxy listener.
    #[command(after_help = env_help())]
    Control {
        /// Configuration file (TOML); environment variables override it.
        #[arg(long, short, env = "ASG_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Work with policy profiles.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    // --- forward proxy and transparent mode ---
    /// The local CA that signs interception certificates.
    Ca {
        #[command(subcommand)]
        command: forward::CaCommand,
    },
    /// Print the environment lines an agent needs to use the forward proxy.
    Env(forward::EnvArgs),
    /// Print the iptables rules that redirect a pod's traffic to the
    /// transparent listener (or, with --remove, the rules that undo them).
    Iptables(forward::IptablesArgs),
    // --- end forward proxy ---
    // --- Kubernetes ---
    /// Serve the sidecar-injecting mutating admission webhook (HTTPS, POST /inject).
    Injector(kube::InjectorArgs),
    /// Inject the sidecar into a YAML stream offline (Pods, Deployments,
    /// StatefulSets, Jobs, CronJobs …), like the webhook would.
    KubeInject(kube::KubeInjectArgs),
    /// What the injected init container runs: the CA trust bundle and, in
    /// transparent mode, the redirect rules.
    PodInit(kube::PodInitArgs),
    // --- end Kubernetes ---
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write audit records as JSON lines, oldest first. Reads the data
    /// folder directly, so stop the gateway first (its lock says so); from a
    /// running gateway use `GET /operator/api/audit/export` instead.
    Export {
        /// Data folder.
        #[arg(long, env = "ASG_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// Only records at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Only records of this session.
        #[arg(long)]
        session: Option<String>,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a profile offline; on error, print the file, line and column.
    Check {
        /// A profile file, or an embedded profile name (dev, production, strict).
        file: String,
    },
}

fn env_help() -> String {
    env::help(EnvFor::Gateway)
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // Every command that compiles a policy can run its second stage.
    #[cfg(feature = "second-stage")]
    crate::app::second_stage::install();
    match cli.command {
        Command::Run { config } => run(config),
        Command::Control { config } => control::control(config),
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => policy_check(&file),
        Command::Audit {
            command:
                AuditCommand::Export {
                    data_dir,
                    since,
                    until,
                    session,
                    output,
                },
        } => audit_export(&data_dir, since, until, session, output),
        Command::Ca { command } => forward::ca(command),
        Command::Env(args) => forward::env(args),
        Command::Iptables(args) => forward::iptables(args),
        Command::Injector(args) => kube::injector(args),
        Command::KubeInject(args) => kube::kube_inject(args),
        Command::PodInit(args) => kube::pod_init(args),
    }
}

fn audit_export(
    data_dir: &std::path::Path,
    since: Option<String>,
    until: Option<String>,
    session: Option<String>,
    output: Option<PathBuf>,
) -> i32 {
    use std::io::Write;
    let window = match crate::edge::operator::Window::parse(since.as_deref(), until.as_deref()) {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    if !data_dir.join("asg.sled").exists() {
        return fail(format!(
            "{} holds no asg state (no asg.sled folder); pass --data-dir or set ASG_DATA_DIR",
            data_dir.display()
        ));
    }
    let store = match crate::state::Store::open(data_dir) {
        Ok(s) => s,
        Err(e @ crate::state::StoreError::Locked { .. }) => {
            return fail(format!(
                "{e}; export from the running gateway with GET /operator/api/audit/export"
            ))
        }
        Err(e) => return fail(e),
    };
    let mut out: Box<dyn Write> = match &output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => return fail(format!("cannot write {}: {e}", p.display())),
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut n = 0u64;
    for event in store.audit_iter() {
        let event = match event {
            Ok(e) => e,
            Err(e) => return fail(format!("after {n} records: {e}")),
        };
        if !window.contains(&event) || session.as_ref().is_some_and(|s| *s != event.session_id) {
            continue;
        }
        let line = serde_json::to_string(&event).unwrap_or_default();
        if let Err(e) = writeln!(out, "{line}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return 0;
            }
            return fail(format!("cannot write the export: {e}"));
        }
        n += 1;
    }
    if let Err(e) = out.flush() {
        return fail(format!("cannot write the export: {e}"));
    }
    eprintln!("exported {n} audit records");
    0
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {msg}");
    2
}

fn run(config_path: Option<PathBuf>) -> i32 {
    pingora::tls::install_default_crypto_provider();
    match start(config_path) {
        Ok((app, admin_listener, _watch)) => serve(app, admin_listener),
        Err(e) => fail(e),
    }
}

/// Everything that can stop the gateway from starting, in order.
fn start(
    config_path: Option<PathBuf>,
) -> Result<
    (
        std::sync::Arc<App>,
        std::net::TcpListener,
        crate::app::policy::WatchHandle,
    ),
    StartupError,
> {
    let config = Config::load(config_path.as_deref())?;
    init_logging(&config);
    // Bind-check both listeners up front so a taken port is one clear line,
    // not a panic inside a worker. The admin socket is kept and handed over.
    let admin_listener = bind(&config.admin_listen, "ASG_ADMIN_LISTEN")?;
    drop(bind(&config.listen, "ASG_LISTEN")?);
    crate::telemetry::Telemetry::init_from_env()?;
    let app = App::build(config)?;
    let watch = app.policy.watch()?;
    Ok((app, admin_listener, watch))
}

fn bind(addr: &str, var: &'static str) -> Result<std::net::TcpListener, StartupError> {
    std::net::TcpListener::bind(addr).map_err(|source| StartupError::Listen {
        addr: addr.to_string(),
        var,
        source,
    })
}

fn serve(app: std::sync::Arc<App>, admin_listener: std::net::TcpListener) -> i32 {
    // Audit by age and size, idle sessions, expired approvals.
    let limits_app = app.clone();
    let _retention = crate::state::retention::Retention::spawn(
        app.store.clone(),
        std::time::Duration::from_secs(app.audit.retention_interval_secs),
        move || crate::state::retention::Limits {
            audit_max_age_secs: limits_app.audit.max_age_days * 86_400,
            audit_max_bytes: limits_app.audit.max_bytes,
            idle_expiry_secs: limits_app.policy.current().file.session.idle_expiry_secs,
        },
    );
    crate::app::serve::run(app, admin_listener)
}

fn init_logging(config: &Config) {
    // ASG_LOG was checked when the configuration was read.
    let filter = config
        .log_filter
        .as_deref()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::new("info,pingora_core=warn,pingora_proxy=warn,sled=off")
        });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn policy_check(spec: &str) -> i32 {
    let looks_like_file = spec.contains('/') || spec.ends_with(".toml");
    let result = if looks_like_file {
        let path = PathBuf::from(spec);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let folder = DirSources::new(path.parent().map(PathBuf::from).unwrap_or_default());
                Policy::compile(&text, PolicySource::File(path.clone()), Some(&folder))
            }
            Err(e) => return fail(format!("cannot read {spec}: {e}")),
        }
    } else {
        Policy::load(spec, None)
    };
    match result {
        Ok(p) => {
            println!(
                "ok: {} ({} secret rules, {} chain rules)",
                p.version,
                p.detectors.secrets.rules().len(),
                p.detectors.chains.rules().len()
            );
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn envs(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(e) = arg.get_env() {
                out.push(e.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            envs(sub, out);
        }
    }

    /// Every variable clap reads is declared in the env table, and every
    /// variable the table says clap reads is read by some option.
    #[test]
    fn command_line_variables_are_the_declared_ones() {
        let mut read = Vec::new();
        envs(&Cli::command(), &mut read);
        for name in &read {
            assert!(
                env::VARS.iter().any(|v| v.name == name),
                "{name} is read by a command-line option but not declared in config/env.rs"
            );
        }
        for v in env::VARS {
            if matches!(v.read, env::Read::Arg) {
                assert!(
                    read.iter().any(|n| n == v.name),
                    "{} is read by no option",
                    v.name
                );
            }
        }
        Cli::command().debug_assert();
    }
}
