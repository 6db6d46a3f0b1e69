//! The mutation: a pod template's metadata and spec in, the same with the
//! sidecar out. Shared by the webhook (which then diffs it into a JSON
//! Patch) and `asg kube-inject` (which prints it).
//!
//! What a pod gets:
//! * `asg-init`, the first init container (`asg pod-init`): writes the
//!   trust bundle (system roots + the interception CA) into a shared
//!   in-memory volume; in transparent mode also installs the redirect
//!   rules, as root with `NET_ADMIN`/`NET_RAW` and nothing else;
//! * `asg`, the gateway: a native sidecar (init container with
//!   `restartPolicy: Always`, right after `asg-init`) or a classic one
//!   (first container, whose `postStart` waits until it is ready); its
//!   own uid, non-root, read-only root, no capabilities, seccomp
//!   `RuntimeDefault`; the agent identity from the downward API; the CA
//!   key (only here) and the policy ConfigMap mounted read-only;
//! * every other container: the CA trust variables and, in `proxy-env`
//!   mode, the proxy variables; proxy variables of the pod's own are
//!   dropped (in transparent mode too: a proxy on a port that is not
//!   redirected would be a way around the gateway).

use super::choices::{self, Choices, Wanted};
use super::settings::{Mode, Settings};
use super::{INIT, SIDECAR, STATUS};
use serde_json::{json, Value};

const BIN: &str = "/usr/local/bin/asg";
const DATA_DIR: &str = "/var/lib/asg";
const TMP_DIR: &str = "/tmp";
pub const TRUST_DIR: &str = "/var/run/asg/trust";
const CA_DIR: &str = "/etc/asg/ca";
const CA_CERT_DIR: &str = "/etc/asg/ca-cert";
const POLICY_DIR: &str = "/etc/asg/policies";
/// `0444`: Secret and ConfigMap files are owned by root; the sidecar's own
/// uid must read them, and only the sidecar mounts the key.
const READABLE: u32 = 0o444;
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

const VOL_DATA: &str = "asg-data";
const VOL_TMP: &str = "asg-tmp";
const VOL_TRUST: &str = "asg-trust";
const VOL_CA: &str = "asg-ca";
const VOL_CA_CERT: &str = "asg-ca-cert";
const VOL_POLICIES: &str = "asg-policies";

/// What happened to a pod template.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Injected(Choices),
    OptedOut,
    AlreadyInjected,
}

impl Outcome {
    /// Metric label value.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Injected(_) => "injected",
            Outcome::OptedOut => "opted_out",
            Outcome::AlreadyInjected => "already_injected",
        }
    }
}

fn array<'v>(obj: &'v mut Value, key: &str) -> &'v mut Vec<Value> {
    if !obj[key].is_array() {
        obj[key] = json!([]);
    }
    obj[key].as_array_mut().expect("just made an array")
}

fn names(list: &Value) -> impl Iterator<Item = &str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
}

