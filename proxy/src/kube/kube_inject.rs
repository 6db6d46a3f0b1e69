//! `asg kube-inject -f FILE`: the webhook's mutation applied offline to a
//! YAML stream (like `istioctl kube-inject`), for GitOps pipelines and for
//! tests. Pods and the pod templates of Deployments, StatefulSets,
//! DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs are
//! injected (also inside a `List`); every other document passes through.
//! Comments are not kept (the output is re-serialized).

use super::settings::Settings;
use super::template::{self, Outcome};
use serde::Deserialize;
use serde_json::Value;

/// The stream, injected, and one line per workload for stderr.
#[derive(Debug)]
pub struct Injected {
    pub yaml: String,
    pub notes: Vec<String>,
}

/// Where a kind keeps its pod template.
fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&[]),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some(&["spec", "template"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

pub fn inject_stream(
    text: &str,
    default_namespace: &str,
    settings: &Settings,
) -> Result<Injected, String> {
    let mut docs = Vec::new();
    let mut notes = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let mut yaml = serde_yaml::Value::deserialize(de)
            .map_err(|e| format!("document {n}: not YAML: {e}"))?;
        if yaml.is_null() {
            continue;
        }
        yaml.apply_merge()
            .map_err(|e| format!("document {n}: {e}"))?;
        let mut doc: Value = serde_json::to_value(&yaml)
            .map_err(|e| format!("document {n}: {e} (keys must be strings)"))?;
        visit(&mut doc, default_namespace, settings, &mut notes)
            .map_err(|e| format!("document {n}: {e}"))?;
        docs.push(serde_yaml::to_string(&doc).map_err(|e| format!("document {n}: {e}"))?);
    }
    Ok(Injected {
        yaml: docs.join("---\n"),
        notes,
    })
}

fn visit(
    doc: &mut Value,
    default_ns: &str,
    settings: &Settings,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    if kind == "List" {
        for item in doc["items"].as_array_mut().into_iter().flatten() {
            visit(item, default_ns, settings, notes)?;
        }
        return Ok(());
    }
    let Some(path) = template_path(&kind) else {
        return Ok(());
    };
    let namespace = doc["metadata"]["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or(default_ns)
        .to_string();
    let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let what = format!("{kind} {namespace}/{name}");
    let mut tpl = &mut *doc;
    for key in path {
        tpl = tpl
            .get_mut(*key)
            .filter(|v| v.is_object())
            .ok_or_else(|| format!("{what} has no pod template ({})", path.join(".")))?;
    }
    let mut meta = std::mem::take(&mut tpl["metadata"]);
    let mut spec = std::mem::take(&mut tpl["spec"]);
    let outcome = template::inject(&mut meta, &mut spec, &namespace, settings);
    tpl["metadata"] = meta;
    tpl["spec"] = spec;
    match outcome.map_err(|e| format!("{what}: {e}"))? {
        Outcome::Injected(c) => notes.push(format!(
            "{what}: injected ({} sidecar, {}, profile {})",
            if c.native { "native" } else { "classic" },
            c.mode.as_str(),
            c.profile
        )),
        other => notes.push(format!("{what}: {}", other.label().replace('_', " "))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn golden_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/kube")
    }

    /// `<case>.in.yaml` injected with `<case>.settings.yaml` (if any) must
    /// equal `<case>.golden.yaml`; `ASG_UPDATE_GOLDEN=1` rewrites it.
    fn golden(case: &str) -> Injected {
        let dir = golden_dir();
        let input = std::fs::read_to_string(dir.join(format!("{case}.in.yaml"))).unwrap();
        let settings_path = dir.join(format!("{case}.settings.yaml"));
        let settings =
            Settings::load(settings_path.is_file().then_some(settings_path.as_path())).unwrap();
        let out = inject_stream(&input, "default", &settings).unwrap();
        let path = dir.join(format!("{case}.golden.yaml"));
        if std::env::var_os("ASG_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &out.yaml).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (ASG_UPDATE_GOLDEN=1 creates it)", path.display()));
        assert_eq!(out.yaml, want, "golden file {} differs", path.display());
        // Injecting the output again changes nothing.
        let again = inject_stream(&out.yaml, "default", &settings).unwrap();
        assert_eq!(again.yaml, out.yaml, "{case}: not idempotent");
        out
    }

    #[test]
    fn workloads_golden() {
        let out = golden("workloads");
        let injected = out
            .notes
            .iter()
            .filter(|n| n.ends_with("profile dev)") || n.contains("injected"))
            .count();
        assert_eq!(injected, 6, "{:#?}", out.notes);
        assert!(
            out.notes.iter().any(|n| n.contains("opted out")),
            "{:#?}",
            out.notes
        );
    }

    #[test]
    fn transparent_classic_golden() {
        let out = golden("transparent-classic");
        assert!(
            out.notes
                .iter()
                .all(|n| n.contains("classic sidecar, transparent")),
            "{:#?}",
            out.notes
        );
    }

    #[test]
    fn lists_and_pass_through() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec:\n    containers: [{name: a, image: x}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n";
        let out = inject_stream(text, "agents", &Settings::default()).unwrap();
        assert!(out.yaml.contains("name: asg-init"));
        assert!(out.yaml.contains("kind: Service\nmetadata:\n  name: s\n"));
        assert_eq!(
            out.notes,
            ["Pod agents/p: injected (native sidecar, proxy-env, profile dev)"]
        );
    }

    #[test]
    fn errors_name_the_document() {
        let err = inject_stream(
            "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a}]}\n---\n: : :\n",
            "x",
            &Settings::default(),
        )
        .unwrap_err();
        assert!(err.starts_with("document 2: not YAML"), "{err}");
        let err = inject_stream(
            "kind: Deployment\nmetadata: {name: d}\nspec: {}\n",
            "x",
            &Settings::default(),
        )
        .unwrap_err();
        assert!(err.contains("Deployment x/d has no pod template"), "{err}");
        let err = inject_stream(
            "kind: Pod\nmetadata: {name: p, annotations: {asg.dev/mode: nope}}\nspec: {containers: [{name: a}]}\n",
            "x",
            &Settings::default(),
        )
        .unwrap_err();
        assert!(err.contains("document 1: Pod x/p: asg.dev/mode"), "{err}");
    }
}
