//! FunctionSpec: the rendered, validated configuration of one approved model version, and its canonical hash.
//!
//! The hash is written into the description of the Lambda version published from the spec, so the observed state
//! says exactly what was deployed.
use std::collections::BTreeMap;

use ferry_sync::Sha256Hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::approval::Approval;

/// Prefix of a published version's description: `ferry:<spec hash> <model>/v<version>`.
pub const DESCRIPTION_TAG: &str = "ferry:";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    pub model: String,
    pub registered_model: String,
    pub version: String,
    pub function_name: String,
    pub alias: String,
    pub description: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub ephemeral_storage_mb: u32,
    pub environment: BTreeMap<String, String>,
    pub layers: Vec<String>,
    /// Where the version's artifacts live on EFS, as the function sees it.
    pub efs_path: String,
    pub artifact: ArtifactRef,
    pub approval: Approval,
    pub smoke_payload: Option<serde_json::Value>,
    /// SHA-256 of the canonical JSON of every other field.
    pub spec_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// `s3://bucket/prefix` of the version's artifacts.
    pub source: String,
    /// The artifact digest the approval names (`ferry.artifact_sha256`), when it names one.
    pub expected_digest: Option<Sha256Hex>,
}

impl FunctionSpec {
    /// Computes and stores the canonical hash.
    pub fn seal(mut self) -> FunctionSpec {
        self.spec_hash = String::new();
        let mut value = serde_json::to_value(&self).expect("a FunctionSpec always serialises");
        if let Some(obj) = value.as_object_mut() {
            obj.remove("spec_hash");
        }
        self.spec_hash = hex::encode(Sha256::digest(canonical_json(&value).as_bytes()));
        self
    }

    /// The description of the published Lambda version: carries the spec hash.
    pub fn version_description(&self) -> String {
        format!(
            "{DESCRIPTION_TAG}{} {}/v{}",
            self.spec_hash, self.model, self.version
        )
    }
}

/// A published version's configuration as Lambda answers it (a version's configuration never changes): what a
/// deploy record keeps and what `verify` and the plan compare with a spec ([`configuration_differences`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionConfig {
    pub memory_mb: Option<i32>,
    pub timeout_s: Option<i32>,
    pub ephemeral_storage_mb: Option<i32>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Layer ARNs, with their versions, in order.
    #[serde(default)]
    pub layers: Vec<String>,
    /// `python3.13`; `None` for a container image.
    pub runtime: Option<String>,
    /// The runtime version the version runs (`RuntimeVersionConfig`); left out of records when Lambda names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version_arn: Option<String>,
}

impl FunctionSpec {
    /// What Lambda shows for a version published from this spec: the fields the spec sets (layers only when it
    /// names its own; otherwise Terraform's stay, and the deploy record keeps what they were).
    pub fn published_config(&self) -> VersionConfig {
        VersionConfig {
            memory_mb: i32::try_from(self.memory_mb).ok(),
            timeout_s: i32::try_from(self.timeout_s).ok(),
            ephemeral_storage_mb: i32::try_from(self.ephemeral_storage_mb).ok(),
            environment: self.environment.clone(),
            layers: self.layers.clone(),
            runtime: None,
            runtime_version_arn: None,
        }
    }
}

/// How a published version's configuration differs from what `spec` sets, one finding per field (environment
/// variables named, their values not shown: they may be secrets). Empty when the version is this spec's. The one
/// rule for "is this version what the spec says": the plan asks it before it reuses or records a version that
/// carries the spec's hash (a description can be copied by hand), `verify` before it calls a live alias ok.
pub fn configuration_differences(spec: &FunctionSpec, found: &VersionConfig) -> Vec<String> {
    let expected = spec.published_config();
    let mut out = Vec::new();
    let show =
        |v: Option<i32>, unit: &str| v.map_or("not set".to_string(), |v| format!("{v} {unit}"));
    for (field, unit, want, got) in [
        ("memory", "MB", expected.memory_mb, found.memory_mb),
        ("timeout", "s", expected.timeout_s, found.timeout_s),
        (
            "ephemeral storage",
            "MB",
            expected.ephemeral_storage_mb,
            found.ephemeral_storage_mb,
        ),
    ] {
        if want != got {
            out.push(format!(
                "{field} is {}, the spec says {}",
                show(got, unit),
                show(want, unit)
            ));
        }
    }
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    let (want, got) = (&expected.environment, &found.environment);
    let missing: Vec<String> = names(want)
        .into_iter()
        .filter(|k| !got.contains_key(k))
        .collect();
    let added: Vec<String> = names(got)
        .into_iter()
        .filter(|k| !want.contains_key(k))
        .collect();
    let changed: Vec<String> = names(want)
        .into_iter()
        .filter(|k| got.get(k).is_some_and(|v| v != &want[k]))
        .collect();
    for (what, list) in [
        ("missing", missing),
        ("not in the spec", added),
        ("with another value", changed),
    ] {
        if !list.is_empty() {
            out.push(format!(
                "environment variable(s) {what}: {}",
                list.join(", ")
            ));
        }
    }
    if !expected.layers.is_empty() && expected.layers != found.layers {
        out.push(format!(
            "layers are {:?}, the spec says {:?}",
            found.layers, expected.layers
        ));
    }
    out
}

