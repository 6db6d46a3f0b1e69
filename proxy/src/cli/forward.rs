//! `asg ca init|show`, `asg env`, `asg iptables`: setting up forward and
//! transparent mode.

use super::fail;
use crate::config::{parse_mark, Config};
use crate::datapath::iptables::{self, RedirectSpec};
use crate::datapath::tls::ca;
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum CaCommand {
    /// Create the CA in the data folder (key mode 0600). Idempotent: an
    /// existing CA is kept (and described) unless --force.
    Init {
        #[arg(long, short, env = "ASG_CONFIG")]
        config: Option<PathBuf>,
        /// Replace an existing CA (agents must then trust the new one).
        #[arg(long)]
        force: bool,
    },
    /// Print the CA certificate (PEM) on stdout; its path and fingerprint on stderr.
    Show {
        #[arg(long, short, env = "ASG_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EnvFormat {
    /// `export NAME=value` lines for `eval "$(asg env)"` (values single-quoted where the shell needs it).
    Shell,
    /// `NAME=value` lines (docker --env-file, Kubernetes, systemd).
    Dotenv,
}

#[derive(Args)]
pub struct EnvArgs {
    #[arg(long, short, env = "ASG_CONFIG")]
    config: Option<PathBuf>,
    /// Proxy URL agents use [default: http://<ASG_LISTEN>, 127.0.0.1 for a wildcard address].
    #[arg(long)]
    proxy: Option<String>,
    #[arg(long, value_enum, default_value = "shell")]
    format: EnvFormat,
}

#[derive(Args)]
pub struct IptablesArgs {
    #[arg(long, short, env = "ASG_CONFIG")]
    config: Option<PathBuf>,
    /// Transparent listener port [default: the port of ASG_TRANSPARENT_LISTEN, else 15001].
    #[arg(long)]
    proxy_port: Option<u16>,
    /// Destination ports to redirect.
    #[arg(long, value_delimiter = ',', default_value = "80,443")]
    ports: Vec<u16>,
    /// The uid the gateway runs as: its traffic is never redirected.
    #[arg(long)]
    uid: Option<u32>,
    /// The gid the gateway runs as.
    #[arg(long)]
    gid: Option<u32>,
    /// The gateway's SO_MARK (ASG_SO_MARK), e.g. 0x539 [default: ASG_SO_MARK].
    #[arg(long, value_parser = parse_mark_arg)]
    mark: Option<u32>,
    /// Destinations never redirected (addresses or CIDRs, repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Also redirect traffic to loopback addresses.
    #[arg(long)]
    include_loopback: bool,
    /// Emit ip6tables rules too.
    #[arg(long)]
    ipv6: bool,
    /// Print the rules that remove the redirect instead.
    #[arg(long)]
    remove: bool,
}

fn parse_mark_arg(s: &str) -> Result<u32, String> {
    parse_mark(s).ok_or_else(|| format!("{s:?} is not a number such as 1337 or 0x539"))
}

fn load_config(path: Option<&Path>) -> Result<Config, crate::config::ConfigError> {
    Config::load(path)
}

pub fn ca(cmd: CaCommand) -> i32 {
    match cmd {
        CaCommand::Init { config, force } => ca_init(config.as_deref(), force),
        CaCommand::Show { config } => ca_show(config.as_deref()),
    }
}

fn ca_init(config: Option<&Path>, force: bool) -> i32 {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let paths = cfg.ca_paths();
    let (ca, verb) = if paths.exists() && !force {
        match ca::load(&paths) {
            Ok(ca) => (ca, "kept the existing"),
            Err(e) => return fail(e),
        }
    } else {
        match ca::create(&paths, force) {
            Ok(ca) => (ca, "created the"),
            Err(e) => return fail(e),
        }
    };
    if let Err(e) = ca::write_bundle(&paths, &ca) {
        return fail(e);
    }
    println!("{verb} interception CA");
    println!("  certificate  {}", absolute(&paths.cert).display());
    println!(
        "  key          {} (mode 0600; never copy it to agents)",
        absolute(&paths.key).display()
    );
    println!(
        "  bundle       {} (system roots + this CA, for SSL_CERT_FILE)",
        absolute(&paths.bundle).display()
    );
    println!("  subject      {}", ca.subject);
    println!(
        "  valid until  {}",
        ca.not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    );
    println!("  sha256       {}", ca.fingerprint);
    println!("Next: eval \"$(asg env)\" in the agent's shell (see README, Forward proxy mode).");
    0
}

fn ca_show(config: Option<&Path>) -> i32 {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let paths = cfg.ca_paths();
    if !paths.cert.is_file() {
        return fail(format!(
            "no CA certificate at {}; create one with `asg ca init`",
            paths.cert.display()
        ));
    }
    // Only the certificate is read; the key never leaves its file.
    let pem = match std::fs::read_to_string(&paths.cert) {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot read {}: {e}", paths.cert.display())),
    };
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| ca::fingerprint(c.as_ref()));
    match der {
        Ok(fp) => eprintln!("# {} sha256 {fp}", absolute(&paths.cert).display()),
        Err(e) => return fail(format!("{}: {e}", paths.cert.display())),
    }
    print!("{pem}");
    0
}

