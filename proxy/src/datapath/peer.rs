//! Which local process is on the other end of a loopback connection.
//!
//! Agents on the gateway's own machine (Claude Code, Codex, scripts) send
//! no identity of their own, and all share `127.0.0.1`. The kernel knows
//! who they are: the client's end of the TCP connection is a socket in
//! `/proc/net/tcp` (or `tcp6`), keyed by its address and port, with the
//! owner's uid and the socket's inode; the process holding that inode has
//! a `socket:[inode]` link in `/proc/<pid>/fd/`. This is what `ss -p` does.
//!
//! Cost: one `NETLINK_SOCK_DIAG` query for exactly that socket (as `ss`
//! does; microseconds, whatever the number of sockets — reading
//! `/proc/net/tcp` instead costs milliseconds on a busy host and is only the
//! fallback) and, for a process not seen before, a walk of the `fd`
//! directories of the processes of that uid (readlink per open file).
//! Results are cached per connection (peer and local address) for
//! [`TTL`], and the processes found recently are tried first, so an agent
//! that opens new connections is found by reading its own `fd` directory.
//! Only same-host loopback peers are looked up; other callers keep their
//! address identity. The gateway needs permission to read the client's
//! `/proc/<pid>/fd` (same user, or root); without it the lookup fails and
//! the address identity is used.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a connection's process is remembered.
pub const TTL: Duration = Duration::from_secs(30);
const MAX_CACHE: usize = 4096;
const MAX_HINTS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerProcess {
    pub pid: u32,
    pub uid: u32,
    /// The process name (`/proc/<pid>/comm`).
    pub comm: String,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22):
    /// with the pid, unique for the life of the host.
    pub start: u64,
}

impl PeerProcess {
    /// The agent identity: one per process, never shared by the host.
    pub fn agent_id(&self) -> String {
        format!(
            "proc:{}:{}:{}.{}",
            self.uid, self.comm, self.pid, self.start
        )
    }
}

struct Cache {
    by_conn: HashMap<(SocketAddr, SocketAddr), (Instant, Option<PeerProcess>)>,
    /// Processes found recently, tried first.
    hints: Vec<u32>,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The cached answer for a connection, if there is one (`Some(None)`: known
/// not to be found). Cheap; callers on an async thread use it before
/// running [`lookup`] on a blocking thread.
pub fn cached(peer: SocketAddr, local: SocketAddr) -> Option<Option<PeerProcess>> {
    if !is_loopback(peer.ip()) || !is_loopback(local.ip()) {
        return Some(None);
    }
    let guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let (at, found) = guard.as_ref()?.by_conn.get(&(peer, local))?;
    (at.elapsed() < TTL).then(|| found.clone())
}

/// [`lookup`] from async code: the cached answer at once, else the lookup
/// on a blocking thread (it reads `/proc`).
pub async fn process_of(peer: SocketAddr, local: SocketAddr) -> Option<PeerProcess> {
    match cached(peer, local) {
        Some(found) => found,
        None => tokio::task::spawn_blocking(move || lookup(peer, local))
            .await
            .ok()
            .flatten(),
    }
}

/// The process behind `peer` (the client's address) talking to `local`
/// (the gateway's listening address), if both are loopback and the OS
/// tells.
pub fn lookup(peer: SocketAddr, local: SocketAddr) -> Option<PeerProcess> {
    if !is_loopback(peer.ip()) || !is_loopback(local.ip()) {
        return None;
    }
    let key = (peer, local);
    let hints = {
        let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        let cache = guard.get_or_insert_with(|| Cache {
            by_conn: HashMap::new(),
            hints: Vec::new(),
        });
        if let Some((at, found)) = cache.by_conn.get(&key) {
            if at.elapsed() < TTL {
                return found.clone();
            }
        }
        cache.hints.clone()
    };
    let found = resolve(peer, local, &hints);
    let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cache) = guard.as_mut() {
        if cache.by_conn.len() >= MAX_CACHE {
            cache.by_conn.retain(|_, (at, _)| at.elapsed() < TTL);
            if cache.by_conn.len() >= MAX_CACHE {
                cache.by_conn.clear();
            }
        }
        cache.by_conn.insert(key, (Instant::now(), found.clone()));
        if let Some(p) = &found {
            cache.hints.retain(|h| *h != p.pid);
            cache.hints.insert(0, p.pid);
            cache.hints.truncate(MAX_HINTS);
        }
    }
    found
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(target_os = "linux")]
fn resolve(peer: SocketAddr, local: SocketAddr, hints: &[u32]) -> Option<PeerProcess> {
    let (uid, inode) = socket_of(peer, local)?;
    let needle = format!("socket:[{inode}]");
    let holds = |pid: u32| -> bool {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        dir.flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == needle.as_str()))
    };
    let pid = hints.iter().copied().find(|&p| holds(p)).or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let owner = e.metadata().ok()?.uid();
                (owner == uid && pid != std::process::id()).then_some(pid)
            })
            .find(|&p| holds(p))
    })?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()?
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name; field 22 is the start time.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?.parse().ok()?;
    Some(PeerProcess {
        pid,
        uid,
        comm,
        start,
    })
}

