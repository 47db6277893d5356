//! The plan: a pure diff of desired specs (render) against observed state. No I/O; a value that `apply` walks and
//! `ferry plan` prints. Frozen means frozen: nothing here ever repoints, rewrites or deletes a version alias.
//! A version about to be created is checked against its function's Python ([`crate::python_env`]) first.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::approval::ModelApprovals;
use crate::function_url::ObservedUrl;
use crate::observe::ObservedFunction;
use crate::platform::Runtime;
use crate::python_env::{
    PackageDiff, PythonCheck, SavedEnv, UnknownPython, check_python, package_diffs, runtime_minor,
};
use crate::rebuild::{FromRecord, RecordSource};
use crate::routes::{
    FunctionArn, MAX_INTEGRATIONS, ObservedApi, RouteKey, RouteState, integration_limit_refusal,
};
use crate::spec::{FunctionSpec, configuration_differences};
use crate::stage::StageDescription;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Publish a version from the spec (or reuse one already published with its hash) and create alias `v<N>`.
    Create {
        alias: String,
        version: String,
        spec_hash: String,
        /// A version an interrupted run already published with this exact spec.
        reuse_lambda_version: Option<String>,
        /// In a rebuild from the record: the deploy record the spec is replayed from, and the hash it names.
        #[serde(skip_serializing_if = "Option::is_none")]
        from_record: Option<RecordSource>,
        #[serde(skip)]
        spec: Box<FunctionSpec>,
    },
    /// The alias is right but its audit record was never written (a run stopped in between): write it.
    RecordAudit {
        alias: String,
        version: String,
        lambda_version: String,
        #[serde(skip)]
        spec: Box<FunctionSpec>,
    },
    Unchanged {
        alias: String,
        version: String,
        lambda_version: String,
    },
    /// The catalog or a template changed since this version was deployed: informational, never applied.
    PendingRespec {
        alias: String,
        version: String,
        deployed_spec_hash: String,
        rendered_spec_hash: String,
    },
    /// The alias is not what Ferry recorded: reported, never repointed; blocks this model's deploy.
    Drift { alias: String, reason: String },
    /// An alias whose version is no longer approved: left live until `ferry retire`.
    Revoked { alias: String, version: String },
    /// A new version saved on another Python minor than its function runs: never created; blocks this model.
    Refused {
        alias: String,
        version: String,
        /// The Python the version was saved with (`3.11.7`).
        saved_python: String,
        /// The function's runtime (`python3.13`).
        function_runtime: String,
        reason: String,
    },
    /// Point a stage alias at a version (creating the alias if needed); with a canary, only a share of traffic.
    StageMove {
        stage: String,
        from_version: Option<String>,
        to_version: String,
        /// Share of traffic on the new version while the old one keeps the rest; `None` for a full move.
        canary_weight: Option<f64>,
        /// Provisioned concurrency the catalog asks for on this stage alias.
        provisioned_concurrency: Option<u32>,
        /// In a rebuild from the record: the stage-move record replayed, and for a canary the version that keeps the
        /// rest of the traffic.
        #[serde(skip_serializing_if = "Option::is_none")]
        from_record: Option<StageReplay>,
    },
    StageUnchanged {
        stage: String,
        version: String,
        canary_weight: Option<f64>,
    },
    /// A version alias Ferry created whose record was never written (its run stopped in between) and whose
    /// approval was withdrawn since: the record is written from what the alias and its version show, so that no
    /// live alias is unrecorded; the alias stays live until `ferry retire`.
    RecordUnapproved {
        alias: String,
        version: String,
        lambda_version: String,
        spec_hash: String,
    },
    /// A stage alias Ferry moved (its description says so, and it points where that move would) whose audit record
    /// was never written (a run stopped in between, or the record's put failed): write the record from what the
    /// alias shows.
    RecordStageMove {
        stage: String,
        version: String,
        lambda_version: String,
        routing: BTreeMap<String, f64>,
        /// The run that moved it, as the alias description names it.
        moved_by_run: Option<String>,
    },
    /// In a rebuild from the record: an alias the record shows live that is not rebuilt (its approval was withdrawn
    /// or changed since, or the stage served such a version); blocks this model.
    RefusedRebuild {
        alias: String,
        version: String,
        /// The audit record the alias would have been rebuilt from.
        record_key: String,
        reason: String,
    },
    /// Give an alias (version or stage) its HTTP route: an invoke permission on the alias scoped to the route, an
    /// integration to the alias, the route; then its audit record. After the alias's own actions.
    CreateRoute {
        alias: String,
        route_key: RouteKey,
        /// An integration to this alias a stopped run created without its route: used instead of a new one.
        reuse_integration: Option<String>,
    },
    /// A route Ferry created (its integration says so) and that serves the alias, without its audit record.
    RecordRoute {
        alias: String,
        route_key: RouteKey,
        route_id: String,
        integration_id: String,
    },
    /// The alias's route serves it; `ferrys` is false for a route Terraform (its `routes` input) owns.
    RouteUnchanged {
        alias: String,
        route_key: RouteKey,
        ferrys: bool,
    },
    /// Give an alias a function URL with `AWS_IAM` auth (the model's `endpoint = "function_url"`), then its record.
    CreateFunctionUrl { alias: String },
    /// The alias's function URL is there, with `AWS_IAM` auth, without its audit record (a run stopped between the
    /// URL and its record, or the record's put failed): write the record.
    RecordFunctionUrl { alias: String, url: String },
    /// The alias's function URL is there, with `AWS_IAM` auth, and recorded.
    FunctionUrlUnchanged { alias: String, url: String },
}

