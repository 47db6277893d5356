//! The HTML export: one self-contained page for a person (no script, no font, no image, nothing fetched: its
//! Content-Security-Policy forbids every load but its own inline style), printable, one section per model version.
//! Every value is escaped: approvers and tickets are free text.
use super::{Bundle, RecordedEvent, VersionEvidence, plain, who};
use serde_json::Value;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1b1b}\
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:2px solid #1b1b1b}h3{font-size:1.05em;margin:1.2em 0 .3em}\
table{border-collapse:collapse;width:100%;margin:.2em 0}th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eee}code{font:12px ui-monospace,monospace;word-break:break-all}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}\
dt{font-weight:600}.ok{color:#0a6b2d;font-weight:600}.fail{color:#b00020;font-weight:600}.none{color:#666;font-style:italic}\
@media print{h2{break-before:page}}";

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn code(text: &str) -> String {
    if text.is_empty() {
        "<span class=\"none\">none recorded</span>".into()
    } else {
        format!("<code>{}</code>", escape(text))
    }
}

/// A table of `rows` under `heading`, or a line saying there are none.
fn table(heading: &str, columns: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut out = format!("<h3>{}</h3>\n", escape(heading));
    if rows.is_empty() {
        out += "<p class=\"none\">none recorded</p>\n";
        return out;
    }
    out += "<table><thead><tr>";
    for c in columns {
        out += &format!("<th>{}</th>", escape(c));
    }
    out += "</tr></thead><tbody>\n";
    for r in rows {
        out += "<tr>";
        for cell in r {
            out += &format!("<td>{cell}</td>");
        }
        out += "</tr>\n";
    }
    out + "</tbody></table>\n"
}

/// The id of a version's section: the model and alias, with anything but letters, digits and `-` as `_`.
fn anchor(v: &VersionEvidence) -> String {
    format!("{}-{}", v.model, v.alias)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn render(bundle: &Bundle) -> String {
    let env = escape(&bundle.environment);
    let window = match (&bundle.since, &bundle.until) {
        (None, None) => "every record".to_string(),
        (s, u) => format!(
            "from {} until {}",
            escape(s.as_deref().unwrap_or("the first record")),
            escape(u.as_deref().unwrap_or("the last record"))
        ),
    };
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Ferry evidence: {env}</title>\n<style>{STYLE}</style></head><body>\n\
         <header><h1>Evidence bundle: environment {env}</h1>\n<dl>\
         <dt>Window</dt><dd>{window}</dd>\
         <dt>Model versions</dt><dd>{}</dd>\
         <dt>Bundle SHA-256</dt><dd>{}</dd>\
         <dt>Format</dt><dd>{}</dd></dl>\n\
         <p>Everything below is read from Ferry's write-once audit records, each row naming its record's key. \
         The digest is the SHA-256 of the bundle's canonical JSON: <code>ferry audit export --format json</code> \
         over the same records gives the same digest.</p></header>\n",
        bundle.versions.len(),
        code(&bundle.digest()),
        escape(super::FORMAT),
    );
    if !bundle.versions.is_empty() {
        out += "<nav><h3>Contents</h3><ul>\n";
        for v in &bundle.versions {
            out += &format!(
                "<li><a href=\"#{}\">{} {}</a></li>\n",
                anchor(v),
                escape(&v.model),
                escape(&v.alias)
            );
        }
        out += "</ul></nav>\n";
    }
    for v in &bundle.versions {
        out += &version_section(v);
    }
    let events = bundle
        .environment_events
        .iter()
        .map(|e| {
            vec![
                escape(&plain(&e.time)),
                escape(e.event.as_str()),
                escape(&plain(&e.reason)),
                escape(&who(&e.deployer)),
                code(&e.key),
            ]
        })
        .collect();
    out += "<section><h2>Environment</h2>\n";
    out += &table(
        "Locks removed by force or taken over",
        &["Time", "Event", "Reason", "By", "Record"],
        events,
    );
    out + "</section>\n</body></html>\n"
}

fn version_section(v: &VersionEvidence) -> String {
    let mut out = format!(
        "<section id=\"{}\"><h2>{} {} (registry version {})</h2>\n",
        anchor(v),
        escape(&v.model),
        escape(&v.alias),
        escape(&v.version)
    );
    let status = match v.retirements.last() {
        Some(r) => format!("retired at {}", escape(&plain(&r.time))),
        None => "live, as far as the records go".into(),
    };
    out += &format!("<p>Status: {status}.</p>\n");
    let approval = v
        .approval
        .as_ref()
        .map(|a| {
            vec![vec![
                escape(&plain(&a["approved_by"])),
                escape(&plain(&a["approved_at"])),
                escape(&plain(&a["ticket"])),
                match plain(&a["meaning"]) {
                    m if m.is_empty() => "<span class=\"none\">not given</span>".into(),
                    m => escape(&m),
                },
                code(&plain(&a["artifact_sha256"])),
            ]]
        })
        .unwrap_or_default();
    out += &table(
        "Approval (electronic signature)",
        &[
            "Signed by",
            "Signed at",
            "Ticket",
            "Meaning",
            "Approved artifact SHA-256",
        ],
        approval,
    );
    let deploys = v
        .deploys
        .iter()
        .map(|d| {
            vec![
                escape(&plain(&d.time)),
                escape(&plain(&d.lambda_version)),
                code(&plain(&d.spec_hash)),
                code(&plain(&d.code_sha256)),
                code(&plain(&d.artifact_digest)),
                escape(&d.runtime()),
                escape(&who(&d.deployer)),
                code(&d.key),
            ]
        })
        .collect();
    out += &table(
        "Deploys",
        &[
            "Time",
            "Lambda version",
            "Spec hash",
            "Code SHA-256",
            "Artifact SHA-256",
            "Runtime",
            "By",
            "Record",
        ],
        deploys,
    );
    let periods = v
        .stage_periods
        .iter()
        .map(|p| {
            vec![
                escape(&p.stage),
                escape(&plain(&p.from)),
                p.until
                    .as_ref()
                    .map(|u| escape(&plain(u)))
                    .unwrap_or_else(|| "<span class=\"none\">still serving</span>".into()),
                escape(&format!("{:.0}%", p.share * 100.0)),
                escape(&p.lambda_version),
                escape(&who(&p.deployer)),
                code(&p.key),
            ]
        })
        .collect();
    out += &table(
        "Stage periods",
        &[
            "Stage",
            "From",
            "Until",
            "Share of traffic",
            "Lambda version",
            "Moved by",
            "Record",
        ],
        periods,
    );
    let events: Vec<&RecordedEvent> = v
        .retirements
        .iter()
        .chain(&v.endpoints)
        .chain(&v.deletions)
        .collect();
    out += &table(
        "Retirement, endpoints and deletions",
        &["Time", "Event", "What", "By", "Record"],
        events
            .iter()
            .map(|e| {
                vec![
                    escape(&plain(&e.time)),
                    escape(e.event.as_str()),
                    escape(&e.summary),
                    escape(&who(&e.deployer)),
                    code(&e.key),
                ]
            })
            .collect(),
    );
    let checks = v
        .verifications
        .iter()
        .map(|c| {
            let findings: Vec<String> = c
                .findings
                .iter()
                .map(|f| {
                    format!(
                        "{} {}",
                        if f["ok"] == Value::Bool(true) {
                            "ok"
                        } else {
                            "FAIL"
                        },
                        escape(&plain(&f["detail"]))
                    )
                })
                .collect();
            vec![
                escape(&plain(&c.time)),
                if c.ok {
                    "<span class=\"ok\">ok</span>".into()
                } else {
                    "<span class=\"fail\">FAIL</span>".into()
                },
                findings.join("<br>"),
                escape(&who(&c.deployer)),
                code(&c.key),
            ]
        })
        .collect();
    out += &table(
        "Verifications",
        &["Time", "Result", "Checks", "By", "Record"],
        checks,
    );
    out + "</section>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Window;
    use crate::evidence::tests::story;

    #[test]
    fn hostile_text_is_shown_as_text_and_the_page_loads_nothing() {
        let mut log = story();
        log.records
            .get_mut("risk/v2/20261102T100000.000Z-deploy-lv2.json")
            .unwrap()["approval"]["approved_by"] =
            "<script>alert(1)</script> \"O'Brien\" & Zoë".into();
        let page = render(&log.bundle(Window::default()));
        assert!(!page.contains("<script"));
        assert!(
            page.contains(
                "&lt;script&gt;alert(1)&lt;/script&gt; &quot;O&#39;Brien&quot; &amp; Zoë"
            )
        );
        assert!(page.contains("default-src 'none'"));
        for loads in ["src=", "href=\"http", "@import", "url("] {
            assert!(!page.contains(loads), "{loads}");
        }
    }

    #[test]
    fn each_version_has_its_section_with_what_an_auditor_asks() {
        let b = story().bundle(Window::default());
        let page = render(&b);
        assert!(page.contains(&b.digest()));
        assert!(page.contains("<section id=\"risk-v1\">"));
        assert!(page.contains("retired at 2026-11-04T10:00:00Z"));
        assert!(page.contains("approved for clinical use"));
        assert!(page.contains("<td>10%</td>"));
        assert!(page.contains("still serving"));
    }
}
