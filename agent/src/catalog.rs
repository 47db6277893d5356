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
    /// EKS settings of every model; a model's own `eks` keys win, key by key.
    #[serde(default)]
    pub eks: EksConfig,
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
    /// How the EKS service runs the model (`ferry render --target eks`); every key has a default.
    #[serde(default)]
    pub eks: EksConfig,
}

/// The `eks` section of a model or of `[defaults]`, as written (templates/k8s/README.md lists the defaults).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EksConfig {
    pub replicas: Option<u32>,
    pub workers: Option<u32>,
    pub cpu: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory: Option<String>,
    pub progress_deadline_s: Option<u32>,
    pub autoscaling: Option<AutoscalingConfig>,
    pub disruption_budget: Option<DisruptionBudget>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingConfig {
    /// Default: the model's `eks.replicas`.
    pub min_replicas: Option<u32>,
    pub max_replicas: u32,
    /// Default: 70.
    pub target_cpu_percent: Option<u32>,
}

/// How many pods of the model a voluntary disruption (a node drain) must leave running.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DisruptionBudget {
    pub min_available: u32,
}

/// A model's EKS settings with every default applied: the templates' `eks.*` (templates/k8s/README.md), but `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eks {
    pub replicas: u32,
    pub workers: u32,
    /// Kubernetes quantities, as written in the catalog.
    pub cpu: String,
    pub cpu_limit: String,
    pub memory: String,
    pub progress_deadline_s: u32,
    pub autoscaling: Option<Autoscaling>,
    pub disruption_budget: Option<DisruptionBudget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Autoscaling {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_cpu_percent: u32,
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
    /// Not part of the Lambda template's `model.*`: the EKS templates see it as `eks.*`.
    #[serde(skip)]
    pub eks: Eks,
}

pub const DEFAULT_MEMORY_MB: u32 = 1024;
pub const DEFAULT_TIMEOUT_S: u32 = 30;
pub const DEFAULT_EPHEMERAL_MB: u32 = 512;

/// The EKS defaults (templates/k8s/README.md).
pub mod eks_defaults {
    pub const REPLICAS: u32 = 2;
    pub const WORKERS: u32 = 1;
    pub const CPU: &str = "500m";
    pub const CPU_LIMIT: &str = "2";
    pub const MEMORY: &str = "2048Mi";
    pub const PROGRESS_DEADLINE_S: u32 = 600;
    pub const TARGET_CPU_PERCENT: u32 = 70;
}

/// The ranges the catalog accepts for the EKS settings.
pub mod eks_limits {
    pub const REPLICAS: (u32, u32) = (1, 1000);
    pub const WORKERS: (u32, u32) = (1, 64);
    pub const PROGRESS_DEADLINE_S: (u32, u32) = (60, 86_400);
    /// The least memory a pod of the runtime starts in (Lambda's minimum for the same runtime).
    pub const MEMORY_MIN_BYTES: u128 = 128 << 20;
}

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
            let eks = eks_settings(&key, &m.eks, &d.eks).map_err(|(f, r)| invalid(f, r))?;
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
                    eks,
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

impl Model {
    /// The Kubernetes name of the model's objects (the templates' `eks.name`): `ferry-<key>` with `_` as `-`, an
    /// RFC 1123 label. `Err` says why the key cannot make one (checked when rendering for EKS only: a Lambda-only
    /// catalog may use keys that cannot).
    pub fn eks_name(&self) -> Result<String, String> {
        let name = format!("ferry-{}", self.key.replace('_', "-"));
        if crate::platform::is_dns_label(&name) {
            return Ok(name);
        }
        let chars = name.chars().count();
        if chars > 63 {
            Err(format!(
                "cannot name its Kubernetes objects: {name:?} is {chars} characters, and a Kubernetes name (an RFC 1123 label) has at most 63; use a model key of at most 57 characters"
            ))
        } else {
            Err(format!(
                "cannot name its Kubernetes objects: {name:?} is not an RFC 1123 label (a-z, 0-9 and '-', ending with a letter or digit)"
            ))
        }
    }
}

