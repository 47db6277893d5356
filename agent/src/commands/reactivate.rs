//! `ferry reactivate`: wakes the versions Lambda made `Inactive`. An idle VPC function's versions lose their network
//! interfaces after weeks without an invoke; the next invoke then fails (`ResourceNotReadyException`) and starts a
//! restore (Lambda developer guide, "Lambda function states"). A frozen version that serves rarely meets this, so
//! this command spends that failing invoke itself and waits until the version is `Active` again. It only invokes:
//! the refused invoke runs no code, and nothing else is changed (no configuration, alias or record; no lock).
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_sdk_lambda::primitives::Blob;
use serde::Serialize;

use super::{Inputs, print_json};
use crate::cli::{GlobalArgs, OutputFormat, ReactivateArgs};
use crate::observe::{VersionState, version_detail};

const POLL: Duration = Duration::from_secs(1);

/// The one invoke that starts an Inactive version's restore: Lambda refuses it before any code runs
/// (`ResourceNotReadyException`). Sent once: the SDK would retry the 502, and a retry landing after the restore would
/// run the model on an empty request. `Some(error)` for any other answer than that refusal (or a success, when the
/// version turned Active meanwhile).
async fn wake(lambda: &aws_sdk_lambda::Client, function: &str, lv: &str) -> Option<String> {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    let answer = lambda
        .invoke()
        .function_name(function)
        .qualifier(lv)
        .payload(Blob::new("{}"))
        .customize()
        .config_override(
            aws_sdk_lambda::config::Builder::default()
                .retry_config(aws_config::retry::RetryConfig::disabled()),
        )
        .send()
        .await;
    match answer {
        Ok(_) => None,
        Err(e) if e.code() == Some("ResourceNotReadyException") => None,
        Err(e) => Some(format!(
            "the waking invoke failed: {}",
            crate::aws::describe_sdk_error(&e)
        )),
    }
}

async fn read(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    lv: &str,
) -> Result<crate::observe::VersionDetail> {
    version_detail(lambda, function, lv)
        .await
        .map_err(|e| anyhow::anyhow!("{function}: Lambda version {lv}: {e}"))
}

#[derive(Serialize)]
struct Reactivated {
    model: String,
    function: String,
    lambda_version: String,
    /// The state found, and the state at the end.
    was: VersionState,
    now: VersionState,
    /// Why it is not Active: the waking invoke's error, or Lambda's state reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    seconds: f64,
}

pub async fn run(g: &GlobalArgs, args: &ReactivateArgs) -> Result<u8> {
    let inputs = Inputs::load(g)?;
    let models = inputs.catalog.select(&args.filter.models)?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let timeout = Duration::from_secs(args.timeout);
    let mut woken = Vec::new();
    let mut checked = 0;
    for m in models {
        let (function, o) = inputs
            .observe_model(&clients, &audit, m, "reactivate")
            .await?;
        for lv in o.referenced_versions() {
            checked += 1;
            let found = read(&clients.lambda, function, &lv).await?;
            // Active: nothing to do. Pending: a restore is under way, waited for. Failed: said at once.
            let Some(was) = found.state.clone().filter(|s| {
                matches!(
                    s,
                    VersionState::Inactive | VersionState::Pending | VersionState::Failed
                )
            }) else {
                continue;
            };
            let started = Instant::now();
            let mut error = None;
            if was == VersionState::Inactive {
                error = wake(&clients.lambda, function, &lv).await;
            }
            let mut now = read(&clients.lambda, function, &lv).await?;
            while error.is_none()
                && !matches!(
                    now.state,
                    Some(VersionState::Active) | Some(VersionState::Failed)
                )
                && started.elapsed() < timeout
            {
                tokio::time::sleep(POLL).await;
                now = read(&clients.lambda, function, &lv).await?;
            }
            woken.push(Reactivated {
                model: m.key.clone(),
                function: function.to_string(),
                lambda_version: lv,
                was,
                now: now
                    .state
                    .unwrap_or_else(|| VersionState::Other("unknown".into())),
                reason: error.or(now.state_reason_code),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }
    let all_active = woken.iter().all(|w| w.now == VersionState::Active);
    match g.output {
        OutputFormat::Json => print_json(&woken)?,
        OutputFormat::Text => {
            for w in &woken {
                let reason = match (&w.reason, &w.now) {
                    (Some(r), now) if *now != VersionState::Active => format!(" ({r})"),
                    _ => String::new(),
                };
                println!(
                    "{} {:<14} Lambda version {:<4} {} -> {} in {:.1} s{reason}",
                    if w.now == VersionState::Active {
                        "ok  "
                    } else {
                        "FAIL"
                    },
                    w.model,
                    w.lambda_version,
                    w.was,
                    w.now,
                    w.seconds
                );
            }
            println!(
                "{checked} aliased version(s) checked, {} were not Active, {} still are not.",
                woken.len(),
                woken
                    .iter()
                    .filter(|w| w.now != VersionState::Active)
                    .count()
            );
        }
    }
    Ok(if all_active { 0 } else { 1 })
}
