//! The Kubernetes API calls Ferry makes for the EKS service, and only those: server-side apply of a rendered
//! manifest (field manager `ferry`), GET of a Deployment, a watch of its rollout, the deletion of an optional
//! object no longer rendered, and the list of its pods when a rollout fails. Credentials come from kubeconfig
//! (`KUBECONFIG`, `~/.kube/config`; `aws eks update-kubeconfig` writes one) or from the pod's service account.
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, WatchEvent, WatchParams,
};

use super::rollout::{self, Rollout};

/// The field manager of Ferry's server-side applies: the owner of every field it renders.
pub const FIELD_MANAGER: &str = "ferry";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "Kubernetes: no cluster configuration (KUBECONFIG, ~/.kube/config, or a pod's service account; `aws eks update-kubeconfig --name <cluster>` writes one)"
    )]
    Config(#[source] kube::config::InferConfigError),
    #[error("Kubernetes: cannot make a client for {server}")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("Kubernetes {server}: {what}")]
    Api {
        server: String,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{file}: not a manifest Ferry applies: {reason}")]
    Manifest { file: String, reason: String },
    #[error("Kubernetes {server}: rollout of deployment {namespace}/{name} failed: {reason}{pods}")]
    Rollout {
        server: String,
        namespace: String,
        name: String,
        reason: String,
        /// The pods' own reasons, one line each (empty when none could be had).
        pods: String,
    },
}

/// A rendered manifest, read: what it is and where it goes.
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub body: serde_json::Value,
}

impl Object {
    /// Reads one rendered manifest (YAML), named `file` in errors.
    pub fn parse(file: &str, text: &str) -> Result<Object, ClusterError> {
        let invalid = |reason: String| ClusterError::Manifest {
            file: file.to_string(),
            reason,
        };
        let body: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| invalid(format!("not YAML: {e}")))?;
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(&body, |v, k| v.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| invalid(format!("{} is missing or not a string", path.join("."))))
        };
        let object = Object {
            api_version: field(&["apiVersion"])?,
            kind: field(&["kind"])?,
            name: field(&["metadata", "name"])?,
            body: body.clone(),
        };
        object.resource().map_err(invalid)?;
        Ok(object)
    }

    /// The API resource of the kinds Ferry renders (so no discovery call is needed).
    fn resource(&self) -> Result<ApiResource, String> {
        let plural = match (self.api_version.as_str(), self.kind.as_str()) {
            ("v1", "Service") => "services",
            ("apps/v1", "Deployment") => "deployments",
            ("autoscaling/v2", "HorizontalPodAutoscaler") => "horizontalpodautoscalers",
            ("policy/v1", "PodDisruptionBudget") => "poddisruptionbudgets",
            (api_version, kind) => {
                return Err(format!(
                    "{api_version} {kind} is none of the kinds Ferry applies (v1 Service, apps/v1 Deployment, autoscaling/v2 HorizontalPodAutoscaler, policy/v1 PodDisruptionBudget)"
                ));
            }
        };
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", &self.api_version));
        Ok(ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, &self.kind),
            plural,
        ))
    }

    /// Sets an annotation on the object (kept by server-side apply like every field Ferry renders).
    pub fn annotate(&mut self, key: &str, value: &str) {
        let metadata = &mut self.body["metadata"];
        if !metadata["annotations"].is_object() {
            metadata["annotations"] = serde_json::json!({});
        }
        metadata["annotations"][key] = serde_json::Value::String(value.to_string());
    }
}

/// A namespace of one cluster, as the credentials at hand reach it.
pub struct Cluster {
    client: kube::Client,
    namespace: String,
    /// The API server's URL, named in every error.
    pub server: String,
}

/// How long one call other than a watch may take: a stalled API server must not hold the deploy lock for ever.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The field manager that keeps a Deployment's replica count when Ferry stops rendering it (an autoscaler takes
/// over): server-side apply would otherwise reset a field its only manager dropped to its default, one replica.
const REPLICAS_MANAGER: &str = "ferry-replicas-handoff";