#[cfg(not(target_os = "linux"))]
fn resolve(_peer: SocketAddr, _local: SocketAddr, _hints: &[u32]) -> Option<PeerProcess> {
    None
}

/// The uid and inode of the client's socket (local end `peer`, remote end
/// `local`): asked of the kernel over sock_diag, else read from
/// `/proc/net/tcp*`.
#[cfg(target_os = "linux")]
fn socket_of(peer: SocketAddr, local: SocketAddr) -> Option<(u32, u64)> {
    sock_diag(peer, local).or_else(|| proc_table(peer, local))
}

/// One `SOCK_DIAG_BY_FAMILY` request for an exact TCP 4-tuple
/// (`inet_diag_req_v2`), answered with its `inet_diag_msg` (uid, inode).
#[cfg(target_os = "linux")]
fn sock_diag(peer: SocketAddr, local: SocketAddr) -> Option<(u32, u64)> {
    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };
    use std::os::fd::AsRawFd;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    let (family, src, dst) = match (peer, local) {
        (SocketAddr::V4(p), SocketAddr::V4(l)) => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s[..4].copy_from_slice(&p.ip().octets());
            d[..4].copy_from_slice(&l.ip().octets());
            (libc_af_inet(), s, d)
        }
        _ => {
            let six = |a: SocketAddr| match a.ip() {
                IpAddr::V6(v6) => v6.octets(),
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            };
            (libc_af_inet6(), six(peer), six(local))
        }
    };
    let mut msg: Vec<u8> = Vec::with_capacity(72);
    msg.extend(72u32.to_ne_bytes());
    msg.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend(1u16.to_ne_bytes()); // NLM_F_REQUEST: one socket, no dump
    msg.extend(1u32.to_ne_bytes());
    msg.extend(0u32.to_ne_bytes());
    msg.extend([family, 6, 0, 0]); // family, IPPROTO_TCP, no extensions
    msg.extend(u32::MAX.to_ne_bytes()); // any state
    msg.extend(peer.port().to_be_bytes());
    msg.extend(local.port().to_be_bytes());
    msg.extend(src);
    msg.extend(dst);
    msg.extend(0u32.to_ne_bytes()); // any interface
    msg.extend(u32::MAX.to_ne_bytes()); // INET_DIAG_NOCOOKIE
    msg.extend(u32::MAX.to_ne_bytes());
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .ok()?;
    sendto(
        fd.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 512];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_ne_bytes(buf.get(o..o + 4)?.try_into().ok()?)) };
    let kind = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
    if n < 16 + 72 || kind == NLMSG_ERROR {
        return None;
    }
    // nlmsghdr (16) + inet_diag_msg: 4 bytes of header, the 48-byte
    // socket id, expires, rqueue, wqueue, uid, inode.
    let uid = u32_at(16 + 64)?;
    let inode = u32_at(16 + 68)? as u64;
    (inode != 0).then_some((uid, inode))
}

