//! `ferry plan`: what `deploy` would do. Read-only: per function, three paginated reads (versions, aliases, audit).
use anyhow::{Context, Result};

use super::{Inputs, print_json};
use crate::approval::ModelApprovals;
use crate::audit::AuditLog;
use crate::aws::Clients;
use crate::catalog::Model;
use crate::cli::{GlobalArgs, ModelFilter, OutputFormat, PlanArgs};
use crate::observe::{ObservedFunction, observe};
use crate::plan::{ModelPlan, Plan, PlanInput, plan_model, to_text};
use crate::render::{Templates, render_model};
use crate::spec::FunctionSpec;

/// Everything the plan is made of, per model, in catalog order.
pub struct Desired<'a> {
    pub model: &'a Model,
    pub approvals: ModelApprovals,
    pub specs: Vec<FunctionSpec>,
}

/// Reads approvals and renders every spec; all input errors surface here, before any AWS call.
pub async fn desired<'a>(
    inputs: &'a Inputs,
    g: &GlobalArgs,
    filter: &ModelFilter,
) -> Result<Vec<Desired<'a>>> {
    let mut templates = Templates::new();
    let platform_path = g.platform.clone().unwrap_or_default();
    let mut out = Vec::new();
    for (model, approvals) in inputs.approvals(filter).await? {
        let specs = render_model(
            &mut templates,
            model,
            &approvals,
            &inputs.platform,
            &platform_path,
        )?;
        out.push(Desired {
            model,
            approvals,
            specs,
        });
    }
    Ok(out)
}

/// Observes every model's function concurrently.
pub async fn observe_all(
    clients: &Clients,
    audit: &AuditLog,
    desired: &[Desired<'_>],
    inputs: &Inputs,
) -> Result<Vec<ObservedFunction>> {
    let calls = desired.iter().map(|d| async {
        let function = inputs
            .platform
            .function_name(&d.model.function)
            .map_err(anyhow::Error::msg)?;
        observe(&clients.lambda, audit, &d.model.key, function)
            .await
            .with_context(|| format!("observing {}", d.model.key))
    });
    futures::future::try_join_all(calls).await
}

/// Observes every model's function and diffs the desired specs against it.
pub async fn observe_and_plan(
    clients: &Clients,
    audit: &AuditLog,
    desired: &[Desired<'_>],
    inputs: &Inputs,
    promote: bool,
) -> Result<(Vec<ObservedFunction>, Plan)> {
    let observed = observe_all(clients, audit, desired, inputs).await?;
    let plan = make_plan(desired, &observed, promote);
    Ok((observed, plan))
}

pub fn make_plan(desired: &[Desired<'_>], observed: &[ObservedFunction], promote: bool) -> Plan {
    let models: Vec<ModelPlan> = desired
        .iter()
        .zip(observed)
        .map(|(d, o)| {
            plan_model(&PlanInput {
                model: &d.model.key,
                specs: &d.specs,
                approvals: &d.approvals,
                observed: o,
                canary_weight: d.model.canary_weight,
                provisioned_concurrency: &d.model.provisioned_concurrency,
                promote,
            })
        })
        .collect();
    Plan::new(models)
}

pub async fn run(g: &GlobalArgs, args: &PlanArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let desired = desired(&inputs, g, &args.filter).await?;
    let (clients, audit) = super::connect(&inputs.platform).await;
    let (_, plan) = observe_and_plan(&clients, &audit, &desired, &inputs, args.promote).await?;
    match g.output {
        OutputFormat::Json => print_json(&plan)?,
        OutputFormat::Text => print!("{}", to_text(&plan)),
    }
    Ok(if plan.has_drift() {
        1
    } else if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}
