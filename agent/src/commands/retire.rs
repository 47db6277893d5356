//! `ferry retire`: the one explicit, audited way to remove a deployed version's alias. Refused while a stage
//! alias sends it traffic. The version itself stays published (gc removes it once nothing references it).
use anyhow::{Result, anyhow, bail};

use super::Inputs;
use crate::audit::{AuditRecord, rfc3339};
use crate::aws::describe_sdk_error;
use crate::cli::{GlobalArgs, RetireArgs};
use crate::observe::observe;

pub async fn run(g: &GlobalArgs, args: &RetireArgs) -> Result<u8> {
    if args.reason.trim().is_empty() || args.ticket.trim().is_empty() {
        bail!("retire needs a non-empty --reason and --ticket: they go into the audit record");
    }
    let inputs = Inputs::load(g)?;
    let model = inputs.catalog.select(std::slice::from_ref(&args.model))?[0];
    let function = inputs
        .platform
        .function_name(&model.function)
        .map_err(anyhow::Error::msg)?
        .to_string();
    let (clients, audit) = super::connect(&inputs.platform).await;
    let alias = crate::plan::version_alias(&args.version);

    let (deployer, held) = super::begin_change(
        &clients,
        &audit,
        &inputs.platform,
        "ferry retire",
        args.lock.options(),
    )
    .await?;
    let fence = held.fence();
    super::with_lock(held, async {
        let observed = observe(&clients.lambda, &audit, &model.key, &function).await?;
        let target = observed
            .aliases
            .get(&alias)
            .ok_or_else(|| anyhow!("{function}: has no alias {alias}; nothing to retire"))?
            .function_version
            .clone();
        for other in observed.aliases.values().filter(|a| a.name != alias) {
            if other.function_version == target || other.additional.contains_key(&target) {
                bail!(
                    "{function}: stage alias {} sends traffic to {alias} (Lambda version {target}); move the stage first",
                    other.name
                );
            }
        }
        fence.check()?;
        clients
            .lambda
            .delete_alias()
            .function_name(&function)
            .name(&alias)
            .send()
            .await
            .map_err(|e| anyhow!("{function}: DeleteAlias {alias}: {}", describe_sdk_error(&e)))?;
        let now = time::OffsetDateTime::now_utc();
        let key = audit.retire_key(&model.key, &alias, &target, now);
        let record = AuditRecord {
            event: "retire",
            environment: inputs.platform.environment.clone(),
            model: model.key.clone(),
            function: function.clone(),
            version: Some(args.version.clone()),
            alias: alias.clone(),
            lambda_version: target.clone(),
            reason: Some(args.reason.clone()),
            ticket: Some(args.ticket.clone()),
            deployer: deployer.clone(),
            time: rfc3339(now),
            ..AuditRecord::default()
        };
        fence.check()?;
        audit.write(&key, &record).await?;
        println!("retired {} {alias} (was Lambda version {target}); audit s3://{}/{key}", model.key, audit.bucket());
        println!("note: while the registry still approves version {}, the next deploy creates {alias} again", args.version);
        Ok(0)
    })
    .await
}
