//! Test support for asg's end-to-end tests: the mock upstream server (also built as the
//! `mock-upstream` binary), process launchers for the mock and the real gateway, a small blocking HTTP
//! client, SSE reassembly per dialect and a Prometheus text parser.

pub mod mock;