#[cfg(target_os = "linux")]
fn libc_af_inet() -> u8 {
    nix::sys::socket::AddressFamily::Inet as i32 as u8
}

#[cfg(target_os = "linux")]
fn libc_af_inet6() -> u8 {
    nix::sys::socket::AddressFamily::Inet6 as i32 as u8
}

/// The row of `/proc/net/tcp*` whose local end is `peer` and remote end is
/// `local`.
#[cfg(target_os = "linux")]
fn proc_table(peer: SocketAddr, local: SocketAddr) -> Option<(u32, u64)> {
    let (file, want_local, want_remote) = match (peer, local) {
        (SocketAddr::V4(p), SocketAddr::V4(l)) => ("/proc/net/tcp", hex_v4(p), hex_v4(l)),
        _ => ("/proc/net/tcp6", hex_v6(peer), hex_v6(local)),
    };
    let table = std::fs::read_to_string(file).ok()?;
    parse_table(&table, &want_local, &want_remote)
}

fn parse_table(table: &str, want_local: &str, want_remote: &str) -> Option<(u32, u64)> {
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        if f[1].eq_ignore_ascii_case(want_local) && f[2].eq_ignore_ascii_case(want_remote) {
            let uid = f[7].parse().ok()?;
            let inode = f[9].parse().ok()?;
            return (inode != 0).then_some((uid, inode));
        }
    }
    None
}

/// `127.0.0.1:8080` as `/proc/net/tcp` prints it: the address as the
/// host-order u32 of its network-order bytes, then the port.
fn hex_v4(a: std::net::SocketAddrV4) -> String {
    let n = u32::from_ne_bytes(a.ip().octets());
    format!("{n:08X}:{:04X}", a.port())
}

/// IPv6 rows: four host-order u32 words of the address (IPv4 peers of a
/// dual-stack listener appear as `::ffff:a.b.c.d`).
fn hex_v6(a: SocketAddr) -> String {
    let octets = match a.ip() {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    };
    let mut s = String::with_capacity(40);
    for w in octets.chunks_exact(4) {
        let n = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
        s.push_str(&format!("{n:08X}"));
    }
    format!("{s}:{:04X}", a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_matched_by_both_ends() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:51234".parse().unwrap();
        let l = match local {
            SocketAddr::V4(a) => hex_v4(a),
            _ => unreachable!(),
        };
        let p = match peer {
            SocketAddr::V4(a) => hex_v4(a),
            _ => unreachable!(),
        };
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: {l} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11111 1\n   1: {p} {l} 01 00000000:00000000 00:00000000 00000000  1000        0 22222 1\n"
        );
        assert_eq!(parse_table(&table, &p, &l), Some((1000, 22222)));
        assert_eq!(parse_table(&table, &l, &p), None);
    }

    #[test]
    fn a_real_loopback_connection_is_ours() {
        // This test process connects to itself: the peer is this process.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(local).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        if cfg!(target_os = "linux") {
            // The lookup skips the gateway's own pid by design; resolve the
            // socket row directly instead.
            let (uid, inode) = socket_of(peer, local).expect("socket row");
            assert!(inode > 0);
            assert_eq!(uid as u64, unsafe_uid());
            // Both ways of asking agree.
            assert_eq!(proc_table(peer, local), Some((uid, inode)));
            assert_eq!(sock_diag(peer, local), Some((uid, inode)));
        }
        assert!(lookup("10.0.0.1:5000".parse().unwrap(), local).is_none());
    }

    fn unsafe_uid() -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() as u64)
            .unwrap_or(0)
    }
}
