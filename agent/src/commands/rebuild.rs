//! `plan --from-record` and `deploy --from-record`: the desired state from the audit log. One listing of the
//! environment's records, then the deploy and stage-move records live at the time, read concurrently; the registry's
//! approvals as for any plan; [`crate::rebuild::from_record`] decides per model. Everything after it (observe, plan,
//! lock, sync, apply, records) is the normal plan's and deploy's.
use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use super::Inputs;
use super::history::{read_each, time_flag};
use super::plan::Desired;
use crate::audit::{AuditLog, RecordedDeployBody, RecordedStage, key_time, rfc3339};
use crate::cli::ModelFilter;
use crate::history::{Filter, KeyedEvent, live_at};
use crate::plan::RecordedAt;
use crate::rebuild::{ModelRecord, from_record};

/// Per selected model, its desired state as the audit log says it was live at `at` (RFC 3339; default now). Every
/// record that cannot be rebuilt from is named on stderr, and then nothing is planned, nor changed.
pub async fn desired<'a>(
    inputs: &'a Inputs,
    filter: &ModelFilter,
    audit: &AuditLog,
    at: Option<&str>,
) -> Result<(Vec<Desired<'a>>, RecordedAt)> {
    let at_time = time_flag("at", at)?.unwrap_or_else(time::OffsetDateTime::now_utc);
    let approvals = inputs.approvals(filter).await?;
    let events = audit.keyed_events().await?;
    let only = Filter {
        models: approvals.iter().map(|(m, _)| m.key.clone()).collect(),
        ..Filter::default()
    };
    let live = live_at(&events, &key_time(at_time), &only);
    let (deploys, moves, mut errors) = read_live_records(audit, &live).await;
    if !errors.is_empty() {
        return Err(refused(&errors, at_time));
    }
    let none = BTreeMap::new();
    let mut out = Vec::new();
    for (model, approvals) in approvals {
        let function = inputs
            .platform
            .function_name(&model.function)
            .map_err(anyhow::Error::msg)?;
        let record = ModelRecord {
            model: &model.key,
            function,
            mount_path: &inputs.platform.efs.mount_path,
            versions: live.versions.get(&model.key).unwrap_or(&none),
            stages: live.stages.get(&model.key).unwrap_or(&none),
            deploys: &deploys,
            moves: &moves,
            approvals: &approvals,
        };
        match from_record(&record) {
            Ok(rebuilt) => out.push(Desired {
                model,
                specs: rebuilt.specs.clone(),
                approvals,
                from_record: Some(rebuilt),
            }),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(refused(&errors, at_time));
    }
    let recorded_at = RecordedAt {
        at: rfc3339(at_time),
        audit: format!("s3://{}/{}", audit.bucket(), audit.prefix()),
    };
    Ok((out, recorded_at))
}

/// Names each record on stderr, one `error:` line each, and says that nothing was changed.
fn refused(errors: &[String], at: time::OffsetDateTime) -> anyhow::Error {
    for e in errors {
        eprintln!("error: {e}");
    }
    anyhow!(
        "rebuild from the audit record at {}: {} record(s) above cannot be rebuilt from; nothing was changed",
        rfc3339(at),
        errors.len()
    )
}

type Read = (
    BTreeMap<String, RecordedDeployBody>,
    BTreeMap<String, RecordedStage>,
    Vec<String>,
);

/// The deploy and stage-move records `live` names, by key; a record that cannot be read or is not what its key
/// says is an error naming it.
async fn read_live_records(audit: &AuditLog, live: &crate::history::LiveAt) -> Read {
    let keys = |m: &BTreeMap<String, BTreeMap<String, KeyedEvent>>| {
        m.values()
            .flat_map(|e| e.values().map(|e| e.key.clone()))
            .collect::<Vec<_>>()
    };
    let deploys = read_each(keys(&live.versions), |key| async move {
        let body = audit.read_deploy_record(&key).await;
        (key, body.map_err(|e| e.to_string()))
    });
    let moves = read_each(keys(&live.stages), |key| async move {
        let body = audit.read_record(&key).await.map_err(|e| e.to_string());
        let record = body.and_then(|v| {
            serde_json::from_value::<RecordedStage>(v).map_err(|e| {
                format!(
                    "audit s3://{}/{key}: not a stage-move record: {e}",
                    audit.bucket()
                )
            })
        });
        (key, record)
    });
    let (deploys, moves) = futures::join!(deploys, moves);
    let mut errors = Vec::new();
    let deploys = by_key(deploys, &mut errors);
    let moves = by_key(moves, &mut errors);
    errors.sort();
    (deploys, moves, errors)
}

/// The records read, by key; what could not be read goes to `errors`.
fn by_key<T>(
    read: Vec<(String, Result<T, String>)>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    for (key, r) in read {
        match r {
            Ok(body) => {
                out.insert(key, body);
            }
            Err(e) => errors.push(e),
        }
    }
    out
}
