//! What to do with a request head, decided without I/O: which path goes
//! upstream, whether an MCP control request or an unknown path passes, and
//! whether an inspected body can be read (media type, codings, length) and
//! how (prefetched before the upstream is contacted, or collected).

use crate::datapath::dialect::{ApiKind, Dialect, ErrorKind};
use crate::datapath::encoding::Codings;
use crate::datapath::path_norm::{NormPath, Reading};
use crate::decision::policy::UnknownPaths;
use pingora::proxy::Session;

/// pingora's request replay buffer: bodies up to this size are read and
/// judged before the upstream is contacted.
pub(super) const PREFETCH_LIMIT: usize = 64 * 1024;

/// Every value of a header; a value that is not text reads as U+FFFD (so
/// a parser refuses it instead of skipping it).
pub(super) fn header_values<'a>(session: &'a Session, name: &str) -> Vec<&'a str> {
    session
        .req_header()
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect()
}

pub(super) fn header_str<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

/// A request the gateway answers itself, before inspection.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
}

impl Refusal {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            message: message.into(),
        }
    }
}

/// The headers that say whether and how an inspected body can be read.
pub(super) struct BodyHead<'a> {
    pub(super) content_type: Option<&'a str>,
    pub(super) content_encoding: Vec<&'a str>,
    pub(super) content_length: Option<&'a str>,
}

impl<'a> BodyHead<'a> {
    pub(super) fn of(session: &'a Session) -> BodyHead<'a> {
        BodyHead {
            content_type: header_str(session, "content-type"),
            content_encoding: header_values(session, "content-encoding"),
            content_length: header_str(session, "content-length"),
        }
    }
}

/// How an inspected body is read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BodyRead {
    /// Declared small: read whole (pingora's replay buffer) and judged
    /// before the upstream is contacted.
    Prefetch(usize),
    /// Larger or chunked: collected on its way upstream.
    Collect,
}

#[derive(Debug)]
pub(super) struct BodyPlan {
    pub(super) encoding: Codings,
    pub(super) read: BodyRead,
}

/// An inspected body is JSON, in codings the gateway decodes, and not
/// declared larger than `max_body`.
pub(super) fn plan_body(head: &BodyHead<'_>, max_body: usize) -> Result<BodyPlan, Refusal> {
    if !crate::datapath::body::is_json_content_type(head.content_type) {
        let ct = head.content_type.unwrap_or("");
        return Err(Refusal::new(
            ErrorKind::UnsupportedMedia,
            format!("content type {ct:?} cannot be inspected; send application/json"),
        ));
    }
    let encoding = Codings::parse(head.content_encoding.iter().copied())
        .map_err(|msg| Refusal::new(ErrorKind::UnsupportedMedia, msg))?;
    let declared = head
        .content_length
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > max_body) {
        return Err(Refusal::new(
            ErrorKind::TooLarge,
            format!("request body of {n} bytes exceeds the gateway limit of {max_body} bytes"),
        ));
    }
    let read = match declared {
        Some(n) if n <= PREFETCH_LIMIT => BodyRead::Prefetch(n),
        _ => BodyRead::Collect,
    };
    Ok(BodyPlan { encoding, read })
}

/// MCP's own GET (the server's event stream, inspected as MCP messages)
/// and DELETE (the session's end) carry no body to judge; refusing them
/// reads as "session not found" to clients. `None`: not such a request.
pub(super) fn mcp_control(api: ApiKind, method: &str) -> Option<Dialect> {
    match (api, method) {
        (ApiKind::Mcp, "GET") => Some(Dialect::Mcp),
        (ApiKind::Mcp, "DELETE") => Some(Dialect::Passthrough),
        _ => None,
    }
}

/// An uninspected path is refused when the policy says so.
pub(super) fn unknown_path(rule: UnknownPaths, method: &str, path: &str) -> Option<Refusal> {
    (rule == UnknownPaths::Refuse).then(|| {
        Refusal::new(
            ErrorKind::NotFound,
            format!(
                "{method} {path} is not an inspected API path and the policy refuses unknown paths"
            ),
        )
    })
}

/// An API path written unusually reaches the upstream in the clean form
/// that was inspected; a GET too, so that a WebSocket upgrade is read by
/// that path. `None`: the client's spelling goes on.
pub(super) fn clean_path(
    norm: &NormPath,
    api: ApiKind,
    dialect: Dialect,
    reading: &Reading,
) -> Option<String> {
    if !norm.rewritten {
        return None;
    }
    let api_path = match dialect.is_inspected() {
        true => Some(reading),
        false => norm
            .readings
            .iter()
            .find(|r| Dialect::detect(api, "POST", &r.key).is_inspected()),
    };
    api_path.map(|r| r.clean.clone())
}