impl Action {
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Action::Create { .. }
                | Action::RecordAudit { .. }
                | Action::RecordUnapproved { .. }
                | Action::StageMove { .. }
                | Action::RecordStageMove { .. }
                | Action::CreateRoute { .. }
                | Action::RecordRoute { .. }
                | Action::CreateFunctionUrl { .. }
                | Action::RecordFunctionUrl { .. }
        )
    }
}

/// A stage move replayed from its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageReplay {
    pub record_key: String,
    /// Mid-canary: the version that keeps the rest of the traffic (`canary_weight` goes to `to_version`).
    pub main_version: Option<String>,
}

/// Where the desired state of a rebuild comes from: the audit log, as it stood at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedAt {
    /// RFC 3339.
    pub at: String,
    /// `s3://<bucket>/<audit prefix><environment>/`
    pub audit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPlan {
    pub model: String,
    pub function: String,
    pub actions: Vec<Action>,
    /// Drift or a refused version blocks every change to this model.
    pub blocked: bool,
}

impl ModelPlan {
    /// What blocks the model, for people: `drift`, `a refused version`, or both.
    pub fn blocked_by(&self) -> &'static str {
        let drift = self
            .actions
            .iter()
            .any(|a| matches!(a, Action::Drift { .. }));
        let refused = self
            .actions
            .iter()
            .any(|a| matches!(a, Action::Refused { .. } | Action::RefusedRebuild { .. }));
        match (drift, refused) {
            (true, true) => "drift and a refused version",
            (false, true) => "a refused version",
            _ => "drift",
        }
    }
}

/// Something a reviewer should know that changes nothing and blocks nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    pub model: String,
    /// The version alias it is about; null when it is about the model's function.
    pub alias: Option<String>,
    pub version: Option<String>,
    pub kind: WarningKind,
    pub message: String,
    /// For `package_versions`: each package pinned at another version than the runtime layer has.
    pub packages: Vec<PackageDiff>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A new version's artifacts do not say which Python saved it: not checked.
    PythonUnknown,
    /// The function has no Python runtime Ferry can read: new versions are not checked.
    RuntimeUnknown,
    /// The platform's `runtime.python` is not what the function runs; the function's runtime is used.
    PlatformRuntime,
    /// A new version pins numpy, pandas, mlflow or cloudpickle at another version than the runtime layer has.
    PackageVersions,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub record_audit: usize,
    pub stage_moves: usize,
    pub drift: usize,
    pub revoked: usize,
    pub pending_respec: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub warnings: usize,
    /// HTTP routes to create (route and function URL record repairs count as `record_audit`).
    pub routes_create: usize,
    pub routes_unchanged: usize,
    /// Function URLs to create (models with `endpoint = "function_url"`).
    pub function_urls_create: usize,
    pub function_urls_unchanged: usize,
}

/// The platform's HTTP API against API Gateway's integration limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpApiPlan {
    pub api_id: String,
    /// Integrations on the API now (Ferry's, Terraform's, anyone's).
    pub integrations: usize,
    /// Integrations this plan creates.
    pub integrations_to_create: usize,
    pub limit: usize,
    /// Why the plan is refused as a whole: it would pass the limit. Nothing is changed then.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub format: u32,
    pub models: Vec<ModelPlan>,
    pub warnings: Vec<Warning>,
    pub summary: Summary,
    /// Null when the platform has no HTTP API.
    pub http_api: Option<HttpApiPlan>,
    /// A rebuild from the record (`--from-record`): the desired state is the audit log's at this time, not the
    /// templates' and the registry's stage aliases. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_record: Option<RecordedAt>,
}

impl Plan {
    pub fn new(models: Vec<ModelPlan>, warnings: Vec<Warning>) -> Plan {
        let mut s = Summary::default();
        for a in models.iter().flat_map(|m| &m.actions) {
            match a {
                Action::Create { .. } => s.create += 1,
                Action::RecordAudit { .. }
                | Action::RecordUnapproved { .. }
                | Action::RecordStageMove { .. } => s.record_audit += 1,
                Action::StageMove { .. } => s.stage_moves += 1,
                Action::Drift { .. } => s.drift += 1,
                Action::Revoked { .. } => s.revoked += 1,
                Action::PendingRespec { .. } => s.pending_respec += 1,
                Action::Refused { .. } | Action::RefusedRebuild { .. } => s.refused += 1,
                Action::Unchanged { .. } | Action::StageUnchanged { .. } => s.unchanged += 1,
                Action::CreateRoute { .. } => s.routes_create += 1,
                Action::RecordRoute { .. } | Action::RecordFunctionUrl { .. } => {
                    s.record_audit += 1
                }
                Action::RouteUnchanged { .. } => s.routes_unchanged += 1,
                Action::CreateFunctionUrl { .. } => s.function_urls_create += 1,
                Action::FunctionUrlUnchanged { .. } => s.function_urls_unchanged += 1,
            }
        }
        s.warnings = warnings.len();
        Plan {
            format: 1,
            models,
            warnings,
            summary: s,
            http_api: None,
            from_record: None,
        }
    }

    /// Counts the integrations the plan would leave on the API (those of blocked models are not created) and
    /// refuses the whole plan when that passes API Gateway's limit, which cannot be raised.
    pub fn limit_integrations(mut self, api: &ObservedApi) -> Plan {
        let to_create = self
            .models
            .iter()
            .filter(|m| !m.blocked)
            .flat_map(|m| &m.actions)
            .filter(|a| {
                matches!(
                    a,
                    Action::CreateRoute {
                        reuse_integration: None,
                        ..
                    }
                )
            })
            .count();
        let now = api.integrations.len();
        self.http_api = Some(HttpApiPlan {
            api_id: api.api_id.clone(),
            integrations: now,
            integrations_to_create: to_create,
            limit: MAX_INTEGRATIONS,
            refused: (to_create > 0 && now + to_create > MAX_INTEGRATIONS)
                .then(|| integration_limit_refusal(&api.api_id, now, to_create)),
        });
        self
    }

