//! `ferry verify`: proves that what is live is what was approved and recorded. For every version alias: it points
//! at a version Ferry published for that model version, the audit record says the same Lambda version, the record's
//! spec still hashes to what the version carries and the version's configuration, code, layers and runtime are the
//! record's, its runtime update mode is the recorded pin, the approval is still in the registry as recorded, and (with `--efs-root`) the version's EFS folder
//! still matches its manifest, file by file, and the manifest's digest is the approved one. Every stage alias shows what its
//! last stage-move record says. And the model storage itself:
//! the file system is encrypted, and both access points exist on it with one shared root directory.
use std::path::Path;

use anyhow::{Context, Result};
use ferry_sync::Sha256Hex;
use serde::Serialize;

use super::{Inputs, print_json};
use crate::cli::{GlobalArgs, OutputFormat, VerifyArgs};
use std::collections::BTreeMap;

use crate::approval::{ModelApprovals, NoLongerGiven};
use crate::audit::{Deployer, RecordedDeployBody, rfc3339};
use crate::catalog::Endpoint;
use crate::function_url::{AUTH_TYPE, ObservedUrl, observe_urls};
use crate::http_api::{HttpApi, RouteTarget, observe_api};
use crate::lock::RunId;
use crate::manifest::{ArtifactManifest, MANIFEST_FILE, file_differences, scan_dir};
use crate::observe::{INACTIVE_NOTE, ObservedFunction, ObservedVersion, VersionState};
use crate::plan::is_version_alias;
use crate::routes::{FunctionArn, ObservedApi, RouteKey, RouteState};
use crate::runtime_management::{self, ObservedRuntime, RuntimeManagement};
use crate::spec::configuration_differences;

#[derive(Serialize)]
struct Finding {
    model: String,
    alias: String,
    /// The alias's HTTP route (or function URL), on the finding about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<String>,
    ok: bool,
    detail: String,
}

