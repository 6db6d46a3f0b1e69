//! Launch the real gateway (`asg run`) as a child process.
//!
//! The binary is never built by a test: run `cargo build -p asg` first (or set `ASG_BIN`). The
//! gateway gets, through its environment:
//!
//! | variable | value |
//! |---|---|
//! | `ASG_LISTEN` | `127.0.0.1:<free port>` (the proxy listener) |
//! | `ASG_ADMIN_LISTEN` | `127.0.0.1:<free port>` (`/ready`, `/metrics`, …) |
//! | `ASG_UPSTREAM` | the upstream base URL (usually the mock's) |
//! | `ASG_POLICY` | a profile name or a policy file path, when set |
//! | `ASG_DATA_DIR` | a fresh temporary directory (kept across [`Gateway::restart`]) |
//!
//! plus any extra variables from [`GatewayOptions::env`], and with `ASG_E2E_STATE=redis` an
//! `ASG_STATE_URL` pointing at a `redis-server` of its own ([`crate::redis`]). Inherited `ASG_*` and proxy variables are
//! removed so the developer's shell cannot change a test. Stdout and stderr go to files in the temp
//! directory ([`Gateway::stderr_text`]). Set `ASG_E2E_KEEP=1` to keep the temp directory after the test.

use crate::http;
use crate::metrics;
use crate::util::{asg_bin, free_ports, tail};
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct GatewayOptions {
    pub upstream: String,
    /// `ASG_POLICY`: a profile name or a path.
    pub policy: Option<String>,
    /// A policy file copied into `<tmp>/policies/` (then `ASG_POLICY` points at the copy).
    pub policy_file: Option<PathBuf>,
    /// `(file name, contents)` written into `<tmp>/policies/` (then `ASG_POLICY` points at it).
    pub policy_text: Option<(String, String)>,
    /// `asg run --config <path>`.
    pub config: Option<PathBuf>,
    /// Contents written to `<tmp>/config.toml` and passed as `--config`.
    pub config_text: Option<String>,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub ready_timeout: Duration,
    /// The gateway binary; default [`asg_bin()`] (`$ASG_BIN` or `<target>/<profile>/asg`).
    pub bin: Option<PathBuf>,
    /// `asg <subcommand>`: `run` (default) or `control`.
    pub subcommand: String,
}

impl GatewayOptions {
    pub fn new(upstream: impl Into<String>) -> GatewayOptions {
        GatewayOptions {
            upstream: upstream.into(),
            policy: None,
            policy_file: None,
            policy_text: None,
            config: None,
            config_text: None,
            env: Vec::new(),
            args: Vec::new(),
            ready_timeout: Duration::from_secs(20),
            bin: None,
            subcommand: "run".into(),
        }
    }

    pub fn policy(mut self, name_or_path: impl Into<String>) -> Self {
        self.policy = Some(name_or_path.into());
        self
    }

    /// Copy this policy file into a temporary policy folder the test may edit (hot reload).
    pub fn policy_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.policy_file = Some(path.into());
        self
    }

    /// Write a policy file with these contents into the temporary policy folder.
    pub fn policy_text(mut self, file_name: &str, contents: &str) -> Self {
        self.policy_text = Some((file_name.to_string(), contents.to_string()));
        self
    }

    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    pub fn config_text(mut self, contents: &str) -> Self {
        self.config_text = Some(contents.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// `asg control` (the fleet's operator process) instead of `asg run`.
    pub fn subcommand(mut self, name: &str) -> Self {
        self.subcommand = name.to_string();
        self
    }

    /// Run this executable instead of the `asg` binary (e.g. a stand-in in the launcher's own tests).
    pub fn bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.bin = Some(path.into());
        self
    }
}

