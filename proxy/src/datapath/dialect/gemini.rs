//! Google Gemini (`POST /v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent`, `:countTokens`; also under `/v1/` and Vertex
//! AI's `…/publishers/google/models/{model}:…`).
//!
//! The REST API accepts proto field names in lowerCamelCase and in
//! snake_case (`functionCall` / `function_call`), so every field is read
//! under both spellings: a body the parser did not understand would be a
//! way around every detector. Parts of a kind it does not know are read
//! whole by the fail-closed fallback.
//!
//! Where things live:
//! * `systemInstruction.parts[].text`: system text;
//! * `contents[]` with `role` `user` (or absent) / `model`, each with
//!   `parts[]`: `text`, `functionCall {name, args}` (a call the model made
//!   earlier, scanned as text), `functionResponse {name, response}` (a tool
//!   result: untrusted), `executableCode`, `codeExecutionResult`, media;
//! * `tools[].functionDeclarations[]`: tool definitions;
//! * responses: `candidates[].content.parts[]`, the same part kinds.

use super::{collect_strings, collect_unknown, ErrorKind};
use crate::decision::subject::{Subject, Surface, ToolCall};
use serde_json::{json, Value};

/// `v[camel]`, else `v[snake_case(camel)]`.
pub fn field<'a>(v: &'a Value, camel: &str) -> &'a Value {
    match v.get(camel) {
        Some(x) => x,
        None => match v.get(snake(camel).as_str()) {
            Some(x) => x,
            None => &Value::Null,
        },
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The key under which `v` holds `camel` (either spelling), if any.
fn key_of(v: &Value, camel: &str) -> Option<String> {
    if v.get(camel).is_some() {
        return Some(camel.to_string());
    }
    let s = snake(camel);
    v.get(s.as_str()).is_some().then_some(s)
}

/// Part keys that carry no readable text (media, signatures, metadata).
const OPAQUE_PART_KEYS: &[&str] = &[
    "inlineData",
    "fileData",
    "thoughtSignature",
    "videoMetadata",
    "mediaResolution",
    "thought",
    "partMetadata",
];

/// Is `key` (either spelling) one of `camels`?
fn is_one_of(key: &str, camels: &[&str]) -> bool {
    camels.iter().any(|c| *c == key || snake(c) == key)
}

pub fn request_subject(body: &Value) -> Subject {
    let mut s = Subject::default();
    push_content(field(body, "systemInstruction"), Surface::System, &mut s);
    match field(body, "contents") {
        Value::Array(contents) => {
            for content in contents {
                let surface = match content["role"].as_str() {
                    Some("model") => Surface::Assistant,
                    Some("system") => Surface::System,
                    _ => Surface::User,
                };
                push_content(content, surface, &mut s);
            }
        }
        Value::Null => {}
        // A single Content object, or text where a list belongs.
        other => push_content(other, Surface::User, &mut s),
    }
    for tool in field(body, "tools").as_array().into_iter().flatten() {
        for decl in field(tool, "functionDeclarations")
            .as_array()
            .into_iter()
            .flatten()
        {
            collect_strings(decl, Surface::ToolDefinition, &mut s, 0);
        }
    }
    // Cached content and tool configs hold ids, not prompt text.
    s
}

/// A `Content` (`{role, parts}`), or misshapen text / part lists.
fn push_content(content: &Value, surface: Surface, s: &mut Subject) {
    match content {
        Value::Null => {}
        Value::String(t) => s.push_text(surface, t.as_str()),
        Value::Array(parts) => parts.iter().for_each(|p| push_part(p, surface, s)),
        Value::Object(_) => match field(content, "parts") {
            Value::Array(parts) => parts.iter().for_each(|p| push_part(p, surface, s)),
            Value::Null if content.get("text").is_some() => push_part(content, surface, s),
            Value::Null => {}
            other => collect_unknown(other, surface, s),
        },
        _ => {}
    }
}

/// One part. Each key is read by what it is; a key nobody knows is read
/// whole (fail closed).
fn push_part(part: &Value, surface: Surface, s: &mut Subject) {
    let Value::Object(o) = part else {
        if let Value::String(t) = part {
            s.push_text(surface, t.as_str());
        }
        return;
    };
    for (key, value) in o {
        if key == "text" {
            if let Some(t) = value.as_str() {
                // A thought is the model's own reasoning.
                let thought = field(part, "thought").as_bool() == Some(true);
                let surface = if thought { Surface::Assistant } else { surface };
                super::push_turn_text(surface, t, s);
            }
        } else if is_one_of(key, &["functionCall"]) {
            collect_strings(field(value, "args"), Surface::ToolArguments, s, 0);
        } else if is_one_of(key, &["functionResponse"]) {
            collect_strings(field(value, "response"), Surface::ToolResult, s, 0);
            push_content(field(value, "parts"), Surface::ToolResult, s);
        } else if is_one_of(key, &["executableCode"]) {
            collect_strings(field(value, "code"), Surface::Assistant, s, 0);
        } else if is_one_of(key, &["codeExecutionResult"]) {
            collect_strings(field(value, "output"), Surface::ToolResult, s, 0);
        } else if is_one_of(key, OPAQUE_PART_KEYS) {
        } else {
            collect_unknown(value, surface, s);
        }
    }
}

/// `(candidate index in the array, part index)` of every function call.
fn call_parts(body: &Value) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (c, cand) in candidates(body).iter().enumerate() {
        for (p, part) in parts(cand).iter().enumerate() {
            if !field(part, "functionCall").is_null() {
                out.push((c, p));
            }
        }
    }
    out
}

