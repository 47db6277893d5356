//! Rendering: approved versions → one validated FunctionSpec per version, from Handlebars templates.
//! Pure: the approvals and the platform come in as values; the only I/O is reading template and smoke files.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, RenderErrorReason};
use serde::{Deserialize, Serialize};

use crate::approval::{Approval, ApprovedVersion, ModelApprovals};
use crate::catalog::Model;
use crate::platform::Platform;
use crate::spec::{self, ArtifactRef, FunctionSpec};

pub mod eks;

/// The template that ships with Ferry, used when the catalog names none.
pub const BUILTIN_TEMPLATE: &str = include_str!("../../templates/lambda/function.json.hbs");
pub const BUILTIN_TEMPLATE_NAME: &str = "<builtin>/templates/lambda/function.json.hbs";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
    #[error("{location}: {reason}")]
    Template { location: String, reason: String },
    #[error("{template}: rendered invalid JSON for {model} v{version}: {reason}")]
    InvalidJson {
        template: String,
        model: String,
        version: String,
        reason: String,
    },
    #[error("{model} v{version}: {problem}")]
    Invalid {
        model: String,
        version: String,
        problem: String,
    },
    #[error("{path}: models.{model}: {reason}")]
    Platform {
        path: String,
        model: String,
        reason: String,
    },
    #[error(
        "{path}: has no `eks` (modules/eks-service's `ferry_platform` output, put into the stack's `ferry_platform` as `eks`): `--target eks` renders for that EKS service"
    )]
    NoEks { path: String },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
}

/// What a template must produce.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateOutput {
    alias: Option<String>,
    description: String,
    memory_mb: u32,
    timeout_s: u32,
    ephemeral_storage_mb: Option<u32>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    layers: Vec<String>,
}

/// The values a template sees.
#[derive(Debug, Serialize)]
struct TemplateContext<'a> {
    model: &'a Model,
    version: &'a str,
    alias: String,
    model_path: String,
    function_name: &'a str,
    approval: &'a Approval,
    artifact: &'a ArtifactRef,
    platform: &'a Platform,
}

/// Loaded templates, each parsed once.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new()
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(json_escape);
        registry.register_helper("json", Box::new(json_helper));
        Templates { registry }
    }

    fn name_of(path: Option<&Path>) -> String {
        path.map(|p| p.display().to_string())
            .unwrap_or_else(|| BUILTIN_TEMPLATE_NAME.to_string())
    }

    /// Parses the template once; later calls for the same path are free.
    pub fn load(&mut self, path: Option<&Path>) -> Result<String, RenderError> {
        let name = Templates::name_of(path);
        self.register(&name, || match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| RenderError::Read {
                path: name.clone(),
                reason: e.to_string(),
            }),
            None => Ok(BUILTIN_TEMPLATE.to_string()),
        })?;
        Ok(name)
    }

    /// Parses the template `text()` gives under `name`, once; a parse error names the template, line and column.
    fn register(
        &mut self,
        name: &str,
        text: impl FnOnce() -> Result<String, RenderError>,
    ) -> Result<(), RenderError> {
        if self.registry.has_template(name) {
            return Ok(());
        }
        self.registry
            .register_template_string(name, text()?)
            .map_err(|e| {
                let location = match e.pos() {
                    Some((l, c)) => format!("{name}:{l}:{c}"),
                    None => name.to_string(),
                };
                RenderError::Template {
                    location,
                    reason: format!("cannot parse the template: {}", e.reason()),
                }
            })
    }

    /// Renders the template `name` with `context`, for every target: strict, so a variable the context does not
    /// have is an error naming the template, its line and the variable (with the nearest one the context has).
    fn render(&self, name: &str, context: &impl Serialize) -> Result<String, RenderError> {
        self.registry.render(name, context).map_err(|e| {
            let location = match e.line_no {
                Some(l) => format!("{name}:{l}"),
                None => name.to_string(),
            };
            let reason = match e.reason() {
                RenderErrorReason::MissingVariable(Some(var)) => {
                    let var = var.trim_start_matches("this.").to_string();
                    let hint = suggest(&var, &context_paths(context))
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    format!("`{{{{{var}}}}}` is not in the template context{hint}")
                }
                other => other.to_string(),
            };
            RenderError::Template { location, reason }
        })
    }
}

