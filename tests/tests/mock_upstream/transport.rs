//! Transport knobs: gzip, chunking, delays, status codes, mid-stream errors and drops.

use super::*;

#[test]
fn gzip_knob_compresses_streams_and_json_regardless_of_accept_encoding() {
    let m = mock();
    for d in Dialect::ALL {
        for stream in [false, true] {
            let req = d.request("x", stream);
            let headers = [("x-mock-scenario", "secret")];
            let plain = call(m, d, &headers, &req);
            let gz = call(m, d, &[headers[0], ("x-mock-gzip", "1")], &req);
            assert_eq!(
                gz.header("content-encoding"),
                Some("gzip"),
                "{d:?} {stream}"
            );
            assert_eq!(&gz.body[..2], &[0x1f, 0x8b], "{d:?} {stream}: gzip magic");
            assert!(
                !String::from_utf8_lossy(&gz.body).contains("AKIAIOSF"),
                "compressed bytes hide the text"
            );
            let unzipped = String::from_utf8(http::gunzip(&gz.body)).unwrap();
            if stream {
                assert_eq!(
                    d.assemble(&unzipped).text,
                    d.assemble(&plain.text()).text,
                    "{d:?}"
                );
            } else {
                assert_eq!(
                    d.text(&serde_json::from_str(&unzipped).unwrap()),
                    secret_text(),
                    "{d:?}"
                );
            }
        }
    }
}