    /// Why the plan as a whole is refused (nothing of it is applied), if it is.
    pub fn refused(&self) -> Option<&str> {
        self.http_api.as_ref().and_then(|h| h.refused.as_deref())
    }

    pub fn has_changes(&self) -> bool {
        self.refused().is_none()
            && self
                .models
                .iter()
                .any(|m| !m.blocked && m.actions.iter().any(Action::is_change))
    }

    /// Some model is blocked (drift, or a refused version), or the plan is refused as a whole: the plan and the
    /// deploy exit 1.
    pub fn is_blocked(&self) -> bool {
        self.refused().is_some() || self.models.iter().any(|m| m.blocked)
    }

    /// One line per refused version, as `error:` lines name it: `risk-score v4: saved with Python 3.11.7, ...`.
    pub fn refusals(&self) -> Vec<String> {
        self.models
            .iter()
            .flat_map(|m| {
                m.actions.iter().filter_map(move |a| match a {
                    Action::Refused { alias, reason, .. } => {
                        Some(format!("{} {alias}: {reason}", m.model))
                    }
                    Action::RefusedRebuild {
                        alias,
                        reason,
                        record_key,
                        ..
                    } => Some(format!(
                        "{} {alias}: not rebuilt from {record_key}: {reason}",
                        m.model
                    )),
                    _ => None,
                })
            })
            .chain(self.refused().map(str::to_string))
            .collect()
    }
}

pub struct PlanInput<'a> {
    pub model: &'a str,
    pub specs: &'a [FunctionSpec],
    pub approvals: &'a ModelApprovals,
    pub observed: &'a ObservedFunction,
    pub canary_weight: Option<f64>,
    pub provisioned_concurrency: &'a BTreeMap<String, u32>,
    pub promote: bool,
    /// The platform's optional `runtime`: the layer's packages, and the runtime the stack means to run.
    pub platform_runtime: Option<&'a Runtime>,
    /// What each version of [`versions_to_create`] was saved with, by registry version, read from its artifacts;
    /// a version missing here is one whose Python is unknown.
    pub saved: &'a BTreeMap<String, SavedEnv>,
    /// The platform's HTTP API as observed; `None` when it has none (no routes are planned then).
    pub http_api: Option<&'a ObservedApi>,
    /// The function's URL configs by alias, for a model served through function URLs (routes are not planned then).
    pub function_urls: Option<&'a BTreeMap<String, ObservedUrl>>,
    /// A rebuild from the record: `specs` are the recorded ones, and the stages are the record's, not the registry's.
    pub from_record: Option<&'a FromRecord>,
}

/// The specs this plan creates (no alias `v<N>` yet): the versions whose artifacts the plan needs to have read.
pub fn versions_to_create<'s>(
    specs: &'s [FunctionSpec],
    observed: &ObservedFunction,
) -> impl Iterator<Item = &'s FunctionSpec> {
    specs.iter().filter(|s| is_new(s, observed))
}

fn is_new(spec: &FunctionSpec, observed: &ObservedFunction) -> bool {
    !observed.aliases.contains_key(&spec.alias)
}

/// `N` → `v<N>`: the name of the frozen alias of registry version `N` (its one constructor; [`is_version_alias`] is
/// its one parser).
pub fn version_alias(version: impl std::fmt::Display) -> String {
    format!("v{version}")
}

/// `v<N>` → `N`: the one rule for what a version alias is (every other alias on a model function is a stage alias).
pub fn is_version_alias(name: &str) -> Option<&str> {
    let n = name.strip_prefix('v')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// The model's plan, and what the reviewer should know about it.
pub fn plan_model(input: &PlanInput) -> (ModelPlan, Vec<Warning>) {
    let PlanInput {
        model,
        specs,
        observed,
        ..
    } = input;
    let mut actions = Vec::new();

    // Two version aliases on one Lambda version: someone pointed one by hand.
    let mut by_lambda_version: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for a in observed
        .aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_some())
    {
        by_lambda_version
            .entry(a.function_version.as_str())
            .or_default()
            .push(&a.name);
    }
    for (lv, names) in by_lambda_version.iter().filter(|(_, n)| n.len() > 1) {
        for name in names {
            actions.push(Action::Drift {
                alias: name.to_string(),
                reason: format!(
                    "aliases {} all point at Lambda version {lv}",
                    names.join(", ")
                ),
            });
        }
    }
    let already_drifted: Vec<String> = actions
        .iter()
        .filter_map(|a| {
            if let Action::Drift { alias, .. } = a {
                Some(alias.clone())
            } else {
                None
            }
        })
        .collect();

    for spec in specs.iter() {
        if already_drifted.contains(&spec.alias) {
            continue;
        }
        let mut action = plan_version(model, spec, observed);
        if let (Action::Create { from_record, .. }, Some(r)) = (&mut action, input.from_record) {
            *from_record = r.sources.get(&spec.alias).cloned();
        }
        actions.push(action);
    }
    if let Some(r) = input.from_record {
        actions.extend(not_rebuilt(r, specs, observed, &already_drifted));
    }

    // Version aliases whose version is no longer approved (in a rebuild, `not_rebuilt` says what is not rebuilt).
    for a in observed
        .aliases
        .values()
        .filter(|_| input.from_record.is_none())
    {
        if let Some(n) = is_version_alias(&a.name)
            && !specs.iter().any(|s| s.alias == a.name)
            && !already_drifted.contains(&a.name)
        {
            actions.push(Action::Revoked {
                alias: a.name.clone(),
                version: n.to_string(),
            });
            // Created by a run that stopped before its record: record it, so that no live alias is unrecorded.
            if let (None, Ok((_, ferry))) = (
                observed.recorded_version(&a.name),
                observed.version_alias_target(a, model, n),
            ) {
                actions.push(Action::RecordUnapproved {
                    alias: a.name.clone(),
                    version: n.to_string(),
                    lambda_version: a.function_version.clone(),
                    spec_hash: ferry.spec_hash.to_string(),
                });
            }
        }
    }

    let (mut actions, warnings) = check_new_versions(input, actions);
    actions.extend(plan_stages(input));
    let endpoints = match input.function_urls {
        Some(urls) => plan_function_urls(urls, input.observed, &actions),
        None => plan_routes(input, &actions),
    };
    actions.extend(endpoints);
    let blocked = actions.iter().any(|a| {
        matches!(
            a,
            Action::Drift { .. } | Action::Refused { .. } | Action::RefusedRebuild { .. }
        )
    });
    let plan = ModelPlan {
        model: model.to_string(),
        function: observed.function_name.clone(),
        actions,
        blocked,
    };
    (plan, warnings)
}

