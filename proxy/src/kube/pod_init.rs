//! `asg pod-init`: what the injected `asg-init` container runs, and the
//! classic sidecar's `postStart` wait.
//!
//! * trust: `ca.pem` (the interception CA, for variables that *add* a CA)
//!   and `bundle.pem` (the image's system roots plus the CA, for
//!   `SSL_CERT_FILE`/`REQUESTS_CA_BUNDLE`, which *replace* the trust store)
//!   in a volume the agents mount read-only;
//! * `--iptables`: the `asg iptables` rules, executed directly (the image
//!   has no shell), after removing any left by an earlier attempt;
//! * `--wait-ready ADDR`: poll the sidecar's `/ready` until it answers 200.

use crate::datapath::iptables::{self, RedirectSpec};
use crate::datapath::tls::ca;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub ca_cert: Option<PathBuf>,
    pub trust_dir: Option<PathBuf>,
    pub iptables: bool,
    pub proxy_port: u16,
    pub ports: Vec<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub exclude: Vec<String>,
    /// `auto`, `on` or `off`.
    pub ipv6: String,
    pub wait_ready: Option<String>,
    pub timeout: Duration,
}

pub fn run(o: &Options) -> Result<(), String> {
    if let Some(addr) = &o.wait_ready {
        return wait_ready(addr, o.timeout);
    }
    if o.trust_dir.is_none() && !o.iptables {
        return Err("nothing to do: pass --ca-cert and --trust-dir, and/or --iptables".to_string());
    }
    if o.iptables {
        let ipv6 = match o.ipv6.as_str() {
            "on" => true,
            "off" => false,
            "auto" => has_ipv6(),
            other => return Err(format!("--ipv6 {other:?} is not auto, on or off")),
        };
        let spec = RedirectSpec {
            proxy_port: o.proxy_port,
            ports: o.ports.clone(),
            uid: o.uid,
            gid: o.gid,
            mark: None,
            exclude: o.exclude.clone(),
            include_loopback: false,
            ipv6,
        };
        let script = iptables::install(&spec).map_err(|e| e.to_string())?;
        // A restarted init container finds its own rules: start clean.
        for line in commands(&iptables::remove(&spec))? {
            let _ = Command::new(&line[0]).args(&line[1..]).output();
        }
        for line in commands(&script)? {
            let out = Command::new(&line[0])
                .args(&line[1..])
                .output()
                .map_err(|e| format!("cannot run {}: {e} (is iptables in the image?)", line[0]))?;
            if !out.status.success() {
                return Err(format!(
                    "`{}` failed: {}",
                    line.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        println!(
            "asg pod-init: outbound TCP to ports {:?} redirected to 127.0.0.1:{} except uid {:?} gid {:?}{}",
            o.ports,
            o.proxy_port,
            o.uid,
            o.gid,
            if ipv6 { " (IPv4 and IPv6)" } else { " (IPv4)" }
        );
    }
    if let Some(dir) = &o.trust_dir {
        let Some(cert) = &o.ca_cert else {
            return Err("--trust-dir needs --ca-cert".to_string());
        };
        let (roots, fp) = write_trust(cert, dir)?;
        println!(
            "asg pod-init: {}/bundle.pem ({roots} system roots + the CA, sha256 {fp}) and ca.pem written",
            dir.display()
        );
    }
    Ok(())
}

/// The commands of a script from `asg iptables`, as argument vectors.
/// Only `iptables`/`ip6tables` lines with plain words are accepted: these
/// run without a shell, so anything a shell would interpret is refused.
pub fn commands(script: &str) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line == "set -e" {
            continue;
        }
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let plain = line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" -_/.:,".contains(&b));
        if !plain || !matches!(words[0].as_str(), "iptables" | "ip6tables") {
            return Err(format!("unexpected line in the redirect rules: {line:?}"));
        }
        out.push(words);
    }
    Ok(out)
}

fn has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|s| !s.trim().is_empty())
}

