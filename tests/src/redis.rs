//! A throwaway `redis-server` for a gateway under test: its own free loopback port and temporary
//! folder, killed when dropped.
//!
//! With `ASG_E2E_STATE=redis`, every [`crate::Gateway`] started without its own `ASG_STATE_URL`
//! gets one, so the same end-to-end tests run against the shared-state backend (`make test` runs
//! the approvals tests both ways).

use crate::util::free_port;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// Whether gateways run on Redis in this test run (`ASG_E2E_STATE=redis`).
pub fn requested() -> bool {
    std::env::var("ASG_E2E_STATE").is_ok_and(|v| v == "redis")
}

impl Redis {
    pub fn start() -> Result<Redis, String> {
        let dir = tempfile::Builder::new()
            .prefix("asg-e2e-redis-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        {
            let port = free_port();
            let log =
                std::fs::File::create(dir.path().join("redis.log")).map_err(|e| e.to_string())?;
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                ])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("redis-server (apt-get install redis-server): {e}"))?;
            let mut r = Redis {
                child,
                port,
                _dir: dir,
            };
            r.wait_ready()?;
            Ok(r)
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("redis-server exited with {status}"));
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("redis-server not ready after 10 s".into())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
