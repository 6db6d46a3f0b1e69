//! `AdmissionReview` (admission.k8s.io/v1) in, `AdmissionReview` out.
//!
//! Own serde types rather than kube-rs: the API server expects `patch` as
//! a base64 string (Go `[]byte`), and `patchType` only next to a patch.
//! A pod CREATE gets the template's mutation as a JSON Patch (the diff of
//! the pod before and after); every other operation, resource or
//! subresource is allowed untouched. A dry run gets the same answer (the
//! injector has no side effects to skip; metrics count it apart). A review
//! that cannot be read is answered `400` with a `Status` saying why; a pod
//! that asks for something invalid is denied with the reason.

use super::settings::Settings;
use super::template::{self, Outcome};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

pub const API_VERSION: &str = "admission.k8s.io/v1";

#[derive(Deserialize)]
struct Review {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    sub_resource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    object: Value,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize, Default)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// The HTTP answer to one review, plus what to count and log.
#[derive(Debug)]
pub struct Answer {
    pub http_status: u16,
    pub body: Vec<u8>,
    /// Metric label: injected, opted_out, already_injected, ignored, denied, invalid.
    pub result: &'static str,
    pub dry_run: bool,
    /// One line for the log (never the pod spec).
    pub detail: String,
}

fn bad_request(message: String) -> Answer {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "reason": "BadRequest",
        "code": 400,
        "message": message,
    });
    Answer {
        http_status: 400,
        body: body.to_string().into_bytes(),
        result: "invalid",
        dry_run: false,
        detail: message,
    }
}

fn respond(uid: &str, response: Value) -> Vec<u8> {
    let mut response = response;
    response["uid"] = json!(uid);
    json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response})
        .to_string()
        .into_bytes()
}

/// Review one `AdmissionReview` body.
pub fn review(body: &[u8], settings: &Settings) -> Answer {
    let review: Review = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(format!(
                "the body is not an AdmissionReview ({e}); the injector answers admission.k8s.io/v1 AdmissionReview requests"
            ))
        }
    };
    if review.api_version != API_VERSION || review.kind != "AdmissionReview" {
        return bad_request(format!(
            "expected apiVersion {API_VERSION} kind AdmissionReview, got {:?} {:?} (set admissionReviewVersions: [v1] on the webhook)",
            review.api_version, review.kind
        ));
    }
    let Some(req) = review.request else {
        return bad_request("the AdmissionReview has no request".to_string());
    };
    if req.uid.is_empty() {
        return bad_request("request.uid is missing".to_string());
    }
    let dry_run = req.dry_run;
    let allow = |result: &'static str, detail: String| Answer {
        http_status: 200,
        body: respond(&req.uid, json!({"allowed": true})),
        result,
        dry_run,
        detail,
    };
    let is_pod = req.kind.group.is_empty() && req.kind.kind == "Pod";
    if req.operation != "CREATE" || !is_pod || !req.sub_resource.is_empty() {
        return allow(
            "ignored",
            format!(
                "{} {}{} left alone",
                req.operation,
                req.kind.kind,
                if req.sub_resource.is_empty() {
                    String::new()
                } else {
                    format!("/{}", req.sub_resource)
                }
            ),
        );
    }
    let deny = |message: String| Answer {
        http_status: 200,
        body: respond(
            &req.uid,
            json!({"allowed": false, "status": {
                "status": "Failure", "reason": "BadRequest", "code": 400,
                "message": format!("asg sidecar injector: {message}")}}),
        ),
        result: "denied",
        dry_run,
        detail: message,
    };
    if !req.object.is_object() {
        return deny("request.object is not a Pod".to_string());
    }
    if req.namespace.is_empty() {
        return deny("request.namespace is missing".to_string());
    }
    let mut pod = req.object.clone();
    let mut meta = std::mem::take(&mut pod["metadata"]);
    let mut spec = std::mem::take(&mut pod["spec"]);
    let outcome = template::inject(&mut meta, &mut spec, &req.namespace, settings);
    pod["metadata"] = meta;
    pod["spec"] = spec;
    let name = pod_name(&req.object);
    match outcome {
        Err(e) => deny(e),
        Ok(Outcome::Injected(choices)) => {
            let patch = json_patch::diff(&req.object, &pod);
            let patch = serde_json::to_vec(&patch).expect("a patch serializes");
            Answer {
                http_status: 200,
                body: respond(
                    &req.uid,
                    json!({
                        "allowed": true,
                        "patchType": "JSONPatch",
                        "patch": base64::engine::general_purpose::STANDARD.encode(patch),
                    }),
                ),
                result: "injected",
                dry_run,
                detail: format!(
                    "{}/{name}: {} sidecar, {}, profile {}",
                    req.namespace,
                    if choices.native { "native" } else { "classic" },
                    choices.mode.as_str(),
                    choices.profile
                ),
            }
        }
        Ok(o) => allow(
            o.label(),
            format!("{}/{name}: {}", req.namespace, o.label()),
        ),
    }
}

