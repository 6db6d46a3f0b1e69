//! Body helpers for the data path: content types. (Content codings and
//! their bounded decoding are in [`super::encoding`].)

pub use crate::util::is_json_content_type;

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