pub async fn run(g: &GlobalArgs, args: &VerifyArgs) -> Result<u8> {
    if args.target == crate::cli::Target::Eks {
        return super::eks::verify(g, args).await;
    }
    let inputs = Inputs::load(g)?;
    let models = inputs.catalog.select(&args.filter.models)?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    // Who runs the check, asked first: a record of it must say who, and without one nothing is checked.
    let verifier = match args.record {
        true => Some(Deployer::identify(&clients.sts, RunId::new()).await?),
        false => None,
    };
    let efs_root = args
        .efs_root
        .clone()
        .or_else(|| inputs.platform.efs.local_root.clone());
    let storage = crate::efs::check_model_storage(&clients.efs, &inputs.platform).await;
    let http_api = match HttpApi::of_platform(&clients, &inputs.platform) {
        Some(api) => {
            let observed = observe_api(&clients.apigw, &api.api_id)
                .await
                .with_context(|| format!("verify of HTTP API {}", api.api_id))?;
            Some((api, observed))
        }
        None => None,
    };
    let approvals: BTreeMap<String, ModelApprovals> = if args.no_registry {
        BTreeMap::new()
    } else {
        inputs
            .approvals(&args.filter)
            .await?
            .into_iter()
            .map(|(m, a)| (m.key.clone(), a))
            .collect()
    };
    let mut findings = Vec::new();
    let mut functions = Vec::new();
    for m in models {
        let (function, o) = inputs.observe_model(&clients, &audit, m, "verify").await?;
        functions.push((m.key.clone(), function.to_string()));
        let mut records = BTreeMap::new();
        let mut runtimes = BTreeMap::new();
        for (alias, recorded) in &o.recorded {
            let body = audit
                .read_deploy_record(&recorded.key)
                .await
                .with_context(|| format!("verify of {} {alias}", m.key))?;
            let found =
                runtime_management::observe(&clients.lambda, function, &recorded.lambda_version)
                    .await;
            runtimes.insert(alias.clone(), found);
            records.insert(alias.clone(), body);
        }
        let evidence = Evidence {
            records: &records,
            runtimes: &runtimes,
            approvals: approvals.get(&m.key),
            efs_root: efs_root.as_deref(),
        };
        findings.extend(check_model(&m.key, &o, &evidence));
        match (m.endpoint, &http_api) {
            (Endpoint::FunctionUrl, _) => {
                let urls = observe_urls(&clients.lambda, function)
                    .await
                    .map_err(|e| anyhow::anyhow!("verify of {}: {function}: {e}", m.key))?;
                findings.extend(check_function_urls(&m.key, &o, &urls));
            }
            (Endpoint::HttpApi, Some((api, observed_api))) => {
                findings.extend(check_routes(&m.key, &o, api, observed_api).await);
            }
            (Endpoint::HttpApi, None) => {}
        }
    }
    if !args.aliases.is_empty() {
        let unknown: Vec<&str> = args
            .aliases
            .iter()
            .filter(|a| !findings.iter().any(|f| &f.alias == *a))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!(
                "--alias {}: no such alias in the models checked (`ferry status` lists them); nothing was recorded",
                unknown.join(", ")
            );
        }
        findings.retain(|f| args.aliases.contains(&f.alias));
    }
    let ok = findings.iter().all(|f| f.ok) && storage.iter().all(|f| f.ok);
    match g.output {
        OutputFormat::Json => {
            print_json(&serde_json::json!({"aliases": findings, "storage": storage}))?
        }
        OutputFormat::Text => {
            for f in &storage {
                println!(
                    "{} {:<27} {}",
                    if f.ok { "ok  " } else { "FAIL" },
                    f.subject,
                    f.detail
                );
            }
            for f in &findings {
                println!("{}", finding_line(f.ok, &f.model, &f.alias, &f.detail));
            }
            println!(
                "{} alias(es) checked, {} problem(s).",
                findings.iter().filter(|f| f.route.is_none()).count(),
                findings.iter().filter(|f| !f.ok).count()
                    + storage.iter().filter(|f| !f.ok).count()
            );
        }
    }
    if let Some(verifier) = &verifier {
        let checked = Checked {
            registry: !args.no_registry,
            efs_folders: efs_root.is_some(),
        };
        for (model, function) in &functions {
            let mine: Vec<&Finding> = findings.iter().filter(|f| &f.model == model).collect();
            let now = time::OffsetDateTime::now_utc();
            let record = VerificationRecord {
                event: "verification",
                environment: &inputs.platform.environment,
                model,
                function,
                ok: mine.iter().all(|f| f.ok) && storage.iter().all(|f| f.ok),
                checked,
                only_aliases: &args.aliases,
                findings: mine,
                storage: &storage,
                deployer: verifier,
                time: rfc3339(now),
            };
            let key = audit.verification_key(model, now);
            audit
                .write(&key, &record)
                .await
                .with_context(|| format!("recording the verification of {model}"))?;
            eprintln!("recorded: s3://{}/{key}", audit.bucket());
        }
    }
    Ok(if ok { 0 } else { 1 })
}

/// What a run of `ferry verify --record` writes per model: every check of its aliases and of the model storage,
/// with who ran it and what was and was not checked.
#[derive(Serialize)]
struct VerificationRecord<'a> {
    event: &'static str,
    environment: &'a str,
    model: &'a str,
    function: &'a str,
    /// Every check of the model's aliases and of the storage passed.
    ok: bool,
    checked: Checked,
    /// With `--alias`: the only aliases checked.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    only_aliases: &'a [String],
    findings: Vec<&'a Finding>,
    storage: &'a [crate::efs::StorageFinding],
    deployer: &'a Deployer,
    time: String,
}

/// What a verification compared beside Lambda and the audit records.
#[derive(Serialize, Clone, Copy)]
struct Checked {
    /// Each approval against the registry (not with `--no-registry`).
    registry: bool,
    /// Each EFS folder file by file (with an EFS root).
    efs_folders: bool,
}

