//! `ferry history`: one listing of the audit prefix, then the records the question needs, read concurrently.
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::print_json;
use crate::audit::{AuditLog, key_time};
use crate::cli::{GlobalArgs, HistoryArgs, OutputFormat};
use crate::history::{EventKind, Filter, KeyedEvent, live_at, parse_time, timeline};

/// Records read at once.
const READS_IN_FLIGHT: usize = 32;

#[derive(Serialize)]
pub(super) struct Event {
    #[serde(flatten)]
    pub(super) event: KeyedEvent,
    pub(super) record: Value,
}

pub async fn run(g: &GlobalArgs, args: &HistoryArgs) -> Result<u8> {
    let platform = crate::platform::Platform::load(g.platform.as_deref())?;
    let filter = Filter {
        models: args.filter.models.clone(),
        stage: args.stage.clone(),
        since: time_flag("since", args.since.as_deref())?.map(key_time),
        until: time_flag("until", args.until.as_deref())?.map(key_time),
    };
    let at = time_flag("at", args.at.as_deref())?.map(key_time);
    let (_, audit) = super::connect(g, &platform).await;
    let events: Vec<KeyedEvent> = audit.keyed_events().await?;
    match at {
        None => {
            let chosen = timeline(events, &filter);
            let read = read_all(&audit, chosen).await?;
            match g.output {
                OutputFormat::Json => print_json(&read)?,
                OutputFormat::Text => {
                    for e in &read {
                        println!("{}", event_line(e));
                    }
                    println!("{} event(s).", read.len());
                }
            }
        }
        Some(at) => {
            let live = live_at(&events, &at, &filter);
            let mut wanted: Vec<KeyedEvent> = live
                .stages
                .values()
                .chain(live.versions.values())
                .chain(live.eks.values())
                .flat_map(|m| m.values().cloned())
                .collect();
            wanted.sort_by(|a, b| a.key.cmp(&b.key));
            wanted.dedup();
            let read = read_all(&audit, wanted).await?;
            let by_key: BTreeMap<&str, &Value> = read
                .iter()
                .map(|e| (e.event.key.as_str(), &e.record))
                .collect();
            let mut rows = Vec::new();
            for (model, stages) in &live.stages {
                for (stage, e) in stages {
                    let record = by_key[e.key.as_str()];
                    let version = record["version"].as_str().unwrap_or("?");
                    // The approval of the version the stage served: its deploy record live then.
                    let deploy = live
                        .versions
                        .get(model)
                        .and_then(|v| v.get(&format!("v{version}")))
                        .map(|d| by_key[d.key.as_str()]);
                    rows.push(live_row(model, stage, record, deploy));
                }
            }
            for (model, versions) in &live.versions {
                for (alias, e) in versions {
                    let record = by_key[e.key.as_str()];
                    rows.push(live_row(model, alias, record, Some(record)));
                }
            }
            for (model, versions) in &live.eks {
                for (alias, e) in versions {
                    rows.push(eks_row(model, alias, by_key[e.key.as_str()]));
                }
            }
            match g.output {
                OutputFormat::Json => {
                    print_json(&serde_json::json!({"at": args.at, "live": rows}))?
                }
                OutputFormat::Text => {
                    println!("Live at {}:", args.at.as_deref().unwrap_or_default());
                    for r in &rows {
                        println!("{}", r["line"].as_str().unwrap_or_default());
                    }
                    if rows.is_empty() {
                        println!("nothing (no record at or before that time)");
                    }
                }
            }
        }
    }
    Ok(0)
}

/// A `--<flag> TIME` option (RFC 3339), the error naming the flag and the value.
pub(super) fn time_flag(flag: &str, t: Option<&str>) -> Result<Option<time::OffsetDateTime>> {
    t.map(parse_time)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--{flag} {e}"))
}

/// Each of `events` with its record, read concurrently; the first that cannot be read is the error.
pub(super) async fn read_all(audit: &AuditLog, events: Vec<KeyedEvent>) -> Result<Vec<Event>> {
    read_each(events, |event| async move {
        let record = audit
            .read_record(&event.key)
            .await
            .with_context(|| format!("reading audit record {}", event.key))?;
        Ok::<_, anyhow::Error>(Event { event, record })
    })
    .await
    .into_iter()
    .collect()
}

/// `read` of each item, [`READS_IN_FLIGHT`] at a time, the answers in the items' order.
pub(super) async fn read_each<I, F: Future>(
    items: Vec<I>,
    read: impl FnMut(I) -> F,
) -> Vec<F::Output> {
    futures::stream::iter(items)
        .map(read)
        .buffered(READS_IN_FLIGHT)
        .collect()
        .await
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("?").to_string()
}

