//! `ferry status`: what is live per model function: version aliases, the Lambda version and spec behind each,
//! stage aliases with their traffic split, and each aliased version's state (an idle one is `Inactive`). A version
//! alias is read with plan's and verify's own rule (`ObservedFunction::version_alias_target`): its drift is shown.
use anyhow::Result;
use serde::Serialize;

use super::{Inputs, print_json};
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::observe::{INACTIVE_NOTE, ObservedFunction, VersionState, version_detail};
use crate::plan::is_version_alias;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct ModelStatus {
    model: String,
    function: String,
    aliases: Vec<AliasStatus>,
    unreferenced_versions: Vec<String>,
}

#[derive(Serialize)]
struct AliasStatus {
    alias: String,
    lambda_version: String,
    registry_version: Option<String>,
    spec_hash: Option<String>,
    additional_weights: std::collections::BTreeMap<String, f64>,
    audited: bool,
    /// For a version alias, why it is drift (what `plan` refuses to go on from and `verify` fails on).
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<String>,
    /// The Lambda version's state (`Active`, `Inactive`, ...), from GetFunction: listings leave it out.
    state: Option<VersionState>,
}

pub async fn run(g: &GlobalArgs, args: &StatusArgs) -> Result<u8> {
    if args.target == crate::cli::Target::Eks {
        return super::eks::status(g, &args.filter).await;
    }
    let filter = &args.filter;
    let inputs = Inputs::load(g)?;
    let models = inputs.catalog.select(&filter.models)?;
    let (clients, audit) = super::connect(g, &inputs.platform).await;
    let mut out = Vec::new();
    for m in models {
        let (function, o) = inputs.observe_model(&clients, &audit, m, "status").await?;
        let mut states = BTreeMap::new();
        for lv in o.referenced_versions() {
            // A state that cannot be read (a role without lambda:GetFunction) is shown, not fatal.
            let state = match version_detail(&clients.lambda, function, &lv).await {
                Ok(detail) => detail.state,
                Err(e) => Some(VersionState::Other(format!("state unknown ({e})"))),
            };
            states.insert(lv, state);
        }
        out.push(model_status(&m.key, &o, &states));
    }
    match g.output {
        OutputFormat::Json => print_json(&out)?,
        OutputFormat::Text => print!("{}", to_text(&out)),
    }
    Ok(0)
}

fn model_status(
    model: &str,
    o: &ObservedFunction,
    states: &BTreeMap<String, Option<VersionState>>,
) -> ModelStatus {
    let referenced = o.referenced_versions();
    let aliases = o
        .aliases
        .values()
        .map(|a| {
            let ferry = o
                .versions
                .get(&a.function_version)
                .and_then(|v| v.ferry.clone());
            AliasStatus {
                alias: a.name.clone(),
                lambda_version: a.function_version.clone(),
                registry_version: ferry.as_ref().map(|f| f.version.clone()),
                spec_hash: ferry.map(|f| f.spec_hash.to_string()),
                additional_weights: a.additional.clone(),
                audited: o.recorded_version(&a.name) == Some(a.function_version.as_str()),
                drift: is_version_alias(&a.name)
                    .and_then(|version| o.version_alias_target(a, model, version).err()),
                state: states.get(&a.function_version).cloned().flatten(),
            }
        })
        .collect();
    ModelStatus {
        model: model.into(),
        function: o.function_name.clone(),
        aliases,
        unreferenced_versions: o
            .versions
            .keys()
            .filter(|v| !referenced.contains(*v))
            .cloned()
            .collect(),
    }
}

fn to_text(models: &[ModelStatus]) -> String {
    let mut out = String::new();
    for m in models {
        out.push_str(&format!("{}  (function {})\n", m.model, m.function));
        if m.aliases.is_empty() {
            out.push_str("  nothing deployed\n");
        }
        for a in &m.aliases {
            let target = a
                .registry_version
                .as_ref()
                .map(|v| format!("registry v{v}"))
                .unwrap_or_else(|| "not published by Ferry".into());
            let split = a
                .additional_weights
                .iter()
                .map(|(v, w)| format!(", {:.0}% on Lambda version {v}", w * 100.0))
                .collect::<String>();
            let spec = a
                .spec_hash
                .as_ref()
                .map(|h| format!("  spec {}…", &h[..12]))
                .unwrap_or_default();
            let audited = if is_version_alias(&a.alias).is_some() && !a.audited {
                "  (no audit record)"
            } else {
                ""
            };
            let drift = a
                .drift
                .as_ref()
                .map(|why| format!("  drift: {why}"))
                .unwrap_or_default();
            let state = match &a.state {
                Some(VersionState::Inactive) => {
                    format!("  {INACTIVE_NOTE}")
                }
                Some(VersionState::Active) | None => String::new(),
                Some(other) => format!("  {other}"),
            };
            out.push_str(&format!(
                "  {:<12} -> Lambda version {:<4} {target}{split}{spec}{audited}{drift}{state}\n",
                a.alias, a.lambda_version
            ));
        }
        if !m.unreferenced_versions.is_empty() {
            out.push_str(&format!(
                "  unreferenced versions: {} (`ferry gc` lists them)\n",
                m.unreferenced_versions.join(" ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{alias, publish, record, spec};

    #[test]
    fn a_stage_alias_starting_with_v_is_no_version_alias_and_a_drifted_version_alias_says_why() {
        // Given v1 deployed and recorded, a stage named `validation` on it, and v2 pointing at a version published
        // by hand,
        let mut o = ObservedFunction {
            function_name: "f".into(),
            ..Default::default()
        };
        publish(&mut o, "1", Some(&spec("1", 1024)));
        publish(&mut o, "2", None);
        alias(&mut o, "v1", "1");
        record(&mut o, "v1", "1");
        alias(&mut o, "validation", "1");
        alias(&mut o, "v2", "2");
        // when its status is shown,
        let text = to_text(&[model_status("risk", &o, &BTreeMap::new())]);
        let line = |alias: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{alias} ")))
                .unwrap_or_else(|| panic!("no line for {alias}: {text}"))
                .to_string()
        };
        // then the stage is not taken for a version alias without its record,
        assert!(!line("validation").contains("no audit record"), "{text}");
        assert!(!line("validation").contains("drift"), "{text}");
        assert!(
            !line("v1").contains("drift") && !line("v1").contains("no audit record"),
            "{text}"
        );
        // and v2's drift is named as plan and verify name it.
        assert!(
            line("v2").contains("(no audit record)  drift: points at Lambda version 2, which was not published by Ferry"),
            "{text}"
        );
    }
}
