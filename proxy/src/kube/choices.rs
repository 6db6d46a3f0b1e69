//! What a pod asks for: its `asg.dev/*` labels and annotations, read
//! against the namespace's and the injector's defaults.
//!
//! * `asg.dev/inject` (label or annotation): `"true"` opts in, `"false"`
//!   opts out; an opt-out anywhere wins;
//! * `asg.dev/profile`, `asg.dev/mode` (`proxy-env`, `transparent`),
//!   `asg.dev/native-sidecar` (`true`, `false`);
//! * `asg.dev/proxy-cpu`, `asg.dev/proxy-memory` (requests) and
//!   `asg.dev/proxy-cpu-limit`, `asg.dev/proxy-memory-limit`.
//!
//! A misspelt or malformed one is an error, never ignored: a pod that asked
//! for `strict` must not quietly run `dev`.

use super::settings::{Mode, Settings};
use super::{INJECT, PREFIX, STATUS};
use serde_json::{Map, Value};

pub const PROFILE: &str = "asg.dev/profile";
pub const MODE: &str = "asg.dev/mode";
pub const NATIVE: &str = "asg.dev/native-sidecar";
const RESOURCES: &[(&str, &str, &str)] = &[
    ("asg.dev/proxy-cpu", "requests", "cpu"),
    ("asg.dev/proxy-memory", "requests", "memory"),
    ("asg.dev/proxy-cpu-limit", "limits", "cpu"),
    ("asg.dev/proxy-memory-limit", "limits", "memory"),
];

/// What to inject.
#[derive(Debug, Clone, PartialEq)]
pub struct Choices {
    pub mode: Mode,
    pub profile: String,
    pub native: bool,
    /// The sidecar's `resources`.
    pub resources: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Wanted {
    Inject(Choices),
    OptedOut,
}

fn known_annotations() -> Vec<&'static str> {
    let mut v = vec![INJECT, PROFILE, MODE, NATIVE, STATUS];
    v.extend(RESOURCES.iter().map(|r| r.0));
    v
}

fn string_map(meta: &Value, field: &str) -> Map<String, Value> {
    meta.get(field)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn parse_bool(name: &str, v: &Value) -> Result<bool, String> {
    match v.as_str().map(str::trim) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(format!("{name}: {v} is not \"true\" or \"false\"")),
    }
}

/// Read the pod template's metadata (labels and annotations).
pub fn read(meta: &Value, namespace: &str, settings: &Settings) -> Result<Wanted, String> {
    let labels = string_map(meta, "labels");
    let annotations = string_map(meta, "annotations");
    for (key, source) in labels
        .keys()
        .map(|k| (k, "label"))
        .chain(annotations.keys().map(|k| (k, "annotation")))
    {
        let known = if source == "label" {
            key == INJECT
        } else {
            known_annotations().contains(&key.as_str())
        };
        if key.starts_with(PREFIX) && !known {
            return Err(format!(
                "unknown {source} {key} (the injector reads {})",
                if source == "label" {
                    INJECT.to_string()
                } else {
                    known_annotations().join(", ")
                }
            ));
        }
    }
    let mut opt_in = None;
    for v in [labels.get(INJECT), annotations.get(INJECT)]
        .into_iter()
        .flatten()
    {
        let b = parse_bool(INJECT, v)?;
        opt_in = Some(opt_in.unwrap_or(true) && b);
    }
    if opt_in == Some(false) {
        return Ok(Wanted::OptedOut);
    }

    if settings.only_listed_namespaces && !settings.namespaces.contains_key(namespace) {
        return Err(format!(
            "namespace {namespace:?} is not prepared for the asg sidecar (no CA Secret or policy ConfigMap is installed there): add it to the chart's injection.namespaces, or opt this pod out with the label {INJECT}=false"
        ));
    }
    let ns = settings
        .namespaces
        .get(namespace)
        .cloned()
        .unwrap_or_default();
    let text = |key: &str| -> Result<Option<String>, String> {
        match annotations.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(v) => Err(format!("{key}: {v} is not a string")),
        }
    };

    let profile = match text(PROFILE)? {
        Some(p) => {
            settings
                .check_profile(&p)
                .map_err(|e| format!("{PROFILE}: {e}"))?;
            p
        }
        None => ns.profile.unwrap_or_else(|| settings.profile.clone()),
    };
    let mode = match text(MODE)? {
        Some(m) => Mode::parse(&m)
            .ok_or_else(|| format!("{MODE}: {m:?} is not proxy-env or transparent"))?,
        None => ns.mode.unwrap_or(settings.mode),
    };
    let native = match annotations.get(NATIVE) {
        Some(v) => parse_bool(NATIVE, v)?,
        None => settings.native_sidecars,
    };
    let mut resources = settings.resources.clone();
    for (key, section, resource) in RESOURCES {
        if let Some(q) = text(key)? {
            if !is_quantity(&q) {
                return Err(format!(
                    "{key}: {q:?} is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi)"
                ));
            }
            if !resources.is_object() {
                resources = Value::Object(Map::new());
            }
            let sec = resources
                .as_object_mut()
                .expect("object")
                .entry(section.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            sec[resource] = Value::String(q);
        }
    }
    Ok(Wanted::Inject(Choices {
        mode,
        profile,
        native,
        resources,
    }))
}

