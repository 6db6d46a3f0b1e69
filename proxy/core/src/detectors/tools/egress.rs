//! Egress: what kind of host a URL names. URLs and bare hosts are judged
//! against the profile's allow and deny lists, the built-in list of paste,
//! file-drop, request-catcher and tunnel hosts, messaging-API drop boxes,
//! cloud metadata endpoints and raw IP addresses (including the decimal and
//! hex spellings used to dodge filters: `http://2130706433/`).
//! [`super::network`] turns the kind into an effect.

use super::rules::ToolRules;
use super::EgressConfig;
use std::net::{IpAddr, Ipv4Addr};

pub struct Egress<'a> {
    pub rules: &'a ToolRules,
    pub config: &'a EgressConfig,
}

/// What kind of host a URL names, for the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// On the profile's allow list.
    Allowed,
    /// Paste, file-drop, request-catcher, tunnel or messaging drop box, or
    /// on the profile's deny list.
    Denied,
    /// A cloud metadata endpoint (or any link-local address).
    Metadata,
    Loopback,
    /// An IP address in a private range.
    Private,
    /// A public IP address written as such (`flag_raw_ips`).
    RawPublicIp,
    /// Any other host while the profile denies by default.
    NotAllowed,
    Public,
}

impl Egress<'_> {
    pub fn kind(&self, url: &str) -> HostKind {
        let Some(host) = host_of(url) else {
            return HostKind::Public;
        };
        let lists = &self.rules.hosts;
        if lists.allow.contains(&host) {
            return HostKind::Allowed;
        }
        if lists.deny.contains(&host)
            || lists.exfil.contains(&host)
            || self.rules.exfil_urls.is_match(url)
        {
            return HostKind::Denied;
        }
        let ip = parse_ip(&host);
        if lists.metadata.contains(&host) || ip.is_some_and(is_link_local) {
            return HostKind::Metadata;
        }
        if host == "localhost"
            || host.ends_with(".localhost")
            || ip.is_some_and(|i| i.is_loopback() || i.is_unspecified())
        {
            return HostKind::Loopback;
        }
        if let Some(ip) = ip {
            if is_private(ip) {
                return HostKind::Private;
            }
            if self.config.flag_raw_ips {
                return HostKind::RawPublicIp;
            }
        }
        if self.config.default_deny {
            return HostKind::NotAllowed;
        }
        HostKind::Public
    }
}

/// A label of `host` that spells text in base32 or hex
/// (`iffusqkjj5jumt2ejzhdorkyifgvatcf.ns.attacker.test`): data carried out
/// by the name lookup itself, whatever the request. Hashes and ids in real
/// host names (CDN and preview deployments) decode to noise, not text.
pub fn encoded_label(host: &str) -> Option<&str> {
    host.split('.').find(|label| {
        if label.len() < 16 || label.len() > 63 {
            return false;
        }
        let decoded = if label.len() % 2 == 0 && label.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(label).ok()
        } else {
            let upper = label.to_ascii_uppercase();
            let whole = upper.len() / 8 * 8;
            data_encoding::BASE32_NOPAD
                .decode(&upper.as_bytes()[..whole])
                .ok()
        };
        decoded.is_some_and(|d| {
            let printable = d
                .iter()
                .filter(|b| b.is_ascii_graphic() || **b == b' ')
                .count();
            d.len() >= 8 && printable * 10 >= d.len() * 9 && d.iter().any(u8::is_ascii_alphabetic)
        })
    })
}

/// Host of a URL, lower-case, without userinfo, port or trailing dot.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(stripped) = hostport.strip_prefix('[') {
        stripped.split(']').next()?.to_string()
    } else {
        hostport.split(':').next()?.to_string()
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// `*.example.com` matches subdomains and the apex; otherwise exact.
pub fn host_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host == suffix
                || (host.len() > suffix.len()
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.')
        }
        None => host == pattern,
    }
}

/// An IP address in any spelling a resolver accepts: dotted, IPv6, a
/// single decimal or hex number, or dotted parts in hex or octal.
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let part = |s: &str| -> Option<u64> {
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            u64::from_str_radix(h, 16).ok()
        } else if s.len() > 1 && s.starts_with('0') {
            u64::from_str_radix(&s[1..], 8).ok()
        } else {
            s.parse().ok()
        }
    };
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| part(p)).collect::<Option<_>>()?;
    let value = match nums.len() {
        1 => nums[0],
        2 => (nums[0] << 24) | nums[1],
        3 => (nums[0] << 24) | (nums[1] << 16) | nums[2],
        _ => (nums[0] << 24) | (nums[1] << 16) | (nums[2] << 8) | nums[3],
    };
    (value <= u32::MAX as u64).then(|| IpAddr::V4(Ipv4Addr::from(value as u32)))
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

pub(super) fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn host_labels_that_spell_text() {
        for host in [
            "iffusqkjj5jumt2ejzhdorkyifgvatcf.ns.attacker.test",
            "6d79207365637265742070617373776f7264.x.example",
        ] {
            assert!(encoded_label(host).is_some(), "{host}");
        }
        for host in [
            "d1a2b3c4d5e6f7g8.cloudfront.net",
            "app-git-feature-login-acme.vercel.app",
            "3f9a2c7be41d08e5a9c3f1b2d4e6a8c0.r2.cloudflarestorage.com",
            "abcdefghijklmnopqrstuvwx.execute-api.eu-west-1.amazonaws.com",
            "api.github.com",
        ] {
            assert!(encoded_label(host).is_none(), "{host}");
        }
    }
    use super::*;

    #[test]
    fn host_parsing() {
        assert_eq!(
            host_of("https://user:pw@Example.COM:8443/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(host_of("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(
            host_of("http://trusted.com@evil.test/").as_deref(),
            Some("evil.test")
        );
        assert!(host_matches("a.b.ngrok.io", "*.ngrok.io"));
        assert!(host_matches("ngrok.io", "*.ngrok.io"));
        assert!(!host_matches("evilngrok.io", "*.ngrok.io"));
    }

    #[test]
    fn ip_spellings() {
        let lo = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_ip("2130706433"), lo);
        assert_eq!(parse_ip("0x7f000001"), lo);
        assert_eq!(parse_ip("0177.0.0.1"), lo);
        assert_eq!(parse_ip("127.1"), lo);
        assert_eq!(
            parse_ip("0xa9fea9fe"),
            Some(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)))
        );
        assert_eq!(parse_ip("example.com"), None);
    }
}