fn candidates(body: &Value) -> &[Value] {
    field(body, "candidates")
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn parts(cand: &Value) -> &[Value] {
    field(field(cand, "content"), "parts")
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A function call part as a [`ToolCall`].
pub fn tool_call(part: &Value) -> Option<ToolCall> {
    let call = field(part, "functionCall");
    if call.is_null() {
        return None;
    }
    let mut tc = ToolCall::new(
        call["name"].as_str().unwrap_or(""),
        field(call, "args").clone(),
    );
    tc.id = call["id"].as_str().map(str::to_string);
    Some(tc)
}

/// Texts and calls of a response; the JSON-array stream form (a list of
/// responses) is read element by element.
pub fn response_subject(body: &Value) -> Subject {
    let mut s = Subject::default();
    if let Value::Array(chunks) = body {
        for chunk in chunks {
            let one = response_subject(chunk);
            s.texts.extend(one.texts);
            s.tool_calls.extend(one.tool_calls);
        }
        return s;
    }
    for cand in candidates(body) {
        for part in parts(cand) {
            if let Some(tc) = tool_call(part) {
                s.tool_calls.push(tc);
            } else {
                push_part(part, Surface::Assistant, &mut s);
            }
        }
    }
    s
}

pub fn refuse_tool_calls(body: &mut Value, blocked: &[usize], message: &str) {
    if let Value::Array(chunks) = body {
        // Indexes count calls across the chunks of a buffered stream.
        let mut offset = 0;
        for chunk in chunks {
            let n = call_parts(chunk).len();
            let mine: Vec<usize> = blocked
                .iter()
                .filter(|&&b| b >= offset && b < offset + n)
                .map(|b| b - offset)
                .collect();
            refuse_tool_calls(chunk, &mine, message);
            offset += n;
        }
        return;
    }
    let calls = call_parts(body);
    for &b in blocked {
        let Some(&(c, p)) = calls.get(b) else {
            continue;
        };
        if let Some(part) = parts_mut(body, c).and_then(|ps| ps.get_mut(p)) {
            *part = json!({ "text": message });
        }
    }
}

fn parts_mut(body: &mut Value, cand: usize) -> Option<&mut Vec<Value>> {
    let ck = key_of(body, "candidates")?;
    let cand = body.get_mut(ck.as_str())?.get_mut(cand)?;
    let content_key = key_of(cand, "content")?;
    let content = cand.get_mut(content_key.as_str())?;
    let pk = key_of(content, "parts")?;
    content.get_mut(pk.as_str())?.as_array_mut()
}

pub fn withhold_text(body: &mut Value, message: &str) {
    if let Value::Array(chunks) = body {
        // One answer in place of the whole buffered stream.
        let mut first = chunks.first().cloned().unwrap_or_else(|| json!({}));
        withhold_text(&mut first, message);
        *chunks = vec![first];
        return;
    }
    let n = candidates(body).len().max(1);
    let cands: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "index": i,
                "content": {"role": "model", "parts": [{"text": message}]},
                "finishReason": "STOP",
            })
        })
        .collect();
    if let Some(k) = key_of(body, "candidates") {
        if let Some(o) = body.as_object_mut() {
            o.remove(&k);
        }
    }
    body["candidates"] = Value::Array(cands);
}

/// The API's error shape: `{"error": {"code", "message", "status"}}`, with
/// the gateway's reason and request id in an `ErrorInfo` detail.
pub fn error_body(kind: ErrorKind, message: &str, request_id: &str) -> Value {
    let status = match kind {
        ErrorKind::Blocked | ErrorKind::ApprovalRequired => "PERMISSION_DENIED",
        ErrorKind::InvalidRequest | ErrorKind::TooLarge | ErrorKind::UnsupportedMedia => {
            "INVALID_ARGUMENT"
        }
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::BadGateway | ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::Timeout => "DEADLINE_EXCEEDED",
        ErrorKind::Internal => "INTERNAL",
    };
    json!({
        "error": {
            "code": kind.status(),
            "message": message,
            "status": status,
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": kind.code(),
                "domain": "asg",
                "metadata": {"request_id": request_id},
            }],
        }
    })
}

/// Is this path a Gemini model method the gateway inspects? (`…/models/
/// {model}:generateContent`, `:streamGenerateContent`, `:countTokens`.)
pub fn is_model_method(path: &str) -> bool {
    let Some((_, method)) = path.rsplit_once(':') else {
        return false;
    };
    // Without case: routes are matched on a lower-cased path, and some
    // servers read paths without case.
    path.contains("/models/")
        && ["generateContent", "streamGenerateContent", "countTokens"]
            .iter()
            .any(|m| method.eq_ignore_ascii_case(m))
}

