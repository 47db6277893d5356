//! `ferry sync`: copy approved versions' artifacts from S3 to EFS, verified and atomic. Where the file system is
//! not mounted here (a CI runner), the platform's sync function does the copy inside the VPC.
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use serde::Serialize;

use super::print_json;
use crate::approval::{self, ApprovedVersion};
use crate::catalog::Catalog;
use crate::cli::{GlobalArgs, OutputFormat, SyncArgs};
use crate::platform::Platform;
use crate::sync::{SyncOptions, SyncOutcome, SyncRequest, Syncer, invoke_sync_function};

/// Where the copies go.
enum Target {
    Local(Syncer),
    Function {
        lambda: aws_sdk_lambda::Client,
        name: String,
    },
}

/// `--output json`: a stable document (format 1).
#[derive(Serialize)]
struct SyncReport {
    format: u32,
    /// The local EFS root, or `sync-function:<name>`.
    target: String,
    results: Vec<SyncResult>,
}

#[derive(Serialize)]
struct SyncResult {
    model: String,
    version: String,
    /// `synced`, `present` (already there and verified, nothing downloaded) or `failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    files: usize,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(g: &GlobalArgs, args: &SyncArgs) -> Result<u8> {
    let catalog = Catalog::load(&g.catalog)?;
    // The platform is needed only when no --efs-root says where to write.
    let platform = match (&args.efs_root, &g.platform) {
        (Some(_), None) => None,
        _ => Some(Platform::load(g.platform.as_deref())?),
    };
    let requests = requests(&catalog, args).await?;

    let config = crate::aws::sdk_config(platform.as_ref().map(|p| p.region.as_str())).await;
    let show_progress =
        g.output == OutputFormat::Text && !g.quiet && std::io::stderr().is_terminal();
    let options = SyncOptions {
        concurrency: usize::from(args.concurrency),
        verify: args.verify,
        part_size: u64::from(args.part_size) << 20,
        progress: show_progress,
        ..SyncOptions::default()
    };
    let (target, label) = match local_root(args, platform.as_ref()) {
        Some(root) => {
            let label = root.display().to_string();
            let syncer = Syncer::new(crate::aws::s3_client(&config), root, options);
            (Target::Local(syncer), label)
        }
        None => match platform.as_ref().and_then(|p| p.sync_function.clone()) {
            Some(name) => {
                let lambda = crate::aws::lambda_client(&config, &g.api_budget());
                (
                    Target::Function {
                        lambda,
                        name: name.clone(),
                    },
                    format!("sync-function:{name}"),
                )
            }
            None => {
                return Err(anyhow!(
                    "no EFS root: pass --efs-root DIR (where the file system is mounted), set efs.local_root in the platform file, or deploy the platform's sync function (sync_function)"
                ));
            }
        },
    };

    let mut results = Vec::new();
    for req in &requests {
        let outcome = match &target {
            Target::Local(syncer) => syncer.sync(req).await,
            Target::Function { lambda, name } => invoke_sync_function(lambda, name, req).await,
        };
        results.push(match outcome {
            Ok(o) => result_of(o),
            Err(e) => {
                eprintln!("error: {e}");
                SyncResult {
                    model: req.model.clone(),
                    version: req.version.clone(),
                    status: "failed",
                    digest: None,
                    files: 0,
                    bytes: 0,
                    error: Some(e.to_string()),
                }
            }
        });
    }
    let failed = results.iter().filter(|r| r.status == "failed").count();
    match g.output {
        OutputFormat::Json => print_json(&SyncReport {
            format: 1,
            target: label,
            results,
        })?,
        OutputFormat::Text => print!("{}", text_table(&label, &results)),
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// --efs-root, else the platform's local root.
fn local_root(args: &SyncArgs, platform: Option<&Platform>) -> Option<PathBuf> {
    args.efs_root
        .clone()
        .or_else(|| platform.and_then(|p| p.efs.local_root.clone()))
}

/// One request per approved version of the selected models (and `--version`, when given).
async fn requests(catalog: &Catalog, args: &SyncArgs) -> Result<Vec<SyncRequest>> {
    let models = catalog.select(&args.filter.models)?;
    let source = approval::Source::from_catalog(catalog)?;
    let approvals = approval::read_all(&source, &models).await?;
    let mut out = Vec::new();
    for (model, approved) in models.iter().zip(approvals) {
        let chosen: Vec<&ApprovedVersion> = approved
            .approved
            .iter()
            .filter(|v| args.version.as_ref().is_none_or(|n| *n == v.version))
            .collect();
        if let Some(n) = &args.version
            && chosen.is_empty()
        {
            return Err(anyhow!(
                "{}: version {n} is not approved (approved: {})",
                model.key,
                approved
                    .approved
                    .iter()
                    .map(|v| v.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.extend(chosen.into_iter().map(|v| SyncRequest {
            model: model.key.clone(),
            version: v.version.clone(),
            source: v.artifact_uri.clone(),
            expected_digest: v.approval.artifact_sha256.clone(),
            verify: args.verify,
        }));
    }
    Ok(out)
}

fn result_of(o: SyncOutcome) -> SyncResult {
    SyncResult {
        model: o.model,
        version: o.version,
        status: if o.skipped { "present" } else { "synced" },
        digest: Some(o.digest),
        files: o.files,
        bytes: o.bytes,
        error: None,
    }
}

fn text_table(target: &str, results: &[SyncResult]) -> String {
    let width = results
        .iter()
        .map(|r| r.model.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!("target {target}\n");
    out.push_str(&format!(
        "{:<width$}  {:<7}  {:<7}  {:>5}  {:>10}  digest\n",
        "model", "version", "status", "files", "bytes"
    ));
    for r in results {
        let digest = r
            .digest
            .as_deref()
            .map(|d| format!("{}…", &d[..d.len().min(12)]));
        out.push_str(&format!(
            "{:<width$}  {:<7}  {:<7}  {:>5}  {:>10}  {}\n",
            r.model,
            r.version,
            r.status,
            r.files,
            human_bytes(r.bytes),
            digest.unwrap_or_else(|| "-".into())
        ));
    }
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    out.push_str(&format!(
        "Sync: {} copied, {} already present, {} failed.\n",
        count("synced"),
        count("present"),
        count("failed")
    ));
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_each_version_and_a_summary() {
        let results = vec![
            SyncResult {
                model: "risk-score".into(),
                version: "3".into(),
                status: "synced",
                digest: Some("5e8848".repeat(11)),
                files: 5,
                bytes: 10240,
                error: None,
            },
            SyncResult {
                model: "risk-score".into(),
                version: "4".into(),
                status: "failed",
                digest: None,
                files: 0,
                bytes: 0,
                error: Some("boom".into()),
            },
        ];
        let text = text_table("/mnt/models", &results);
        assert!(
            text.contains("risk-score  3        synced       5    10.0 KiB  5e88485e8848…"),
            "{text}"
        );
        assert!(
            text.ends_with("Sync: 1 copied, 0 already present, 1 failed.\n"),
            "{text}"
        );
    }
}
