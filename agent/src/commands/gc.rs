//! `ferry gc`: published versions that no alias references take code storage (75 GB per region). Lists them,
//! and with `--apply` deletes them under the deploy lock, audited. An aliased version is never touched.
use anyhow::{Result, anyhow};
use serde::Serialize;

use super::{Inputs, print_json};
use crate::audit::{AuditRecord, Deployer, rfc3339};
use crate::aws::describe_sdk_error;
use crate::cli::{GcArgs, GlobalArgs, OutputFormat};
use crate::lock::Fence;

#[derive(Serialize)]
struct Unreferenced {
    model: String,
    function: String,
    lambda_versions: Vec<String>,
    deleted: bool,
}

pub async fn run(g: &GlobalArgs, args: &GcArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let models = inputs.catalog.select(&args.filter.models)?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let mut held = None;
    let mut deployer = Deployer::default();
    if args.apply {
        let (who, lock) = super::begin_change(
            &clients,
            &audit,
            &inputs.platform,
            "ferry gc --apply",
            args.lock.options(),
        )
        .await?;
        deployer = who;
        held = Some(lock);
    }
    let fence = held
        .as_ref()
        .map(|h| h.fence())
        .unwrap_or_else(Fence::unlocked);
    let work = async {
        let mut rows = Vec::new();
        for m in models {
            let (function, o) = inputs.observe_model(&clients, &audit, m, "gc").await?;
            let function = function.to_string();
            let referenced = o.referenced_versions();
            let unreferenced: Vec<String> = o
                .versions
                .keys()
                .filter(|v| !referenced.contains(*v))
                .cloned()
                .collect();
            if args.apply {
                for lv in &unreferenced {
                    fence.check()?;
                    clients
                        .lambda
                        .delete_function()
                        .function_name(&function)
                        .qualifier(lv)
                        .send()
                        .await
                        .map_err(|e| {
                            anyhow!(
                                "{function}: DeleteFunction version {lv}: {}",
                                describe_sdk_error(&e)
                            )
                        })?;
                    let now = time::OffsetDateTime::now_utc();
                    let record = AuditRecord {
                        event: "gc",
                        environment: inputs.platform.environment.clone(),
                        model: m.key.clone(),
                        function: function.clone(),
                        version: o
                            .versions
                            .get(lv)
                            .and_then(|v| v.ferry.as_ref())
                            .map(|f| f.version.clone()),
                        lambda_version: lv.clone(),
                        code_sha256: o.versions.get(lv).map(|v| v.code_sha256.clone()),
                        spec_hash: o
                            .versions
                            .get(lv)
                            .and_then(|v| v.ferry.as_ref())
                            .map(|f| f.spec_hash.to_string()),
                        reason: Some("no alias references this version".into()),
                        deployer: deployer.clone(),
                        time: rfc3339(now),
                        ..AuditRecord::default()
                    };
                    fence.check()?;
                    audit.write(&audit.gc_key(&m.key, lv, now), &record).await?;
                }
            }
            rows.push(Unreferenced {
                model: m.key.clone(),
                function,
                lambda_versions: unreferenced,
                deleted: args.apply,
            });
        }
        Ok::<_, anyhow::Error>(rows)
    };
    let rows = match held {
        Some(held) => super::with_lock(held, work).await?,
        None => work.await?,
    };
    match g.output {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Text => {
            for r in &rows {
                let verb = if r.deleted { "deleted" } else { "unreferenced" };
                let list = if r.lambda_versions.is_empty() {
                    "none".into()
                } else {
                    r.lambda_versions.join(" ")
                };
                println!("{}  (function {})  {verb}: {list}", r.model, r.function);
            }
            if !args.apply && rows.iter().any(|r| !r.lambda_versions.is_empty()) {
                println!(
                    "Run `ferry gc --apply` to delete them. Aliased versions are never touched."
                );
            }
        }
    }
    Ok(0)
}
