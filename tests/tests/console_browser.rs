//! The operator console in a real browser: headless Chromium (Debian's
//! `chromium`) driven over the W3C WebDriver protocol by Debian's
//! `chromedriver` (`chromium-driver`, the same build as the browser).
//!
//! A tool call (MCP `tools/call` through the proxy) is held for approval;
//! the console, opened with an operator key, shows it (its
//! attacker-controlled target rendered as text, never as HTML); a click on
//! Approve lets the held call complete with the tool's real answer.
//!
//! Without the browser the test is skipped with a message, unless
//! `ASG_REQUIRE_BROWSER=1` (set by `make test` / `.ci/run`), which makes a
//! missing browser a failure.

use asg_e2e::http;
use asg_e2e::{Gateway, GatewayOptions, MockUpstream};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const OPERATOR_KEY: &str = "console-operator-key";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const POLICY: &str = r#"
name = "console-e2e"
[decision]
block_score = 1.3
challenge_score = 0.55
block_high_count = 1
# Every ordinary effect is challenged, so that any tool call goes through
# the approval flow under test.
[tools.effects]
read = "challenge"
build = "challenge"
vcs = "challenge"
write = "challenge"
local_net = "challenge"
infra_read = "challenge"
push = "challenge"
install = "challenge"
fetch = "challenge"
container = "challenge"
[proxy]
tool_challenge = "require_approval"
[approvals]
hold_secs = 60
"#;

/// chromedriver on a loopback port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = asg_e2e::util::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let ready = asg_e2e::util::wait_until(Duration::from_secs(15), || {
            http::try_send(&http::agent(), "GET", &format!("{url}/status"), &[], None)
                .is_ok_and(|r| r.status == 200 && r.json()["value"]["ready"] == true)
        });
        assert!(ready, "chromedriver did not become ready");
        Driver { child, url }
    }

    fn session(&self, profile: &Path) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let r = http::post_json(&format!("{}/session", self.url), &[], &caps);
        assert_eq!(r.status, 200, "new session: {}", r.text());
        let id = r.json()["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            base: format!("{}/session/{id}", self.url),
        }
    }
}

/// One WebDriver session.
struct Browser {
    base: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http::try_send(&http::agent(), "DELETE", &self.base, &[], None);
    }
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let body = body.unwrap_or(json!({})).to_string();
        let b = (method == "POST").then_some(body.as_bytes());
        let r = http::try_send(
            &http::agent(),
            method,
            &url,
            &[("content-type", "application/json")],
            b,
        )
        .map_err(|e| format!("{method} {path}: {e}"))?;
        let v = r.json();
        if r.status != 200 {
            return Err(format!("{method} {path}: {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).unwrap();
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .map(|v| {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e[ELEMENT].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
    }

    fn find_in(&self, el: &str, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                &format!("/element/{el}/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .unwrap();
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Wait for an element matching `css` whose text satisfies `pred`.
    fn wait_for(&self, css: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            for el in self.find_all(css) {
                if self.text(&el).is_ok_and(|t| pred(&t)) {
                    return el;
                }
            }
            if Instant::now() > deadline {
                let body = self.script("return document.body.innerText;");
                panic!("no {css} matching within {timeout:?}; page text:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, el: &str) -> Result<String, String> {
        self.cmd("GET", &format!("/element/{el}/text"), None)
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    fn click(&self, el: &str) {
        self.cmd("POST", &format!("/element/{el}/click"), None)
            .unwrap();
    }

    fn type_into(&self, el: &str, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .unwrap();
    }

    fn script(&self, js: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .unwrap_or(Value::Null)
    }
}

fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        let hint = "the console browser test needs Debian's chromium and chromium-driver \
                    (apt-get install -y chromium chromium-driver)";
        if std::env::var_os("ASG_REQUIRE_BROWSER").is_some() {
            panic!("{hint}");
        }
        eprintln!("SKIPPED: {hint}");
    }
    present
}

#[test]
fn operator_approves_a_held_tool_call_in_the_console() {
    if !browser_available() {
        return;
    }
    let upstream = MockUpstream::start();
    let base = upstream.base_url();
    let gw = Gateway::start(
        GatewayOptions::new(&base)
            .policy_text("console.toml", POLICY)
            .config_text(&format!(
                "[[route]]\nname = \"tools\"\nprefix = \"/mcp\"\nupstream = \"{base}\"\napi = \"mcp\"\n\n\
                 [[route]]\nname = \"default\"\nprefix = \"/\"\nupstream = \"{base}\"\n"
            ))
            .env("ASG_ADMIN_AUTH", "true")
            .env("ASG_OPERATOR_KEYS", OPERATOR_KEY)
            .env("ASG_AGENT_KEYS", "some-agent-key"),
    );

    // The agent's tool call; its argument tries to inject markup into the console.
    let command = "echo '<img src=x onerror=window.__pwned=1>'";
    let proxy = gw.proxy_url();
    let held = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": command}}});
        http::post_json(
            &format!("{proxy}/mcp"),
            &[
                ("x-agent-id", "builder-bot"),
                ("mcp-session-id", "console-session"),
            ],
            &body,
        )
    });

    let profile: PathBuf = tempfile::tempdir().unwrap().keep();
    let driver = Driver::start();
    let browser = driver.session(&profile);
    browser.goto(&format!("{}/operator", gw.admin_url()));

    // Auth is on: the console asks for the operator key.
    let key_input = browser.wait_for("#auth-key", Duration::from_secs(15), |_| true);
    browser.type_into(&key_input, OPERATOR_KEY);
    let submit = browser.find_all("#auth-form button")[0].clone();
    browser.click(&submit);

    // The held call shows up as a pending approval.
    let row = browser.wait_for("#pending tr", Duration::from_secs(20), |t| {
        t.contains("shell")
    });
    let target = browser.text(&browser.find_in(&row, ".target")).unwrap();
    assert!(
        target.contains("<img src=x onerror=window.__pwned=1>"),
        "{target}"
    );
    assert_eq!(
        browser.script("return document.querySelectorAll('main img').length;"),
        json!(0)
    );
    let who = browser.text(&row).unwrap();
    assert!(
        who.contains("console-session") && who.contains("builder-bot"),
        "{who}"
    );
    assert!(!held.is_finished(), "the tool call waits for the operator");

    browser.click(&browser.find_in(&row, "button[data-action=approve]"));

    // The held call completes through the proxy with the tool's real answer.
    let resp = held.join().unwrap();
    assert_eq!(resp.status, 200);
    let v = resp.json();
    assert_eq!(v["id"], 42);
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert_eq!(
        v["result"]["content"][0]["text"],
        format!("$ {command}\n(mock shell output)")
    );
    assert_eq!(upstream.requests_to("/mcp").len(), 1);

    browser.wait_for("#notice", Duration::from_secs(10), |t| {
        t.starts_with("Approved shell")
    });
    // The pending list empties and the audit tail shows the released call.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !browser.find_all("#pending tr").is_empty() {
        assert!(Instant::now() < deadline, "approved row still listed");
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.wait_for("#audit-list tr", Duration::from_secs(10), |t| {
        t.contains("allow") && t.contains("shell: allow")
    });
    assert_eq!(
        browser.script("return window.__pwned === undefined;"),
        json!(true)
    );
    let stats = browser.text(&browser.find_all("#stat-pending")[0]).unwrap();
    assert_eq!(stats, "0");
    std::fs::remove_dir_all(profile).ok();
}
