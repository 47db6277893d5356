//! The catalog (`ferry.toml`): which models Ferry deploys, where their approvals come from, and how each version's
//! function is configured. Unknown keys are errors; every path in it is relative to the catalog's folder.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::limits;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: cannot read the catalog: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field} {reason}")]
    Invalid {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub registry: RegistryConfig,
    #[serde(default)]
    pub defaults: Defaults,
    pub models: BTreeMap<String, ModelConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "source", rename_all = "lowercase")]
pub enum RegistryConfig {
    /// MLflow's REST API; the URI defaults to MLFLOW_TRACKING_URI.
    Mlflow {
        tracking_uri: Option<String>,
        /// Versions per search request (MLflow pages its answers).
        #[serde(default = "default_page_size")]
        page_size: u32,
    },
    /// A release manifest in git, approved by code review.
    Manifest { path: PathBuf },
}

fn default_page_size() -> u32 {
    200
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub template: Option<PathBuf>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub ephemeral_storage_mb: Option<u32>,
    pub stages: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub layers: Vec<String>,
    pub verify_manifest: Option<bool>,
    pub endpoint: Option<Endpoint>,
}

/// How callers reach a model's aliases over HTTP.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// A route per alias on the platform's HTTP API (`http_api_id`; none when the platform has no API).
    #[default]
    HttpApi,
    /// A Lambda function URL per alias, `AWS_IAM` auth: no API Gateway (and none of its 300 integrations).
    FunctionUrl,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Name in the registry (default: the model key).
    pub registered_model: Option<String>,
    /// Key into the platform's `functions` (default: the model key).
    pub function: Option<String>,
    pub template: Option<PathBuf>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub ephemeral_storage_mb: Option<u32>,
    pub stages: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub layers: Option<Vec<String>>,
    pub verify_manifest: Option<bool>,
    pub smoke: Option<Smoke>,
    /// Share of traffic a stage alias sends to its new version before `--promote` completes the move.
    pub canary_weight: Option<f64>,
    /// Provisioned concurrency per stage alias (`{ production = 2 }`); version aliases never get any.
    #[serde(default)]
    pub provisioned_concurrency: BTreeMap<String, u32>,
    /// `http_api` (default) or `function_url`.
    pub endpoint: Option<Endpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    /// A JSON file with the request sent to each new version before its alias is created.
    pub payload: PathBuf,
}

/// A loaded, validated catalog: defaults applied, paths resolved against the catalog's folder.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub path: PathBuf,
    pub registry: Registry,
    pub models: BTreeMap<String, Model>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Registry {
    Mlflow {
        tracking_uri: Option<String>,
        page_size: u32,
    },
    Manifest {
        path: PathBuf,
    },
}

/// One model as the rest of Ferry sees it: every default applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub key: String,
    pub registered_model: String,
    pub function: String,
    /// `None`: the template that ships with Ferry.
    pub template: Option<PathBuf>,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub ephemeral_storage_mb: u32,
    pub stages: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub layers: Vec<String>,
    pub verify_manifest: bool,
    pub smoke_payload: Option<PathBuf>,
    pub canary_weight: Option<f64>,
    pub provisioned_concurrency: BTreeMap<String, u32>,
    pub endpoint: Endpoint,
}

pub const DEFAULT_MEMORY_MB: u32 = 1024;
pub const DEFAULT_TIMEOUT_S: u32 = 30;
pub const DEFAULT_EPHEMERAL_MB: u32 = 512;

