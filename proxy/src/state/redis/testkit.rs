//! A throwaway `redis-server` for tests and benchmarks: its own free
//! loopback port, its own temporary folder (append-only file on, fsync
//! always), killed when dropped. Uses Debian's `redis-server` (or
//! `ASG_REDIS_SERVER`); without it, tests skip with a message, unless
//! `ASG_REQUIRE_REDIS=1` (what `make test` sets) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary, if installed.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ASG_REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    })
}

/// The binary, or `None` after printing why the caller skips.
pub fn require() -> Option<PathBuf> {
    let found = binary();
    if found.is_none() {
        let msg = "redis-server is not installed (apt-get install redis-server)";
        if std::env::var("ASG_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
            panic!("{msg}; ASG_REQUIRE_REDIS=1 makes this a failure");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
    tls: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// A primary with `appendonly yes`, `appendfsync always`, no RDB saves,
    /// plus `extra` arguments (`--requirepass x`, `--replicaof …`).
    pub fn start(bin: &Path, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("asg-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A bare `--tls-port` asks for TLS on the chosen port.
        let tls = extra.contains(&"--tls-port");
        args.extend(
            extra
                .iter()
                .filter(|a| **a != "--tls-port")
                .map(|s| s.to_string()),
        );
        Self::launch(bin, dir, args, tls, false)
    }

    /// A sentinel watching `primary` as service `mymaster` (quorum 1,
    /// down after 1 s).
    pub fn sentinel(bin: &Path, primary: u16) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("asg-sentinel-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "bind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {primary} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 5000\n"
            ),
        )
        .expect("sentinel.conf");
        let args = vec![conf.display().to_string(), "--sentinel".into()];
        Self::launch(bin, dir, args, false, true)
    }

    fn launch(
        bin: &Path,
        dir: PathBuf,
        args: Vec<String>,
        tls: bool,
        sentinel: bool,
    ) -> RedisServer {
        let mut last = String::new();
        for _ in 0..5 {
            let mut s = RedisServer {
                child: None,
                port: free_port(),
                dir: dir.clone(),
                bin: bin.to_path_buf(),
                args: args.clone(),
                tls,
            };
            if sentinel {
                // The config file comes first for a sentinel.
                s.args.push("--port".into());
            }
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => {
                    last = e;
                    // Keep the folder for the next attempt.
                    s.dir = PathBuf::new();
                }
            }
        }
        panic!("redis-server did not start: {last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join("redis.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args);
        if self.args.last().is_some_and(|a| a == "--port") {
            cmd.arg(self.port.to_string());
        } else if self.tls {
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string(), "--dir"])
                .arg(&self.dir);
        } else {
            cmd.args(["--port", &self.port.to_string(), "--dir"])
                .arg(&self.dir);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return Err(format!("exited with {status}: {}", self.log()));
                }
            }
            let ready = if self.tls {
                std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            } else {
                // An answer asking for a password is an answer.
                match self.query(&["PING"]) {
                    Ok(v) => v == "PONG",
                    Err(e) => e.contains("NOAUTH") || e.contains("Authentication"),
                }
            };
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not ready after 10 s: {}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command on a fresh plain connection (admin steps in tests).
    pub fn query(&self, args: &[&str]) -> Result<String, String> {
        let client = redis::Client::open(self.url()).map_err(|e| e.to_string())?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let v: redis::Value = cmd.query(&mut con).map_err(|e| e.to_string())?;
        Ok(match v {
            redis::Value::SimpleString(s) => s,
            redis::Value::Okay => "OK".into(),
            redis::Value::Int(i) => i.to_string(),
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            other => format!("{other:?}"),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL (no shutdown, no final save) and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port and folder (reads its append-only file).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn()
            .unwrap_or_else(|e| panic!("redis-server restart: {e}"));
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing (a slow Redis).
    pub fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        self.kill();
        if std::env::var_os("ASG_REDIS_KEEP").is_none() && !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