/// Renders every approved version of one model, in version order.
pub fn render_model(
    templates: &mut Templates,
    model: &Model,
    approvals: &ModelApprovals,
    platform: &Platform,
    platform_path: &Path,
) -> Result<Vec<FunctionSpec>, RenderError> {
    let function_name =
        platform
            .function_name(&model.function)
            .map_err(|reason| RenderError::Platform {
                path: platform_path.display().to_string(),
                model: model.key.clone(),
                reason,
            })?;
    let template = templates.load(model.template.as_deref())?;
    let smoke_payload = model
        .smoke_payload
        .as_deref()
        .map(read_smoke_payload)
        .transpose()?;
    // Sources sort their answers, but the output must not depend on it: render in version order regardless.
    let mut approved: Vec<&ApprovedVersion> = approvals.approved.iter().collect();
    approved.sort_by(|a, b| crate::approval::version_order(&a.version, &b.version));
    approved
        .into_iter()
        .map(|approved| {
            render_version(
                templates,
                &template,
                model,
                approved,
                platform,
                function_name,
                smoke_payload.clone(),
            )
        })
        .collect()
}

/// Where a version's artifacts are on EFS as its function sees it: `<mount path>/<model>/<version>`.
pub fn model_path(mount_path: &str, model: &str, version: &str) -> String {
    format!("{mount_path}/{model}/{version}")
}

fn render_version(
    templates: &Templates,
    template: &str,
    model: &Model,
    approved: &ApprovedVersion,
    platform: &Platform,
    function_name: &str,
    smoke_payload: Option<serde_json::Value>,
) -> Result<FunctionSpec, RenderError> {
    let version = approved.version.as_str();
    let model_path = model_path(&platform.efs.mount_path, &model.key, version);
    let artifact = ArtifactRef {
        source: approved.artifact_uri.clone(),
        expected_digest: approved.approval.artifact_sha256.clone(),
    };
    let context = TemplateContext {
        model,
        version,
        alias: format!("v{version}"),
        model_path: model_path.clone(),
        function_name,
        approval: &approved.approval,
        artifact: &artifact,
        platform,
    };
    let text = templates.render(template, &context)?;
    let out: TemplateOutput =
        serde_json::from_str(&text).map_err(|e| RenderError::InvalidJson {
            template: template.to_string(),
            model: model.key.clone(),
            version: version.to_string(),
            reason: format!("{e} (line {} of the rendered text)", e.line()),
        })?;
    let spec = FunctionSpec {
        model: model.key.clone(),
        registered_model: model.registered_model.clone(),
        version: version.to_string(),
        function_name: function_name.to_string(),
        alias: out.alias.unwrap_or_else(|| format!("v{version}")),
        description: spec::fit_description(&out.description),
        memory_mb: out.memory_mb,
        timeout_s: out.timeout_s,
        ephemeral_storage_mb: out
            .ephemeral_storage_mb
            .unwrap_or(model.ephemeral_storage_mb),
        environment: out.environment,
        layers: out.layers,
        efs_path: model_path,
        artifact,
        approval: approved.approval.clone(),
        smoke_payload,
        spec_hash: String::new(),
    }
    .seal();
    if let Some(problem) = spec::validate(&spec).into_iter().next() {
        return Err(RenderError::Invalid {
            model: model.key.clone(),
            version: version.to_string(),
            problem,
        });
    }
    Ok(spec)
}

