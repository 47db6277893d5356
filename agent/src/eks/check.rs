//! What `ferry status --target eks` shows and `ferry verify --target eks` checks of a model's Deployment, read
//! against the audit records: pure, from the Deployment as the API server answered it.
use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

use super::rollout::{self, Rollout};
use super::served::{Recorded, SERVED_ANNOTATION, parse_annotation};

/// One model's Deployment as observed.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub model: String,
    pub deployment: String,
    pub namespace: String,
    /// Whether the Deployment exists.
    pub exists: bool,
    pub managed_by_ferry: bool,
    /// The versions its annotation lists.
    pub served: Vec<String>,
    /// The served set its pods are given (`FERRY_SERVED_SET`): (version, path, artifact digest).
    pub pod_served_set: Vec<(String, String, Option<String>)>,
    pub image: Option<String>,
    /// `done`, or what the rollout waits for or why it failed.
    pub rollout: String,
    pub rollout_done: bool,
    /// The versions the audit records say are served.
    pub recorded: Vec<String>,
}

pub fn observed(
    model: &str,
    name: &str,
    namespace: &str,
    deployment: Option<&Deployment>,
    recorded: &Recorded,
) -> Observed {
    let mut o = Observed {
        model: model.into(),
        deployment: name.into(),
        namespace: namespace.into(),
        exists: deployment.is_some(),
        managed_by_ferry: false,
        served: Vec::new(),
        pod_served_set: Vec::new(),
        image: None,
        rollout: "no Deployment".into(),
        rollout_done: false,
        recorded: recorded.served.keys().cloned().collect(),
    };
    o.recorded
        .sort_by(|a, b| crate::approval::version_order(a, b));
    let Some(d) = deployment else {
        return o;
    };
    let labels = d.metadata.labels.clone().unwrap_or_default();
    o.managed_by_ferry = labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some("ferry");
    let annotations = d.metadata.annotations.clone().unwrap_or_default();
    o.served = parse_annotation(annotations.get(SERVED_ANNOTATION).map(String::as_str));
    let container = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first());
    o.image = container.and_then(|c| c.image.clone());
    let served_set = container
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "FERRY_SERVED_SET"))
        .and_then(|e| e.value.as_deref())
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok());
    o.pod_served_set = served_set
        .iter()
        .flat_map(|doc| doc["versions"].as_array().cloned().unwrap_or_default())
        .map(|v| {
            (
                v["version"].as_str().unwrap_or_default().to_string(),
                v["path"].as_str().unwrap_or_default().to_string(),
                v["artifact_digest"].as_str().map(str::to_string),
            )
        })
        .collect();
    (o.rollout, o.rollout_done) = match rollout::state(d) {
        Rollout::Done => ("done".into(), true),
        Rollout::Waiting(why) => (format!("in progress: {why}"), false),
        Rollout::Failed(why) => (format!("failed: {why}"), false),
    };
    o
}

/// One check of `verify --target eks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub model: String,
    /// `v3`, or `-` for the Deployment as a whole.
    pub alias: String,
    pub ok: bool,
    pub detail: String,
}