/// Inject into one pod template (`metadata`, `spec`) of `namespace`.
pub fn inject(
    meta: &mut Value,
    spec: &mut Value,
    namespace: &str,
    settings: &Settings,
) -> Result<Outcome, String> {
    if meta.is_null() {
        *meta = json!({});
    }
    if !meta.is_object() || !spec.is_object() {
        return Err("the pod's metadata and spec must be objects".to_string());
    }
    if spec["containers"].as_array().is_none_or(Vec::is_empty) {
        return Err("the pod has no containers".to_string());
    }
    let ours = [SIDECAR, INIT];
    let has_ours = names(&spec["containers"])
        .chain(names(&spec["initContainers"]))
        .any(|n| ours.contains(&n));
    let has_status = meta["annotations"][STATUS].is_string();
    if has_status && has_ours {
        return Ok(Outcome::AlreadyInjected);
    }
    let choices = match choices::read(meta, namespace, settings)? {
        Wanted::OptedOut => return Ok(Outcome::OptedOut),
        Wanted::Inject(c) => c,
    };
    if has_ours {
        return Err(format!(
            "a container is already named {SIDECAR} or {INIT} but the pod carries no {STATUS} annotation: rename the container, or opt the pod out with {}=false",
            super::INJECT
        ));
    }
    if spec["hostNetwork"].as_bool() == Some(true) {
        return Err(format!(
            "hostNetwork pods cannot get the asg sidecar (it would listen on, and redirect, the node's network): opt the pod out with {}=false",
            super::INJECT
        ));
    }
    let volume_names: Vec<&str> = names(&spec["volumes"]).collect();
    for v in [
        VOL_DATA,
        VOL_TMP,
        VOL_TRUST,
        VOL_CA,
        VOL_CA_CERT,
        VOL_POLICIES,
    ] {
        if volume_names.contains(&v) {
            return Err(format!(
                "the pod already has a volume named {v}, which the asg sidecar needs"
            ));
        }
    }
    if choices.mode == Mode::Transparent {
        check_no_agent_runs_as_sidecar(spec, settings)?;
    }

    let agents: Vec<String> = names(&spec["containers"]).map(str::to_string).collect();
    let env = agent_env(&choices, settings);
    let trust_mount = json!({"name": VOL_TRUST, "mountPath": TRUST_DIR, "readOnly": true});
    let mut agent_lists = vec!["containers"];
    if choices.native {
        // User init containers start after the native sidecar is ready.
        agent_lists.push("initContainers");
    }
    for list in agent_lists {
        for c in array(spec, list) {
            add_agent_env(c, &env, &trust_mount)?;
        }
    }

    array(spec, "volumes").extend(volumes(settings));
    let init = init_container(&choices, settings);
    let sidecar = sidecar(&choices, settings);
    let inits = array(spec, "initContainers");
    inits.insert(0, init);
    if choices.native {
        inits.insert(1, sidecar);
    } else {
        array(spec, "containers").insert(0, sidecar);
    }

    let annotations = meta
        .as_object_mut()
        .expect("checked")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    let a = annotations.as_object_mut().expect("object");
    a.insert(STATUS.to_string(), Value::String(status(&choices)));
    if let Some(first) = agents.first() {
        a.entry(DEFAULT_CONTAINER.to_string())
            .or_insert_with(|| Value::String(first.clone()));
    }
    Ok(Outcome::Injected(choices))
}

/// What was injected, for `asg.dev/status`.
pub fn status(c: &Choices) -> String {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": c.mode.as_str(),
        "profile": c.profile,
        "sidecar": if c.native { "native" } else { "classic" },
    })
    .to_string()
}

/// In transparent mode a container running as the sidecar's uid or gid
/// would never be redirected: a silent bypass, so it is refused.
fn check_no_agent_runs_as_sidecar(spec: &Value, s: &Settings) -> Result<(), String> {
    let pod = &spec["securityContext"];
    let lists = [&spec["containers"], &spec["initContainers"]];
    for c in lists.into_iter().filter_map(Value::as_array).flatten() {
        let ctx = &c["securityContext"];
        let uid = ctx["runAsUser"].as_u64().or(pod["runAsUser"].as_u64());
        let gid = ctx["runAsGroup"].as_u64().or(pod["runAsGroup"].as_u64());
        if uid == Some(u64::from(s.uid)) || gid == Some(u64::from(s.gid)) {
            return Err(format!(
                "container {} runs as uid/gid {}/{}, the asg sidecar's, whose traffic is never redirected in transparent mode: run it as another user",
                c["name"].as_str().unwrap_or("?"),
                s.uid,
                s.gid
            ));
        }
    }
    Ok(())
}

/// The variables every agent container gets.
pub fn agent_env(c: &Choices, s: &Settings) -> Vec<(String, String)> {
    let proxy = format!("http://127.0.0.1:{}", s.proxy_port);
    let bundle = std::path::Path::new(TRUST_DIR).join("bundle.pem");
    let ca = std::path::Path::new(TRUST_DIR).join("ca.pem");
    let mut no_proxy = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    no_proxy.extend(s.no_proxy.iter().cloned());
    let mut out = Vec::new();
    for (k, v) in crate::cli::forward::env_lines(&proxy, &bundle, &ca) {
        let is_proxy = k.ends_with("_PROXY");
        if is_proxy && c.mode == Mode::Transparent {
            continue;
        }
        let v = if k == "NO_PROXY" {
            no_proxy.join(",")
        } else {
            v
        };
        out.push((k.to_string(), v.clone()));
        if is_proxy {
            // curl reads only the lower-case http_proxy; most tools read both.
            out.push((k.to_ascii_lowercase(), v));
        }
    }
    out
}