/// A `resources` object: `requests` and `limits` of quantities.
pub fn check_resources(what: &str, v: &Value) -> Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("{what} must be an object with requests and limits"));
    };
    for (section, entries) in obj {
        if section != "requests" && section != "limits" {
            return Err(format!("{what}: {section:?} is not requests or limits"));
        }
        let Some(entries) = entries.as_object() else {
            return Err(format!("{what}.{section} must be an object"));
        };
        for (name, q) in entries {
            let q = match q {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(format!(
                        "{what}.{section}.{name}: {other} is not a quantity"
                    ))
                }
            };
            if !is_quantity(&q) {
                return Err(format!(
                    "{what}.{section}.{name}: {q:?} is not a Kubernetes quantity (e.g. 100m, 128Mi)"
                ));
            }
        }
    }
    Ok(())
}

/// Kubernetes' quantity syntax: a decimal number and an optional binary
/// (`Ki` … `Ei`) or decimal (`m`, `k` … `E`) suffix, or an exponent.
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()));
    number_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        Settings::default()
    }

    fn inject(meta: Value) -> Choices {
        match read(&meta, "agents", &settings()).unwrap() {
            Wanted::Inject(c) => c,
            Wanted::OptedOut => panic!("opted out"),
        }
    }

    #[test]
    fn defaults_without_annotations() {
        let c = inject(json!({}));
        assert_eq!(c.mode, Mode::ProxyEnv);
        assert_eq!(c.profile, "dev");
        assert!(c.native);
        assert_eq!(c.resources["requests"]["cpu"], "50m");
    }

    #[test]
    fn annotations_choose_profile_mode_native_and_resources() {
        let c = inject(json!({"annotations": {
            "asg.dev/profile": "strict",
            "asg.dev/mode": "transparent",
            "asg.dev/native-sidecar": "false",
            "asg.dev/proxy-cpu": "200m",
            "asg.dev/proxy-memory-limit": "1Gi"
        }}));
        assert_eq!(c.profile, "strict");
        assert_eq!(c.mode, Mode::Transparent);
        assert!(!c.native);
        assert_eq!(c.resources["requests"]["cpu"], "200m");
        assert_eq!(c.resources["requests"]["memory"], "64Mi");
        assert_eq!(c.resources["limits"]["memory"], "1Gi");
    }

    #[test]
    fn opt_out_by_label_or_annotation_wins() {
        for meta in [
            json!({"labels": {"asg.dev/inject": "false"}}),
            json!({"annotations": {"asg.dev/inject": "false"}}),
            json!({"labels": {"asg.dev/inject": "true"}, "annotations": {"asg.dev/inject": "false"}}),
        ] {
            assert_eq!(
                read(&meta, "agents", &settings()).unwrap(),
                Wanted::OptedOut,
                "{meta}"
            );
        }
    }

    #[test]
    fn namespace_defaults_and_unprepared_namespaces() {
        let s = Settings::parse("onlyListedNamespaces: true\nnamespaces:\n  agents: {profile: production, mode: transparent}\n  other: {}\n").unwrap();
        let Wanted::Inject(c) = read(&json!({}), "agents", &s).unwrap() else {
            panic!()
        };
        assert_eq!(
            (c.profile.as_str(), c.mode),
            ("production", Mode::Transparent)
        );
        let Wanted::Inject(c) = read(&json!({}), "other", &s).unwrap() else {
            panic!()
        };
        assert_eq!((c.profile.as_str(), c.mode), ("dev", Mode::ProxyEnv));
        let err = read(&json!({}), "elsewhere", &s).unwrap_err();
        assert!(
            err.contains("not prepared") && err.contains("injection.namespaces"),
            "{err}"
        );
        // An opted-out pod in an unprepared namespace is simply left alone.
        let out = read(
            &json!({"labels": {"asg.dev/inject": "false"}}),
            "elsewhere",
            &s,
        );
        assert_eq!(out.unwrap(), Wanted::OptedOut);
    }

    #[test]
    fn malformed_annotations_are_clear_errors() {
        for (meta, needle) in [
            (
                json!({"annotations": {"asg.dev/profle": "strict"}}),
                "unknown annotation asg.dev/profle",
            ),
            (
                json!({"labels": {"asg.dev/profile": "strict"}}),
                "unknown label",
            ),
            (
                json!({"annotations": {"asg.dev/inject": "yes"}}),
                "not \"true\" or \"false\"",
            ),
            (
                json!({"annotations": {"asg.dev/mode": "sideways"}}),
                "not proxy-env or transparent",
            ),
            (
                json!({"annotations": {"asg.dev/profile": "team-x"}}),
                "not in the policy ConfigMap",
            ),
            (
                json!({"annotations": {"asg.dev/proxy-cpu": "lots"}}),
                "not a Kubernetes quantity",
            ),
        ] {
            let err = read(&meta, "agents", &settings()).unwrap_err();
            assert!(err.contains(needle), "{meta}: {err}");
        }
    }

    #[test]
    fn quantities() {
        for q in ["100m", "0.5", "1", "128Mi", "1G", "2e3", "+1.5Gi", ".5"] {
            assert!(is_quantity(q), "{q}");
        }
        for q in ["", "m", "1.2.3", "12x", "1 Gi", "1e", "Mi"] {
            assert!(!is_quantity(q), "{q}");
        }
    }
}
