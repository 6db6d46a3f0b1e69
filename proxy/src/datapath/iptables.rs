//! `asg iptables`: the redirect rules for transparent mode, Istio-style
//! (`istio-iptables -m REDIRECT`), as a pure function of the settings so the
//! output is golden-tested and then exercised for real in a network
//! namespace.
//!
//! Outbound TCP to the chosen ports is sent to the transparent listener,
//! except the gateway's own traffic (its uid/gid and/or `SO_MARK`),
//! loopback (unless asked) and excluded CIDRs. Chains are filled first and
//! hooked into `OUTPUT` last, so no half-built chain ever sees traffic.

use std::net::IpAddr;

const OUT: &str = "ASG_OUTPUT";
const REDIRECT: &str = "ASG_REDIRECT";
/// `-m multiport` takes at most 15 ports.
const MULTIPORT_MAX: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSpec {
    /// The transparent listener's port (`ASG_TRANSPARENT_LISTEN`).
    pub proxy_port: u16,
    /// Destination ports to redirect.
    pub ports: Vec<u16>,
    /// The gateway runs as this uid / gid: its traffic is not redirected.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The gateway marks its sockets with this (`ASG_SO_MARK`).
    pub mark: Option<u32>,
    /// Destinations never redirected (`10.0.0.0/8`, `fd00::/8` …).
    pub exclude: Vec<String>,
    /// Also redirect traffic to loopback addresses (tests, local agents).
    pub include_loopback: bool,
    /// Emit `ip6tables` rules too.
    pub ipv6: bool,
}

impl RedirectSpec {
    fn validate(&self) -> Result<(), String> {
        if self.uid.is_none() && self.gid.is_none() && self.mark.is_none() {
            return Err("refusing rules without an exclusion: the gateway's own upstream traffic would be redirected back to it (pass --uid and/or --mark)".to_string());
        }
        if self.proxy_port == 0 {
            return Err("--proxy-port must be the transparent listener's port".to_string());
        }
        if self.ports.is_empty() || self.ports.contains(&0) {
            return Err("--ports needs at least one destination port (e.g. 80,443)".to_string());
        }
        for cidr in &self.exclude {
            parse_cidr(cidr)?;
        }
        Ok(())
    }

    fn families(&self) -> Vec<Family> {
        let mut f = vec![Family::V4];
        if self.ipv6 {
            f.push(Family::V6);
        }
        f
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn cmd(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
    fn loopback(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.0/8",
            Family::V6 => "::1/128",
        }
    }
}

fn parse_cidr(cidr: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("--exclude {cidr:?} is not an address or CIDR (10.0.0.0/8, fd00::/8)");
    let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = if prefix.is_empty() {
        max
    } else {
        prefix.parse::<u8>().map_err(|_| bad())?
    };
    if prefix > max {
        return Err(bad());
    }
    Ok((ip, prefix))
}

fn describe(spec: &RedirectSpec) -> String {
    let mut except = Vec::new();
    if let Some(u) = spec.uid {
        except.push(format!("uid {u}"));
    }
    if let Some(g) = spec.gid {
        except.push(format!("gid {g}"));
    }
    if let Some(m) = spec.mark {
        except.push(format!("mark {m:#x}"));
    }
    if !spec.include_loopback {
        except.push("loopback".to_string());
    }
    except.extend(spec.exclude.iter().cloned());
    let ports: Vec<String> = spec.ports.iter().map(u16::to_string).collect();
    format!(
        "# asg transparent mode: outbound TCP to ports {} -> local port {} (REDIRECT),\n# except {}.\n",
        ports.join(","),
        spec.proxy_port,
        except.join(", ")
    )
}

/// Redirect rules that would be unsafe or cannot be written (the message
/// names the option to change).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IptablesError(String);

/// The script that installs the rules.
pub fn install(spec: &RedirectSpec) -> Result<String, IptablesError> {
    spec.validate().map_err(IptablesError)?;
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&describe(spec));
    s.push_str(
        "# Run as root (NET_ADMIN) in the pod's network namespace; remove with --remove.\nset -e\n",
    );
    for fam in spec.families() {
        let t = format!("{} -t nat", fam.cmd());
        s.push_str(&format!("{t} -N {REDIRECT}\n"));
        s.push_str(&format!(
            "{t} -A {REDIRECT} -p tcp -j REDIRECT --to-ports {}\n",
            spec.proxy_port
        ));
        s.push_str(&format!("{t} -N {OUT}\n"));
        if let Some(u) = spec.uid {
            s.push_str(&format!(
                "{t} -A {OUT} -m owner --uid-owner {u} -j RETURN\n"
            ));
        }
        if let Some(g) = spec.gid {
            s.push_str(&format!(
                "{t} -A {OUT} -m owner --gid-owner {g} -j RETURN\n"
            ));
        }
        if let Some(m) = spec.mark {
            s.push_str(&format!("{t} -A {OUT} -m mark --mark {m:#x} -j RETURN\n"));
        }
        if !spec.include_loopback {
            s.push_str(&format!("{t} -A {OUT} -d {} -j RETURN\n", fam.loopback()));
        }
        for cidr in &spec.exclude {
            let (ip, prefix) = parse_cidr(cidr).map_err(IptablesError)?;
            if ip.is_ipv4() == (fam == Family::V4) {
                s.push_str(&format!("{t} -A {OUT} -d {ip}/{prefix} -j RETURN\n"));
            }
        }
        for group in spec.ports.chunks(MULTIPORT_MAX) {
            let rule = if group.len() == 1 {
                format!("--dport {}", group[0])
            } else {
                let list: Vec<String> = group.iter().map(u16::to_string).collect();
                format!("-m multiport --dports {}", list.join(","))
            };
            s.push_str(&format!("{t} -A {OUT} -p tcp {rule} -j {REDIRECT}\n"));
        }
        s.push_str(&format!("{t} -A OUTPUT -p tcp -j {OUT}\n"));
    }
    Ok(s)
}

