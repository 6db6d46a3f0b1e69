//! Body helpers for the data path: content types. (Content codings and
//! their bounded decoding are in [`super::encoding`].)

/// Bodies we can inspect are JSON. A missing content type is tolerated
/// (some clients omit it); anything else is refused with 415 rather than
/// forwarded uninspected.
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

pub fn is_event_stream(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("text/event-stream")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(is_json_content_type(Some(
            "application/json; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some(
            "multipart/form-data; boundary=x"
        )));
        assert!(is_event_stream(Some("text/event-stream; charset=utf-8")));
    }
}