/// The variables, in order, for `asg env`.
pub fn env_lines(proxy: &str, bundle: &Path, cert: &Path) -> Vec<(&'static str, String)> {
    let bundle = bundle.display().to_string();
    let cert = cert.display().to_string();
    vec![
        ("HTTPS_PROXY", proxy.to_string()),
        ("HTTP_PROXY", proxy.to_string()),
        ("NO_PROXY", "localhost,127.0.0.1,::1".to_string()),
        // Python (httpx, requests), OpenSSL tools: these replace the trust
        // store, hence the bundle of system roots plus the CA.
        ("SSL_CERT_FILE", bundle.clone()),
        ("REQUESTS_CA_BUNDLE", bundle),
        // Node (and Claude Code) and Codex add to their roots.
        ("NODE_EXTRA_CA_CERTS", cert.clone()),
        ("CODEX_CA_CERTIFICATE", cert),
    ]
}

pub fn env(args: EnvArgs) -> i32 {
    let cfg = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if !cfg.forward_proxy {
        return fail("the forward proxy is disabled (forward_proxy / ASG_FORWARD_PROXY=false)");
    }
    let paths = cfg.ca_paths();
    let ca = match ca::load(&paths) {
        Ok(ca) => ca,
        Err(e) => {
            return fail(format!(
                "{e}\n(create the CA with `asg ca init`, or start `asg run` once)"
            ))
        }
    };
    if !paths.bundle.is_file() {
        if let Err(e) = ca::write_bundle(&paths, &ca) {
            return fail(e);
        }
    }
    let proxy = args.proxy.unwrap_or_else(|| match cfg.listen_addr() {
        Ok(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
        Ok(a) => format!("http://{a}"),
        Err(_) => format!("http://{}", cfg.listen),
    });
    let lines = env_lines(&proxy, &absolute(&paths.bundle), &absolute(&paths.cert));
    match args.format {
        EnvFormat::Shell => {
            println!("# asg forward proxy; CA sha256 {}", ca.fingerprint);
            for (k, v) in lines {
                println!("export {k}={}", shell_quote(&v));
            }
        }
        EnvFormat::Dotenv => {
            for (k, v) in lines {
                println!("{k}={v}");
            }
        }
    }
    0
}

pub fn iptables(args: IptablesArgs) -> i32 {
    let cfg = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let proxy_port = args.proxy_port.unwrap_or_else(|| {
        cfg.transparent_listen
            .as_deref()
            .and_then(|l| l.parse::<std::net::SocketAddr>().ok())
            .map_or(15001, |a| a.port())
    });
    let spec = RedirectSpec {
        proxy_port,
        ports: args.ports,
        uid: args.uid,
        gid: args.gid,
        mark: args.mark.or(cfg.so_mark),
        exclude: args.exclude,
        include_loopback: args.include_loopback,
        ipv6: args.ipv6,
    };
    if args.remove {
        print!("{}", iptables::remove(&spec));
        return 0;
    }
    match iptables::install(&spec) {
        Ok(script) => {
            print!("{script}");
            0
        }
        Err(e) => fail(e),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}

/// Single-quote for POSIX shells when needed.
fn shell_quote(v: &str) -> String {
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/:.,_-+=@%".contains(&b))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_cover_every_client() {
        let lines = env_lines(
            "http://127.0.0.1:8080",
            Path::new("/d/ca/bundle.pem"),
            Path::new("/d/ca/ca.pem"),
        );
        let names: Vec<&str> = lines.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "HTTPS_PROXY",
                "HTTP_PROXY",
                "NO_PROXY",
                "SSL_CERT_FILE",
                "REQUESTS_CA_BUNDLE",
                "NODE_EXTRA_CA_CERTS",
                "CODEX_CA_CERTIFICATE"
            ]
        );
        assert_eq!(lines[3].1, "/d/ca/bundle.pem");
        assert_eq!(lines[5].1, "/d/ca/ca.pem");
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(
            shell_quote("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