/// A path the catalog names: relative, and never out of the catalog's folder (`..`), so a catalog cannot make the
/// agent read and send a file of the machine it runs on.
fn inside_the_catalog_folder(path: &Path) -> Result<(), String> {
    use std::path::Component;
    if path.as_os_str().is_empty() {
        return Err("is empty".into());
    }
    match path
        .components()
        .find(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        None => Ok(()),
        Some(_) => Err(format!(
            "= {:?} must be a path inside the catalog's folder (relative, without '..')",
            path.display().to_string()
        )),
    }
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        Catalog::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|err| CatalogError::Parse {
            path: path.to_owned(),
            message: toml_message(&err, text),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Catalog::from_file(path, &base, file)
    }

    fn from_file(path: &Path, base: &Path, file: CatalogFile) -> Result<Catalog, CatalogError> {
        let invalid = |field: String, reason: String| CatalogError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        };
        if file.models.is_empty() {
            return Err(invalid(
                "models".into(),
                "is empty: name at least one model".into(),
            ));
        }
        let registry = match file.registry {
            RegistryConfig::Mlflow {
                tracking_uri,
                page_size,
            } => {
                if !(1..=1000).contains(&page_size) {
                    return Err(invalid(
                        "registry.page_size".into(),
                        format!("= {page_size} is outside 1..=1000"),
                    ));
                }
                Registry::Mlflow {
                    tracking_uri,
                    page_size,
                }
            }
            RegistryConfig::Manifest { path } => Registry::Manifest {
                path: base.join(path),
            },
        };
        let d = &file.defaults;
        let mut models = BTreeMap::new();
        for (key, m) in file.models {
            let field = |name: &str| format!("models.{key}.{name}");
            if !is_model_key(&key) {
                return Err(invalid(
                    format!("models.{key}"),
                    "is not a valid model key: use 1-64 of a-z, 0-9 and '-', starting with a letter".into(),
                ));
            }
            let memory_mb = m.memory_mb.or(d.memory_mb).unwrap_or(DEFAULT_MEMORY_MB);
            check_range(memory_mb, limits::MEMORY_MB, "MB")
                .map_err(|r| invalid(field("memory_mb"), r))?;
            let timeout_s = m.timeout_s.or(d.timeout_s).unwrap_or(DEFAULT_TIMEOUT_S);
            check_range(timeout_s, limits::TIMEOUT_S, "s")
                .map_err(|r| invalid(field("timeout_s"), r))?;
            let ephemeral_storage_mb = m
                .ephemeral_storage_mb
                .or(d.ephemeral_storage_mb)
                .unwrap_or(DEFAULT_EPHEMERAL_MB);
            check_range(ephemeral_storage_mb, limits::EPHEMERAL_MB, "MB")
                .map_err(|r| invalid(field("ephemeral_storage_mb"), r))?;
            let stages = m
                .stages
                .clone()
                .or_else(|| d.stages.clone())
                .unwrap_or_default();
            for stage in &stages {
                if let Err(reason) = limits::check_alias_name(stage) {
                    return Err(invalid(
                        field("stages"),
                        format!("contains {stage:?}: {reason}"),
                    ));
                }
                if stage.starts_with('v')
                    && stage[1..].chars().all(|c| c.is_ascii_digit())
                    && stage.len() > 1
                {
                    return Err(invalid(
                        field("stages"),
                        format!(
                            "contains {stage:?}, which would collide with a version alias v<N>"
                        ),
                    ));
                }
            }
            if let Some(w) = m.canary_weight
                && !(w > 0.0 && w < 1.0)
            {
                return Err(invalid(
                    field("canary_weight"),
                    format!("= {w} must be between 0 and 1 (exclusive)"),
                ));
            }
            for (stage, count) in &m.provisioned_concurrency {
                if !stages.contains(stage) {
                    return Err(invalid(
                        field("provisioned_concurrency"),
                        format!(
                            "names {stage:?}, which is not one of the model's stages; only stage aliases get provisioned concurrency"
                        ),
                    ));
                }
                if *count == 0 {
                    return Err(invalid(
                        field("provisioned_concurrency"),
                        format!("{stage} = 0: leave the stage out instead"),
                    ));
                }
            }
            if let Some(smoke) = &m.smoke
                && let Err(reason) = inside_the_catalog_folder(&smoke.payload)
            {
                return Err(invalid(field("smoke.payload"), reason));
            }
            let mut environment = d.environment.clone();
            environment.extend(m.environment.clone());
            models.insert(
                key.clone(),
                Model {
                    registered_model: m.registered_model.clone().unwrap_or_else(|| key.clone()),
                    function: m.function.clone().unwrap_or_else(|| key.clone()),
                    template: m
                        .template
                        .as_ref()
                        .or(d.template.as_ref())
                        .map(|t| base.join(t)),
                    memory_mb,
                    timeout_s,
                    ephemeral_storage_mb,
                    stages,
                    environment,
                    layers: m.layers.clone().unwrap_or_else(|| d.layers.clone()),
                    verify_manifest: m.verify_manifest.or(d.verify_manifest).unwrap_or(true),
                    smoke_payload: m.smoke.as_ref().map(|s| base.join(&s.payload)),
                    canary_weight: m.canary_weight,
                    provisioned_concurrency: m.provisioned_concurrency.clone(),
                    endpoint: m.endpoint.or(d.endpoint).unwrap_or_default(),
                    key,
                },
            );
        }
        // Each model its own function: two models on one would interleave their updates of `$LATEST`.
        let mut by_function: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, m) in &models {
            if let Some(other) = by_function.insert(m.function.as_str(), key) {
                return Err(invalid(
                    format!("models.{key}.function"),
                    format!(
                        "= {:?} is the function of models.{other} too: each model needs a function of its own",
                        m.function
                    ),
                ));
            }
        }
        Ok(Catalog {
            path: path.to_owned(),
            registry,
            models,
        })
    }

    /// The models selected by `--model` (all when none is given); an unknown name is an error.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Model>, CatalogError> {
        if names.is_empty() {
            return Ok(self.models.values().collect());
        }
        names
            .iter()
            .map(|n| {
                self.models.get(n).ok_or_else(|| CatalogError::Invalid {
                    path: self.path.clone(),
                    field: format!("models.{n}"),
                    reason: format!(
                        "does not exist (--model {n}); the catalog has: {}",
                        self.models.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                })
            })
            .collect()
    }
}