/// A rendered description within Lambda's limit: longer text (an approver's long address, a ticket pasted whole) is
/// cut to the limit with `…`. The approval itself is kept whole in the spec and the audit record.
pub fn fit_description(text: &str) -> String {
    if text.chars().count() <= limits::DESCRIPTION_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limits::DESCRIPTION_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// What a published version's description says Ferry published it as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedAs {
    pub spec_hash: Sha256Hex,
    pub model: String,
    /// The registry version.
    pub version: String,
}

/// Parses `ferry:<hash> <model>/v<version>` back; `None` for a description Ferry did not write.
pub fn parse_version_description(description: &str) -> Option<PublishedAs> {
    let rest = description.strip_prefix(DESCRIPTION_TAG)?;
    let (hash, target) = rest.split_once(' ')?;
    let (model, version) = target.split_once("/v")?;
    Some(PublishedAs {
        spec_hash: Sha256Hex::parse(hash).ok()?,
        model: model.to_string(),
        version: version.to_string(),
    })
}

/// JSON with object keys sorted and no insignificant whitespace, whatever map type serde_json was built with.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Lambda's limits, checked before anything is deployed (moto checks none of them).
pub mod limits {
    pub const MEMORY_MB: (u32, u32) = (128, 10240);
    pub const TIMEOUT_S: (u32, u32) = (1, 900);
    pub const EPHEMERAL_MB: (u32, u32) = (512, 10240);
    pub const ENVIRONMENT_BYTES: usize = 4096;
    pub const DESCRIPTION_CHARS: usize = 256;
    pub const ALIAS_CHARS: usize = 128;
    pub const LAYERS: usize = 5;
    /// A synchronous invocation's request payload (Lambda quotas: 6 MB; the service refuses 6 MiB + 1 byte).
    pub const INVOKE_PAYLOAD_BYTES: u64 = 6 * 1024 * 1024;
    pub const RESERVED_ENV: &[&str] = &[
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
    ];

