//! Whether this process holds the listening socket for an address.
//!
//! pingora binds the proxy listeners asynchronously, after the admin listener is up, and keeps
//! retrying for a few seconds when the port is taken. A plain connect would then succeed against
//! whoever holds the port (another gateway, a test server) and readiness would send traffic to a
//! stranger. On Linux the kernel's socket table says whose socket it is: a LISTEN entry for the
//! port whose inode is one of this process's descriptors.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

/// Whether this process listens on `addr`: from `/proc` where it answers, else by a connect to
/// the address (which cannot tell whose socket accepted it).
pub fn held_by_this_process(addr: &str) -> bool {
    let Ok(mut addr) = addr.parse::<SocketAddr>() else {
        return false;
    };
    if let Some(held) = from_proc(addr.port()) {
        return held;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}

fn from_proc(port: u16) -> Option<bool> {
    let ours = socket_inodes()?;
    let mut seen_table = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        seen_table = true;
        if listening_inodes(&text, port).any(|inode| ours.contains(&inode)) {
            return Some(true);
        }
    }
    seen_table.then_some(false)
}

/// The inodes of this process's sockets (`/proc/self/fd/N -> socket:[inode]`).
fn socket_inodes() -> Option<HashSet<u64>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|target| {
                let t = target.to_str()?;
                t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect(),
    )
}

/// Inodes of sockets in LISTEN state (`0A`) on `port`, from a `/proc/net/tcp{,6}` table:
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode`.
fn listening_inodes(table: &str, port: u16) -> impl Iterator<Item = u64> + '_ {
    table.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let hex_port = local.rsplit(':').next()?;
        let listening = *fields.get(3)? == "0A";
        (listening && u16::from_str_radix(hex_port, 16).ok()? == port)
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:5BA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4711 1 0000000000000000 100 0 0 10 0
   1: 0100007F:5BA0 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4712 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4713 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn reads_listening_sockets_of_a_port() {
        assert_eq!(listening_inodes(TABLE, 0x5BA0).collect::<Vec<_>>(), [4711]);
        assert_eq!(listening_inodes(TABLE, 8080).collect::<Vec<_>>(), [4713]);
        assert_eq!(listening_inodes(TABLE, 9).count(), 0);
    }

    #[test]
    fn a_port_someone_else_listens_on_is_not_ours() {
        let mine = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = mine.local_addr().unwrap().to_string();
        assert!(held_by_this_process(&addr));
        let port = mine.local_addr().unwrap().port();
        drop(mine);
        // Another process listening on the port: the connect fallback would accept it.
        let mut other = std::process::Command::new("python3")
            .args([
                "-c",
                &format!("import socket,time;s=socket.socket();s.bind(('127.0.0.1',{port}));s.listen();print('up',flush=True);time.sleep(30)"),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(other.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "up");
        let held = held_by_this_process(&addr);
        let _ = other.kill();
        let _ = other.wait();
        assert!(!held, "a listener in another process counted as ours");
    }
}