/// In a rebuild from the record: each alias the record shows live that is not rebuilt, refused with its reason; and
/// each version alias on the function that the record does not show live then, which a rebuild never removes.
fn not_rebuilt(
    r: &FromRecord,
    specs: &[FunctionSpec],
    observed: &ObservedFunction,
    drifted: &[String],
) -> Vec<Action> {
    let refused = r.refused.iter().map(|n| Action::RefusedRebuild {
        alias: n.alias.clone(),
        version: n.version.clone(),
        record_key: n.key.clone(),
        reason: n.reason.clone(),
    });
    let extra = observed
        .aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_some())
        .filter(|a| !specs.iter().any(|s| s.alias == a.name))
        .filter(|a| !r.refused.iter().any(|n| n.alias == a.name) && !drifted.contains(&a.name))
        .map(|a| Action::Drift {
            alias: a.name.clone(),
            reason: format!(
                "live at Lambda version {}, but not live in the audit record at the time rebuilt; a rebuild never \
                 removes an alias: left alone",
                a.function_version
            ),
        });
    refused.chain(extra).collect()
}

/// Each version about to be created against the Python its function runs (`$LATEST`'s runtime, as observed):
/// another minor is refused; a version that does not say, or a function whose runtime is not a Python one, is
/// said so; pins that differ from the runtime layer's packages are said so.
fn check_new_versions(input: &PlanInput, actions: Vec<Action>) -> (Vec<Action>, Vec<Warning>) {
    let mut warnings = Vec::new();
    if !actions.iter().any(|a| matches!(a, Action::Create { .. })) {
        return (actions, warnings);
    }
    let function = &input.observed.function_name;
    let warn = |alias: Option<&str>, version: Option<&str>, kind, message: String| Warning {
        model: input.model.to_string(),
        alias: alias.map(str::to_string),
        version: version.map(str::to_string),
        kind,
        message,
        packages: vec![],
    };
    let runtime = input.observed.runtime.as_deref();
    let target = runtime.and_then(|r| Some((r, runtime_minor(r)?)));
    if let (Some(platform), Some(observed)) = (input.platform_runtime, runtime)
        && platform.python != observed
    {
        warnings.push(warn(
            None,
            None,
            WarningKind::PlatformRuntime,
            format!(
                "the platform's runtime.python is {}, but function {function} runs {observed}: new versions are \
                 checked against {observed}, the function's (update the stack's ferry_platform output)",
                platform.python
            ),
        ));
    }
    if target.is_none() {
        let runs = runtime.map_or("no managed runtime (a container image?)".to_string(), |r| {
            format!("{r}, not a Lambda Python runtime")
        });
        warnings.push(warn(
            None,
            None,
            WarningKind::RuntimeUnknown,
            format!(
                "function {function} reports {runs}: the Python new versions were saved with is not checked"
            ),
        ));
    }
    let no_env = SavedEnv::default();
    let actions = actions
        .into_iter()
        .map(|action| {
            let Action::Create {
                alias,
                version,
                spec,
                ..
            } = &action
            else {
                return action;
            };
            let saved = input.saved.get(version).unwrap_or(&no_env);
            if let Some((runtime, minor)) = target {
                let unknown = |why: String| {
                    warn(
                        Some(alias),
                        Some(version),
                        WarningKind::PythonUnknown,
                        format!(
                            "{why}: cannot check it against {runtime}; a model saved on another Python minor \
                             crashes on its first prediction (make sure it was saved on Python {}.{})",
                            minor.0, minor.1
                        ),
                    )
                };
                match check_python(saved, minor) {
                    PythonCheck::Matches => {}
                    PythonCheck::OtherMinor { saved, saved_minor } => {
                        return Action::Refused {
                            alias: alias.clone(),
                            version: version.clone(),
                            reason: format!(
                                "saved with Python {saved}, but function {function} runs {runtime}; cloudpickled \
                                 model code crashes across Python minors: re-save the model on Python {}.{} (or \
                                 deploy it to a python{}.{} function)",
                                minor.0, minor.1, saved_minor.0, saved_minor.1
                            ),
                            saved_python: saved,
                            function_runtime: runtime.to_string(),
                        };
                    }
                    PythonCheck::Unknown(UnknownPython::NoMlmodel) => warnings.push(unknown(format!(
                        "no MLmodel at {}",
                        spec.artifact.source
                    ))),
                    PythonCheck::Unknown(UnknownPython::NoPythonVersion) => warnings.push(unknown(
                        "its MLmodel names no flavors.python_function.python_version and no python_env.yaml \
                         names one"
                            .into(),
                    )),
                    PythonCheck::Unknown(UnknownPython::NotAVersion(v)) => warnings.push(unknown(
                        format!("its MLmodel's python_version {v:?} is not a Python version"),
                    )),
                }
            }
            if let (Some(platform), Some(pins)) = (input.platform_runtime, &saved.pins) {
                let diffs = package_diffs(pins, &platform.layer_packages);
                if !diffs.is_empty() {
                    let list = |side: fn(&PackageDiff) -> &str| {
                        diffs
                            .iter()
                            .map(|d| format!("{} {}", d.package, side(d)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let mut w = warn(
                        Some(alias),
                        Some(version),
                        WarningKind::PackageVersions,
                        format!(
                            "saved with {}, but the runtime layer has {}: it will run on the layer's (check its \
                             predictions, or re-save it with the layer's versions)",
                            list(|d| &d.saved),
                            list(|d| &d.layer)
                        ),
                    );
                    w.packages = diffs;
                    warnings.push(w);
                }
            }
            action
        })
        .collect();
    (actions, warnings)
}

fn plan_version(model: &str, spec: &FunctionSpec, observed: &ObservedFunction) -> Action {
    let alias = spec.alias.clone();
    let version = spec.version.clone();
    // No alias yet: the one case of `is_new`.
    let Some(live) = observed.aliases.get(&alias) else {
        return Action::Create {
            alias,
            version,
            spec_hash: spec.spec_hash.clone(),
            reuse_lambda_version: observed.version_of(spec).map(|v| v.number.clone()),
            from_record: None,
            spec: Box::new(spec.clone()),
        };
    };
    let lv = live.function_version.clone();
    let drift = |reason: String| Action::Drift {
        alias: alias.clone(),
        reason,
    };
    let (published, ferry) = match observed.version_alias_target(live, model, &spec.version) {
        Ok(target) => target,
        Err(why) => return drift(why),
    };
    let hash = &ferry.spec_hash;
    match observed.recorded_version(&alias) {
        Some(recorded) if recorded != lv => drift(format!(
            "points at Lambda version {lv}, the audit record says {recorded}; left alone"
        )),
        Some(_) if hash == &spec.spec_hash => Action::Unchanged {
            alias,
            version,
            lambda_version: lv,
        },
        Some(_) => Action::PendingRespec {
            alias,
            version,
            deployed_spec_hash: hash.to_string(),
            rendered_spec_hash: spec.spec_hash.clone(),
        },
        None if hash == &spec.spec_hash => {
            // A description can be copied by hand: record only a version that is this spec's.
            let differences = configuration_differences(spec, &published.config);
            if !differences.is_empty() {
                return drift(format!(
                    "points at Lambda version {lv}, which carries this spec's hash but not its configuration ({}), \
                     and has no audit record",
                    differences.join("; ")
                ));
            }
            Action::RecordAudit {
                alias,
                version,
                lambda_version: lv,
                spec: Box::new(spec.clone()),
            }
        }
        None => drift(format!(
            "points at Lambda version {lv} with another spec and has no audit record"
        )),
    }
}

/// Every stage alias on the function against its last recorded move: a move whose record is missing is repaired
/// when the alias shows a move Ferry made, and is drift (blocking the model) when it does not.
fn audit_stage_aliases(input: &PlanInput) -> Vec<Action> {
    let observed = input.observed;
    let mut actions = Vec::new();
    for alias in observed
        .aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_none())
    {
        let recorded = observed.stage_records.get(&alias.name);
        if recorded.is_some_and(|r| alias.matches(r)) {
            continue;
        }
        let shown = if alias.additional.is_empty() {
            format!("Lambda version {}", alias.function_version)
        } else {
            format!(
                "Lambda version {} with {:?}",
                alias.function_version, alias.additional
            )
        };
        let last = recorded
            .map(|r| {
                format!(
                    "its last recorded move left it at Lambda version {}",
                    r.lambda_version
                )
            })
            .unwrap_or_else(|| "no move of it is recorded".into());
        let ferrys =
            StageDescription::parse(&alias.description, input.model, &alias.name).filter(|d| {
                // The move the description names must be the one the alias shows: v<N>'s Lambda version as the
                // main one (a full move) or as the one given a share (a canary).
                observed
                    .aliases
                    .get(&version_alias(&d.version))
                    .is_some_and(|v| {
                        v.function_version == alias.function_version
                            || alias.additional.contains_key(&v.function_version)
                    })
            });
        actions.push(match ferrys {
            Some(d) => Action::RecordStageMove {
                stage: alias.name.clone(),
                version: d.version,
                lambda_version: alias.function_version.clone(),
                routing: alias.additional.clone(),
                moved_by_run: d.run_id,
            },
            None => Action::Drift {
                alias: alias.name.clone(),
                reason: format!(
                    "stage alias shows {shown}, but {last}, and its description {:?} is not a move Ferry made; left alone",
                    alias.description
                ),
            },
        });
    }
    actions
}

fn plan_stages(input: &PlanInput) -> Vec<Action> {
    let mut actions = audit_stage_aliases(input);
    let drifted: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Drift { alias, .. } => Some(alias.clone()),
            _ => None,
        })
        .collect();
    if let Some(r) = input.from_record {
        actions.extend(replay_stages(input, r, &drifted));
        return actions;
    }
    for (stage, to_version) in input
        .approvals
        .stages
        .iter()
        .filter(|(stage, _)| !drifted.contains(stage))
    {
        let target_alias = version_alias(to_version);
        if !input.specs.iter().any(|s| s.alias == target_alias) {
            actions.push(Action::Drift {
                alias: stage.clone(),
                reason: format!("the registry points stage {stage} at version {to_version}, which is not approved"),
            });
            continue;
        }
        // The Lambda version behind v<N>, when it exists already (otherwise it is created earlier in this plan).
        let target_lv = input
            .observed
            .aliases
            .get(&target_alias)
            .map(|a| a.function_version.clone());
        let current = input.observed.aliases.get(stage);
        let from_version =
            current.and_then(|a| registry_version_of(input.observed, &a.function_version));
        let fully_there = current.is_some_and(|a| {
            Some(&a.function_version) == target_lv.as_ref() && a.additional.is_empty()
        });
        if fully_there {
            actions.push(Action::StageUnchanged {
                stage: stage.clone(),
                version: to_version.clone(),
                canary_weight: None,
            });
            continue;
        }
        let canary = match (input.canary_weight, current, input.promote) {
            (Some(w), Some(_), false) => Some(w),
            _ => None,
        };
        if let (Some(w), Some(cur), Some(lv)) = (canary, current, target_lv.as_ref())
            && cur.additional.get(lv).is_some_and(|x| (x - w).abs() < 1e-9)
        {
            actions.push(Action::StageUnchanged {
                stage: stage.clone(),
                version: to_version.clone(),
                canary_weight: Some(w),
            });
            continue;
        }
        actions.push(Action::StageMove {
            stage: stage.clone(),
            from_version,
            to_version: to_version.clone(),
            canary_weight: canary,
            provisioned_concurrency: input.provisioned_concurrency.get(stage).copied(),
            from_record: None,
        });
    }
    actions
}