fn pod_name(pod: &Value) -> String {
    let m = &pod["metadata"];
    match (m["name"].as_str(), m["generateName"].as_str()) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(g)) => format!("{g}*"),
        _ => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review_body(operation: &str, object: Value, dry_run: bool) -> Vec<u8> {
        json!({
            "apiVersion": API_VERSION,
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "agents",
                "operation": operation,
                "object": object,
                "dryRun": dry_run,
            }
        })
        .to_string()
        .into_bytes()
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": "agent-", "namespace": "agents"},
               "spec": {"containers": [{"name": "agent", "image": "python:3.12"}]}})
    }

    fn answer(a: &Answer) -> Value {
        serde_json::from_slice(&a.body).unwrap()
    }

    #[test]
    fn create_gets_a_base64_patch_that_applies() {
        let a = review(&review_body("CREATE", pod(), false), &Settings::default());
        assert_eq!((a.http_status, a.result), (200, "injected"));
        let v = answer(&a);
        assert_eq!(v["apiVersion"], API_VERSION);
        assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["response"]["patch"].as_str().unwrap())
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&raw).unwrap();
        let mut pod = pod();
        json_patch::patch(&mut pod, &patch.0).unwrap();
        assert_eq!(pod["spec"]["initContainers"][1]["name"], "asg");
        assert!(pod["metadata"]["annotations"]["asg.dev/status"].is_string());
    }

    #[test]
    fn dry_run_gets_the_same_patch() {
        let s = Settings::default();
        let real = answer(&review(&review_body("CREATE", pod(), false), &s));
        let dry = review(&review_body("CREATE", pod(), true), &s);
        assert!(dry.dry_run);
        assert_eq!(answer(&dry)["response"]["patch"], real["response"]["patch"]);
    }

    #[test]
    fn other_operations_and_opt_outs_carry_no_patch_type() {
        let s = Settings::default();
        for op in ["UPDATE", "DELETE", "CONNECT"] {
            let a = review(&review_body(op, pod(), false), &s);
            assert_eq!(a.result, "ignored");
            let v = answer(&a);
            assert_eq!(v["response"]["allowed"], true);
            assert!(
                v["response"].get("patchType").is_none() && v["response"].get("patch").is_none()
            );
        }
        let mut p = pod();
        p["metadata"]["labels"] = json!({"asg.dev/inject": "false"});
        let a = review(&review_body("CREATE", p, false), &s);
        assert_eq!(a.result, "opted_out");
        assert!(answer(&a)["response"].get("patchType").is_none());
    }

    #[test]
    fn malformed_reviews_are_clear_400s() {
        let s = Settings::default();
        for (body, needle) in [
            (b"not json".to_vec(), "not an AdmissionReview"),
            (json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}).to_string().into_bytes(), "admissionReviewVersions"),
            (json!({"apiVersion": API_VERSION, "kind": "AdmissionReview"}).to_string().into_bytes(), "no request"),
            (json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "request": {}}).to_string().into_bytes(), "uid"),
        ] {
            let a = review(&body, &s);
            assert_eq!((a.http_status, a.result), (400, "invalid"));
            let v = answer(&a);
            assert_eq!(v["kind"], "Status");
            assert!(v["message"].as_str().unwrap().contains(needle), "{v}");
        }
    }

    #[test]
    fn bad_pods_are_denied_with_the_reason() {
        let mut p = pod();
        p["metadata"]["annotations"] = json!({"asg.dev/mode": "sideways"});
        let a = review(&review_body("CREATE", p, false), &Settings::default());
        assert_eq!((a.http_status, a.result), (200, "denied"));
        let v = answer(&a);
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 400);
        assert!(v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("asg.dev/mode"));
        assert!(v["response"].get("patchType").is_none());
    }
}
