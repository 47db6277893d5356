//! `ferry audit export`: one listing of the audit prefix, the records of the models asked for read concurrently,
//! the bundle built ([`crate::evidence`]) and written in the format asked for, with its digests.
use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::history::time_flag;
use crate::audit::key_time;
use crate::cli::{ExportArgs, ExportFormat, GlobalArgs};
use crate::evidence::{self, Window};
use crate::history::{Filter, KeyedEvent, timeline};

pub async fn run(g: &GlobalArgs, args: &ExportArgs) -> Result<u8> {
    let platform = crate::platform::Platform::load(g.platform.as_deref())?;
    let window = Window {
        since: time_flag("since", args.since.as_deref())?.map(key_time),
        until: time_flag("until", args.until.as_deref())?.map(key_time),
    };
    if let (Some(s), Some(u)) = (&window.since, &window.until)
        && s > u
    {
        bail!("--since is after --until: the window holds no time");
    }
    let (_, audit) = super::connect(g, &platform).await;
    let all: Vec<KeyedEvent> = audit.keyed_events().await?;
    for m in &args.filter.models {
        if !all.iter().any(|e| e.model.as_ref() == Some(m)) {
            bail!(
                "--model {m}: the audit log of environment {} holds no record of it",
                platform.environment
            );
        }
    }
    // Every record up to the window's end: a version live in the window is shown with its whole story.
    let filter = Filter {
        models: args.filter.models.clone(),
        until: window.until.clone(),
        ..Filter::default()
    };
    let chosen = timeline(all, &filter);
    let read = super::history::read_all(&audit, chosen.clone()).await?;
    let records: BTreeMap<String, serde_json::Value> =
        read.into_iter().map(|e| (e.event.key, e.record)).collect();
    let bundle = evidence::build(
        &platform.environment,
        (args.since.clone(), args.until.clone()),
        &window,
        &chosen,
        &records,
    );
    let body = match args.format {
        ExportFormat::Json => bundle.to_json(),
        ExportFormat::Csv => evidence::csv::render(&bundle),
        ExportFormat::Html => evidence::html::render(&bundle),
    };
    let file_sha256 = hex::encode(Sha256::digest(body.as_bytes()));
    match &args.out {
        None => print!("{body}"),
        Some(path) => {
            std::fs::write(path, &body).with_context(|| format!("writing {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let sidecar = path.with_file_name(format!("{name}.sha256"));
            std::fs::write(&sidecar, format!("{file_sha256}  {name}\n"))
                .with_context(|| format!("writing {}", sidecar.display()))?;
        }
    }
    eprintln!(
        "{} model version(s), {} record(s); bundle sha256 {}; file sha256 {file_sha256}{}",
        bundle.versions.len(),
        records.len(),
        bundle.digest(),
        args.out
            .as_ref()
            .map(|p| format!(" (in {}.sha256)", p.display()))
            .unwrap_or_default()
    );
    Ok(0)
}
