//! `ferry render`: what should be deployed: one FunctionSpec per approved version (`--target lambda`), or the EKS
//! service's manifests per model (`--target eks`). No AWS call; the only remote read is the approval source's.
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Inputs, platform_path, print_json};
use crate::cli::{GlobalArgs, OutputFormat, RenderArgs, Target};
use crate::render::eks::{self, EksInputs, EksModel};
use crate::render::{Templates, render_model, spec_file};
use crate::spec::FunctionSpec;

/// `--output json`: a stable document (format 1).
#[derive(Serialize)]
struct RenderOutput<'a> {
    format: u32,
    specs: &'a [FunctionSpec],
}

/// `--target eks --output json`: a stable document (format 1).
#[derive(Serialize)]
struct EksRenderOutput<'a> {
    format: u32,
    target: &'static str,
    models: &'a [EksModel],
}

pub async fn run(g: &GlobalArgs, args: &RenderArgs) -> Result<u8> {
    match args.target {
        Target::Lambda => run_lambda(g, args).await,
        Target::Eks => run_eks(g, args).await,
    }
}

async fn run_lambda(g: &GlobalArgs, args: &RenderArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let approvals = inputs.approvals(&args.filter).await?;
    let mut templates = Templates::new();
    let mut specs = Vec::new();
    for (model, approved) in &approvals {
        specs.extend(render_model(
            &mut templates,
            model,
            approved,
            &inputs.platform,
            platform_path(g),
        )?);
    }
    if let Some(dir) = &args.out {
        for spec in &specs {
            let path = spec_file(dir, spec);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("{}: cannot create", parent.display()))?;
            }
            let text = serde_json::to_string_pretty(spec)? + "\n";
            std::fs::write(&path, text)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        eprintln!("wrote {} spec(s) under {}", specs.len(), dir.display());
        return Ok(0);
    }
    match g.output {
        OutputFormat::Json => print_json(&RenderOutput {
            format: 1,
            specs: &specs,
        })?,
        OutputFormat::Text => print!("{}", text_summary(&specs, &approvals)),
    }
    Ok(0)
}

async fn run_eks(g: &GlobalArgs, args: &RenderArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    // A stack without an EKS service is named before the registry is asked anything.
    eks::eks_platform(&inputs.platform, platform_path(g))?;
    let approvals = inputs.approvals(&args.filter).await?;
    let eks_inputs = EksInputs {
        catalog: &inputs.catalog,
        platform: &inputs.platform,
        platform_path: platform_path(g),
    };
    let mut templates = Templates::new();
    let models = approvals
        .iter()
        .map(|(model, approved)| eks::render_model(&mut templates, &eks_inputs, model, approved))
        .collect::<Result<Vec<_>, _>>()?;
    for (model, approved) in &approvals {
        if approved.approved.is_empty() {
            eprintln!(
                "note: {}: no approved version, so no manifests (a served set is never empty)",
                model.key
            );
        }
        if !approved.revoked.is_empty() {
            eprintln!(
                "note: {}: approval withdrawn for v{}: not in the rendered served set",
                model.key,
                approved.revoked.join(" v")
            );
        }
    }
    if let Some(dir) = &args.out {
        let written = write_manifests(dir, &models)?;
        eprintln!(
            "wrote {written} manifest(s) for {} model(s) under {}",
            models.iter().filter(|m| !m.manifests.is_empty()).count(),
            dir.display()
        );
        return Ok(0);
    }
    match g.output {
        OutputFormat::Json => print_json(&EksRenderOutput {
            format: 1,
            target: "eks",
            models: &models,
        })?,
        OutputFormat::Text => print!("{}", yaml_stream(&models)),
    }
    Ok(0)
}

/// Writes each model's manifests under `<dir>/<model>/`, and removes the files of its templates that render nothing
/// now (an HPA after `eks.autoscaling` was taken out), so that the folder is what is to be applied. A model that
/// renders nothing (no approved version) keeps its folder as it was. Returns how many files were written.
pub(super) fn write_manifests(dir: &Path, models: &[EksModel]) -> Result<usize> {
    let mut written = 0;
    for model in models.iter().filter(|m| !m.manifests.is_empty()) {
        let folder = dir.join(&model.model);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("{}: cannot create", folder.display()))?;
        for file in eks::manifest_files() {
            let path = folder.join(&file);
            match model.manifests.iter().find(|m| m.file == file) {
                Some(manifest) => {
                    std::fs::write(&path, &manifest.text)
                        .with_context(|| format!("{}: cannot write", path.display()))?;
                    written += 1;
                }
                None if path.exists() => std::fs::remove_file(&path)
                    .with_context(|| format!("{}: cannot remove", path.display()))?,
                None => {}
            }
        }
    }
    Ok(written)
}

/// Every manifest as one YAML stream, each document headed by the file `--out` would write it to.
fn yaml_stream(models: &[EksModel]) -> String {
    let documents: Vec<String> = models
        .iter()
        .flat_map(|model| {
            model.manifests.iter().map(move |m| {
                let text = m.text.trim_end();
                format!("# Source: {}/{}\n{text}\n", model.model, m.file)
            })
        })
        .collect();
    documents.join("---\n")
}

fn text_summary(
    specs: &[FunctionSpec],
    approvals: &[(&crate::catalog::Model, crate::approval::ModelApprovals)],
) -> String {
    let mut out = String::new();
    for (model, approved) in approvals {
        let mine: Vec<&FunctionSpec> = specs.iter().filter(|s| s.model == model.key).collect();
        let function = mine
            .first()
            .map(|s| s.function_name.as_str())
            .unwrap_or("-");
        out.push_str(&format!("{}  (function {function})\n", model.key));
        if mine.is_empty() {
            out.push_str("  no approved version\n");
        }
        for s in mine {
            out.push_str(&format!(
                "  {:<5} spec {}…  approved by {} ({}) at {}  {} MB, {} s\n",
                s.alias,
                &s.spec_hash[..12],
                s.approval.approved_by,
                s.approval.ticket,
                s.approval.approved_at,
                s.memory_mb,
                s.timeout_s
            ));
        }
        if !approved.revoked.is_empty() {
            out.push_str(&format!(
                "  approval revoked: v{}\n",
                approved.revoked.join(" v")
            ));
        }
        for (stage, version) in &approved.stages {
            out.push_str(&format!("  stage {stage} -> v{version}\n"));
        }
    }
    out.push_str(&format!("{} spec(s) rendered.\n", specs.len()));
    out
}
