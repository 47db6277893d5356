//! `ferry render`: what should be deployed, one FunctionSpec per approved version. No AWS call.
use anyhow::{Context, Result};
use serde::Serialize;

use super::{Inputs, print_json};
use crate::cli::{GlobalArgs, OutputFormat, RenderArgs};
use crate::render::{Templates, render_model, spec_file};
use crate::spec::FunctionSpec;

/// `--output json`: a stable document (format 1).
#[derive(Serialize)]
struct RenderOutput<'a> {
    format: u32,
    specs: &'a [FunctionSpec],
}

pub async fn run(g: &GlobalArgs, args: &RenderArgs) -> Result<u8> {
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

fn platform_path(g: &GlobalArgs) -> &std::path::Path {
    g.platform
        .as_deref()
        .unwrap_or(std::path::Path::new("<platform>"))
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
