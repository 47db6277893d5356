//! The platform: what `terraform apply` built, as the `ferry_platform` output of a Ferry stack
//! (docs/contracts.md, section 1). Accepts the whole `terraform output -json` document or the bare object.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{path}: cannot read the platform file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "no platform file: pass --platform FILE (the `terraform output -json` of a Ferry stack) or set FERRY_PLATFORM"
    )]
    Missing,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub schema_version: u32,
    pub environment: String,
    pub region: String,
    pub artifact_bucket: String,
    pub audit_prefix: String,
    pub lock_prefix: String,
    pub efs: Efs,
    pub network: Network,
    pub functions: BTreeMap<String, String>,
    pub sync_function: Option<String>,
    pub http_api_id: Option<String>,
    /// How the routes Ferry adds to the HTTP API are authorized (the http-api module's `route_authorization`);
    /// optional: absent or null means `AWS_IAM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_api_authorization: Option<crate::routes::RouteAuthorization>,
    /// The function runtime and the runtime layer's packages the stack deploys; optional (absent or null: no
    /// comparison of a version's pinned packages with the layer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// The EKS service (modules/eks-service's `ferry_platform` output); optional: absent or null means the stack
    /// has none, and `ferry render --target eks` refuses to render.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks: Option<Eks>,
}

/// The EKS service the Kubernetes manifests are rendered for: names Terraform created in an existing cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Eks {
    /// The EKS cluster's name.
    pub cluster: String,
    /// The namespace of every object Ferry renders.
    pub namespace: String,
    /// The pods' service account.
    pub service_account: String,
    /// The PersistentVolumeClaim on the read-only inference access point.
    pub volume_claim: String,
    /// Where the pods mount it; the served set's paths are `<mount_path>/<model>/<version>`.
    pub mount_path: String,
    /// The runtime image, pinned by digest: `<repository>@sha256:<64 hex>`.
    pub image: String,
}

/// The namespaces Kubernetes owns: Ferry's objects never go there (modules/eks-service refuses them too).
const KUBERNETES_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// What the model functions run: the Lambda runtime, the architecture, and the versions of the packages in the
/// runtime layer that a model version's `requirements.txt` is compared with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// A Lambda Python runtime, `python3.13`.
    pub python: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// Package name (as on PyPI) → version, e.g. `numpy` → `2.4.6`.
    pub layer_packages: BTreeMap<String, String>,
}