#[test]
fn chunk_knob_cuts_the_body_into_separately_written_pieces() {
    let m = mock();
    for d in Dialect::ALL {
        let body = d.request("x", true).to_string();
        let raw = raw_exchange(
            m.addr(),
            d.path(),
            &[("x-mock-scenario", "tool_shell"), ("x-mock-chunk", "7")],
            body.as_bytes(),
        );
        assert!(raw.complete, "{d:?}");
        let sizes = raw.chunk_sizes.clone().expect("chunked");
        assert!(sizes.iter().all(|s| *s <= 7), "{d:?}: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), raw.body.len());
        assert!(sizes.len() >= raw.body.len() / 7, "{d:?}");
        let a = d.assemble(&raw.text());
        assert_eq!(a.tool_calls[0].arguments, SHELL_SECRET_ARGS, "{d:?}");
    }
    // Non-streaming bodies are cut too (chunked instead of content-length).
    let body = Dialect::Chat.request("x", false).to_string();
    let raw = raw_exchange(
        m.addr(),
        "/v1/chat/completions",
        &[("x-mock-chunk", "5")],
        body.as_bytes(),
    );
    assert!(raw.chunk_sizes.as_ref().unwrap().iter().all(|s| *s <= 5));
    assert!(raw.text().contains(TEXT_REPLY));
}

#[test]
fn delay_knob_spaces_stream_events_and_delays_json() {
    let m = mock();
    let d = Dialect::Anthropic;
    let start = Instant::now();
    let (status, _, mut reader) = http::open_stream(
        &m.url(d.path()),
        &[("x-mock-delay-ms", "40")],
        &d.request("x", true),
    );
    assert_eq!(status, 200);
    let mut first = [0u8; 16];
    std::io::Read::read(&mut reader, &mut first).unwrap();
    let first_at = start.elapsed();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let total = start.elapsed();
    let events = asg_e2e::sse::parse(&(String::from_utf8_lossy(&first).into_owned() + &rest)).len();
    assert!(events >= 8, "{events}");
    assert!(
        total >= Duration::from_millis(40 * (events as u64 - 1)),
        "{total:?} for {events} events"
    );
    assert!(
        first_at + Duration::from_millis(200) < total,
        "first bytes ({first_at:?}) arrive before the end ({total:?})"
    );

    let start = Instant::now();
    let r = call(
        m,
        Dialect::Chat,
        &[("x-mock-delay-ms", "300")],
        &Dialect::Chat.request("x", false),
    );
    assert_eq!(r.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn status_knob_returns_dialect_correct_errors() {
    let m = mock();
    let r = call(
        m,
        Dialect::Chat,
        &[("x-mock-status", "429")],
        &Dialect::Chat.request("x", true),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let r = call(
        m,
        Dialect::Responses,
        &[("x-mock-status", "500")],
        &Dialect::Responses.request("x", false),
    );
    assert_eq!(
        (r.status, r.json()["error"]["type"].clone()),
        (500, json!("server_error"))
    );
    let r = call(
        m,
        Dialect::Anthropic,
        &[("x-mock-status", "529")],
        &Dialect::Anthropic.request("x", false),
    );
    let body = r.json();
    assert_eq!(
        (
            r.status,
            body["type"].clone(),
            body["error"]["type"].clone()
        ),
        (529, json!("error"), json!("overloaded_error"))
    );
    let r = call(
        m,
        Dialect::Anthropic,
        &[("x-mock-status", "401")],
        &Dialect::Anthropic.request("x", false),
    );
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let rpc = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    let r = post_json(&m.url("/mcp"), &[("x-mock-status", "503")], &rpc);
    assert_eq!(
        (
            r.status,
            r.json()["id"].clone(),
            r.json()["error"]["code"].clone()
        ),
        (503, json!(9), json!(-32603))
    );
    // Below 400 the status just replaces 200.
    let r = call(
        m,
        Dialect::Chat,
        &[("x-mock-status", "201")],
        &Dialect::Chat.request("x", false),
    );
    assert_eq!(r.status, 201);
    assert_eq!(Dialect::Chat.text(&r.json()), TEXT_REPLY);
}

#[test]
fn error_midstream_knob_sends_dialect_errors_after_some_deltas() {
    let m = mock();
    for d in Dialect::ALL {
        for scenario in ["text", "tool_shell"] {
            let h = [
                ("x-mock-error-midstream", "1"),
                ("x-mock-scenario", scenario),
            ];
            let body = call(m, d, &h, &d.request("x", true)).text();
            let a = d.assemble(&body);
            assert!(a.error.is_some() && !a.completed, "{d:?} {scenario}: {a:?}");
            assert!(
                !a.text.is_empty() || !a.tool_calls.is_empty(),
                "{d:?} {scenario}: some deltas first"
            );
            match d {
                Dialect::Chat => {
                    assert!(!body.contains("[DONE]") && body.contains("data: {\"error\""))
                }
                Dialect::Responses => {
                    assert!(
                        body.contains("event: error\n")
                            && body.contains("event: response.failed\n")
                    );
                    assert!(a.sequence_ok && a.finish_reason.as_deref() == Some("failed"));
                }
                Dialect::Anthropic => assert_eq!(a.error.unwrap()["type"], "overloaded_error"),
            }
        }
    }
}

#[test]
fn close_midstream_knob_drops_the_connection() {
    let m = mock();
    for d in Dialect::ALL {
        let body = d.request("x", true).to_string();
        let raw = raw_exchange(
            m.addr(),
            d.path(),
            &[("x-mock-close-midstream", "1")],
            body.as_bytes(),
        );
        assert_eq!(raw.status, 200);
        assert!(!raw.complete, "{d:?}: no terminating chunk");
        let a = d.assemble(&raw.text());
        assert!(a.events >= 2 && !a.completed, "{d:?}: {a:?}");
        let err = http::try_send(
            &http::agent(),
            "POST",
            &m.url(d.path()),
            &[("x-mock-close-midstream", "1")],
            Some(body.as_bytes()),
        );
        assert!(err.is_err(), "{d:?}: a client sees the body cut short");
    }
    let body = Dialect::Chat.request("x", false).to_string();
    let raw = raw_exchange(
        m.addr(),
        "/v1/chat/completions",
        &[("x-mock-close-midstream", "1")],
        body.as_bytes(),
    );
    assert!(
        !raw.complete
            && !raw.body.is_empty()
            && serde_json::from_slice::<Value>(&raw.body).is_err()
    );
}