/// Every check of one model: each version served is recorded and each recorded one served, the pods are given
/// exactly the annotated set at the platform's mount path with the recorded digests, the image is the platform's,
/// the rollout is done.
pub fn findings(o: &Observed, recorded: &Recorded, image: &str, mount_path: &str) -> Vec<Finding> {
    let finding = |alias: &str, ok: bool, detail: String| Finding {
        model: o.model.clone(),
        alias: alias.into(),
        ok,
        detail,
    };
    let mut out = Vec::new();
    if !o.exists {
        out.push(finding(
            "-",
            o.recorded.is_empty(),
            if o.recorded.is_empty() {
                "nothing served on EKS, and nothing recorded as served".into()
            } else {
                format!(
                    "deployment {}/{} is missing; the records say it serves v{}",
                    o.namespace,
                    o.deployment,
                    o.recorded.join(", v")
                )
            },
        ));
        return out;
    }
    out.push(finding(
        "-",
        o.managed_by_ferry,
        if o.managed_by_ferry {
            "managed by Ferry".into()
        } else {
            "not labelled app.kubernetes.io/managed-by=ferry".into()
        },
    ));
    let pod_versions: Vec<&str> = o
        .pod_served_set
        .iter()
        .map(|(v, _, _)| v.as_str())
        .collect();
    let same = pod_versions == o.served.iter().map(String::as_str).collect::<Vec<_>>();
    out.push(finding(
        "-",
        same,
        if same {
            "the pods are given exactly the annotated served set".into()
        } else {
            format!(
                "the pods are given v{} (FERRY_SERVED_SET) but the Deployment says it serves v{}",
                pod_versions.join(", v"),
                o.served.join(", v")
            )
        },
    ));
    let image_ok = o.image.as_deref() == Some(image);
    out.push(finding(
        "-",
        image_ok,
        if image_ok {
            format!("image {image}")
        } else {
            format!(
                "image {} is not the platform's {image}",
                o.image.as_deref().unwrap_or("(none)")
            )
        },
    ));
    out.push(finding(
        "-",
        o.rollout_done,
        format!("rollout {}", o.rollout),
    ));
    let mut versions: Vec<&String> = o.served.iter().chain(&o.recorded).collect();
    versions.sort_by(|a, b| crate::approval::version_order(a, b));
    versions.dedup();
    for v in versions {
        let alias = crate::plan::version_alias(v);
        let live = o.served.contains(v);
        let Some(approved) = recorded.served.get(v.as_str()) else {
            out.push(finding(
                &alias,
                false,
                if recorded.retired.contains(v.as_str()) {
                    "served although its last record is a retire (its rollout did not happen; `ferry deploy --target eks` finishes it)".into()
                } else {
                    "served without an eks-serve record".into()
                },
            ));
            continue;
        };
        if !live {
            out.push(finding(
                &alias,
                false,
                "recorded as served, but the Deployment does not serve it".into(),
            ));
            continue;
        }
        let entry = o.pod_served_set.iter().find(|(ver, _, _)| ver == v);
        let path = format!("{mount_path}/{}/{v}", o.model);
        let approved_digest = approved
            .approval
            .artifact_sha256
            .as_ref()
            .map(|d| d.as_str());
        let problem = match entry {
            None => Some("not in the pods' served set".to_string()),
            Some((_, p, _)) if *p != path => Some(format!("served from {p}, not {path}")),
            Some((_, _, digest)) if digest.as_deref() != approved_digest => Some(format!(
                "served with artifact digest {} but approved with {}",
                digest.as_deref().unwrap_or("none"),
                approved_digest.unwrap_or("none")
            )),
            Some(_) => None,
        };
        out.push(match problem {
            Some(p) => finding(&alias, false, p),
            None => finding(
                &alias,
                true,
                format!(
                    "served and recorded, approved by {} ({})",
                    approved.approval.approved_by, approved.approval.ticket
                ),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{Approval, ApprovedVersion};

    fn deployment(served: &str, pod_versions: &[&str], image: &str) -> Deployment {
        let entries: Vec<serde_json::Value> = pod_versions
            .iter()
            .map(|v| {
                serde_json::json!({"model": "m", "version": v, "path": format!("/mnt/models/m/{v}"),
                                        "artifact_digest": null})
            })
            .collect();
        let set = serde_json::json!({"schema_version": 1, "versions": entries}).to_string();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ferry-m", "generation": 2,
                         "labels": {"app.kubernetes.io/managed-by": "ferry"},
                         "annotations": {SERVED_ANNOTATION: served}},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {"containers": [
                {"name": "server", "image": image, "env": [{"name": "FERRY_SERVED_SET", "value": set}]}]}}},
            "status": {"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}
        }))
        .unwrap()
    }

    fn recorded(versions: &[&str], retired: &[&str]) -> Recorded {
        Recorded {
            served: versions
                .iter()
                .map(|v| {
                    let a = ApprovedVersion {
                        version: v.to_string(),
                        approval: Approval {
                            approved_by: "ana@example.org".into(),
                            approved_at: "2026-11-26T08:15:00Z".into(),
                            ticket: "CHG-1".into(),
                            artifact_sha256: None,
                            meaning: None,
                        },
                        artifact_uri: "s3://a/m".into(),
                    };
                    (v.to_string(), a)
                })
                .collect(),
            retired: retired.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn failed(d: &Deployment, rec: &Recorded, image: &str) -> Vec<String> {
        let o = observed("m", "ferry-m", "ferry", Some(d), rec);
        findings(&o, rec, image, "/mnt/models")
            .into_iter()
            .filter(|f| !f.ok)
            .map(|f| format!("{} {}", f.alias, f.detail))
            .collect()
    }

    #[test]
    fn a_deployment_as_deployed_passes_every_check() {
        let d = deployment("1,2", &["1", "2"], "img@sha256:aa");
        assert!(failed(&d, &recorded(&["1", "2"], &[]), "img@sha256:aa").is_empty());
    }

    #[test]
    fn every_difference_from_the_records_and_the_platform_is_a_finding() {
        let d = deployment("1,2", &["1"], "img@sha256:bb");
        let rec = recorded(&["1", "3"], &["2"]);
        let f = failed(&d, &rec, "img@sha256:aa");
        assert_eq!(
            f,
            [
                "- the pods are given v1 (FERRY_SERVED_SET) but the Deployment says it serves v1, v2",
                "- image img@sha256:bb is not the platform's img@sha256:aa",
                "v2 served although its last record is a retire (its rollout did not happen; `ferry deploy --target eks` finishes it)",
                "v3 recorded as served, but the Deployment does not serve it",
            ]
        );
    }

    #[test]
    fn a_missing_deployment_fails_only_when_something_is_recorded_as_served() {
        let none = Recorded::default();
        let o = observed("m", "ferry-m", "ferry", None, &none);
        assert!(findings(&o, &none, "i", "/mnt/models").iter().all(|f| f.ok));
        let rec = recorded(&["4"], &[]);
        let o = observed("m", "ferry-m", "ferry", None, &rec);
        let f = findings(&o, &rec, "i", "/mnt/models");
        assert!(
            !f[0].ok
                && f[0]
                    .detail
                    .contains("is missing; the records say it serves v4"),
            "{f:?}"
        );
    }
}