/// A model's EKS settings: its own keys over `[defaults.eks]` over Ferry's defaults, each checked; `Err` is the
/// field, named where its value came from (`models.<key>.eks.cpu` or `defaults.eks.cpu`), and the reason.
fn eks_settings(key: &str, m: &EksConfig, d: &EksConfig) -> Result<Eks, (String, String)> {
    use eks_limits::*;
    // Where a value was written: the model's section, else `[defaults.eks]`, else (Ferry's default) the model's.
    let at = |field: &str, in_defaults: bool| {
        if in_defaults {
            format!("defaults.eks.{field}")
        } else {
            format!("models.{key}.eks.{field}")
        }
    };
    let number = |field: &str, m: Option<u32>, d: Option<u32>, default: u32| {
        (
            m.or(d).unwrap_or(default),
            at(field, m.is_none() && d.is_some()),
        )
    };
    let text = |field: &str, m: &Option<String>, d: &Option<String>, default: &str| {
        let value = m
            .clone()
            .or_else(|| d.clone())
            .unwrap_or_else(|| default.to_string());
        (value, at(field, m.is_none() && d.is_some()))
    };
    let in_range = |(value, field): (u32, String), (min, max): (u32, u32), why: &str| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err((field, format!("= {value} is outside {min}..={max}{why}")))
        }
    };
    let replicas = in_range(
        number("replicas", m.replicas, d.replicas, eks_defaults::REPLICAS),
        REPLICAS,
        "",
    )?;
    let workers = in_range(
        number("workers", m.workers, d.workers, eks_defaults::WORKERS),
        WORKERS,
        " (each worker loads every served version)",
    )?;
    let progress_deadline_s = in_range(
        number(
            "progress_deadline_s",
            m.progress_deadline_s,
            d.progress_deadline_s,
            eks_defaults::PROGRESS_DEADLINE_S,
        ),
        PROGRESS_DEADLINE_S,
        " (a new pod loads every served version before it is ready)",
    )?;
    let (cpu, cpu_at) = text("cpu", &m.cpu, &d.cpu, eks_defaults::CPU);
    let (cpu_limit, limit_at) = text(
        "cpu_limit",
        &m.cpu_limit,
        &d.cpu_limit,
        eks_defaults::CPU_LIMIT,
    );
    let (memory, memory_at) = text("memory", &m.memory, &d.memory, eks_defaults::MEMORY);
    let cpu_n = cpu_quantity(&cpu).map_err(|r| (cpu_at, r))?;
    let limit_n = cpu_quantity(&cpu_limit).map_err(|r| (limit_at.clone(), r))?;
    if limit_n < cpu_n {
        return Err((
            limit_at,
            format!(
                "= {cpu_limit:?} is below the CPU request eks.cpu = {cpu:?} (Kubernetes refuses a limit below the request)"
            ),
        ));
    }
    let memory_n =
        quantity(&memory).map_err(|r| (memory_at.clone(), format!("= {memory:?} {r}")))?;
    if !memory_n.is_multiple_of(NANO) {
        return Err((
            memory_at,
            format!("= {memory:?} is not a whole number of bytes"),
        ));
    }
    if memory_n / NANO < MEMORY_MIN_BYTES {
        return Err((
            memory_at,
            format!("= {memory:?} is below the 128Mi the runtime needs to start"),
        ));
    }
    let autoscaling = match (&m.autoscaling, &d.autoscaling) {
        (None, None) => None,
        (Some(a), _) | (None, Some(a)) => {
            let in_defaults = m.autoscaling.is_none();
            let field = |name: &str| at(&format!("autoscaling.{name}"), in_defaults);
            let min_replicas = in_range(
                (a.min_replicas.unwrap_or(replicas), field("min_replicas")),
                REPLICAS,
                "",
            )?;
            let max_replicas = in_range(
                (a.max_replicas, field("max_replicas")),
                (min_replicas, REPLICAS.1),
                " (from autoscaling.min_replicas to the most replicas a model may have)",
            )?;
            // Utilization is relative to the request, and a pod cannot use more than its limit.
            let reachable = u32::try_from(limit_n * 100 / cpu_n).unwrap_or(u32::MAX);
            let target_cpu_percent = in_range(
                (
                    a.target_cpu_percent
                        .unwrap_or(eks_defaults::TARGET_CPU_PERCENT),
                    field("target_cpu_percent"),
                ),
                (1, reachable),
                &format!(
                    " (a pod uses at most its cpu_limit {cpu_limit:?}, {reachable}% of its request {cpu:?}: a higher target never scales up)"
                ),
            )?;
            Some(Autoscaling {
                min_replicas,
                max_replicas,
                target_cpu_percent,
            })
        }
    };
    let disruption_budget = m
        .disruption_budget
        .clone()
        .or_else(|| d.disruption_budget.clone());
    if let Some(budget) = &disruption_budget {
        let (fewest, of) = match &autoscaling {
            Some(a) => (a.min_replicas, "autoscaling.min_replicas"),
            None => (replicas, "replicas"),
        };
        if budget.min_available == 0 || budget.min_available >= fewest {
            return Err((
                at(
                    "disruption_budget.min_available",
                    m.disruption_budget.is_none(),
                ),
                format!(
                    "= {} must be at least 1 and below eks.{of} = {fewest}: a budget that needs every pod blocks every node drain",
                    budget.min_available
                ),
            ));
        }
    }
    Ok(Eks {
        replicas,
        workers,
        cpu,
        cpu_limit,
        memory,
        progress_deadline_s,
        autoscaling,
        disruption_budget,
    })
}