/// Proxy variables an agent may carry. Replaced in proxy-env mode; removed
/// in transparent mode, where a proxy on a port that is not redirected
/// would carry the agent's traffic past the gateway.
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn add_agent_env(c: &mut Value, env: &[(String, String)], mount: &Value) -> Result<(), String> {
    let name = c["name"].as_str().unwrap_or("?").to_string();
    let list = array(c, "env");
    list.retain(|e| {
        let n = e["name"].as_str().unwrap_or_default();
        !PROXY_VARS.contains(&n) && !env.iter().any(|(k, _)| k == n)
    });
    list.extend(env.iter().map(|(k, v)| json!({"name": k, "value": v})));
    let mounts = array(c, "volumeMounts");
    if mounts
        .iter()
        .any(|m| m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some(TRUST_DIR))
    {
        return Err(format!(
            "container {name} already mounts something at {TRUST_DIR}, where the asg trust bundle goes"
        ));
    }
    mounts.push(mount.clone());
    Ok(())
}

fn volumes(s: &Settings) -> Vec<Value> {
    // The audit log is capped at audit_max_bytes; sled needs room to compact.
    let data_mib = (s.audit_max_bytes.saturating_mul(2) >> 20).max(64);
    let items: Vec<Value> = s
        .policy_items
        .iter()
        .map(|i| json!({"key": i.key, "path": i.path}))
        .collect();
    vec![
        json!({"name": VOL_DATA, "emptyDir": {"sizeLimit": format!("{data_mib}Mi")}}),
        json!({"name": VOL_TMP, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}),
        json!({"name": VOL_TRUST, "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}}),
        json!({"name": VOL_CA, "secret": {"secretName": s.ca_secret, "defaultMode": READABLE}}),
        json!({"name": VOL_CA_CERT, "secret": {"secretName": s.ca_secret, "defaultMode": READABLE,
            "items": [{"key": "ca.crt", "path": "ca.crt"}]}}),
        json!({"name": VOL_POLICIES, "configMap": {"name": s.policy_config_map,
            "defaultMode": READABLE, "items": items}}),
    ]
}

fn restricted(uid: u32, gid: u32) -> Value {
    json!({
        "runAsUser": uid,
        "runAsGroup": gid,
        "runAsNonRoot": true,
        "readOnlyRootFilesystem": true,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The `asg pod-init` arguments (after the binary).
pub fn init_args(c: &Choices, s: &Settings) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "pod-init".into(),
        "--ca-cert".into(),
        format!("{CA_CERT_DIR}/ca.crt"),
        "--trust-dir".into(),
        TRUST_DIR.into(),
    ];
    if c.mode == Mode::Transparent {
        let ports: Vec<String> = s.redirect_ports.iter().map(u16::to_string).collect();
        args.extend([
            "--iptables".into(),
            "--proxy-port".into(),
            s.transparent_port.to_string(),
            "--uid".into(),
            s.uid.to_string(),
            "--gid".into(),
            s.gid.to_string(),
            "--ports".into(),
            ports.join(","),
            "--ipv6".into(),
            s.ipv6.clone(),
        ]);
        if !s.exclude_cidrs.is_empty() {
            args.extend(["--exclude".into(), s.exclude_cidrs.join(",")]);
        }
    }
    args
}

fn init_container(c: &Choices, s: &Settings) -> Value {
    let mut command = vec![BIN.to_string()];
    command.extend(init_args(c, s));
    let security = match c.mode {
        Mode::ProxyEnv => restricted(s.uid, s.gid),
        // Root for iptables, but only the two network capabilities.
        Mode::Transparent => json!({
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": false,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }),
    };
    json!({
        "name": INIT,
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "command": command,
        // iptables takes its lock here; the root filesystem is read-only.
        "env": [{"name": "XTABLES_LOCKFILE", "value": format!("{TMP_DIR}/xtables.lock")}],
        "resources": s.init_resources,
        "securityContext": security,
        "volumeMounts": [
            {"name": VOL_CA_CERT, "mountPath": CA_CERT_DIR, "readOnly": true},
            {"name": VOL_TRUST, "mountPath": TRUST_DIR},
            {"name": VOL_TMP, "mountPath": TMP_DIR},
        ],
    })
}

/// The sidecar's environment: identity first (later entries expand it).
pub fn sidecar_env(c: &Choices, s: &Settings) -> Vec<Value> {
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}});
    let val = |name: &str, v: String| json!({"name": name, "value": v});
    let mut env = vec![
        field("ASG_POD_NAME", "metadata.name"),
        field("ASG_POD_NAMESPACE", "metadata.namespace"),
        field("ASG_SERVICE_ACCOUNT", "spec.serviceAccountName"),
        // Authoritative: agent headers cannot claim another identity.
        val(
            "ASG_AGENT_ID",
            "$(ASG_POD_NAMESPACE)/$(ASG_SERVICE_ACCOUNT)/$(ASG_POD_NAME)".into(),
        ),
        val("ASG_LISTEN", format!("127.0.0.1:{}", s.proxy_port)),
        val(
            "ASG_ADMIN_LISTEN",
            format!("{}:{}", s.admin_address, s.admin_port),
        ),
    ];
    if c.mode == Mode::Transparent {
        env.push(val(
            "ASG_TRANSPARENT_LISTEN",
            format!("127.0.0.1:{}", s.transparent_port),
        ));
    }
    env.extend([
        val("ASG_POLICY", c.profile.clone()),
        val("ASG_POLICY_DIR", POLICY_DIR.into()),
        val("ASG_DATA_DIR", DATA_DIR.into()),
        val("ASG_CA_CERT", format!("{CA_DIR}/tls.crt")),
        val("ASG_CA_KEY", format!("{CA_DIR}/tls.key")),
        val("ASG_THREADS", s.threads.to_string()),
        val("ASG_AUDIT_MAX_BYTES", s.audit_max_bytes.to_string()),
        val("ASG_LOG_FORMAT", s.log_format.clone()),
    ]);
    if s.audit_stdout {
        env.push(val("ASG_AUDIT_STDOUT", "true".into()));
    }
    if !s.state_url.is_empty() {
        env.push(val("ASG_STATE_URL", s.state_url.clone()));
        if !s.state_prefix.is_empty() {
            env.push(val("ASG_STATE_PREFIX", s.state_prefix.clone()));
        }
        if !s.state_password_secret.is_empty() {
            env.push(
                json!({"name": "ASG_STATE_PASSWORD", "valueFrom": {"secretKeyRef":
                {"name": s.state_password_secret, "key": s.state_password_key}}}),
            );
        }
    }
    if !s.admin_secret.is_empty() {
        env.push(val("ASG_ADMIN_AUTH", "true".into()));
        env.push(
            json!({"name": "ASG_OPERATOR_KEYS", "valueFrom": {"secretKeyRef":
            {"name": s.admin_secret, "key": "operator-key"}}}),
        );
    }
    env
}

fn sidecar(c: &Choices, s: &Settings) -> Value {
    let probe = |path: &str, period: u32, failures: u32| {
        json!({
            "httpGet": {"path": path, "port": s.admin_port},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        })
    };
    let mut sidecar = json!({
        "name": SIDECAR,
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "command": [BIN, "run"],
        "ports": [{"name": "asg-admin", "containerPort": s.admin_port, "protocol": "TCP"}],
        "env": sidecar_env(c, s),
        "resources": c.resources,
        "securityContext": restricted(s.uid, s.gid),
        "volumeMounts": [
            {"name": VOL_DATA, "mountPath": DATA_DIR},
            {"name": VOL_TMP, "mountPath": TMP_DIR},
            {"name": VOL_CA, "mountPath": CA_DIR, "readOnly": true},
            {"name": VOL_POLICIES, "mountPath": POLICY_DIR, "readOnly": true},
        ],
        // Up to a minute to start (policy compilation on a busy node).
        "startupProbe": probe("/ready", 1, 60),
        "readinessProbe": probe("/ready", 5, 3),
        "livenessProbe": probe("/health", 10, 3),
    });
    let obj = sidecar.as_object_mut().expect("object");
    if c.native {
        obj.insert("restartPolicy".into(), json!("Always"));
    } else {
        // Classic sidecar: kubelet starts the next container only when
        // postStart returns, so the agent never starts before the proxy.
        obj.insert(
            "lifecycle".into(),
            json!({"postStart": {"exec": {"command": [BIN, "pod-init", "--wait-ready",
                format!("127.0.0.1:{}", s.admin_port)]}}}),
        );
    }
    sidecar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> (Value, Value) {
        (
            json!({"name": "agent", "labels": {"app": "agent"}}),
            json!({"containers": [
                {"name": "agent", "image": "python:3.12",
                 "env": [{"name": "HTTPS_PROXY", "value": "http://corp:3128"}, {"name": "KEEP", "value": "1"}]},
                {"name": "helper", "image": "busybox"}
            ]}),
        )
    }

    fn container<'a>(spec: &'a Value, list: &str, name: &str) -> &'a Value {
        spec[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {list}: {spec}"))
    }

    fn env_of(c: &Value, name: &str) -> Option<String> {
        c["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"]
            .as_str()
            .map(str::to_string)
    }

    #[test]
    fn proxy_env_native_sidecar() {
        let (mut meta, mut spec) = pod();
        let out = inject(&mut meta, &mut spec, "agents", &Settings::default()).unwrap();
        assert!(matches!(out, Outcome::Injected(_)));
        let inits: Vec<&str> = names(&spec["initContainers"]).collect();
        assert_eq!(inits, [INIT, SIDECAR]);
        let asg = container(&spec, "initContainers", SIDECAR);
        assert_eq!(asg["restartPolicy"], "Always");
        assert_eq!(asg["securityContext"]["runAsUser"], 1337);
        assert_eq!(asg["securityContext"]["readOnlyRootFilesystem"], true);
        let agent = container(&spec, "containers", "agent");
        assert_eq!(
            env_of(agent, "HTTPS_PROXY").unwrap(),
            "http://127.0.0.1:15080"
        );
        assert_eq!(
            env_of(agent, "http_proxy").unwrap(),
            "http://127.0.0.1:15080"
        );
        assert_eq!(
            env_of(agent, "SSL_CERT_FILE").unwrap(),
            "/var/run/asg/trust/bundle.pem"
        );
        assert_eq!(
            env_of(agent, "NODE_EXTRA_CA_CERTS").unwrap(),
            "/var/run/asg/trust/ca.pem"
        );
        assert_eq!(env_of(agent, "KEEP").unwrap(), "1");
        let proxies = agent["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "HTTPS_PROXY")
            .count();
        assert_eq!(proxies, 1, "the pod's own proxy setting is replaced");
        assert!(env_of(container(&spec, "containers", "helper"), "SSL_CERT_FILE").is_some());
        let init = container(&spec, "initContainers", INIT);
        assert_eq!(init["securityContext"]["runAsNonRoot"], true);
        assert!(!init["command"].to_string().contains("--iptables"));
        assert_eq!(meta["annotations"][DEFAULT_CONTAINER], "agent");
    }

    #[test]
    fn transparent_classic_sidecar() {
        let (mut meta, mut spec) = pod();
        meta["annotations"] =
            json!({"asg.dev/mode": "transparent", "asg.dev/native-sidecar": "false"});
        inject(&mut meta, &mut spec, "agents", &Settings::default()).unwrap();
        assert_eq!(spec["containers"][0]["name"], SIDECAR);
        let asg = &spec["containers"][0];
        assert!(asg.get("restartPolicy").is_none());
        assert!(asg["lifecycle"]["postStart"].is_object());
        assert_eq!(
            env_of(asg, "ASG_TRANSPARENT_LISTEN").unwrap(),
            "127.0.0.1:15001"
        );
        let init = container(&spec, "initContainers", INIT);
        let cmd = init["command"].to_string();
        assert!(
            cmd.contains("--iptables") && cmd.contains("\"--uid\",\"1337\""),
            "{cmd}"
        );
        assert_eq!(
            init["securityContext"]["capabilities"]["add"],
            json!(["NET_ADMIN", "NET_RAW"])
        );
        let agent = container(&spec, "containers", "agent");
        assert!(
            env_of(agent, "HTTPS_PROXY").is_none(),
            "no proxy variables in transparent mode"
        );
        assert_eq!(env_of(agent, "KEEP").unwrap(), "1");
        assert!(env_of(agent, "SSL_CERT_FILE").is_some());
    }

    #[test]
    fn second_run_is_a_no_op() {
        let (mut meta, mut spec) = pod();
        inject(&mut meta, &mut spec, "agents", &Settings::default()).unwrap();
        let (m1, s1) = (meta.clone(), spec.clone());
        let out = inject(&mut meta, &mut spec, "agents", &Settings::default()).unwrap();
        assert_eq!(out, Outcome::AlreadyInjected);
        assert_eq!((meta, spec), (m1, s1));
    }

    #[test]
    fn refusals() {
        let settings = Settings::default();
        let (mut meta, mut spec) = pod();
        spec["containers"][1]["name"] = json!("asg");
        let err = inject(&mut meta, &mut spec, "agents", &settings).unwrap_err();
        assert!(err.contains("already named asg"), "{err}");

        let (mut meta, mut spec) = pod();
        spec["hostNetwork"] = json!(true);
        assert!(inject(&mut meta, &mut spec, "agents", &settings)
            .unwrap_err()
            .contains("hostNetwork"));

        let (mut meta, mut spec) = pod();
        meta["annotations"] = json!({"asg.dev/mode": "transparent"});
        spec["securityContext"] = json!({"runAsUser": 1337});
        let err = inject(&mut meta, &mut spec, "agents", &settings).unwrap_err();
        assert!(err.contains("never redirected"), "{err}");

        let (mut meta, mut spec) = pod();
        spec["volumes"] = json!([{"name": "asg-data", "emptyDir": {}}]);
        assert!(inject(&mut meta, &mut spec, "agents", &settings)
            .unwrap_err()
            .contains("volume named asg-data"));

        let (mut meta, _) = pod();
        let mut spec = json!({"containers": []});
        assert!(inject(&mut meta, &mut spec, "agents", &settings)
            .unwrap_err()
            .contains("no containers"));
    }

    #[test]
    fn opted_out_pods_are_untouched() {
        let (mut meta, mut spec) = pod();
        meta["labels"]["asg.dev/inject"] = json!("false");
        let before = (meta.clone(), spec.clone());
        assert_eq!(
            inject(&mut meta, &mut spec, "agents", &Settings::default()).unwrap(),
            Outcome::OptedOut
        );
        assert_eq!((meta, spec), before);
    }

    #[test]
    fn the_ca_key_reaches_only_the_sidecar() {
        let (mut meta, mut spec) = pod();
        spec["initContainers"] = json!([{"name": "setup", "image": "busybox"}]);
        inject(&mut meta, &mut spec, "agents", &Settings::default()).unwrap();
        for list in ["containers", "initContainers"] {
            for c in spec[list].as_array().unwrap() {
                let mounts_key = names(&c["volumeMounts"]).any(|v| v == VOL_CA);
                assert_eq!(mounts_key, c["name"] == SIDECAR, "{c}");
            }
        }
        // The init container sees the certificate only.
        let ca_cert = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == VOL_CA_CERT)
            .unwrap();
        assert_eq!(
            ca_cert["secret"]["items"],
            json!([{"key": "ca.crt", "path": "ca.crt"}])
        );
        // User init containers run after a native sidecar: they get the proxy.
        let setup = container(&spec, "initContainers", "setup");
        assert!(env_of(setup, "HTTPS_PROXY").is_some());
    }
}
