//! `mock-upstream`: a fast mock of the OpenAI, Anthropic and MCP HTTP APIs for asg's end-to-end tests
//! and load benchmarks. Prints `LISTENING <ip:port>` on stdout once bound; logs go to stderr.

use asg_e2e::mock::{run, Config};

fn main() {
    let cfg = match Config::from_args(std::env::args().skip(1)) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("mock-upstream: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cfg)) {
        eprintln!("mock-upstream: {e}");
        std::process::exit(1);
    }
}