impl Cluster {
    pub async fn connect(namespace: &str) -> Result<Cluster, ClusterError> {
        let config = kube::Config::infer().await.map_err(ClusterError::Config)?;
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|source| ClusterError::Client {
            server: server.clone(),
            source,
        })?;
        Ok(Cluster {
            client,
            namespace: namespace.to_string(),
            server,
        })
    }

    /// One call, bounded by CALL_TIMEOUT, its error naming what was asked.
    async fn call<T>(
        &self,
        what: String,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(|source| ClusterError::Api {
                server: self.server.clone(),
                what,
                source,
            }),
            Err(_) => Err(ClusterError::Api {
                server: self.server.clone(),
                what: format!("{what}: no answer in {} s", CALL_TIMEOUT.as_secs()),
                source: kube::Error::Service("timed out".into()),
            }),
        }
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn dynamic(&self, object: &Object) -> Api<DynamicObject> {
        let resource = object.resource().expect("checked when parsed");
        Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
    }

    fn describe(&self, verb: &str, object: &Object) -> String {
        format!("{verb} {} {}/{}", object.kind, self.namespace, object.name)
    }

    /// The Deployment `name`, if there is one.
    pub async fn deployment(&self, name: &str) -> Result<Option<Deployment>, ClusterError> {
        let what = format!("get deployment {}/{name}", self.namespace);
        self.call(what, self.deployments().get_opt(name)).await
    }

    /// Whether applying `object` would change anything: a server-side dry run (`dryRun=All`: validated and
    /// admitted as a real apply, nothing stored), its answer compared with the live object but for what the server
    /// keeps for itself (resourceVersion, generation, managedFields, status). A dry run answers with the live
    /// resourceVersion whether or not something would change, so the objects themselves are compared. Any field
    /// Ferry renders that differs counts, a change by hand included; an absent object is validated the same way.
    pub async fn differs(&self, object: &Object) -> Result<bool, ClusterError> {
        let api = self.dynamic(object);
        let live = self
            .call(self.describe("get", object), api.get_opt(&object.name))
            .await?;
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let dry = self
            .call(
                self.describe("dry-run apply", object),
                api.patch(&object.name, &params, &Patch::Apply(&object.body)),
            )
            .await?;
        Ok(match live {
            None => true,
            Some(live) => comparable(&live) != comparable(&dry),
        })
    }

    /// Whether an object of a kind Ferry renders exists.
    pub async fn present(&self, object: &Object) -> Result<bool, ClusterError> {
        let api = self.dynamic(object);
        Ok(self
            .call(self.describe("get", object), api.get_opt(&object.name))
            .await?
            .is_some())
    }

    /// Server-side apply, forcing Ferry's ownership of every field it renders: a field someone changed by hand
    /// (`kubectl edit`) is set back to what was rendered.
    pub async fn apply(&self, object: &Object) -> Result<(), ClusterError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.call(
            self.describe("apply", object),
            self.dynamic(object)
                .patch(&object.name, &params, &Patch::Apply(&object.body)),
        )
        .await
        .map(drop)
    }

    /// Before Ferry applies a Deployment without `spec.replicas` (an autoscaler now decides), another field manager
    /// takes the live count (Kubernetes' documented transfer of ownership), so that the Deployment keeps its pods
    /// until the autoscaler scales it.
    pub async fn hand_off_replicas(&self, deployment: &Object) -> Result<(), ClusterError> {
        let Some(live) = self.deployment(&deployment.name).await? else {
            return Ok(());
        };
        let Some(replicas) = live.spec.and_then(|s| s.replicas) else {
            return Ok(());
        };
        let keep = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": deployment.name, "namespace": self.namespace},
            "spec": {"replicas": replicas},
        });
        let params = PatchParams::apply(REPLICAS_MANAGER).force();
        self.call(
            self.describe("hand off replicas of", deployment),
            self.dynamic(deployment)
                .patch(&deployment.name, &params, &Patch::Apply(&keep)),
        )
        .await
        .map(drop)
    }

    /// Deletes an object of a kind Ferry renders.
    pub async fn delete(&self, object: &Object) -> Result<(), ClusterError> {
        self.call(
            self.describe("delete", object),
            self.dynamic(object)
                .delete(&object.name, &DeleteParams::default()),
        )
        .await
        .map(drop)
    }

    /// Waits until deployment `name`'s rollout is done, watching it; `progress` gets each new waiting reason. Fails
    /// when the controller reports its progress deadline exceeded, or when nothing changes for `idle` (the
    /// progress deadline is a window without progress too, not a bound on the whole rollout), with its pods'
    /// reasons. A watch the server ends is resumed after a pause that doubles while watches keep ending early.
    pub async fn wait_for_rollout(
        &self,
        name: &str,
        idle: Duration,
        progress: impl Fn(&str),
    ) -> Result<(), ClusterError> {
        let mut last = String::new();
        let started = tokio::time::Instant::now();
        let mut last_change = started;
        let mut pause = Duration::from_millis(500);
        // Progress that never ends (pods flapping between ready and not) must not hold the lock for ever either.
        let cap = idle * 4;
        let reason = 'watch: loop {
            if started.elapsed() > cap {
                break format!(
                    "not done after {} s, though it kept changing ({last})",
                    cap.as_secs()
                );
            }
            // A failed call within the idle window is tried again (after the same pause as a watch that ended).
            let current = match self.deployment(name).await {
                Ok(current) => current,
                Err(e) if last_change.elapsed() + pause < idle => {
                    tracing::warn!("{e}; looking again in {} ms", pause.as_millis());
                    back_off(&mut pause).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(current) = current else {
                break format!("deployment {}/{name} is gone", self.namespace);
            };
            let version = current
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default();
            let mut seen = Some(current);
            let params = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(290);
            let what = format!("watch deployment {}/{name}", self.namespace);
            let mut events = match self
                .call(what, self.deployments().watch(&params, &version))
                .await
            {
                Ok(events) => events.boxed(),
                Err(e) if last_change.elapsed() + pause < idle => {
                    tracing::warn!("{e}; watching again in {} ms", pause.as_millis());
                    back_off(&mut pause).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let watched_at = tokio::time::Instant::now();
            loop {
                if let Some(d) = seen.take() {
                    match rollout::state(&d) {
                        Rollout::Done => return Ok(()),
                        Rollout::Failed(reason) => break 'watch reason,
                        Rollout::Waiting(why) if why != last => {
                            progress(&why);
                            last = why;
                            last_change = tokio::time::Instant::now();
                        }
                        Rollout::Waiting(_) => {}
                    }
                }
                let left = idle
                    .saturating_sub(last_change.elapsed())
                    .min(cap.saturating_sub(started.elapsed()));
                match tokio::time::timeout(left, events.next()).await {
                    Err(_) if started.elapsed() >= cap => {
                        break 'watch format!("not done after {} s ({last})", cap.as_secs());
                    }
                    Err(_) => {
                        break 'watch format!(
                            "no progress for {} s{}",
                            idle.as_secs(),
                            if last.is_empty() {
                                String::new()
                            } else {
                                format!(" ({last})")
                            }
                        );
                    }
                    Ok(Some(Ok(WatchEvent::Added(d) | WatchEvent::Modified(d)))) => seen = Some(d),
                    Ok(Some(Ok(WatchEvent::Deleted(_)))) => {
                        break 'watch format!(
                            "deployment {}/{name} was deleted during its rollout",
                            self.namespace
                        );
                    }
                    Ok(Some(Ok(WatchEvent::Bookmark(_)))) => {}
                    // An expired resource version (410 Gone), a dropped stream, or the server's own timeout: look
                    // again (a GET, then a watch from its resourceVersion), after a pause when the watch did not last.
                    Ok(Some(Ok(WatchEvent::Error(_)) | Err(_)) | None) => {
                        if watched_at.elapsed() < Duration::from_secs(5) {
                            back_off(&mut pause).await;
                        } else {
                            pause = Duration::from_millis(500);
                        }
                        break;
                    }
                }
            }
        };
        Err(ClusterError::Rollout {
            server: self.server.clone(),
            namespace: self.namespace.clone(),
            name: name.to_string(),
            reason,
            pods: self.pod_problems(name).await,
        })
    }

    /// What the Deployment's pods say is wrong, a line each (`\n  pod …`), for a failed rollout's error.
    async fn pod_problems(&self, name: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let selector = format!("app.kubernetes.io/instance={name}");
        let what = format!("list pods {}/{selector}", self.namespace);
        match self
            .call(what, pods.list(&ListParams::default().labels(&selector)))
            .await
        {
            Ok(list) => list
                .items
                .iter()
                .flat_map(pod_lines)
                .map(|l| format!("\n  {l}"))
                .collect(),
            Err(e) => format!("\n  (its pods could not be listed: {e})"),
        }
    }
}