/// Lambda's names for the two architectures.
pub const ARCHITECTURES: [&str; 2] = ["x86_64", "arm64"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Efs {
    pub file_system_id: String,
    pub inference_access_point_arn: String,
    pub sync_access_point_arn: String,
    pub mount_path: String,
    /// Local runs only: a folder standing in for the file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

impl Platform {
    pub fn load(path: Option<&Path>) -> Result<Platform, PlatformError> {
        let path = path.ok_or(PlatformError::Missing)?;
        let text = std::fs::read_to_string(path).map_err(|source| PlatformError::Read {
            path: path.to_owned(),
            source,
        })?;
        Platform::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Platform, PlatformError> {
        let invalid = |reason: String| PlatformError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("is not JSON: {e}")))?;
        // `terraform output -json` wraps every output as {"sensitive": .., "type": .., "value": ..}.
        let (value, where_) = match doc.get("ferry_platform") {
            Some(output) => match output.get("value") {
                Some(v) => (v.clone(), "ferry_platform.value"),
                None => (output.clone(), "ferry_platform"),
            },
            None => (doc, "the document"),
        };
        if !value.is_object() {
            return Err(invalid(format!("{where_} is not an object")));
        }
        // The path of a field of the wrong type or shape is named (`functions`, `efs.mount_path`).
        let platform: Platform = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            invalid(format!(
                "{where_}: {at}{} (see docs/contracts.md, section 1)",
                e.into_inner()
            ))
        })?;
        platform.validate().map_err(invalid)?;
        Ok(platform)
    }

    fn validate(&self) -> Result<(), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schema_version = {} is not supported by this ferry (it reads version {SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        for (field, prefix) in [
            ("audit_prefix", &self.audit_prefix),
            ("lock_prefix", &self.lock_prefix),
        ] {
            if prefix.is_empty() || !prefix.ends_with('/') || prefix.starts_with('/') {
                return Err(format!(
                    "{field} = {prefix:?} must be a key prefix ending in '/', without a leading '/'"
                ));
            }
        }
        if self.artifact_bucket.is_empty() {
            return Err("artifact_bucket is empty".into());
        }
        // It names the lock and the audit prefix: an S3 key segment, never a path.
        if !is_name(&self.environment, 64) {
            return Err(format!(
                "environment = {:?} must be 1-64 of A-Z, a-z, 0-9, '-' and '_', starting with a letter or digit (it is part of S3 keys)",
                self.environment
            ));
        }
        let mut by_function: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, function) in &self.functions {
            let name = function.rsplit(':').next().unwrap_or_default();
            let arn = function.starts_with("arn:") && function.contains(":function:");
            if !(is_name(function, 64) || (arn && is_name(name, 64))) {
                return Err(format!(
                    "functions.{key} = {function:?} is not a Lambda function name (1-64 of A-Z, a-z, 0-9, '-' and '_') or ARN"
                ));
            }
            if let Some(other) = by_function.insert(name, key) {
                return Err(format!(
                    "functions.{other} and functions.{key} both name function {name:?}: each model needs a function of its own (their updates of $LATEST would interleave)"
                ));
            }
        }
        crate::spec::limits::check_mount_path(&self.efs.mount_path)
            .map_err(|r| format!("efs.mount_path {r}"))?;
        if let Some(runtime) = &self.runtime {
            runtime.validate()?;
        }
        if let Some(eks) = &self.eks {
            eks.validate().map_err(|r| format!("eks.{r}"))?;
        }
        match (&self.http_api_id, &self.http_api_authorization) {
            (Some(id), _) if !is_name(id, 64) => {
                return Err(format!("http_api_id = {id:?} is not an API Gateway API id"));
            }
            (None, Some(_)) => {
                return Err(
                    "http_api_authorization is set, but http_api_id is null: it authorizes the routes of an HTTP API"
                        .into(),
                );
            }
            (_, Some(auth)) => auth
                .validate()
                .map_err(|r| format!("http_api_authorization.{r}"))?,
            _ => {}
        }
        Ok(())
    }

    /// How the routes Ferry adds are authorized: as the platform says, `AWS_IAM` when it says nothing.
    pub fn route_authorization(&self) -> crate::routes::RouteAuthorization {
        self.http_api_authorization.clone().unwrap_or_default()
    }

    /// The function of a catalog model, or an error naming the missing key.
    pub fn function_name(&self, function_key: &str) -> Result<&str, String> {
        self.functions.get(function_key).map(String::as_str).ok_or_else(|| {
            format!(
                "functions has no {function_key:?} (it has: {}); add the model to the stack's `models` and apply",
                self.functions.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// 1 to `max` of A-Z, a-z, 0-9, '-' and '_', not starting with '-' or '_'.
fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

impl Eks {
    /// The same rules as modules/eks-service's variable validations; `Err` starts with the field's name.
    fn validate(&self) -> Result<(), String> {
        let cluster = &self.cluster;
        if !is_name(cluster, 100) {
            return Err(format!(
                "cluster = {cluster:?} is not an EKS cluster name (1-100 of A-Z, a-z, 0-9, '-' and '_', starting with a letter or digit)"
            ));
        }
        let namespace = &self.namespace;
        if !is_dns_label(namespace) {
            return Err(format!(
                "namespace = {namespace:?} is not a Kubernetes namespace name (an RFC 1123 label: 1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit)"
            ));
        }
        if KUBERNETES_NAMESPACES.contains(&namespace.as_str()) {
            return Err(format!(
                "namespace = {namespace:?} is a namespace Kubernetes owns: use the eks-service module's own"
            ));
        }
        for (field, value) in [
            ("service_account", &self.service_account),
            ("volume_claim", &self.volume_claim),
        ] {
            if !is_dns_subdomain(value) {
                return Err(format!(
                    "{field} = {value:?} is not a Kubernetes object name (an RFC 1123 subdomain: 1-253 of a-z, 0-9, '-' and '.', starting and ending with a letter or digit)"
                ));
            }
        }
        crate::spec::limits::check_mount_path(&self.mount_path)
            .map_err(|r| format!("mount_path {r}"))?;
        if !is_pinned_image(&self.image) {
            return Err(format!(
                "image = {:?} is not pinned by digest: <registry>/<repository>@sha256:<64 lowercase hex> (a tag can be moved, a digest cannot)",
                self.image
            ));
        }
        Ok(())
    }
}

/// An RFC 1123 label, as Kubernetes names namespaces, Services and Deployments: 1-63 of a-z, 0-9 and '-', starting
/// and ending with a letter or digit.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// An RFC 1123 subdomain (most Kubernetes object names): dot-separated labels, at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// `<registry>/<repository>@sha256:<64 lowercase hex>`, as modules/eks-service's `image` validation has it.
fn is_pinned_image(image: &str) -> bool {
    let Some((repository, digest)) = image.split_once("@sha256:") else {
        return false;
    };
    let r = repository.as_bytes();
    r.len() >= 2
        && r.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._:/-".contains(c))
        && r[0].is_ascii_alphanumeric()
        && r[r.len() - 1].is_ascii_alphanumeric()
        && ferry_sync::Sha256Hex::parse(digest).is_ok()
}

impl Runtime {
    fn validate(&self) -> Result<(), String> {
        if crate::python_env::runtime_minor(&self.python).is_none() {
            return Err(format!(
                "runtime.python = {:?} is not a Lambda Python runtime (like \"python3.13\")",
                self.python
            ));
        }
        if !ARCHITECTURES.contains(&self.architecture.as_str()) {
            return Err(format!(
                "runtime.architecture = {:?} is not one of Lambda's architectures ({})",
                self.architecture,
                ARCHITECTURES.join(", ")
            ));
        }
        if let Some((name, _)) = self
            .layer_packages
            .iter()
            .find(|(name, version)| name.trim().is_empty() || version.trim().is_empty())
        {
            return Err(format!(
                "runtime.layer_packages: {name:?} needs a package name and a version"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const OBJECT: &str = r#"{
        "schema_version": 1, "environment": "prod", "region": "eu-west-1", "artifact_bucket": "b",
        "audit_prefix": "ferry/audit/", "lock_prefix": "ferry/locks/",
        "efs": {"file_system_id": "fs-1", "inference_access_point_arn": "arn:ro", "sync_access_point_arn": "arn:rw",
                "mount_path": "/mnt/models"},
        "network": {"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]},
        "functions": {"risk-score": "ferry-prod-risk-score"}, "sync_function": null, "http_api_id": null }"#;

    #[test]
    fn reads_the_bare_object_and_the_terraform_output_document() {
        let bare = Platform::parse(Path::new("p.json"), OBJECT).unwrap();
        let wrapped = format!(
            r#"{{"ferry_platform": {{"sensitive": false, "type": [], "value": {OBJECT}}}}}"#
        );
        assert_eq!(
            Platform::parse(Path::new("p.json"), &wrapped).unwrap(),
            bare
        );
        assert_eq!(
            bare.function_name("risk-score"),
            Ok("ferry-prod-risk-score")
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let text = OBJECT.replace(r#""region": "eu-west-1","#, "");
        let err = Platform::parse(Path::new("p.json"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.json: the document: missing field `region`"),
            "{err}"
        );
    }

    #[test]
    fn hostile_environments_and_function_names_are_refused_naming_the_field() {
        for (from, to, expected) in [
            (
                r#""environment": "prod""#,
                r#""environment": "../../x/..""#,
                "environment = \"../../x/..\"",
            ),
            (
                r#""environment": "prod""#,
                r#""environment": """#,
                "environment = \"\"",
            ),
            (
                r#""environment": "prod""#,
                r#""environment": "prod/eu""#,
                "environment = \"prod/eu\"",
            ),
            (
                r#""environment": "prod""#,
                r#""environment": "prød""#,
                "environment = \"prød\"",
            ),
            (
                r#""ferry-prod-risk-score""#,
                r#""""#,
                "functions.risk-score = \"\" is not a Lambda function name",
            ),
            (
                r#""ferry-prod-risk-score""#,
                r#""f x""#,
                "functions.risk-score = \"f x\"",
            ),
            (
                r#""ferry-prod-risk-score""#,
                &format!("\"{}\"", "f".repeat(65)),
                "is not a Lambda function name",
            ),
            (
                r#""risk-score": "ferry-prod-risk-score""#,
                r#""risk-score": "ferry-prod-risk-score", "alpha": "arn:aws:lambda:eu-west-1:1:function:ferry-prod-risk-score""#,
                "functions.alpha and functions.risk-score both name function \"ferry-prod-risk-score\"",
            ),
        ] {
            let text = OBJECT.replace(from, to);
            assert_ne!(text, OBJECT, "{to}");
            let err = Platform::parse(Path::new("p.json"), &text)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("p.json: ") && err.contains(expected),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn an_http_api_and_how_its_routes_are_authorized_are_read_and_checked() {
        let with = |api: &str| {
            Platform::parse(
                Path::new("p.json"),
                &OBJECT.replace(r#""http_api_id": null"#, api),
            )
        };
        let p = with(r#""http_api_id": "a1b2c3d4e5""#).unwrap();
        assert_eq!(p.route_authorization().kind, "AWS_IAM");
        let p = with(
            r#""http_api_id": "a1b2c3d4e5", "http_api_authorization": {"type": "JWT", "authorizer_id": "au1", "scopes": ["inference"]}"#,
        )
        .unwrap();
        assert_eq!(
            p.route_authorization().authorizer_id.as_deref(),
            Some("au1")
        );
        for (api, expected) in [
            (r#""http_api_id": "a/b""#, "http_api_id = \"a/b\" is not"),
            (
                r#""http_api_id": null, "http_api_authorization": {"type": "AWS_IAM"}"#,
                "http_api_authorization is set, but http_api_id is null",
            ),
            (
                r#""http_api_id": "a1", "http_api_authorization": {"type": "NONE"}"#,
                "http_api_authorization.type = \"NONE\"",
            ),
            (
                r#""http_api_id": "a1", "http_api_authorization": {"type": "JWT"}"#,
                "needs the authorizer_id",
            ),
        ] {
            let err = with(api).unwrap_err().to_string();
            assert!(err.contains(expected), "{api}: {err}");
        }
    }

    #[test]
    fn a_function_arn_is_accepted_as_a_function() {
        let text = OBJECT.replace(
            r#""ferry-prod-risk-score""#,
            r#""arn:aws:lambda:eu-west-1:123456789012:function:ferry-prod-risk-score""#,
        );
        assert!(Platform::parse(Path::new("p.json"), &text).is_ok());
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_named_by_its_path() {
        let err = Platform::parse(
            Path::new("p.json"),
            &OBJECT.replace(
                r#""functions": {"risk-score": "ferry-prod-risk-score"}"#,
                r#""functions": []"#,
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("p.json: the document: functions: invalid type: sequence"),
            "{err}"
        );
        let err = Platform::parse(
            Path::new("p.json"),
            &OBJECT.replace(r#""mount_path": "/mnt/models""#, r#""mount_path": 7"#),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("efs.mount_path: invalid type: integer"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_mount_path_is_refused() {
        let text = OBJECT.replace("/mnt/models", "/efs/models");
        let err = Platform::parse(Path::new("p.json"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("efs.mount_path"), "{err}");
    }

    const RUNTIME: &str = r#""runtime": {"python": "python3.13", "architecture": "x86_64",
        "layer_packages": {"mlflow-skinny": "3.17.2", "numpy": "2.4.6", "pandas": "3.1.1", "cloudpickle": "3.1.3"}},"#;

    /// The platform of OBJECT with an optional section (`"runtime": {…},`) added.
    fn with_section(section: &str) -> Result<Platform, PlatformError> {
        let text = OBJECT.replace(
            r#""schema_version": 1,"#,
            &format!(r#""schema_version": 1, {section}"#),
        );
        Platform::parse(Path::new("p.json"), &text)
    }

    #[test]
    fn the_runtime_is_optional_and_read_whole_when_present() {
        let runtime = with_section(RUNTIME).unwrap().runtime.unwrap();
        assert_eq!(runtime.python, "python3.13");
        assert_eq!(runtime.architecture, "x86_64");
        assert_eq!(runtime.layer_packages["numpy"], "2.4.6");
        assert_eq!(with_section(r#""runtime": null,"#).unwrap().runtime, None);
        assert_eq!(
            Platform::parse(Path::new("p.json"), OBJECT)
                .unwrap()
                .runtime,
            None
        );
    }

    #[test]
    fn a_runtime_with_a_missing_unknown_or_wrong_key_is_refused() {
        let err = |runtime: &str| with_section(runtime).unwrap_err().to_string();
        let missing = err(r#""runtime": {"python": "python3.13", "architecture": "x86_64"},"#);
        assert!(
            missing.contains("missing field `layer_packages`"),
            "{missing}"
        );
        let unknown = err(&RUNTIME.replace(r#""architecture""#, r#""arch": 1, "architecture""#));
        assert!(unknown.contains("unknown field `arch`"), "{unknown}");
        let python = err(&RUNTIME.replace("python3.13", "3.13"));
        assert!(
            python.contains(r#"runtime.python = "3.13" is not a Lambda Python runtime"#),
            "{python}"
        );
        let arch = err(&RUNTIME.replace("x86_64", "amd64"));
        assert!(arch.contains("runtime.architecture = \"amd64\""), "{arch}");
    }

    const EKS: &str = r#""eks": {"cluster": "ml-prod", "namespace": "ferry", "service_account": "ferry-inference",
        "volume_claim": "ferry-prod-models", "mount_path": "/mnt/models",
        "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ferry-runtime@sha256:8d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f"},"#;

    #[test]
    fn the_eks_service_is_optional_and_read_whole_when_present() {
        let eks = with_section(EKS).unwrap().eks.unwrap();
        assert_eq!(
            (
                eks.cluster.as_str(),
                eks.namespace.as_str(),
                eks.service_account.as_str()
            ),
            ("ml-prod", "ferry", "ferry-inference")
        );
        assert_eq!(
            (eks.volume_claim.as_str(), eks.mount_path.as_str()),
            ("ferry-prod-models", "/mnt/models")
        );
        assert!(
            eks.image.ends_with(
                "@sha256:8d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f"
            )
        );
        assert_eq!(with_section(r#""eks": null,"#).unwrap().eks, None);
        assert_eq!(
            Platform::parse(Path::new("p.json"), OBJECT).unwrap().eks,
            None
        );
    }

    #[test]
    fn hostile_or_malformed_eks_values_are_refused_naming_the_field_and_why() {
        let digest = "8d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f";
        let long_label = "a".repeat(64);
        let long_subdomain = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        for (from, to, expected) in [
            (
                r#""cluster": "ml-prod""#,
                r#""cluster": "ml prod""#,
                "eks.cluster = \"ml prod\" is not an EKS cluster name",
            ),
            (
                r#""cluster": "ml-prod""#,
                r#""cluster": """#,
                "eks.cluster = \"\"",
            ),
            (
                r#""namespace": "ferry""#,
                r#""namespace": "Ferry""#,
                "eks.namespace = \"Ferry\" is not a Kubernetes namespace name",
            ),
            (
                r#""namespace": "ferry""#,
                r#""namespace": "férry""#,
                "eks.namespace = \"férry\" is not a Kubernetes namespace name",
            ),
            (
                r#""namespace": "ferry""#,
                r#""namespace": "ferry\n#x""#,
                "eks.namespace = \"ferry\\n#x\"",
            ),
            (
                r#""namespace": "ferry""#,
                &format!(r#""namespace": "{long_label}""#),
                "is not a Kubernetes namespace name (an RFC 1123 label: 1-63",
            ),
            (
                r#""namespace": "ferry""#,
                r#""namespace": "ferry-""#,
                "eks.namespace = \"ferry-\"",
            ),
            (
                r#""namespace": "ferry""#,
                r#""namespace": "kube-system""#,
                "eks.namespace = \"kube-system\" is a namespace Kubernetes owns",
            ),
            (
                r#""namespace": "ferry""#,
                r#""namespace": "default""#,
                "is a namespace Kubernetes owns",
            ),
            (
                r#""service_account": "ferry-inference""#,
                r#""service_account": "ferry_inference""#,
                "eks.service_account = \"ferry_inference\" is not a Kubernetes object name (an RFC 1123 subdomain",
            ),
            (
                r#""service_account": "ferry-inference""#,
                r#""service_account": "a..b""#,
                "eks.service_account = \"a..b\"",
            ),
            (
                r#""volume_claim": "ferry-prod-models""#,
                r#""volume_claim": "x/y""#,
                "eks.volume_claim = \"x/y\" is not a Kubernetes object name",
            ),
            (
                r#""volume_claim": "ferry-prod-models""#,
                &format!(r#""volume_claim": "{long_subdomain}""#),
                "eks.volume_claim = ",
            ),
            (
                r#""volume_claim": "ferry-prod-models""#,
                r#""volume_claim": "{{x}}""#,
                "eks.volume_claim = \"{{x}}\"",
            ),
            (
                r#""mount_path": "/mnt/models","#,
                r#""mount_path": "/efs/models","#,
                "eks.mount_path = \"/efs/models\" must match",
            ),
            (
                r#""mount_path": "/mnt/models","#,
                r#""mount_path": "/mnt/../etc","#,
                "eks.mount_path = \"/mnt/../etc\" must match",
            ),
            (
                "ferry-runtime@sha256:",
                "ferry-runtime:latest@sha256-",
                "eks.image = \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/ferry-runtime:latest@sha256-",
            ),
            (digest, &digest[..63], "is not pinned by digest"),
            (digest, &digest.to_uppercase(), "is not pinned by digest"),
            ("123456789012.dkr", "Ferry.dkr", "is not pinned by digest"),
            (
                r#""image": "123456789012"#,
                r#""image": " 123456789012"#,
                "is not pinned by digest",
            ),
            (digest, &format!("{digest}\\n"), "is not pinned by digest"),
        ] {
            let eks = EKS.replace(from, to);
            assert_ne!(eks, EKS, "{to}");
            let err = with_section(&eks).unwrap_err().to_string();
            assert!(
                err.starts_with("p.json: ") && err.contains(expected),
                "{to}: {err}"
            );
        }
        // A longest valid label and subdomain are accepted.
        let fine = EKS
            .replace(
                r#""namespace": "ferry""#,
                &format!(r#""namespace": "{}""#, "a".repeat(63)),
            )
            .replace("ferry-prod-models", &long_subdomain[..253]);
        assert!(with_section(&fine).is_ok(), "{:?}", with_section(&fine));
    }

    #[test]
    fn an_eks_section_with_a_missing_or_unknown_key_names_it() {
        let err = with_section(&EKS.replace(r#""cluster": "ml-prod", "#, ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("eks: missing field `cluster`"), "{err}");
        let err = with_section(&EKS.replace(r#""cluster""#, r#""replicas": 3, "cluster""#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `replicas`"), "{err}");
        let err = with_section(&EKS.replace(r#""ferry-inference""#, "7"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("eks.service_account: invalid type: integer"),
            "{err}"
        );
    }
}