/// 10⁹: a quantity's unit in [`quantity`]'s answer.
const NANO: u128 = 1_000_000_000;

/// A CPU quantity: positive, and no finer than a millicore (Kubernetes refuses finer).
fn cpu_quantity(text: &str) -> Result<u128, String> {
    let n = quantity(text).map_err(|r| format!("= {text:?} {r}"))?;
    if n == 0 {
        return Err(format!("= {text:?} is zero"));
    }
    if !n.is_multiple_of(NANO / 1000) {
        return Err(format!("= {text:?} is finer than Kubernetes' 1m"));
    }
    Ok(n)
}

/// A Kubernetes quantity (`500m`, `2`, `1.5`, `2048Mi`, `1e3`; no sign) exactly, in units of 10⁻⁹; `Err` says why
/// the text is not one.
pub fn quantity(text: &str) -> Result<u128, String> {
    let not =
        || "is not a Kubernetes quantity (like \"500m\", \"2\", \"1.5\" or \"2048Mi\")".to_string();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || frac.contains('.') || digits.len() > 30 {
        return Err(not());
    }
    let mantissa: u128 = digits.parse().map_err(|_| not())?;
    let (pow10, pow2): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        exponent => {
            let e = exponent
                .strip_prefix(['e', 'E'])
                .filter(|e| {
                    let d = e.strip_prefix(['+', '-']).unwrap_or(e);
                    !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit())
                })
                .ok_or_else(not)?;
            (e.parse().map_err(|_| not())?, 0)
        }
    };
    let too_large = || "is too large".to_string();
    let scale = 9 + pow10 - frac.len() as i64;
    let value = if scale >= 0 {
        u32::try_from(scale)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
            .and_then(|p| mantissa.checked_mul(p))
    } else {
        match u32::try_from(-scale)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
        {
            Some(p) if mantissa.is_multiple_of(p) => Some(mantissa / p),
            _ if mantissa == 0 => Some(0),
            _ => return Err("is finer than 1n, the smallest quantity".into()),
        }
    };
    value
        .and_then(|v| v.checked_mul(1u128 << pow2))
        .ok_or_else(too_large)
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

    const EKS: &str = "[registry]\nsource = \"mlflow\"\n[models.risk-score]\n";

    fn eks(extra: &str) -> Result<Eks, CatalogError> {
        parse(&format!("{EKS}{extra}")).map(|c| c.models["risk-score"].eks.clone())
    }

    #[test]
    fn a_model_without_an_eks_section_gets_the_documented_eks_defaults() {
        let e = eks("").unwrap();
        assert_eq!((e.replicas, e.workers, e.progress_deadline_s), (2, 1, 600));
        assert_eq!(
            (e.cpu.as_str(), e.cpu_limit.as_str(), e.memory.as_str()),
            ("500m", "2", "2048Mi")
        );
        assert_eq!((e.autoscaling, e.disruption_budget), (None, None));
    }

    #[test]
    fn eks_keys_of_the_model_win_over_defaults_eks_key_by_key() {
        let text = "[registry]\nsource = \"mlflow\"\n\
                    [defaults.eks]\ncpu = \"1\"\nmemory = \"4Gi\"\nautoscaling = { max_replicas = 4 }\n\
                    [models.a]\n[models.a.eks]\nmemory = \"8Gi\"\nreplicas = 3\n\
                    disruption_budget = { min_available = 2 }\n\
                    [models.b.eks]\nautoscaling = { min_replicas = 1, max_replicas = 10, target_cpu_percent = 150 }\n";
        let catalog = parse(text).unwrap();
        let a = &catalog.models["a"].eks;
        assert_eq!(
            (a.cpu.as_str(), a.memory.as_str(), a.replicas),
            ("1", "8Gi", 3)
        );
        // The default's autoscaler, its min_replicas the model's replicas, its target Ferry's 70%.
        assert_eq!(
            a.autoscaling,
            Some(Autoscaling {
                min_replicas: 3,
                max_replicas: 4,
                target_cpu_percent: 70
            })
        );
        assert_eq!(
            a.disruption_budget,
            Some(DisruptionBudget { min_available: 2 })
        );
        let b = &catalog.models["b"].eks;
        assert_eq!(b.memory, "4Gi");
        assert_eq!(
            b.autoscaling
                .as_ref()
                .map(|x| (x.min_replicas, x.max_replicas, x.target_cpu_percent)),
            Some((1, 10, 150))
        );
    }

    #[test]
    fn bad_eks_values_are_refused_naming_file_field_and_reason() {
        for (extra, expected) in [
            (
                "[models.risk-score.eks]\ncpu = \"lots\"\n",
                "models.risk-score.eks.cpu = \"lots\" is not a Kubernetes quantity",
            ),
            (
                "[models.risk-score.eks]\ncpu = \"0\"\n",
                "models.risk-score.eks.cpu = \"0\" is zero",
            ),
            (
                "[models.risk-score.eks]\ncpu = \"0.0005\"\n",
                "models.risk-score.eks.cpu = \"0.0005\" is finer than Kubernetes' 1m",
            ),
            (
                "[models.risk-score.eks]\ncpu = \"-1\"\n",
                "models.risk-score.eks.cpu = \"-1\" is not a Kubernetes quantity",
            ),
            (
                "[models.risk-score.eks]\ncpu = \"4\"\n",
                "models.risk-score.eks.cpu_limit = \"2\" is below the CPU request eks.cpu = \"4\"",
            ),
            (
                "[models.risk-score.eks]\nmemory = \"2048MiB\"\n",
                "models.risk-score.eks.memory = \"2048MiB\" is not a Kubernetes quantity",
            ),
            (
                "[models.risk-score.eks]\nmemory = \"1.5\"\n",
                "models.risk-score.eks.memory = \"1.5\" is not a whole number of bytes",
            ),
            (
                "[models.risk-score.eks]\nmemory = \"64Mi\"\n",
                "models.risk-score.eks.memory = \"64Mi\" is below the 128Mi",
            ),
            (
                "[models.risk-score.eks]\nreplicas = 0\n",
                "models.risk-score.eks.replicas = 0 is outside 1..=1000",
            ),
            (
                "[models.risk-score.eks]\nworkers = 65\n",
                "models.risk-score.eks.workers = 65 is outside 1..=64 (each worker loads every served version)",
            ),
            (
                "[models.risk-score.eks]\nprogress_deadline_s = 10\n",
                "models.risk-score.eks.progress_deadline_s = 10 is outside 60..=86400",
            ),
            (
                "[models.risk-score.eks]\nautoscaling = { min_replicas = 3, max_replicas = 2 }\n",
                "models.risk-score.eks.autoscaling.max_replicas = 2 is outside 3..=1000",
            ),
            (
                "[models.risk-score.eks]\nautoscaling = { max_replicas = 4, target_cpu_percent = 401 }\n",
                "models.risk-score.eks.autoscaling.target_cpu_percent = 401 is outside 1..=400 (a pod uses at most its cpu_limit \"2\", 400% of its request \"500m\"",
            ),
            (
                "[models.risk-score.eks]\ndisruption_budget = { min_available = 2 }\n",
                "models.risk-score.eks.disruption_budget.min_available = 2 must be at least 1 and below eks.replicas = 2",
            ),
            (
                "[models.risk-score.eks]\nautoscaling = { min_replicas = 3, max_replicas = 6 }\ndisruption_budget = { min_available = 3 }\n",
                "models.risk-score.eks.disruption_budget.min_available = 3 must be at least 1 and below eks.autoscaling.min_replicas = 3: a budget that needs every pod blocks every node drain",
            ),
            (
                "[defaults.eks]\nmemory = \"1Ti2\"\n",
                "defaults.eks.memory = \"1Ti2\" is not a Kubernetes quantity",
            ),
        ] {
            // `[defaults.eks]` must come before the models' tables in TOML.
            let text = if extra.starts_with("[defaults") {
                format!("[registry]\nsource = \"mlflow\"\n{extra}[models.risk-score]\n")
            } else {
                format!("{EKS}{extra}")
            };
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("deploy/ferry.toml: {expected}")),
                "{extra}: {err}"
            );
        }
        let err = eks("[models.risk-score.eks]\nreplica = 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `replica`"), "{err}");
        let err = eks("[models.risk-score.eks]\nautoscaling = { min_replicas = 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `max_replicas`"), "{err}");
    }

    #[test]
    fn hostile_eks_quantities_are_refused_as_written() {
        for hostile in [
            "500m\\\"\\n#{{x}}",
            "1\\nkind: Secret",
            "１",
            "5 00m",
            "",
            ".",
            "1.2.3",
            "+1",
            "1e100",
            "99999999999999999999999999999999",
        ] {
            let err = eks(&format!(
                "[models.risk-score.eks]\ncpu_limit = \"{hostile}\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("deploy/ferry.toml: models.risk-score.eks.cpu_limit = ")
                    && (err.contains("is not a Kubernetes quantity")
                        || err.contains("is too large")),
                "{hostile:?}: {err}"
            );
        }
    }

    #[test]
    fn kubernetes_quantities_are_read_exactly() {
        const N: u128 = 1_000_000_000;
        for (text, nano) in [
            ("500m", N / 2),
            ("2", 2 * N),
            ("1.5", 3 * N / 2),
            (".5", N / 2),
            ("5.", 5 * N),
            ("2048Mi", 2048 * (1 << 20) * N),
            ("1Ki", 1024 * N),
            ("1e3", 1000 * N),
            ("1E3", 1000 * N),
            ("2E", 2_000_000_000_000_000_000 * N),
            ("1e-9", 1),
            ("250u", 250_000),
            ("0", 0),
        ] {
            assert_eq!(quantity(text), Ok(nano), "{text}");
        }
        assert_eq!(
            quantity("1e-10"),
            Err("is finer than 1n, the smallest quantity".into())
        );
        assert!(quantity("8Ei").is_ok() && quantity("1e99").is_err());
    }

    #[test]
    fn the_kubernetes_name_is_ferry_and_the_key_and_a_key_that_cannot_make_one_is_named() {
        let model = |key: &str| {
            parse(&format!(
                "[registry]\nsource = \"mlflow\"\n[models.{key}]\n"
            ))
            .unwrap()
            .models[key]
                .clone()
        };
        assert_eq!(
            model("risk-score").eks_name(),
            Ok("ferry-risk-score".into())
        );
        let longest = "a".repeat(57);
        assert_eq!(model(&longest).eks_name(), Ok(format!("ferry-{longest}")));
        let err = model(&"a".repeat(58)).eks_name().unwrap_err();
        assert!(
            err.contains("is 64 characters")
                && err.contains("use a model key of at most 57 characters"),
            "{err}"
        );
        let err = model("risk-").eks_name().unwrap_err();
        assert!(
            err.contains("\"ferry-risk-\" is not an RFC 1123 label"),
            "{err}"
        );
        // Keys the catalog refuses anyway never get this far: Unicode, upper case, underscores.
        for key in ["modèle", "Risk", "risk_score"] {
            let err = parse(&format!(
                "[registry]\nsource = \"mlflow\"\n[models.\"{key}\"]\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("is not a valid model key"), "{key}: {err}");
        }
    }
}