/// Sleeps `pause`, and doubles it up to 8 s for the next time.
async fn back_off(pause: &mut Duration) {
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(Duration::from_secs(8));
}

/// An object as far as its owner decides it: without what the server sets and keeps for itself.
fn comparable(object: &DynamicObject) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for key in ["resourceVersion", "generation", "managedFields"] {
            meta.remove(key);
        }
    }
    value
}

/// The reasons one pod gives for not being ready: unschedulable, containers waiting or terminated.
fn pod_lines(pod: &Pod) -> Vec<String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let Some(status) = &pod.status else {
        return vec![format!("pod {name}: no status yet")];
    };
    let mut lines = Vec::new();
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.status == "False" {
            lines.push(format!(
                "pod {name}: not scheduled: {}: {}",
                c.reason.as_deref().unwrap_or("-"),
                c.message.as_deref().unwrap_or("-")
            ));
        }
    }
    for c in status.container_statuses.iter().flatten() {
        let state = c.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            lines.push(format!(
                "pod {name}: container {}: {}: {} (restarts: {})",
                c.name,
                w.reason.as_deref().unwrap_or("waiting"),
                w.message.as_deref().unwrap_or("-"),
                c.restart_count
            ));
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            lines.push(format!(
                "pod {name}: container {}: terminated: {} (exit {})",
                c.name,
                t.reason.as_deref().unwrap_or("-"),
                t.exit_code
            ));
        } else if !c.ready {
            lines.push(format!(
                "pod {name}: container {}: running, not ready",
                c.name
            ));
        }
    }
    lines
}