/// What a model's live aliases are checked against besides Lambda's answers.
struct Evidence<'a> {
    /// Version alias → its newest deploy record, read back.
    records: &'a BTreeMap<String, RecordedDeployBody>,
    /// Version alias → its recorded Lambda version's runtime and state now.
    runtimes: &'a BTreeMap<String, Result<ObservedRuntime, String>>,
    /// What the registry says now; `None` with `--no-registry`.
    approvals: Option<&'a ModelApprovals>,
    efs_root: Option<&'a Path>,
}

fn check_model(model: &str, o: &ObservedFunction, evidence: &Evidence) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in o
        .aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_some())
    {
        let finding = |ok: bool, detail: String| Finding {
            model: model.into(),
            alias: a.name.clone(),
            route: None,
            ok,
            detail,
        };
        let version = is_version_alias(&a.name).unwrap_or_default();
        // The drift rules plan applies to a version alias, the same function.
        let (published, hash) = match o.version_alias_target(a, model, version) {
            Ok((published, ferry)) => (published, ferry.spec_hash.clone()),
            Err(why) => {
                out.push(finding(false, why));
                continue;
            }
        };
        if o.recorded_version(&a.name) != Some(a.function_version.as_str()) {
            out.push(finding(
                false,
                format!(
                    "points at Lambda version {}, the audit record says {}",
                    a.function_version,
                    o.recorded_version(&a.name).unwrap_or("nothing")
                ),
            ));
            continue;
        }
        let Some(record) = evidence.records.get(&a.name) else {
            continue;
        };
        let recorded = match check_recorded(hash.as_str(), published, record) {
            Ok(detail) => detail,
            Err(e) => {
                out.push(finding(false, e));
                continue;
            }
        };
        let runtime =
            match check_runtime(&a.function_version, record, evidence.runtimes.get(&a.name)) {
                Ok(detail) => detail,
                Err(e) => {
                    out.push(finding(false, e));
                    continue;
                }
            };
        let approval = match evidence.approvals {
            Some(approvals) => match check_approval_still_given(version, record, approvals) {
                Ok(()) => ", approval in the registry as recorded",
                Err(e) => {
                    out.push(finding(false, e));
                    continue;
                }
            },
            None => ", approval not checked (--no-registry)",
        };
        let efs = match evidence.efs_root {
            Some(root) => match check_folder(&root.join(model).join(version)).and_then(|digest| {
                let approved = record
                    .approval
                    .as_ref()
                    .and_then(|a| a.artifact_sha256.as_ref());
                check_digest_approved(digest, approved, record.artifact_digest.as_ref())
            }) {
                Ok(digest) => format!(", EFS folder verified (digest {}…)", &digest[..12]),
                Err(e) => {
                    out.push(finding(false, e));
                    continue;
                }
            },
            None => String::new(),
        };
        let idle = match evidence.runtimes.get(&a.name) {
            Some(Ok(found)) if found.detail.inactive() => format!("; {INACTIVE_NOTE}"),
            _ => String::new(),
        };
        out.push(finding(
            true,
            format!(
                "Lambda version {}, spec {}…{recorded}{runtime}{approval}, audited{efs}{idle}",
                a.function_version,
                &hash.as_str()[..12]
            ),
        ));
    }
    out.extend(check_stage_aliases(model, o));
    // Recorded as deployed, with no retirement record, and gone: deleted outside `ferry retire`.
    for (alias, recorded) in o
        .recorded
        .iter()
        .filter(|(a, _)| !o.aliases.contains_key(*a))
    {
        out.push(Finding {
            model: model.into(),
            alias: alias.clone(),
            route: None,
            ok: false,
            detail: format!(
                "recorded as deployed at Lambda version {}, but the alias is gone and no retirement record says why: deleted outside `ferry retire`", recorded.lambda_version
            ),
        });
    }
    out
}