fn read_smoke_payload(path: &Path) -> Result<serde_json::Value, RenderError> {
    let name = path.display().to_string();
    let limit = crate::spec::limits::INVOKE_PAYLOAD_BYTES;
    // Checked before anything is published: a payload Lambda refuses would leave an unaliased version behind.
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() > limit
    {
        return Err(RenderError::Read {
            path: name,
            reason: format!(
                "smoke payload is {} bytes; Lambda's synchronous invocation takes at most {limit}",
                meta.len()
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| RenderError::Read {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| RenderError::Read {
        path: name,
        reason: format!("smoke payload is not JSON: {e}"),
    })
}

/// Writes a value inside a JSON string literal: quotes, backslashes and control characters escaped, and so are the
/// characters YAML does not take unescaped or reads as a line break (DEL and the C1 controls with NEL, U+2028,
/// U+2029, U+FEFF, U+FFFE, U+FFFF), so that the same text is the value itself inside a YAML double-quoted string
/// too (templates/k8s). JSON reads `\u0085` as it reads the character: a rendered spec does not change.
fn json_escape(raw: &str) -> String {
    let quoted = serde_json::Value::String(raw.to_string()).to_string();
    let mut out = String::with_capacity(quoted.len());
    for c in quoted[1..quoted.len() - 1].chars() {
        if matches!(
            c,
            '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        ) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn json_helper(
    h: &handlebars::Helper,
    _: &Handlebars,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let param = h
        .param(0)
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("json", 0))?;
    out.write(&param.value().to_string())?;
    Ok(())
}

/// Every dotted path in the template context, for "did you mean" hints.
fn context_paths(context: &impl Serialize) -> Vec<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(path.clone());
                walk(&path, v, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(context) {
        walk("", &v, &mut out);
    }
    out
}

fn suggest(missing: &str, known: &[String]) -> Option<String> {
    let last = missing.rsplit('.').next().unwrap_or(missing);
    known
        .iter()
        .map(|k| {
            let k_last = k.rsplit('.').next().unwrap_or(k);
            (
                edit_distance(missing, k).min(edit_distance(last, k_last) + 1),
                k,
            )
        })
        .filter(|(d, _)| *d <= 4)
        .min_by_key(|(d, k)| (*d, k.len()))
        .map(|(_, k)| k.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Where `ferry render --out DIR` writes a spec.
pub fn spec_file(dir: &Path, spec: &FunctionSpec) -> PathBuf {
    dir.join(&spec.model)
        .join(format!("v{}.json", spec.version))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::catalog::Catalog;

    const PLATFORM: &str = r#"{"schema_version": 1, "environment": "prod", "region": "eu-west-1",
        "artifact_bucket": "b", "audit_prefix": "ferry/audit/", "lock_prefix": "ferry/locks/",
        "efs": {"file_system_id": "fs-1", "inference_access_point_arn": "arn:ro", "sync_access_point_arn": "arn:rw",
                "mount_path": "/mnt/models"},
        "network": {"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]},
        "functions": {"risk-score": "ferry-prod-risk-score"}, "sync_function": null, "http_api_id": null}"#;

    #[test]
    fn a_smoke_payload_above_lambdas_invocation_limit_is_refused_before_anything_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        let limit = crate::spec::limits::INVOKE_PAYLOAD_BYTES as usize;
        // A JSON string of exactly the limit passes; one byte more does not.
        let mut text = format!("\"{}\"", "x".repeat(limit - 2));
        std::fs::write(&path, &text).unwrap();
        assert!(read_smoke_payload(&path).is_ok());
        text.insert(1, 'x');
        std::fs::write(&path, &text).unwrap();
        let err = read_smoke_payload(&path).unwrap_err().to_string();
        assert!(err.contains("smoke payload is 6291457 bytes; Lambda's synchronous invocation takes at most 6291456"), "{err}");
    }

    fn approved(version: u32) -> ApprovedVersion {
        ApprovedVersion {
            version: version.to_string(),
            approval: Approval {
                approved_by: format!("qa{version}@example.org"),
                approved_at: "2026-11-01T10:00:00Z".into(),
                ticket: format!("QA-{version}"),
                artifact_sha256: None,
                meaning: None,
            },
            artifact_uri: format!("s3://b/m{version}"),
        }
    }

    fn render_json(env_pairs: &[(String, String)], versions: &[u32]) -> String {
        serde_json::to_string(&render_specs(env_pairs, versions, approved)).unwrap()
    }

    fn render_specs(
        env_pairs: &[(String, String)],
        versions: &[u32],
        approve: impl Fn(u32) -> ApprovedVersion,
    ) -> Vec<FunctionSpec> {
        let mut env = String::new();
        for (k, v) in env_pairs {
            env.push_str(&format!("{k} = \"{v}\"\n"));
        }
        let catalog = Catalog::parse(
            Path::new("ferry.toml"),
            &format!("[registry]\nsource = \"mlflow\"\n[models.risk-score]\n[models.risk-score.environment]\n{env}"),
        )
        .unwrap();
        let platform = Platform::parse(Path::new("p.json"), PLATFORM).unwrap();
        let approvals = ModelApprovals {
            approved: versions.iter().map(|v| approve(*v)).collect(),
            revoked: vec![],
            stages: BTreeMap::new(),
        };
        render_model(
            &mut Templates::new(),
            &catalog.models["risk-score"],
            &approvals,
            &platform,
            Path::new("p.json"),
        )
        .unwrap()
    }

    fn approved_by(approver: &str, ticket: &str) -> impl Fn(u32) -> ApprovedVersion {
        move |version| {
            let mut a = approved(version);
            a.approval.approved_by = approver.to_string();
            a.approval.ticket = ticket.to_string();
            a
        }
    }

    #[test]
    fn an_ordinary_long_approver_address_renders_a_valid_spec() {
        let approver = "maria.rodriguez-fernandez@clinical-research.example.org";
        let specs = render_specs(&[], &[1, 2], approved_by(approver, "CHG-1042"));
        assert_eq!(
            specs[0].description,
            format!("risk-score v1, approved by {approver} (CHG-1042)")
        );
        assert!(crate::spec::validate(&specs[0]).is_empty());
    }

    #[test]
    fn a_huge_ticket_gives_a_description_shortened_to_lambdas_limit() {
        let ticket = "CHG-ü".repeat(200_000); // 1 MB of ticket, multi-byte characters included
        let specs = render_specs(&[], &[1], approved_by("qa@example.org", &ticket));
        let description = &specs[0].description;
        assert_eq!(
            description.chars().count(),
            crate::spec::limits::DESCRIPTION_CHARS
        );
        assert!(description.starts_with("risk-score v1, approved by qa@example.org (CHG-ü"));
        assert!(description.ends_with('…'));
        assert_eq!(
            specs[0].approval.ticket, ticket,
            "the approval itself is kept whole"
        );
    }

    proptest! {
        /// Whatever order the registry answers in, the rendered specs are byte-identical. (The order of environment
        /// variables in the catalog cannot matter here: the catalog keeps them by name, see
        /// `catalog::tests::environment_variables_are_kept_by_name_whatever_their_order_in_the_file`.)
        #[test]
        fn rendering_does_not_depend_on_the_registrys_order(
            versions in proptest::sample::subsequence((1u32..40).collect::<Vec<_>>(), 1..12),
            seed in any::<u64>(),
        ) {
            let env = [("LOG_LEVEL".to_string(), "info".to_string())];
            let mut shuffled = versions.clone();
            // A cheap deterministic shuffle from the seed.
            let n = shuffled.len();
            for i in 0..n { shuffled.swap(i, (seed as usize).wrapping_mul(i + 7) % n); }
            prop_assert_eq!(render_json(&env, &versions), render_json(&env, &shuffled));
        }
    }

    /// What the default template renders, field by field: a change to it shows up in review as a snapshot diff.
    #[test]
    fn the_default_template_renders_this_spec() {
        let json = render_json(&[("LOG_LEVEL".into(), "info".into())], &[3]);
        let specs: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        insta::assert_json_snapshot!(specs[0]);
    }

    /// The characters YAML refuses or reads as a line break are escaped for templates/k8s, and JSON reads them back
    /// as they were: a rendered FunctionSpec does not change.
    #[test]
    fn yaml_line_breaks_are_escaped_and_read_back_by_json_as_written() {
        assert_eq!(
            json_escape("a\u{85}b\u{2028}c\u{7f}\u{feff}\"\n李"),
            "a\\u0085b\\u2028c\\u007f\\ufeff\\\"\\n李"
        );
        let json = render_json(&[("NOTE".into(), "x\\u0085y\\u2028z\\u007f".into())], &[1]);
        let specs: Vec<FunctionSpec> = serde_json::from_str(&json).unwrap();
        assert_eq!(specs[0].environment["NOTE"], "x\u{85}y\u{2028}z\u{7f}");
    }

    #[test]
    fn values_are_json_escaped() {
        let json = render_json(&[("GREETING".into(), "say \\\"hi\\\"\\n".into())], &[1]);
        let specs: Vec<FunctionSpec> = serde_json::from_str(&json).unwrap();
        assert_eq!(specs[0].environment["GREETING"], "say \"hi\"\n");
    }
}