    pub fn check_alias_name(name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > ALIAS_CHARS {
            return Err(format!("must be 1-{ALIAS_CHARS} characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("may contain only letters, digits, '-' and '_'".into());
        }
        if name.chars().all(|c| c.is_ascii_digit()) {
            return Err("must not be all digits (Lambda reads that as a version number)".into());
        }
        Ok(())
    }

    pub fn check_mount_path(path: &str) -> Result<(), String> {
        let ok = path.strip_prefix("/mnt/").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        if ok {
            Ok(())
        } else {
            Err(format!("= {path:?} must match ^/mnt/[a-zA-Z0-9-_.]+$"))
        }
    }

    pub fn check_env_name(name: &str) -> Result<(), String> {
        let mut chars = name.chars();
        let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err("is not a valid variable name ([a-zA-Z][a-zA-Z0-9_]*)".into());
        }
        if name.starts_with("AWS_") || RESERVED_ENV.contains(&name) {
            return Err("is reserved by Lambda".into());
        }
        Ok(())
    }
}

/// Checks a spec against Lambda's limits; each problem is one `field reason` string.
pub fn validate(spec: &FunctionSpec) -> Vec<String> {
    use limits::*;
    let mut problems = Vec::new();
    let mut range = |field: &str, value: u32, (min, max): (u32, u32), unit: &str| {
        if value < min {
            problems.push(format!(
                "{field} = {value} is below Lambda's minimum of {min} {unit}"
            ));
        } else if value > max {
            problems.push(format!(
                "{field} = {value} is above Lambda's maximum of {max} {unit}"
            ));
        }
    };
    range("memory_mb", spec.memory_mb, MEMORY_MB, "MB");
    range("timeout_s", spec.timeout_s, TIMEOUT_S, "s");
    range(
        "ephemeral_storage_mb",
        spec.ephemeral_storage_mb,
        EPHEMERAL_MB,
        "MB",
    );
    if let Err(r) = check_alias_name(&spec.alias) {
        problems.push(format!("alias = {:?} {r}", spec.alias));
    } else if spec.alias != crate::plan::version_alias(&spec.version) {
        // One frozen alias per version, named for it: the plan, retire and verify find a version by this name.
        problems.push(format!(
            "alias = {:?} must be \"v{}\": each version is served behind its own alias v<version>",
            spec.alias, spec.version
        ));
    }
    // The runtime's contract (docs/contracts.md, section 3): the folder to load, and no other name or version.
    if !spec.environment.contains_key("FERRY_MODEL_PATH") {
        problems.push(format!(
            "environment has no FERRY_MODEL_PATH (the version's folder, {:?}): the runtime cannot find the model",
            spec.efs_path
        ));
    }
    for (key, want) in [
        ("FERRY_MODEL_NAME", &spec.model),
        ("FERRY_MODEL_VERSION", &spec.version),
    ] {
        if let Some(found) = spec.environment.get(key)
            && found != want
        {
            problems.push(format!(
                "environment.{key} = {found:?} is not the version's {want:?}"
            ));
        }
    }
    for name in spec.environment.keys() {
        if let Err(r) = check_env_name(name) {
            problems.push(format!("environment.{name} {r}"));
        }
    }
    let env_bytes = serde_json::to_string(&spec.environment)
        .map(|s| s.len())
        .unwrap_or(0);
    if env_bytes > ENVIRONMENT_BYTES {
        problems.push(format!(
            "environment is {env_bytes} bytes; Lambda allows {ENVIRONMENT_BYTES} in total"
        ));
    }
    // Two descriptions, each with Lambda's limit: the user's (rendered; set on $LATEST, shortened by the renderer)
    // and the published version's, which is Ferry's own `ferry:<hash> <model>/v<N>` and nothing else.
    let chars = spec.description.chars().count();
    if chars > DESCRIPTION_CHARS {
        problems.push(format!(
            "description is {chars} characters; Lambda allows {DESCRIPTION_CHARS}"
        ));
    }
    let described = FunctionSpec {
        spec_hash: "0".repeat(64),
        ..spec.clone()
    }
    .version_description();
    if described.chars().count() > DESCRIPTION_CHARS {
        problems.push(format!(
            "model and version are too long for a {DESCRIPTION_CHARS}-character version description"
        ));
    }
    if spec.layers.len() > LAYERS {
        problems.push(format!(
            "layers has {} entries; Lambda allows {LAYERS}",
            spec.layers.len()
        ));
    }
    if let Some(w) = spec.environment.get("FERRY_MODEL_PATH")
        && w != &spec.efs_path
    {
        problems.push(format!(
            "environment.FERRY_MODEL_PATH = {w:?} is not the version's EFS path {:?}",
            spec.efs_path
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_differences_name_each_field_and_never_show_a_variable_value() {
        let spec = FunctionSpec {
            environment: [
                ("A".to_string(), "1".to_string()),
                ("SECRET".into(), "s3cr3t".into()),
            ]
            .into(),
            layers: vec!["arn:aws:lambda:eu-west-1:1:layer:l:3".into()],
            ..sample()
        }
        .seal();
        assert!(configuration_differences(&spec, &spec.published_config()).is_empty());
        let mut found = spec.published_config();
        found.memory_mb = Some(2048);
        found.timeout_s = None;
        found.environment.insert("SECRET".into(), "hunter2".into());
        found.environment.remove("A");
        found.environment.insert("EXTRA".into(), "x".into());
        found.layers = vec![];
        let d = configuration_differences(&spec, &found);
        assert_eq!(
            d,
            [
                format!("memory is 2048 MB, the spec says {} MB", spec.memory_mb),
                format!("timeout is not set, the spec says {} s", spec.timeout_s),
                "environment variable(s) missing: A".to_string(),
                "environment variable(s) not in the spec: EXTRA".into(),
                "environment variable(s) with another value: SECRET".into(),
                "layers are [], the spec says [\"arn:aws:lambda:eu-west-1:1:layer:l:3\"]".into(),
            ]
        );
        assert!(
            !d.iter()
                .any(|l| l.contains("s3cr3t") || l.contains("hunter2"))
        );
        // A spec that names no layers leaves Terraform's: any layers are fine here.
        let plain = FunctionSpec {
            layers: vec![],
            ..spec.clone()
        }
        .seal();
        let mut found = plain.published_config();
        found.layers = vec!["arn:aws:lambda:eu-west-1:1:layer:runtime:9".into()];
        assert!(configuration_differences(&plain, &found).is_empty());
    }

    pub(crate) fn sample() -> FunctionSpec {
        FunctionSpec {
            model: "risk-score".into(),
            registered_model: "risk-score".into(),
            version: "3".into(),
            function_name: "ferry-prod-risk-score".into(),
            alias: "v3".into(),
            description: "risk-score v3".into(),
            memory_mb: 1024,
            timeout_s: 30,
            ephemeral_storage_mb: 512,
            environment: BTreeMap::from([(
                "FERRY_MODEL_PATH".into(),
                "/mnt/models/risk-score/3".into(),
            )]),
            layers: vec![],
            efs_path: "/mnt/models/risk-score/3".into(),
            artifact: ArtifactRef {
                source: "s3://b/p".into(),
                expected_digest: None,
            },
            approval: Approval {
                approved_by: "qa@example.org".into(),
                approved_at: "2026-11-01T10:00:00Z".into(),
                ticket: "QA-1".into(),
                artifact_sha256: None,
                meaning: None,
            },
            smoke_payload: None,
            spec_hash: String::new(),
        }
        .seal()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b": {"z": 1, "a": [ {"y": 2, "x": 1} ]}, "a": "é"}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"é","b":{"a":[{"x":1,"y":2}],"z":1}}"#
        );
    }

    #[test]
    fn the_hash_changes_with_any_field_and_ignores_itself() {
        let spec = sample();
        assert_eq!(spec.spec_hash.len(), 64);
        assert_eq!(
            spec.clone().seal().spec_hash,
            spec.spec_hash,
            "sealing twice gives the same hash"
        );
        let bigger = FunctionSpec {
            memory_mb: 2048,
            ..spec.clone()
        }
        .seal();
        assert_ne!(bigger.spec_hash, spec.spec_hash);
    }

    #[test]
    fn the_version_description_round_trips() {
        let spec = sample();
        let d = spec.version_description();
        assert_eq!(
            parse_version_description(&d),
            Some(PublishedAs {
                spec_hash: Sha256Hex::parse(&spec.spec_hash).unwrap(),
                model: "risk-score".into(),
                version: "3".into()
            })
        );
        assert_eq!(parse_version_description("hand-published"), None);
        // Ferry writes its hashes in lower case: an upper-case one was written by someone else.
        let upper = d.replace(&spec.spec_hash, &spec.spec_hash.to_uppercase());
        assert_eq!(parse_version_description(&upper), None, "{upper}");
    }

    #[test]
    fn a_template_must_keep_the_alias_and_the_runtime_contract() {
        let mut spec = sample();
        spec.alias = "live".into();
        spec.environment.remove("FERRY_MODEL_PATH");
        spec.environment
            .insert("FERRY_MODEL_VERSION".into(), "1".into());
        let problems = validate(&spec);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("alias = \"live\" must be \"v3\"")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("environment has no FERRY_MODEL_PATH"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p == "environment.FERRY_MODEL_VERSION = \"1\" is not the version's \"3\"")
        );
        spec.alias = "v10".into();
        assert!(
            validate(&spec)
                .iter()
                .any(|p| p.starts_with("alias = \"v10\" must be \"v3\""))
        );
    }

    #[test]
    fn limits_are_checked() {
        let mut spec = sample();
        spec.memory_mb = 20480;
        spec.timeout_s = 0;
        spec.alias = "123".into();
        spec.environment.insert("AWS_REGION".into(), "x".into());
        spec.environment.insert("BIG".into(), "x".repeat(5000));
        let problems = validate(&spec);
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].starts_with("memory_mb = 20480 is above"));
        assert!(
            problems
                .iter()
                .any(|p| p == "environment.AWS_REGION is reserved by Lambda")
        );
    }
}