/// Every other alias is a stage alias: it must show what its last stage-move record says, or a change to a live
/// alias went unrecorded.
fn check_stage_aliases(model: &str, o: &ObservedFunction) -> Vec<Finding> {
    o.aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_none())
        .map(|a| {
            let (ok, detail) = match o.stage_records.get(&a.name) {
                Some(r) if a.matches(r) => (
                    true,
                    format!(
                        "stage at Lambda version {}{}, as its last move's audit record says",
                        a.function_version,
                        if a.additional.is_empty() {
                            String::new()
                        } else {
                            format!(" with {:?}", a.additional)
                        }
                    ),
                ),
                Some(r) => (
                    false,
                    format!(
                        "stage alias at Lambda version {} (routing {:?}), but its last audit record says {} (routing {:?}): a move without its record",
                        a.function_version, a.additional, r.lambda_version, r.routing
                    ),
                ),
                None => (
                    false,
                    format!(
                        "stage alias at Lambda version {} has no audit record of any move",
                        a.function_version
                    ),
                ),
            };
            Finding {
                model: model.into(),
                alias: a.name.clone(),
                route: None,
                ok,
                detail,
            }
        })
        .collect()
}

/// Every alias Ferry serves (each version alias, each stage alias it moved) has its route on the HTTP API: the
/// route invokes the alias through an integration to its ARN, and the alias lets that route, and only it, invoke
/// it. A route Ferry recorded that is gone, or that invokes something else, fails.
async fn check_routes(
    model: &str,
    o: &ObservedFunction,
    api: &HttpApi,
    observed: &ObservedApi,
) -> Vec<Finding> {
    let Some(function) = o.function_arn.as_deref().and_then(FunctionArn::parse) else {
        return vec![];
    };
    let mut out = Vec::new();
    let served = o
        .aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_some() || o.stage_records.contains_key(&a.name));
    for a in served {
        let alias = a.name.as_str();
        let key = RouteKey::new(model, alias);
        let (ok, detail) = match observed.route_state(model, alias, &function.alias_arn(alias)) {
            RouteState::Missing { .. } if o.routed.contains(alias) => (
                false,
                format!(
                    "route {key} is recorded as created, but it is gone and no record says why: deleted outside `ferry retire`"
                ),
            ),
            RouteState::Missing { .. } => (
                false,
                format!(
                    "no route {key}: the alias is not reachable over the HTTP API (`ferry deploy` adds it)"
                ),
            ),
            RouteState::Elsewhere { reason } => (false, reason),
            RouteState::Serving {
                integration_id,
                ferrys: false,
                ..
            } => (
                true,
                format!(
                    "route {key} (Terraform's `routes`) invokes the alias through integration {integration_id}"
                ),
            ),
            RouteState::Serving { integration_id, .. } => {
                let target = RouteTarget {
                    function: &function,
                    model,
                    alias,
                };
                match api.check_permission(&target).await {
                    Err(reason) => (false, format!("route {key}: {reason}")),
                    Ok(()) if !o.routed.contains(alias) => (
                        false,
                        format!(
                            "route {key} serves the alias, but its creation has no audit record (`ferry deploy` writes it)"
                        ),
                    ),
                    Ok(()) => (
                        true,
                        format!(
                            "route {key} invokes the alias through integration {integration_id}, invoke permission scoped to the route, audited"
                        ),
                    ),
                }
            }
        };
        out.push(Finding {
            model: model.into(),
            alias: alias.into(),
            route: Some(key.to_string()),
            ok,
            detail,
        });
    }
    out
}

