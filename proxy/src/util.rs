//! Small shared helpers.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Current UTC time as RFC 3339 with microseconds.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

/// Constant-time comparison for API keys (the core needs it for approval
/// fingerprints, so it lives there).
pub use crate::decision::util::constant_time_eq;

/// A random (version 4) UUID for request ids, from the thread-local random
/// generator: `Uuid::new_v4` asks the kernel (`getrandom`) on every call,
/// one syscall per request on the proxy path.
pub fn new_request_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// `host:port` or `[v6]:port` → (host without brackets, port).
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':')?)
    } else {
        s.rsplit_once(':')?
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then_some((host, port))
}

/// Bodies we can inspect are JSON. A missing content type is tolerated
/// (some clients omit it); anything else is refused with 415 rather than
/// forwarded uninspected. Shared by the data path and the decision API.
pub fn is_json_content_type(value: Option<&str>) -> bool {
    match value {
        None => true,
        Some(v) => {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime.is_empty()
                || mime == "application/json"
                || mime.ends_with("+json")
                || mime == "text/json"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }

    #[test]
    fn request_uuids_are_version_4_and_distinct() {
        let (a, b) = (new_request_uuid(), new_request_uuid());
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
    }
}