/// The script that removes them (unhook first, then flush and delete).
pub fn remove(spec: &RedirectSpec) -> String {
    let mut s = String::from("#!/bin/sh\n# asg transparent mode: remove the redirect rules.\n");
    for fam in spec.families() {
        let t = format!("{} -t nat", fam.cmd());
        s.push_str(&format!("{t} -D OUTPUT -p tcp -j {OUT}\n"));
        for chain in [OUT, REDIRECT] {
            s.push_str(&format!("{t} -F {chain}\n{t} -X {chain}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec() -> RedirectSpec {
        RedirectSpec {
            proxy_port: 15001,
            ports: vec![80, 443],
            uid: Some(1337),
            gid: None,
            mark: None,
            exclude: vec![],
            include_loopback: false,
            ipv6: false,
        }
    }

    /// Compare with `proxy/tests/golden/<name>`; `ASG_UPDATE_GOLDEN=1` rewrites it.
    fn golden(name: &str, actual: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("ASG_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, actual).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (ASG_UPDATE_GOLDEN=1 creates it)", path.display()));
        assert_eq!(actual, want, "golden file {} differs", path.display());
    }

    #[test]
    fn uid_exclusion_golden() {
        golden("iptables_uid.golden", &install(&spec()).unwrap());
        golden("iptables_uid_remove.golden", &remove(&spec()));
    }

    #[test]
    fn mark_ipv6_and_exclusions_golden() {
        let s = RedirectSpec {
            uid: Some(1337),
            gid: Some(1337),
            mark: Some(0x539),
            exclude: vec!["10.0.0.0/8".into(), "fd00::/8".into(), "192.168.1.1".into()],
            ipv6: true,
            ..spec()
        };
        golden("iptables_mark_ipv6.golden", &install(&s).unwrap());
        golden("iptables_mark_ipv6_remove.golden", &remove(&s));
    }

    #[test]
    fn loopback_and_many_ports() {
        let s = RedirectSpec {
            uid: None,
            mark: Some(1337),
            include_loopback: true,
            ports: (8000..8020).collect(),
            ..spec()
        };
        let out = install(&s).unwrap();
        assert!(!out.contains("127.0.0.0/8"), "{out}");
        assert!(out.contains("--dports 8000,8001,8002,8003,8004,8005,8006,8007,8008,8009,8010,8011,8012,8013,8014 -j"));
        assert!(out.contains("--dports 8015,8016,8017,8018,8019 -j"));
        assert!(out.contains("-m mark --mark 0x539 -j RETURN"));
        // The hook into OUTPUT comes last.
        assert!(out
            .trim_end()
            .ends_with("iptables -t nat -A OUTPUT -p tcp -j ASG_OUTPUT"));
    }

    #[test]
    fn refuses_rules_that_would_loop_or_make_no_sense() {
        let err = install(&RedirectSpec {
            uid: None,
            ..spec()
        })
        .unwrap_err();
        assert!(err.to_string().contains("exclusion"), "{err}");
        assert!(install(&RedirectSpec {
            ports: vec![],
            ..spec()
        })
        .is_err());
        assert!(install(&RedirectSpec {
            proxy_port: 0,
            ..spec()
        })
        .is_err());
        let err = install(&RedirectSpec {
            exclude: vec!["10.0.0.0/33".into()],
            ..spec()
        })
        .unwrap_err();
        assert!(err.to_string().contains("CIDR"), "{err}");
    }
}