/// Every alias Ferry serves has its function URL, with `AWS_IAM` auth and its creation recorded (a model with
/// `endpoint = "function_url"`). A URL Ferry recorded that is gone fails, as does one without its record.
fn check_function_urls(
    model: &str,
    o: &ObservedFunction,
    urls: &BTreeMap<String, ObservedUrl>,
) -> Vec<Finding> {
    o.aliases
        .values()
        .filter(|a| is_version_alias(&a.name).is_some() || o.stage_records.contains_key(&a.name))
        .map(|a| {
            let recorded = o.url_recorded.contains(&a.name);
            let (ok, detail) = match urls.get(&a.name) {
                Some(u) if u.auth_type != AUTH_TYPE => (
                    false,
                    format!("function URL {} has auth {}, not AWS_IAM: anyone may call it", u.url, u.auth_type),
                ),
                Some(u) if !recorded => (
                    false,
                    format!(
                        "function URL {} (AWS_IAM) serves the alias, but its creation has no audit record (`ferry deploy` writes it)",
                        u.url
                    ),
                ),
                Some(u) => (true, format!("function URL {} (AWS_IAM), audited", u.url)),
                None if recorded => (
                    false,
                    "the function URL is recorded as created, but it is gone and no record says why: deleted outside `ferry retire`".into(),
                ),
                None => (
                    false,
                    "no function URL: the alias is not reachable over HTTP (`ferry deploy` adds it)".into(),
                ),
            };
            Finding {
                model: model.into(),
                alias: a.name.clone(),
                route: urls.get(&a.name).map(|u| u.url.clone()).or(Some("function URL".into())),
                ok,
                detail,
            }
        })
        .collect()
}

/// The published version against its deploy record: the spec hash it carries, its code, and (when the record holds
/// them) the record's spec re-hashed and the version's configuration, layers and runtime. `Ok` says what was compared.
fn check_recorded(
    hash: &str,
    published: &ObservedVersion,
    record: &RecordedDeployBody,
) -> Result<&'static str, String> {
    let lv = &published.number;
    if let Some(recorded) = record.spec_hash.as_deref()
        && recorded != hash
    {
        return Err(format!(
            "Lambda version {lv} carries spec {hash}, its deploy record says {recorded}"
        ));
    }
    if let Some(recorded) = record.code_sha256.as_deref()
        && recorded != published.code_sha256
    {
        return Err(format!(
            "Lambda version {lv} has code {}, its deploy record says {recorded}",
            published.code_sha256
        ));
    }
    let Some(spec) = &record.spec else {
        return Ok(", configuration not compared (the deploy record holds no spec)");
    };
    let rehashed = spec.clone().seal().spec_hash;
    if rehashed != spec.spec_hash || rehashed != hash {
        return Err(format!(
            "the deploy record's spec hashes to {rehashed}, but the record says {} and Lambda version {lv} carries \
             {hash}: the record was altered",
            spec.spec_hash
        ));
    }
    let differences = configuration_differences(spec, &published.config);
    if !differences.is_empty() {
        return Err(format!(
            "Lambda version {lv} is not configured as its recorded spec says: {}",
            differences.join("; ")
        ));
    }
    if let Some(config) = &record.configuration {
        if config.layers != published.config.layers {
            return Err(format!(
                "Lambda version {lv} has layers {:?}, its deploy record says {:?}",
                published.config.layers, config.layers
            ));
        }
        if config.runtime != published.config.runtime {
            return Err(format!(
                "Lambda version {lv} runs on {}, its deploy record says {}",
                published
                    .config
                    .runtime
                    .as_deref()
                    .unwrap_or("no managed runtime"),
                config.runtime.as_deref().unwrap_or("no managed runtime")
            ));
        }
    }
    Ok(", configuration, code, layers and runtime as recorded")
}