/// The registry version a Lambda version of the function was published for, as its description says.
fn registry_version_of(observed: &ObservedFunction, lv: &str) -> Option<String> {
    observed
        .versions
        .get(lv)
        .and_then(|v| v.ferry.as_ref())
        .map(|p| p.version.clone())
}

/// In a rebuild from the record: each stage alias routed as its last recorded move left it (all of it on one
/// version, or mid-canary: the recorded share on the version moved to, the rest on the one before), whatever the
/// registry's stage aliases say now.
fn replay_stages(input: &PlanInput, r: &FromRecord, drifted: &[String]) -> Vec<Action> {
    let observed = input.observed;
    let lv_of = |version: &str| {
        observed
            .aliases
            .get(&version_alias(version))
            .map(|a| a.function_version.clone())
    };
    r.stages
        .iter()
        .filter(|route| !drifted.contains(&route.stage))
        .map(|route| {
            let (main, weight) = match &route.canary {
                Some(c) => (c.main_version.as_str(), Some(c.weight)),
                None => (route.to_version.as_str(), None),
            };
            let current = observed.aliases.get(&route.stage);
            let there = current.is_some_and(|cur| {
                Some(&cur.function_version) == lv_of(main).as_ref()
                    && match (weight, lv_of(&route.to_version)) {
                        (None, _) => cur.additional.is_empty(),
                        (Some(w), Some(lv)) => {
                            cur.additional.len() == 1
                                && cur
                                    .additional
                                    .get(&lv)
                                    .is_some_and(|x| (x - w).abs() < 1e-9)
                        }
                        (Some(_), None) => false,
                    }
            });
            if there {
                return Action::StageUnchanged {
                    stage: route.stage.clone(),
                    version: route.to_version.clone(),
                    canary_weight: weight,
                };
            }
            Action::StageMove {
                stage: route.stage.clone(),
                from_version: current
                    .and_then(|a| registry_version_of(observed, &a.function_version)),
                to_version: route.to_version.clone(),
                canary_weight: weight,
                provisioned_concurrency: input.provisioned_concurrency.get(&route.stage).copied(),
                from_record: Some(StageReplay {
                    record_key: route.key.clone(),
                    main_version: route.canary.as_ref().map(|c| c.main_version.clone()),
                }),
            }
        })
        .collect()
}