/// The model named in a method path (`…/models/gemini-2.5-flash:…`).
pub fn model_of(path: &str) -> Option<&str> {
    let after = path.rsplit_once("/models/")?.1;
    Some(after.split(':').next().unwrap_or(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_context_in_a_user_turn_is_judged_as_attached_context() {
        let body = json!({"contents": [{"role": "user", "parts": [
            {"text": "<session_context>\nThis is the Gemini CLI.\n</session_context>"},
            {"text": "say hello"}]}]});
        let got: Vec<_> = request_subject(&body)
            .texts
            .into_iter()
            .map(|t| (t.surface, t.text))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Surface::ToolResult,
                    "<session_context>\nThis is the Gemini CLI.\n</session_context>".to_string()
                ),
                (Surface::User, "say hello".to_string()),
            ]
        );
    }

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/wire/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn texts(s: &Subject) -> Vec<(Surface, &str)> {
        s.texts
            .iter()
            .map(|t| (t.surface, t.text.as_str()))
            .collect()
    }

    #[test]
    fn request_surfaces() {
        let s = request_subject(&fixture("request_tool_roundtrip.json"));
        let got = texts(&s);
        assert!(got.iter().any(|(k, _)| *k == Surface::System), "{got:?}");
        assert!(
            got.iter()
                .any(|(k, t)| *k == Surface::ToolResult && t.contains("PRIVATE KEY")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(k, t)| *k == Surface::ToolArguments && t.contains("ls -la")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(k, t)| *k == Surface::ToolDefinition && t.contains("Runs a shell")),
            "{got:?}"
        );
        assert!(
            s.tool_calls.is_empty(),
            "history calls are not judged again"
        );
    }

    #[test]
    fn snake_case_fields_and_unknown_parts_are_read() {
        let body = json!({
            "system_instruction": {"parts": [{"text": "be brief"}]},
            "contents": [{"role": "user", "parts": [
                {"text": "hi"},
                {"function_response": {"name": "f", "response": {"out": "tool said: obey me"}}},
                {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo"}},
                {"brandNewPart": {"note": "read me too"}},
            ]}],
            "tools": [{"function_declarations": [{"name": "shell", "description": "run"}]}],
        });
        let s = request_subject(&body);
        let got = texts(&s);
        assert!(got.contains(&(Surface::System, "be brief")), "{got:?}");
        assert!(got.contains(&(Surface::ToolResult, "tool said: obey me")));
        assert!(got.contains(&(Surface::User, "read me too")));
        assert!(got.contains(&(Surface::ToolDefinition, "shell")));
        assert!(!got.iter().any(|(_, t)| t.contains("iVBOR")), "{got:?}");
    }

    #[test]
    fn function_call_refused_as_text() {
        let mut body = fixture("response_function_call.json");
        let s = response_subject(&body);
        assert_eq!(s.tool_calls.len(), 1);
        assert_eq!(s.tool_calls[0].name, "run_shell_command");
        refuse_tool_calls(&mut body, &[0], "blocked");
        assert_eq!(
            body["candidates"][0]["content"]["parts"][0]["text"],
            "blocked"
        );
        assert!(response_subject(&body).tool_calls.is_empty());
    }

    #[test]
    fn buffered_array_stream_indexes_calls_across_chunks() {
        let mut body = json!([
            {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}]}}]},
            {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}, {"functionCall": {"name": "b", "args": {}}}]}}]},
        ]);
        assert_eq!(response_subject(&body).tool_calls.len(), 2);
        refuse_tool_calls(&mut body, &[1], "no");
        let left = response_subject(&body);
        assert_eq!(left.tool_calls.len(), 1);
        assert_eq!(left.tool_calls[0].name, "a");
        assert_eq!(
            body[1]["candidates"][0]["content"]["parts"][1]["text"],
            "no"
        );
    }

    #[test]
    fn paths_and_errors() {
        assert!(is_model_method(
            "/v1beta/models/gemini-2.5-flash:generateContent"
        ));
        assert!(is_model_method(
            "/v1/models/gemini-2.5-pro:streamGenerateContent"
        ));
        assert!(is_model_method(
            "/v1/projects/p/locations/l/publishers/google/models/m:countTokens"
        ));
        assert!(!is_model_method("/v1beta/models/gemini-2.5-flash"));
        assert!(!is_model_method("/v1beta/models/x:embedContent"));
        assert_eq!(
            model_of("/v1beta/models/gemini-2.5-flash:generateContent"),
            Some("gemini-2.5-flash")
        );
        let e = error_body(ErrorKind::Blocked, "no", "r1");
        assert_eq!(e["error"]["code"], 403);
        assert_eq!(e["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(e["error"]["details"][0]["metadata"]["request_id"], "r1");
    }
}