/// The version's runtime update mode (with its pinned runtime version) and the runtime version it runs are what its
/// deploy record says: Ferry pins each version before its alias exists, so anything else changed under a live alias.
fn check_runtime(
    lv: &str,
    record: &RecordedDeployBody,
    found: Option<&Result<ObservedRuntime, String>>,
) -> Result<String, String> {
    let found = match found {
        Some(Ok(found)) => found,
        Some(Err(e)) => {
            return Err(format!(
                "Lambda version {lv}: its runtime could not be read: {e}"
            ));
        }
        None => return Err(format!("Lambda version {lv}: its runtime was not read")),
    };
    if found.detail.state == Some(VersionState::Failed) {
        return Err(format!(
            "Lambda version {lv} is Failed ({}): Lambda cannot invoke it",
            found
                .detail
                .state_reason_code
                .as_deref()
                .unwrap_or("no reason given")
        ));
    }
    let recorded_version = record
        .configuration
        .as_ref()
        .and_then(|c| c.runtime_version_arn.as_ref());
    // Compared where both name one: Lambda may leave the field out (a version not Active, say).
    if let (Some(recorded), Some(runs)) = (recorded_version, &found.detail.runtime_version_arn)
        && recorded != runs
    {
        return Err(format!(
            "Lambda version {lv} runs runtime version {runs}, its deploy record says {recorded}"
        ));
    }
    let mode = &found.management;
    let manual = |m: &RuntimeManagement| m.update_runtime_on == "Manual";
    match &record.runtime_management {
        None if manual(mode) => Ok(format!(", runtime {mode}, no pin recorded")),
        None => Ok(format!(
            ", runtime update mode {mode}: not frozen (deployed before Ferry pinned runtimes; Lambda may move it)"
        )),
        Some(recorded) => match runtime_management::difference(recorded, mode) {
            Some(why) => Err(format!("Lambda version {lv}: {why}")),
            None if manual(recorded) => Ok(", runtime pinned as recorded".into()),
            None => Ok(format!(
                ", runtime update mode {recorded} as recorded: not frozen"
            )),
        },
    }
}

/// The approval a version was deployed under is still given in the registry (or release manifest), unchanged.
fn check_approval_still_given(
    version: &str,
    record: &RecordedDeployBody,
    approvals: &ModelApprovals,
) -> Result<(), String> {
    let recorded = record
        .approval
        .as_ref()
        .or(record.spec.as_ref().map(|s| &s.approval));
    crate::approval::still_given(version, recorded, approvals).map_err(|why| {
        let live = match why {
            NoLongerGiven::Withdrawn => ", but the alias is live (`ferry retire` removes it)",
            NoLongerGiven::Removed => ", but the alias is live",
            NoLongerGiven::Changed(_) => "",
        };
        format!("{}{live}", why.describe(version))
    })
}

/// One finding as `verify` prints it, for Lambda and EKS alike.
pub(super) fn finding_line(ok: bool, model: &str, alias: &str, detail: &str) -> String {
    format!(
        "{} {model:<14} {alias:<6} {detail}",
        if ok { "ok  " } else { "FAIL" }
    )
}

/// The folder's manifest digest is the one its approval names, or else the one its deploy verified and recorded.
pub(super) fn check_digest_approved(
    digest: String,
    approved: Option<&Sha256Hex>,
    recorded: Option<&String>,
) -> Result<String, String> {
    match (approved, recorded) {
        (Some(a), _) if *a != digest => Err(format!(
            "the EFS folder's manifest digest is {digest}, the approved one (ferry.artifact_sha256) is {a}"
        )),
        (None, Some(r)) if *r != digest => Err(format!(
            "the EFS folder's manifest digest is {digest}, the deploy recorded {r}"
        )),
        _ => Ok(digest),
    }
}