/// The aliases this model serves once the plan is applied: each approved version's (created, or live as recorded),
/// each live version alias whose approval was withdrawn (live until `ferry retire`), and each stage the approvals
/// name. Drifted and refused ones are not served by Ferry until that is resolved.
fn served_aliases(actions: &[Action]) -> Vec<&str> {
    let mut served = Vec::new();
    for a in actions {
        let alias = match a {
            Action::Create { alias, .. }
            | Action::RecordAudit { alias, .. }
            | Action::Unchanged { alias, .. }
            | Action::PendingRespec { alias, .. }
            | Action::Revoked { alias, .. } => alias,
            Action::StageMove { stage, .. } | Action::StageUnchanged { stage, .. } => stage,
            _ => continue,
        };
        if !served.contains(&alias.as_str()) {
            served.push(alias.as_str());
        }
    }
    let drifted = |name: &str| {
        actions.iter().any(|a| matches!(a, Action::Drift { alias, .. } | Action::Refused { alias, .. } | Action::RefusedRebuild { alias, .. } if alias == name))
    };
    served.retain(|a| !drifted(a));
    served
}

/// Each served alias's HTTP route against the API: created when missing, recorded when Ferry's route lacks its
/// record, and drift (never repointed) when the route invokes anything but the alias.
fn plan_routes(input: &PlanInput, actions: &[Action]) -> Vec<Action> {
    let Some(api) = input.http_api else {
        return vec![];
    };
    let served = served_aliases(actions);
    if served.is_empty() {
        return vec![];
    }
    let observed = input.observed;
    let Some(function) = observed
        .function_arn
        .as_deref()
        .and_then(FunctionArn::parse)
    else {
        return vec![Action::Drift {
            alias: served[0].to_string(),
            reason: format!(
                "function {} lists no ARN Ferry can read ({:?}), so its routes cannot be checked",
                observed.function_name, observed.function_arn
            ),
        }];
    };
    served
        .into_iter()
        .map(|alias| {
            let route_key = RouteKey::new(input.model, alias);
            match api.route_state(input.model, alias, &function.alias_arn(alias)) {
                RouteState::Missing { unrouted } => Action::CreateRoute {
                    alias: alias.into(),
                    route_key,
                    reuse_integration: unrouted,
                },
                RouteState::Serving {
                    route_id,
                    integration_id,
                    ferrys: true,
                } if !observed.routed.contains(alias) => Action::RecordRoute {
                    alias: alias.into(),
                    route_key,
                    route_id,
                    integration_id,
                },
                RouteState::Serving { ferrys, .. } => Action::RouteUnchanged {
                    alias: alias.into(),
                    route_key,
                    ferrys,
                },
                RouteState::Elsewhere { reason } => Action::Drift {
                    alias: alias.into(),
                    reason,
                },
            }
        })
        .collect()
}

