//! Cost of finding the process behind a loopback connection
//! (`datapath::peer`): a cold lookup (socket table plus a walk of the
//! `fd` directories of the client's uid), a lookup of a new connection of
//! a process found before (hint), and a cached lookup.
//!
//! ```text
//! cargo run --release -p asg --example peer_lookup
//! ```

use asg::datapath::peer;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let local = listener.local_addr().unwrap();
    let script = format!(
        "import socket,time\nfor _ in range(3):\n    s=socket.create_connection(('127.0.0.1',{}))\n    time.sleep(1.5)\n",
        local.port()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .expect("python3");
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0);
    println!("processes on this host: {procs}");
    for round in 0..3 {
        let (_conn, peer_addr) = listener.accept().expect("accept");
        let t = Instant::now();
        let found = peer::lookup(peer_addr, local);
        let first = t.elapsed();
        let t = Instant::now();
        let again = peer::lookup(peer_addr, local);
        let cached = t.elapsed();
        assert_eq!(found, again);
        println!(
            "connection {round}: {} in {:.0} µs ({}), cached {:.1} µs",
            found
                .as_ref()
                .map_or("not found".to_string(), |p| p.agent_id()),
            first.as_secs_f64() * 1e6,
            if round == 0 {
                "cold: socket table + fd walk"
            } else {
                "hinted: socket table + this process's fds"
            },
            cached.as_secs_f64() * 1e6
        );
    }
    let _ = child.wait();
}