/// Re-hashes a version folder against its manifest.
pub(super) fn check_folder(dir: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .map_err(|e| format!("{}: no readable manifest: {e}", dir.display()))?;
    let manifest = ArtifactManifest::parse(&text)
        .map_err(|e| format!("{}/{MANIFEST_FILE} {e}", dir.display()))?;
    let files = scan_dir(dir)?;
    let differences = file_differences(&files, &manifest.files);
    if !differences.is_empty() {
        let each: Vec<String> = differences.iter().map(ToString::to_string).collect();
        return Err(format!(
            "{}: {} file(s) differ from the manifest: {}",
            dir.display(),
            differences.len(),
            each.join("; ")
        ));
    }
    Ok(manifest.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:eu-west-1::runtime:aaaa";
    const NEWER: &str = "arn:aws:lambda:eu-west-1::runtime:bbbb";

    fn record(pinned: bool) -> RecordedDeployBody {
        let mut doc = serde_json::json!({
            "lambda_version": "7",
            "configuration": {"memory_mb": 1024, "runtime": "python3.13", "runtime_version_arn": ARN},
        });
        if pinned {
            doc["runtime_management"] =
                serde_json::json!({"update_runtime_on": "Manual", "runtime_version_arn": ARN});
        }
        serde_json::from_value(doc).unwrap()
    }

    fn observed(mode: RuntimeManagement, runs: &str) -> Result<ObservedRuntime, String> {
        Ok(ObservedRuntime {
            management: mode,
            detail: crate::observe::VersionDetail {
                runtime_version_arn: Some(runs.into()),
                ..Default::default()
            },
        })
    }

    #[test]
    fn a_version_still_pinned_to_its_recorded_runtime_version_is_ok() {
        let found = observed(RuntimeManagement::pinned(ARN), ARN);
        assert_eq!(
            check_runtime("7", &record(true), Some(&found)),
            Ok(", runtime pinned as recorded".to_string())
        );
    }

    #[test]
    fn a_record_written_before_pinning_says_whether_the_runtime_is_frozen_and_does_not_fail() {
        let auto = RuntimeManagement {
            update_runtime_on: "Auto".into(),
            runtime_version_arn: None,
        };
        let said = check_runtime("7", &record(false), Some(&observed(auto, ARN))).unwrap();
        assert!(
            said.contains("runtime update mode Auto: not frozen"),
            "{said}"
        );
        let pinned = observed(RuntimeManagement::pinned(ARN), ARN);
        let said = check_runtime("7", &record(false), Some(&pinned)).unwrap();
        assert!(said.contains("no pin recorded"), "{said}");
    }

    #[test]
    fn a_failed_version_fails_and_a_runtime_version_lambda_does_not_show_is_not_a_difference() {
        let mut failed = observed(RuntimeManagement::pinned(ARN), ARN).unwrap();
        failed.detail.state = Some(VersionState::Failed);
        let why = check_runtime("7", &record(true), Some(&Ok(failed))).unwrap_err();
        assert!(why.starts_with("Lambda version 7 is Failed"), "{why}");
        let mut unshown = observed(RuntimeManagement::pinned(ARN), ARN).unwrap();
        unshown.detail.runtime_version_arn = None;
        assert!(check_runtime("7", &record(true), Some(&Ok(unshown))).is_ok());
    }

    #[test]
    fn a_version_running_another_runtime_version_is_named_with_both() {
        let found = observed(RuntimeManagement::pinned(NEWER), NEWER);
        let why = check_runtime("7", &record(true), Some(&found)).unwrap_err();
        assert_eq!(
            why,
            format!("Lambda version 7 runs runtime version {NEWER}, its deploy record says {ARN}")
        );
    }

    #[test]
    fn a_version_set_back_to_auto_or_unreadable_fails() {
        let auto = RuntimeManagement {
            update_runtime_on: "Auto".into(),
            runtime_version_arn: None,
        };
        let why = check_runtime("7", &record(true), Some(&observed(auto, ARN))).unwrap_err();
        assert!(
            why.starts_with(
                "Lambda version 7: its runtime update mode is Auto, its deploy record says Manual"
            ),
            "{why}"
        );
        let unread = Err("AccessDeniedException: not authorized".to_string());
        let why = check_runtime("7", &record(true), Some(&unread)).unwrap_err();
        assert!(
            why.contains("could not be read: AccessDeniedException"),
            "{why}"
        );
        assert!(
            check_runtime("7", &record(true), None).is_err(),
            "a recorded pin must be read"
        );
    }
}