/// Each served alias's function URL: created when missing, recorded when one with `AWS_IAM` auth lacks its creation
/// record (a run stopped in between, or the record's put failed); one whose auth is not `AWS_IAM` is drift (never
/// changed, nor recorded as Ferry's).
fn plan_function_urls(
    urls: &BTreeMap<String, ObservedUrl>,
    observed: &ObservedFunction,
    actions: &[Action],
) -> Vec<Action> {
    served_aliases(actions)
        .into_iter()
        .map(|alias| match urls.get(alias) {
            None => Action::CreateFunctionUrl {
                alias: alias.into(),
            },
            Some(u) if u.auth_type != crate::function_url::AUTH_TYPE => Action::Drift {
                alias: alias.into(),
                reason: format!(
                    "function URL {} has auth {}, not AWS_IAM; left alone",
                    u.url, u.auth_type
                ),
            },
            Some(u) if !observed.url_recorded.contains(alias) => Action::RecordFunctionUrl {
                alias: alias.into(),
                url: u.url.clone(),
            },
            Some(u) => Action::FunctionUrlUnchanged {
                alias: alias.into(),
                url: u.url.clone(),
            },
        })
        .collect()
}

/// The plan as people read it in CI logs.
pub fn to_text(plan: &Plan) -> String {
    let mut out = String::new();
    if let Some(r) = &plan.from_record {
        out.push_str(&format!(
            "Desired state from the audit record at {} ({}), not from the templates; the registry's stage aliases \
             are not used.\n",
            r.at, r.audit
        ));
    }
    for m in &plan.models {
        out.push_str(&format!("{}  (function {})\n", m.model, m.function));
        let mut unchanged = Vec::new();
        let mut routed = Vec::new();
        let mut urls = Vec::new();
        for a in &m.actions {
            let line = match a {
                Action::Create {
                    alias,
                    version,
                    spec_hash,
                    reuse_lambda_version,
                    from_record,
                    spec,
                } => Some(format!(
                    "  + {alias:<12} create  registry version {version}, approved by {} ({}), spec {}…{}{}",
                    spec.approval.approved_by,
                    spec.approval.ticket,
                    &spec_hash[..12],
                    from_record
                        .as_ref()
                        .map(|r| format!(
                            " exactly as recorded in {} (hash {} the record's)",
                            r.key,
                            if r.spec_hash == *spec_hash {
                                "equal to"
                            } else {
                                "NOT"
                            }
                        ))
                        .unwrap_or_default(),
                    reuse_lambda_version
                        .as_ref()
                        .map(|v| format!(" (reuses published version {v})"))
                        .unwrap_or_default()
                )),
                Action::RecordAudit {
                    alias,
                    lambda_version,
                    ..
                } => Some(format!(
                    "  + {alias:<12} audit   alias exists at Lambda version {lambda_version}; write its missing audit record"
                )),
                Action::StageMove {
                    stage,
                    to_version,
                    canary_weight,
                    provisioned_concurrency,
                    from_record: Some(replay),
                    ..
                } => Some(format!(
                    "  ~ {stage:<12} rebuild {}, as its last recorded move left it ({}){}",
                    match (&replay.main_version, canary_weight) {
                        (Some(main), Some(w)) => format!(
                            "v{main} {:.0}% + v{to_version} {:.0}% (mid-canary: replayed, not completed)",
                            (1.0 - w) * 100.0,
                            w * 100.0
                        ),
                        _ => format!("-> v{to_version} 100%"),
                    },
                    replay.record_key,
                    provisioned_concurrency
                        .map(|n| format!(", provisioned concurrency {n}"))
                        .unwrap_or_default()
                )),
                Action::StageMove {
                    stage,
                    from_version,
                    to_version,
                    canary_weight,
                    provisioned_concurrency,
                    from_record: None,
                } => Some(format!(
                    "  ~ {stage:<12} move    {} -> v{to_version}{}{}",
                    from_version
                        .as_ref()
                        .map(version_alias)
                        .unwrap_or_else(|| "(new)".into()),
                    canary_weight
                        .map(|w| format!(
                            " (canary {:.0}% on v{to_version}; --promote completes the move)",
                            w * 100.0
                        ))
                        .unwrap_or_default(),
                    provisioned_concurrency
                        .map(|n| format!(", provisioned concurrency {n}"))
                        .unwrap_or_default()
                )),
                Action::RecordUnapproved {
                    alias,
                    lambda_version,
                    ..
                } => Some(format!(
                    "  + {alias:<12} audit   alias exists at Lambda version {lambda_version} without its record (approval withdrawn since); write it"
                )),
                Action::RecordStageMove {
                    stage,
                    version,
                    lambda_version,
                    moved_by_run,
                    ..
                } => Some(format!(
                    "  + {stage:<12} audit   stage alias moved to v{version} (Lambda version {lambda_version}){} without its audit record; write it",
                    moved_by_run
                        .as_ref()
                        .map(|r| format!(" by run {r}"))
                        .unwrap_or_default()
                )),
                Action::Drift { alias, reason } => {
                    Some(format!("  ! {alias:<12} drift   {reason}"))
                }
                Action::Refused { alias, reason, .. } => {
                    Some(format!("  ! {alias:<12} refused {reason}"))
                }
                Action::RefusedRebuild {
                    alias,
                    record_key,
                    reason,
                    ..
                } => Some(format!(
                    "  ! {alias:<12} refused not rebuilt from {record_key}: {reason}"
                )),
                Action::Revoked { alias, version } => Some(format!(
                    "  ! {alias:<12} revoked approval of version {version} withdrawn; alias left live (use `ferry retire`)"
                )),
                Action::PendingRespec {
                    alias,
                    deployed_spec_hash,
                    rendered_spec_hash,
                    ..
                } => Some(format!(
                    "  ? {alias:<12} pending re-spec: deployed spec {}…, catalog now renders {}…; a deployed version is never changed",
                    &deployed_spec_hash[..12.min(deployed_spec_hash.len())],
                    &rendered_spec_hash[..12.min(rendered_spec_hash.len())]
                )),
                Action::Unchanged { alias, .. } => {
                    unchanged.push(alias.clone());
                    None
                }
                Action::CreateRoute {
                    alias,
                    route_key,
                    reuse_integration,
                } => Some(format!(
                    "  + {alias:<12} route   {route_key} -> alias {alias}, {}, invoke permission scoped to the route",
                    reuse_integration
                        .as_ref()
                        .map(|i| format!("reusing integration {i}"))
                        .unwrap_or_else(|| "new integration".into())
                )),
                Action::RecordRoute {
                    alias, route_key, ..
                } => Some(format!(
                    "  + {alias:<12} audit   route {route_key} exists without its audit record; write it"
                )),
                Action::CreateFunctionUrl { alias } => Some(format!(
                    "  + {alias:<12} url     function URL of alias {alias}, AWS_IAM auth"
                )),
                Action::RecordFunctionUrl { alias, url } => Some(format!(
                    "  + {alias:<12} audit   function URL {url} (AWS_IAM) exists without its audit record; write it"
                )),
                Action::FunctionUrlUnchanged { alias, .. } => {
                    urls.push(alias.clone());
                    None
                }
                Action::RouteUnchanged { alias, ferrys, .. } => {
                    routed.push(if *ferrys {
                        alias.clone()
                    } else {
                        format!("{alias}(terraform)")
                    });
                    None
                }
                Action::StageUnchanged {
                    stage,
                    version,
                    canary_weight,
                } => Some(match canary_weight {
                    Some(w) => format!(
                        "  = {stage:<12} canary  {:.0}% on v{version}; `--promote` completes the move",
                        w * 100.0
                    ),
                    None => format!("  = {stage:<12} -> v{version}"),
                }),
            };
            if let Some(l) = line {
                out.push_str(&l);
                out.push('\n');
            }
        }
        if !unchanged.is_empty() {
            out.push_str(&format!("  = {:<12} unchanged\n", unchanged.join(" ")));
        }
        if !urls.is_empty() {
            out.push_str(&format!(
                "  = {:<12} function URL (AWS_IAM)\n",
                urls.join(" ")
            ));
        }
        if !routed.is_empty() {
            out.push_str(&format!(
                "  = {:<12} routed (POST /models/{}/<alias>/invocations)\n",
                routed.join(" "),
                m.model
            ));
        }
        for w in plan.warnings.iter().filter(|w| w.model == m.model) {
            let about = w.alias.as_deref().unwrap_or("function");
            out.push_str(&format!("  ! {about:<12} warning {}\n", w.message));
        }
        if m.blocked {
            out.push_str(&format!(
                "  ({} blocks every change to this model)\n",
                m.blocked_by()
            ));
        }
    }
    let s = &plan.summary;
    let mut also = String::new();
    if s.refused > 0 {
        also.push_str(&format!(", {} refused", s.refused));
    }
    if s.warnings > 0 {
        also.push_str(&format!(", {} warning(s)", s.warnings));
    }
    if let Some(api) = &plan.http_api {
        also.push_str(&format!(", {} route(s) to create", s.routes_create));
        out.push_str(&format!(
            "HTTP API {}: {} integration(s), {} to create (API Gateway allows {} per API).\n",
            api.api_id, api.integrations, api.integrations_to_create, api.limit
        ));
        if let Some(refused) = &api.refused {
            out.push_str(&format!("  ! refused: {refused}\n"));
        }
    }
    out.push_str(&format!(
        "Plan: {} to create, {} stage move(s), {} audit repair(s), {} drift, {} revoked, {} pending re-spec{also}. Nothing will be deleted.\n",
        s.create, s.stage_moves, s.record_audit, s.drift, s.revoked, s.pending_respec
    ));
    out
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod simulation;
