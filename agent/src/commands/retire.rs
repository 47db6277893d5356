//! `ferry retire`: the one explicit, audited way to remove a deployed version's alias. Refused while a stage
//! alias sends it traffic. The version itself stays published (gc removes it once nothing references it). Where the
//! platform has an HTTP API, the alias's route (with its integration and invoke permission) goes first, recorded.
use anyhow::{Result, anyhow, bail};

use super::Inputs;
use crate::audit::{AuditRecord, RouteEvent, RouteRecord, rfc3339};
use crate::aws::describe_sdk_error;
use crate::catalog::Endpoint;
use crate::cli::{GlobalArgs, RetireArgs};
use crate::function_url::{delete_url, observe_urls};
use crate::http_api::{HttpApi, RouteTarget, observe_api};
use crate::lock::Fence;
use crate::observe::{ObservedFunction, observe};
use crate::routes::{FunctionArn, RouteKey, RouteState};

pub async fn run(g: &GlobalArgs, args: &RetireArgs) -> Result<u8> {
    if args.reason.trim().is_empty() || args.ticket.trim().is_empty() {
        bail!("retire needs a non-empty --reason and --ticket: they go into the audit record");
    }
    if args.target == crate::cli::Target::Eks {
        return super::eks::retire(g, args).await;
    }
    let inputs = Inputs::load(g)?;
    let model = inputs.catalog.select(std::slice::from_ref(&args.model))?[0];
    let function = inputs
        .platform
        .function_name(&model.function)
        .map_err(anyhow::Error::msg)?
        .to_string();
    let (clients, audit) = super::connect(g, &inputs.platform).await;
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
        let now = || time::OffsetDateTime::now_utc();
        let record = |event, route, now| AuditRecord {
            event,
            environment: inputs.platform.environment.clone(),
            model: model.key.clone(),
            function: function.clone(),
            version: Some(args.version.clone()),
            alias: alias.clone(),
            lambda_version: target.clone(),
            route,
            reason: Some(args.reason.clone()),
            ticket: Some(args.ticket.clone()),
            deployer: deployer.clone(),
            time: rfc3339(now),
            ..AuditRecord::default()
        };
        // The route (or URL) goes first: it stops answering before the alias it invokes is gone.
        if model.endpoint == Endpoint::FunctionUrl {
            if let Some(url) = observe_urls(&clients.lambda, &function).await.map_err(|e| anyhow!("{function}: {e}"))?.remove(&alias) {
                delete_url(&clients.lambda, &fence, &function, &alias).await.map_err(|e| anyhow!("{function}: {e}"))?;
                let at = now();
                let key = audit.url_key(&model.key, &alias, RouteEvent::Delete, at);
                fence.check()?;
                audit.write(&key, &AuditRecord { function_url: Some(url.url.clone()), ..record("function-url-delete", None, at) }).await?;
                println!("removed function URL {} of {} {alias}; audit s3://{}/{key}", url.url, model.key, audit.bucket());
            }
        } else if let Some(api) = HttpApi::of_platform(&clients, &inputs.platform) {
            let route = RouteRetirement { api: &api, model: &model.key, function: &function, alias: &alias };
            if let Some(deleted) = route.delete(&observed, &fence).await? {
                let (at, route_key) = (now(), deleted.route_key.clone());
                let key = audit.route_key(&model.key, &alias, RouteEvent::Delete, at);
                fence.check()?;
                audit.write(&key, &record("route-delete", Some(deleted), at)).await?;
                println!("removed route {route_key} of {} {alias}; audit s3://{}/{key}", model.key, audit.bucket());
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
        let at = now();
        let key = audit.retire_key(&model.key, &alias, &target, at);
        fence.check()?;
        audit.write(&key, &record("retire", None, at)).await?;
        println!("retired {} {alias} (was Lambda version {target}); audit s3://{}/{key}", model.key, audit.bucket());
        println!("note: while the registry still approves version {}, the next deploy creates {alias} again", args.version);
        Ok(0)
    })
    .await
}

/// The HTTP route of an alias being retired.
struct RouteRetirement<'a> {
    api: &'a HttpApi,
    model: &'a str,
    function: &'a str,
    alias: &'a str,
}

impl RouteRetirement<'_> {
    /// Deletes the alias's route when Ferry created it (route, integration, permission), and says what it was;
    /// refuses a route someone else owns (the alias would be gone under it). `None` when the alias has no route.
    async fn delete(
        &self,
        observed: &ObservedFunction,
        fence: &Fence,
    ) -> Result<Option<RouteRecord>> {
        let (model, alias) = (self.model, self.alias);
        let arn = observed
            .function_arn
            .as_deref()
            .and_then(FunctionArn::parse)
            .ok_or_else(|| {
                anyhow!(
                    "{}: lists no ARN Ferry can read, so its route cannot be found",
                    self.function
                )
            })?;
        let api = observe_api(&self.api.apigw, &self.api.api_id).await?;
        let key = RouteKey::new(model, alias);
        let (route_id, integration_id) = match api.route_state(model, alias, &arn.alias_arn(alias))
        {
            RouteState::Missing { .. } => return Ok(None),
            RouteState::Serving { ferrys: false, .. } => bail!(
                "{}: route {key} on HTTP API {} is not Ferry's (Terraform's `routes` input of the http-api module, or made by hand): remove it there first, then retire {alias}",
                self.function,
                self.api.api_id
            ),
            RouteState::Elsewhere { reason } => bail!(
                "{}: {reason}: resolve it before retiring {alias}",
                self.function
            ),
            RouteState::Serving {
                route_id,
                integration_id,
                ..
            } => (route_id, integration_id),
        };
        let target = RouteTarget {
            function: &arn,
            model,
            alias,
        };
        let record = self.api.record(&target, &route_id, &integration_id);
        self.api
            .delete_route(fence, &target, &route_id, &integration_id)
            .await
            .map_err(|e| anyhow!("{}: {e}", self.function))?;
        Ok(Some(record))
    }
}
