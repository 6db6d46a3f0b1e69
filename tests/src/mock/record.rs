//! Bounded in-memory log of the requests the mock received (`GET /__mock/requests`).

use base64::Engine;
use hyper::HeaderMap;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct RequestLog {
    limit: usize,
    entries: Mutex<VecDeque<Value>>,
}

impl RequestLog {
    pub fn new(limit: usize) -> RequestLog {
        RequestLog {
            limit,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Record one request. Headers are keyed by lower-case name; repeated headers are joined with ", ".
    /// The body is `body` (UTF-8 text) or `body_base64` (anything else).
    pub fn record(&self, id: u64, method: &str, target: &str, headers: &HeaderMap, body: &[u8]) {
        if self.limit == 0 {
            return;
        }
        let mut h = Map::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match h.get_mut(name.as_str()) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&value);
                }
                _ => {
                    h.insert(name.as_str().to_string(), Value::String(value));
                }
            }
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut entry = json!({"id": id, "ts": ts, "method": method, "path": target, "headers": h});
        match std::str::from_utf8(body) {
            Ok(text) => entry["body"] = Value::String(text.to_string()),
            Err(_) => {
                entry["body"] = Value::Null;
                entry["body_base64"] = base64::engine::general_purpose::STANDARD
                    .encode(body)
                    .into();
            }
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == self.limit {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub fn to_json(&self) -> String {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let list: Vec<&Value> = entries.iter().collect();
        serde_json::to_string(&list).expect("log serialises")
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