/// The approval permit a client presented (blank is none).
pub(super) fn permit(value: Option<&str>) -> Option<String> {
    value
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::path_norm::normalize;

    fn head<'a>(ct: Option<&'a str>, ce: &[&'a str], cl: Option<&'a str>) -> BodyHead<'a> {
        BodyHead {
            content_type: ct,
            content_encoding: ce.to_vec(),
            content_length: cl,
        }
    }

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn small_declared_bodies_are_prefetched_others_collected() {
        let plan = plan_body(&head(JSON, &[], Some("120")), 1 << 20).unwrap();
        assert_eq!(plan.read, BodyRead::Prefetch(120));
        assert!(plan.encoding.is_identity());
        let at_limit = PREFETCH_LIMIT.to_string();
        let plan = plan_body(&head(JSON, &[], Some(&at_limit)), 1 << 20).unwrap();
        assert_eq!(plan.read, BodyRead::Prefetch(PREFETCH_LIMIT));
        let above = (PREFETCH_LIMIT + 1).to_string();
        let plan = plan_body(&head(JSON, &[], Some(&above)), 1 << 20).unwrap();
        assert_eq!(plan.read, BodyRead::Collect);
        // Chunked (no length) or an unreadable length: collected and bounded as it comes.
        assert_eq!(
            plan_body(&head(JSON, &[], None), 10).unwrap().read,
            BodyRead::Collect
        );
        let odd = plan_body(&head(JSON, &[], Some("12x")), 10).unwrap();
        assert_eq!(odd.read, BodyRead::Collect);
    }

    #[test]
    fn bodies_that_cannot_be_inspected_are_refused() {
        let r = plan_body(&head(Some("text/plain"), &[], Some("3")), 100).unwrap_err();
        assert_eq!(r.kind, ErrorKind::UnsupportedMedia);
        assert_eq!(
            r.message,
            "content type \"text/plain\" cannot be inspected; send application/json"
        );
        // Some clients omit the type: tolerated, the body must still parse as JSON.
        assert!(plan_body(&head(None, &[], None), 100).is_ok());
        let r = plan_body(&head(Some("multipart/form-data"), &[], None), 100).unwrap_err();
        assert_eq!(r.kind, ErrorKind::UnsupportedMedia);
        let r = plan_body(&head(JSON, &["br, zz-unknown"], None), 100).unwrap_err();
        assert_eq!(r.kind, ErrorKind::UnsupportedMedia);
        let r = plan_body(&head(JSON, &[], Some(" 101 ")), 100).unwrap_err();
        assert_eq!(
            r,
            Refusal::new(
                ErrorKind::TooLarge,
                "request body of 101 bytes exceeds the gateway limit of 100 bytes"
            )
        );
    }

    #[test]
    fn compressed_bodies_are_planned_with_their_codings() {
        let plan = plan_body(&head(JSON, &["gzip"], Some("40")), 100).unwrap();
        assert!(!plan.encoding.is_identity());
        assert_eq!(plan.read, BodyRead::Prefetch(40));
    }

    #[test]
    fn mcp_get_is_inspected_delete_passes_and_posts_are_not_control() {
        assert_eq!(mcp_control(ApiKind::Mcp, "GET"), Some(Dialect::Mcp));
        assert_eq!(
            mcp_control(ApiKind::Mcp, "DELETE"),
            Some(Dialect::Passthrough)
        );
        assert_eq!(mcp_control(ApiKind::Mcp, "POST"), None);
        assert_eq!(mcp_control(ApiKind::Openai, "GET"), None);
    }

    #[test]
    fn unknown_paths_follow_the_policy() {
        assert_eq!(unknown_path(UnknownPaths::Pass, "GET", "/x"), None);
        let r = unknown_path(UnknownPaths::Refuse, "GET", "/x").unwrap();
        assert_eq!(r.kind, ErrorKind::NotFound);
        assert!(
            r.message.starts_with("GET /x is not an inspected API path"),
            "{}",
            r.message
        );
    }

    #[test]
    fn an_unusual_spelling_of_an_api_path_goes_upstream_clean() {
        let norm = normalize("/v1//chat/./completions").unwrap();
        assert!(norm.rewritten);
        let reading = &norm.readings[0];
        let dialect = Dialect::detect(ApiKind::Openai, "POST", &reading.key);
        assert!(dialect.is_inspected());
        assert_eq!(
            clean_path(&norm, ApiKind::Openai, dialect, reading).as_deref(),
            Some("/v1/chat/completions")
        );
        // A GET of the same path (a WebSocket upgrade) is sent by the API's clean path too.
        let passthrough = Dialect::Passthrough;
        assert_eq!(
            clean_path(&norm, ApiKind::Openai, passthrough, reading).as_deref(),
            Some("/v1/chat/completions")
        );
        // Already clean: the client's spelling goes on.
        let plain = normalize("/v1/chat/completions").unwrap();
        assert_eq!(
            clean_path(&plain, ApiKind::Openai, dialect, &plain.readings[0]),
            None
        );
    }

    #[test]
    fn a_blank_permit_is_no_permit() {
        assert_eq!(permit(Some("  p-123 ")).as_deref(), Some("p-123"));
        assert_eq!(permit(Some("   ")), None);
        assert_eq!(permit(None), None);
    }
}