pub fn is_model_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && key.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_range(value: u32, (min, max): (u32, u32), unit: &str) -> Result<(), String> {
    if value < min {
        Err(format!(
            "= {value} is below Lambda's minimum of {min} {unit}"
        ))
    } else if value > max {
        Err(format!(
            "= {value} is above Lambda's maximum of {max} {unit}"
        ))
    } else {
        Ok(())
    }
}

/// toml's own message names the line, column and key; keep it on one line.
pub(crate) fn toml_message(err: &toml::de::Error, text: &str) -> String {
    let reason = err.message().trim().to_string();
    match err.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            match key_at(text, start) {
                Some(key)
                    if !reason.contains(&format!("`{}`", key.rsplit('.').next().unwrap_or(""))) =>
                {
                    format!("line {line}: {key}: {reason}")
                }
                _ => format!("line {line}: {reason}"),
            }
        }
        None => reason,
    }
}

/// The dotted key of the `key = value` line holding byte `at`, under the table header above it
/// (`models.risk-score.memory_mb`); `None` for anything else.
fn key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.contains(char::is_whitespace) {
        return None;
    }
    let table = text[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']'))
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalog, CatalogError> {
        Catalog::parse(Path::new("deploy/ferry.toml"), text)
    }

    const MINIMAL: &str = "[registry]\nsource = \"mlflow\"\n[models.risk-score]\n";

    #[test]
    fn defaults_apply_to_a_minimal_model() {
        let catalog = parse(MINIMAL).unwrap();
        let m = &catalog.models["risk-score"];
        assert_eq!(
            (m.memory_mb, m.timeout_s, m.ephemeral_storage_mb),
            (1024, 30, 512)
        );
        assert_eq!(m.registered_model, "risk-score");
        assert_eq!(m.function, "risk-score");
        assert!(m.template.is_none());
        assert!(m.verify_manifest);
    }

    /// The rendered environment, and so the spec hash, must not change when someone reorders the catalog's lines.
    #[test]
    fn environment_variables_are_kept_by_name_whatever_their_order_in_the_file() {
        let catalog = |env: &str| {
            parse(&format!(
                "[registry]\nsource = \"mlflow\"\n[defaults]\nenvironment = {{ {env} }}\n\
                 [models.m]\nenvironment = {{ ZETA = \"1\", ALPHA = \"2\" }}\n"
            ))
            .unwrap()
        };
        let names = |c: &Catalog| {
            c.models["m"]
                .environment
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        let one = catalog("MIDDLE = \"x\", BETA = \"y\"");
        let other = catalog("BETA = \"y\", MIDDLE = \"x\"");
        assert_eq!(names(&one), ["ALPHA", "BETA", "MIDDLE", "ZETA"]);
        assert_eq!(names(&one), names(&other));
    }

    #[test]
    fn model_values_override_defaults_and_paths_resolve_against_the_catalog() {
        let text = "[registry]\nsource = \"manifest\"\npath = \"releases.toml\"\n\
                    [defaults]\nmemory_mb = 512\nenvironment = { A = \"1\", B = \"2\" }\n\
                    [models.m]\nmemory_mb = 2048\nenvironment = { B = \"3\" }\nsmoke = { payload = \"smoke/m.json\" }\n";
        let catalog = parse(text).unwrap();
        let m = &catalog.models["m"];
        assert_eq!(m.memory_mb, 2048);
        assert_eq!(m.environment["A"], "1");
        assert_eq!(m.environment["B"], "3");
        assert_eq!(
            m.smoke_payload.as_deref(),
            Some(Path::new("deploy/smoke/m.json"))
        );
        assert_eq!(
            catalog.registry,
            Registry::Manifest {
                path: "deploy/releases.toml".into()
            }
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = parse("[registry]\nsource = \"mlflow\"\n[models.m]\nmemroy_mb = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("deploy/ferry.toml: line 4: unknown field `memroy_mb`"),
            "{err}"
        );
    }

    #[test]
    fn memory_above_lambdas_limit_names_the_field() {
        let err =
            parse("[registry]\nsource = \"mlflow\"\n[models.risk-score]\nmemory_mb = 20480\n")
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "deploy/ferry.toml: models.risk-score.memory_mb = 20480 is above Lambda's maximum of 10240 MB"
        );
    }

    #[test]
    fn a_stage_that_looks_like_a_version_alias_is_refused() {
        let err =
            parse("[registry]\nsource = \"mlflow\"\n[models.m]\nstages = [\"v2\"]\n").unwrap_err();
        assert!(
            err.to_string().contains("collide with a version alias"),
            "{err}"
        );
    }

    #[test]
    fn provisioned_concurrency_is_for_stage_aliases_only() {
        let ok = "[registry]\nsource = \"mlflow\"\n[models.m]\nstages = [\"production\"]\nprovisioned_concurrency = { production = 2 }\n";
        assert_eq!(
            parse(ok).unwrap().models["m"].provisioned_concurrency["production"],
            2
        );
        let err = parse(&ok.replace("{ production = 2 }", "{ v3 = 2 }"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("models.m.provisioned_concurrency names \"v3\", which is not one of the model's stages"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key() {
        for value in ["-1", "\"lots\"", "1.5", "[1]"] {
            let err = parse(&format!(
                "[registry]\nsource = \"mlflow\"\n[models.risk-score]\nmemory_mb = {value}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("deploy/ferry.toml: line 4: models.risk-score.memory_mb: "),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn two_models_on_one_function_are_refused_naming_both() {
        let err = parse("[registry]\nsource = \"mlflow\"\n[models.alpha]\nfunction = \"shared\"\n[models.beta]\nfunction = \"shared\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "deploy/ferry.toml: models.beta.function = \"shared\" is the function of models.alpha too: each model needs a function of its own"
        );
        // A model named like another's function is the same clash.
        let err = parse("[registry]\nsource = \"mlflow\"\n[models.alpha]\n[models.beta]\nfunction = \"alpha\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("models.beta.function = \"alpha\" is the function of models.alpha too"),
            "{err}"
        );
    }

    #[test]
    fn a_smoke_payload_outside_the_catalog_folder_is_refused() {
        for bad in ["../secrets.json", "/etc/passwd", "smoke/../../x.json", ""] {
            let err = parse(&format!(
                "[registry]\nsource = \"mlflow\"\n[models.m]\nsmoke = {{ payload = \"{bad}\" }}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("deploy/ferry.toml: models.m.smoke.payload "),
                "{bad:?}: {err}"
            );
        }
        assert!(parse("[registry]\nsource = \"mlflow\"\n[models.m]\nsmoke = { payload = \"./smoke/m.json\" }\n").is_ok());
    }

    #[test]
    fn selecting_an_unknown_model_lists_the_known_ones() {
        let catalog = parse(MINIMAL).unwrap();
        let err = catalog.select(&["nope".into()]).unwrap_err().to_string();
        assert_eq!(
            err,
            "deploy/ferry.toml: models.nope does not exist (--model nope); the catalog has: risk-score"
        );
    }
}