/// Write `ca.pem` and `bundle.pem`; returns the number of system roots and
/// the CA's fingerprint.
pub fn write_trust(cert: &Path, dir: &Path) -> Result<(usize, String), String> {
    let pem = std::fs::read(cert)
        .map_err(|e| format!("cannot read the CA certificate {}: {e}", cert.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("CA certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    // Every certificate of the file is trusted: during a rotation it holds
    // the old and the new CA.
    let ca_pem: String = certs.iter().map(|c| ca::pem_encode(c.as_ref())).collect();
    let roots = rustls_native_certs::load_native_certs().unwrap_or_default();
    if roots.is_empty() {
        eprintln!("asg pod-init: warning: no system roots found; the bundle trusts only the CA (hosts the gateway passes through will fail)");
    }
    let mut bundle: String = roots.iter().map(|c| ca::pem_encode(c.as_ref())).collect();
    bundle.push_str("# asg interception CA\n");
    bundle.push_str(&ca_pem);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_public(&dir.join("ca.pem"), ca_pem.as_bytes())?;
    write_public(&dir.join("bundle.pem"), bundle.as_bytes())?;
    Ok((roots.len(), ca::fingerprint(certs[0].as_ref())))
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Poll `http://ADDR/ready` until it answers 200.
pub fn wait_ready(addr: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match probe(addr) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "the asg sidecar at {addr} was not ready within {}s: {last}",
        timeout.as_secs()
    ))
}

fn probe(addr: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 16];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    if line.starts_with("HTTP/1.1 200") || line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!("answered {:?}", line.lines().next().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_become_plain_commands() {
        let spec = RedirectSpec {
            proxy_port: 15001,
            ports: vec![80, 443],
            uid: Some(1337),
            gid: Some(1337),
            mark: None,
            exclude: vec!["10.0.0.0/8".into(), "fd00::/8".into()],
            include_loopback: false,
            ipv6: true,
        };
        let cmds = commands(&iptables::install(&spec).unwrap()).unwrap();
        assert!(cmds
            .iter()
            .all(|c| c[0] == "iptables" || c[0] == "ip6tables"));
        assert!(cmds
            .iter()
            .any(|c| c.join(" ")
                == "iptables -t nat -A ASG_OUTPUT -m owner --uid-owner 1337 -j RETURN"));
        assert_eq!(
            cmds.last().unwrap().join(" "),
            "ip6tables -t nat -A OUTPUT -p tcp -j ASG_OUTPUT"
        );
        assert!(!commands(&iptables::remove(&spec)).unwrap().is_empty());
    }

    #[test]
    fn shell_syntax_is_refused() {
        for bad in [
            "iptables -t nat -N X; rm -rf /",
            "sh -c true",
            "iptables $(id)",
        ] {
            assert!(commands(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trust_files_hold_every_ca_certificate() {
        let dir = std::env::temp_dir().join(format!("asg-pod-init-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut pems = String::new();
        for name in ["old", "new"] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(vec![]).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            pems.push_str(&p.self_signed(&key).unwrap().pem());
        }
        std::fs::write(dir.join("in.pem"), &pems).unwrap();
        write_trust(&dir.join("in.pem"), &dir.join("out")).unwrap();
        let ca = std::fs::read_to_string(dir.join("out/ca.pem")).unwrap();
        assert_eq!(ca.matches("BEGIN CERTIFICATE").count(), 2);
        let bundle = std::fs::read_to_string(dir.join("out/bundle.pem")).unwrap();
        assert!(bundle.ends_with(&ca));
        let mode = std::fs::metadata(dir.join("out/bundle.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        assert!(write_trust(&dir.join("empty.pem"), &dir.join("out"))
            .unwrap_err()
            .contains("no PEM certificate"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wait_ready_reports_what_it_saw() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            for (i, conn) in l.incoming().take(2).enumerate() {
                let mut c = conn.unwrap();
                let mut buf = [0u8; 256];
                let _ = c.read(&mut buf);
                let status = if i == 0 {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = c.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes(),
                );
            }
        });
        wait_ready(&addr, Duration::from_secs(10)).unwrap();
        t.join().unwrap();
        let err = wait_ready(&addr, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("not ready"), "{err}");
    }
}