/// A running gateway; SIGKILLed on drop.
pub struct Gateway {
    child: Option<Child>,
    /// Its own Redis under `ASG_E2E_STATE=redis` (dropped after the gateway).
    _redis: Option<crate::redis::Redis>,
    bin: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    ready_timeout: Duration,
    proxy_addr: SocketAddr,
    admin_addr: SocketAddr,
    data_dir: PathBuf,
    policy_path: Option<PathBuf>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Gateway {
    /// Start and wait until `GET /ready` on the admin listener answers 200; panics (with the
    /// gateway's stderr) on failure.
    pub fn start(opts: GatewayOptions) -> Gateway {
        Self::try_start(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`start`](Self::start) but returns the failure (exit status and stderr) instead, for
    /// tests that expect the gateway to refuse a configuration.
    pub fn try_start(opts: GatewayOptions) -> Result<Gateway, String> {
        let bin = opts.bin.clone().unwrap_or_else(asg_bin);
        let dir = tempfile::Builder::new()
            .prefix("asg-gw-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let root = dir.path().to_path_buf();
        let data_dir = root.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
        let policy_dir = root.join("policies");
        let copied = |name: &str, contents: &[u8]| -> Result<PathBuf, String> {
            std::fs::create_dir_all(&policy_dir).map_err(|e| e.to_string())?;
            // Profiles name their rule data relative to their folder (`rules/secrets.toml`), as
            // in a mounted ConfigMap: ship the repo's rules alongside the copy.
            copy_dir(
                &repo_root().join("policies").join("rules"),
                &policy_dir.join("rules"),
            )?;
            let path = policy_dir.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(path)
        };
        let policy_path = match (&opts.policy_text, &opts.policy_file) {
            (Some((name, text)), _) => Some(copied(name, text.as_bytes())?),
            (None, Some(src)) => {
                let contents =
                    std::fs::read(src).map_err(|e| format!("reading {}: {e}", src.display()))?;
                let name = src
                    .file_name()
                    .ok_or("policy_file has no file name")?
                    .to_string_lossy();
                Some(copied(&name, &contents)?)
            }
            (None, None) => None,
        };
        let mut args = vec![opts.subcommand.clone()];
        let config = match &opts.config_text {
            Some(text) => {
                let path = root.join("config.toml");
                std::fs::write(&path, text).map_err(|e| e.to_string())?;
                Some(path)
            }
            None => opts.config.clone(),
        };
        if let Some(path) = config {
            args.push("--config".into());
            args.push(path.to_string_lossy().into_owned());
        }
        args.extend(opts.args.iter().cloned());

        let ports = free_ports(2);
        let proxy_addr: SocketAddr = ([127, 0, 0, 1], ports[0]).into();
        let admin_addr: SocketAddr = ([127, 0, 0, 1], ports[1]).into();
        let mut env = vec![
            ("ASG_LISTEN".to_string(), proxy_addr.to_string()),
            ("ASG_ADMIN_LISTEN".to_string(), admin_addr.to_string()),
            ("ASG_UPSTREAM".to_string(), opts.upstream.clone()),
            (
                "ASG_DATA_DIR".to_string(),
                data_dir.to_string_lossy().into_owned(),
            ),
        ];
        let policy = policy_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .or(opts.policy.clone());
        if let Some(p) = policy {
            env.push(("ASG_POLICY".into(), p));
        }
        env.extend(opts.env.iter().cloned());
        let redis = if crate::redis::requested() && !env.iter().any(|(k, _)| k == "ASG_STATE_URL") {
            let r = crate::redis::Redis::start()?;
            env.push(("ASG_STATE_URL".into(), r.url()));
            Some(r)
        } else {
            None
        };

        let mut gw = Gateway {
            _redis: redis,
            child: None,
            bin,
            env,
            args,
            ready_timeout: opts.ready_timeout,
            proxy_addr,
            admin_addr,
            data_dir,
            policy_path,
            stdout_path: root.join("asg.stdout.log"),
            stderr_path: root.join("asg.stderr.log"),
            dir: Some(dir),
        };
        // Another test process may take a port between `free_ports` and the gateway's bind: draw
        // new ones and start again (the gateway exits with "in use" rather than run half-bound).
        let mut attempts = 0;
        loop {
            match gw.spawn() {
                Ok(()) => return Ok(gw),
                Err(_) if attempts < 4 && gw.port_was_taken() => {
                    attempts += 1;
                    let ports = free_ports(2);
                    gw.proxy_addr = ([127, 0, 0, 1], ports[0]).into();
                    gw.admin_addr = ([127, 0, 0, 1], ports[1]).into();
                    // The first two entries are the harness's own (see above).
                    gw.env[0].1 = gw.proxy_addr.to_string();
                    gw.env[1].1 = gw.admin_addr.to_string();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the last start failed because one of the harness-chosen ports was taken.
    fn port_was_taken(&self) -> bool {
        let text = self.stderr_text();
        let last = text.rsplit("==== asg-e2e: starting").next().unwrap_or("");
        let ours = [self.proxy_addr.to_string(), self.admin_addr.to_string()];
        last.contains("in use") && ours.iter().any(|a| last.contains(a.as_str()))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| e.to_string())
        };
        let (stdout, mut stderr) = (open(&self.stdout_path)?, open(&self.stderr_path)?);
        let _ = writeln!(
            stderr,
            "==== asg-e2e: starting {} {}",
            self.bin.display(),
            self.args.join(" ")
        );
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy().to_ascii_uppercase();
            if k.starts_with("ASG_") || k.ends_with("_PROXY") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("NO_PROXY", "127.0.0.1,localhost")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + self.ready_timeout;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(1)))
            .build()
            .into();
        let url = self.admin_url() + "/ready";
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "asg exited with {status} before becoming ready ({} {}).\n--- asg stderr ---\n{}",
                    self.bin.display(),
                    self.args.join(" "),
                    tail(&self.stderr_text(), 8000)
                ));
            }
            // pingora keeps retrying a taken port for half a minute; the caller picks others.
            if self.port_was_taken() {
                self.kill_hard();
                return Err(format!(
                    "a port of asg was taken.\n--- asg stderr ---\n{}",
                    tail(&self.stderr_text(), 8000)
                ));
            }
            let last = match http::try_send(&agent, "GET", &url, &[], None) {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => format!("status {}: {}", r.status, r.text()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                self.kill_hard();
                return Err(format!(
                    "asg not ready after {:?} (GET {url}: {last}).\n--- asg stderr ---\n{}",
                    self.ready_timeout,
                    tail(&self.stderr_text(), 8000)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:<port>`: the proxy listener (Anthropic base URL).
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    /// `<proxy_url>/v1`: the OpenAI SDK base URL.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.proxy_url())
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The copied/written policy file, when the options used `policy_file` or `policy_text`.
    pub fn policy_path(&self) -> Option<&Path> {
        self.policy_path.as_deref()
    }

    pub fn policy_dir(&self) -> Option<&Path> {
        self.policy_path.as_deref().and_then(Path::parent)
    }

    /// Replace the policy file atomically (write a sibling temp file, then rename), as an editor or a
    /// config-management tool would. Wait for the reload with a readiness check of your own (e.g. a
    /// metric or a request whose verdict changes).
    pub fn write_policy(&self, contents: &str) {
        let path = self
            .policy_path
            .as_deref()
            .expect("write_policy needs policy_file or policy_text");
        let tmp = path.with_extension("tmp-asg-e2e");
        std::fs::write(&tmp, contents).expect("write temp policy");
        std::fs::rename(&tmp, path).expect("rename policy into place");
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// `GET <admin>/metrics` (panics unless 200).
    pub fn metrics_text(&self) -> String {
        let r = http::get(&(self.admin_url() + "/metrics"));
        assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
        r.text()
    }

    /// Sum of the samples of `name` whose labels include `labels` (see [`metrics::value`]).
    pub fn metric_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metrics::value(&self.metrics_text(), name, labels)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL the gateway (no graceful shutdown) and reap it.
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill (if running) and start again with the same ports, environment and data directory; waits
    /// for `/ready`. Panics with stderr on failure.
    pub fn restart(&mut self) {
        self.kill_hard();
        self.spawn().unwrap_or_else(|e| panic!("restart: {e}"));
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill_hard();
        if std::env::var_os("ASG_E2E_KEEP").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("asg-e2e: keeping {}", dir.keep().display());
            }
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Copy a folder of plain files (one level deep, plus subfolders).
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| format!("copying {}: {e}", path.display()))?;
        }
    }
    Ok(())
}
