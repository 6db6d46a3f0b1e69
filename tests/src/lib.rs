//! Test support for asg's end-to-end tests.
//!
//! * [`mock`]: the mock upstream server (also built as the `mock-upstream` binary);
//! * [`MockUpstream`] / [`Gateway`]: process launchers for the mock and the real `asg` binary;
//! * [`http`]: a small blocking client and raw HTTP/1.1 exchanges;
//! * [`sse`] / [`Dialect`]: SSE decoding and per-dialect reassembly of text and tool calls;
//! * [`metrics`]: Prometheus text parsing;
//! * [`scripted`]: a byte-exact scripted upstream for broken and hostile servers;
//! * [`agents`]: captured agent CLI requests, and sending one through a gateway;
//! * [`codings`]: content codings of answers (encode, and read as a decoding client would).
//!
//! Everything binds to and talks to 127.0.0.1 only.

pub mod agents;
pub mod codings;
pub mod dialect;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod mock;
pub mod otlp;
pub mod redis;
pub mod scripted;
pub mod sse;
pub mod upstream;
pub mod util;

pub use dialect::Dialect;
pub use gateway::{Gateway, GatewayOptions};
pub use mock::scenario::{
    FAKE_AWS_KEY, FAKE_OPENAI_KEY, SHELL_BENIGN_ARGS, SHELL_SECRET_ARGS, TEXT_REPLY,
};
pub use upstream::{MockUpstream, RecordedRequest};

use std::path::PathBuf;

/// `tests/fixtures` of this repository.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// A wire fixture (`tests/fixtures/wire/<rel>`), e.g. `openai_chat/stream_tool_calls.sse`.
pub fn wire_fixture(rel: &str) -> PathBuf {
    fixtures_dir().join("wire").join(rel)
}

/// Test-only TLS material in `tests/fixtures/tls/`: `ca.pem` (a CA), `server.pem` + `server.key`
/// (a leaf for `localhost` / `127.0.0.1` signed by it). Never trust it outside tests.
pub fn tls_fixture(name: &str) -> PathBuf {
    fixtures_dir().join("tls").join(name)
}