fn approval(record: &Value) -> String {
    let a = &record["approval"];
    if a.is_null() {
        return String::new();
    }
    format!(
        ", approved by {} at {} ({}){}",
        text(a, "approved_by"),
        text(a, "approved_at"),
        text(a, "ticket"),
        record["artifact_digest"]
            .as_str()
            .map(|d| format!(", artifacts sha256 {d}"))
            .unwrap_or_default()
    )
}

fn deployer(record: &Value) -> String {
    record["deployer"]["aws_identity"]
        .as_str()
        .map(|d| format!(" by {d}"))
        .unwrap_or_default()
}

fn event_line(e: &Event) -> String {
    let r = &e.record;
    let model = e.event.model.as_deref().unwrap_or("-");
    let alias = e.event.alias.as_deref().unwrap_or("-");
    let lv = e.event.lambda_version.as_deref().unwrap_or("-");
    let what = match e.event.kind {
        EventKind::Deploy => format!("created at Lambda version {lv}{}", approval(r)),
        EventKind::Retire => format!(
            "retired (was Lambda version {lv}): {} ({})",
            text(r, "reason"),
            text(r, "ticket")
        ),
        EventKind::StageMove => format!(
            "-> v{} (Lambda version {}){}{}",
            text(r, "version"),
            text(r, "lambda_version"),
            r["routing"]
                .as_object()
                .map(|w| format!(" routing {}", Value::Object(w.clone())))
                .unwrap_or_default(),
            r["reason"]
                .as_str()
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default()
        ),
        EventKind::Gc => format!("Lambda version {lv} deleted: {}", text(r, "reason")),
        EventKind::RouteCreate => format!(
            "route {} -> integration {}",
            r["route"]["route_key"].as_str().unwrap_or("?"),
            r["route"]["integration_id"].as_str().unwrap_or("?")
        ),
        EventKind::FunctionUrlCreate => format!("function URL {}", text(r, "function_url")),
        EventKind::FunctionUrlDelete => format!(
            "function URL {} deleted: {} ({})",
            text(r, "function_url"),
            text(r, "reason"),
            text(r, "ticket")
        ),
        EventKind::RouteDelete => format!(
            "route {} deleted: {} ({})",
            r["route"]["route_key"].as_str().unwrap_or("?"),
            text(r, "reason"),
            text(r, "ticket")
        ),
        EventKind::Unlock | EventKind::LockTakeover => text(r, "reason"),
        EventKind::EksServe | EventKind::EksRetire | EventKind::EksRollout => {
            crate::history::eks_summary(&e.event.kind, r)
        }
        EventKind::Verification => {
            let findings = r["findings"].as_array().map(Vec::len).unwrap_or(0);
            let failed = r["findings"]
                .as_array()
                .map(|f| f.iter().filter(|f| f["ok"] != true).count())
                .unwrap_or(0);
            format!(
                "verified: {} ({findings} check(s), {failed} failed)",
                if r["ok"] == true { "ok" } else { "FAIL" }
            )
        }
    };
    format!(
        "{}  {:<13} {model:<16} {alias:<12} {what}{}",
        text(r, "time"),
        e.event.kind.as_str(),
        deployer(r)
    )
}

/// A version the EKS service served at the time: its `eks-serve` record.
fn eks_row(model: &str, alias: &str, record: &Value) -> Value {
    let line = format!(
        "{model:<16} {alias:<12} served on EKS by {}/{}, since {}{}{}",
        text(&record["eks"], "namespace"),
        text(&record["eks"], "deployment"),
        text(record, "time"),
        deployer(record),
        approval(record)
    );
    serde_json::json!({
        "model": model, "alias": alias, "kind": "eks", "version": record["version"],
        "deployment": record["eks"]["deployment"], "since": record["time"], "approval": record["approval"],
        "artifact_digest": record["artifact_digest"], "line": line,
    })
}

fn live_row(model: &str, alias: &str, record: &Value, deploy: Option<&Value>) -> Value {
    let stage = record["event"] == "stage-move";
    let line = if stage {
        format!(
            "{model:<16} {alias:<12} v{} (Lambda version {}{}), moved {}{}{}",
            text(record, "version"),
            text(record, "lambda_version"),
            record["routing"]
                .as_object()
                .map(|w| format!(", routing {}", Value::Object(w.clone())))
                .unwrap_or_default(),
            text(record, "time"),
            deployer(record),
            deploy.map(approval).unwrap_or_default()
        )
    } else {
        format!(
            "{model:<16} {alias:<12} Lambda version {}, deployed {}{}{}",
            text(record, "lambda_version"),
            text(record, "time"),
            deployer(record),
            approval(record)
        )
    };
    serde_json::json!({
        "model": model, "alias": alias, "kind": if stage { "stage" } else { "version" },
        "version": record["version"], "lambda_version": record["lambda_version"], "routing": record["routing"],
        "since": record["time"], "approval": deploy.map(|d| d["approval"].clone()),
        "artifact_digest": deploy.map(|d| d["artifact_digest"].clone()), "line": line,
    })
}
