//! The CSV export (RFC 4180: comma-separated, CRLF line ends, fields quoted when they hold a comma, a quote or a
//! line break): one row per record about a version, for a spreadsheet or a document-control system.
//!
//! A spreadsheet runs a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula, and
//! approvers and tickets are free text: such a field is written with a leading `'` (OWASP's advice on CSV injection),
//! so a value like `=HYPERLINK(...)` is shown, never run. The JSON export and the digest keep every value as recorded.
use super::{Bundle, VersionEvidence, plain, who};
use serde_json::Value;

const COLUMNS: [&str; 21] = [
    "model",
    "version",
    "alias",
    "record",
    "time",
    "until",
    "stage",
    "share",
    "lambda_version",
    "approved_by",
    "approved_at",
    "ticket",
    "meaning",
    "artifact_sha256",
    "spec_hash",
    "code_sha256",
    "runtime",
    "result",
    "detail",
    "by",
    "key",
];

/// One row, by column name; columns not named stay empty.
#[derive(Default)]
struct Row(Vec<(&'static str, String)>);

impl Row {
    fn set(mut self, column: &'static str, value: impl Into<String>) -> Row {
        debug_assert!(COLUMNS.contains(&column), "{column}");
        self.0.push((column, value.into()));
        self
    }

    fn approval(self, a: &Value) -> Row {
        self.set("approved_by", plain(&a["approved_by"]))
            .set("approved_at", plain(&a["approved_at"]))
            .set("ticket", plain(&a["ticket"]))
            .set("meaning", plain(&a["meaning"]))
            .set("artifact_sha256", plain(&a["artifact_sha256"]))
    }

    fn line(&self) -> String {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| {
                self.0
                    .iter()
                    .rev()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| field(v))
                    .unwrap_or_default()
            })
            .collect();
        cells.join(",") + "\r\n"
    }
}

/// One field, neutralised for spreadsheets and quoted as RFC 4180 asks.
pub fn field(value: &str) -> String {
    let value = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    };
    if value.contains([',', '"', '\r', '\n']) || value.trim() != value {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

pub fn render(bundle: &Bundle) -> String {
    let mut out = COLUMNS.join(",") + "\r\n";
    out += &Row::default()
        .set("record", "bundle")
        .set(
            "detail",
            format!("{} sha256 {}", super::FORMAT, bundle.digest()),
        )
        .set("stage", bundle.environment.clone())
        .line();
    for v in &bundle.versions {
        for row in version_rows(v) {
            out += &row.line();
        }
    }
    for e in &bundle.environment_events {
        out += &Row::default()
            .set("record", e.event.as_str())
            .set("time", plain(&e.time))
            .set("detail", plain(&e.reason))
            .set("by", who(&e.deployer))
            .set("key", e.key.clone())
            .line();
    }
    out
}

fn version_rows(v: &VersionEvidence) -> Vec<Row> {
    let base = || {
        Row::default()
            .set("model", v.model.clone())
            .set("version", v.version.clone())
            .set("alias", v.alias.clone())
    };
    let mut rows = Vec::new();
    if let Some(a) = &v.approval {
        rows.push(base().set("record", "approval").approval(a));
    }
    for d in &v.deploys {
        rows.push(
            base()
                .set("record", "deploy")
                .set("time", plain(&d.time))
                .set("lambda_version", plain(&d.lambda_version))
                .approval(&d.approval)
                .set("spec_hash", plain(&d.spec_hash))
                .set("code_sha256", plain(&d.code_sha256))
                .set("artifact_sha256", plain(&d.artifact_digest))
                .set("runtime", d.runtime())
                .set("by", who(&d.deployer))
                .set("key", d.key.clone()),
        );
    }
    for p in &v.stage_periods {
        rows.push(
            base()
                .set("record", "stage-period")
                .set("time", plain(&p.from))
                .set("until", p.until.as_ref().map(plain).unwrap_or_default())
                .set("stage", p.stage.clone())
                .set("share", format!("{}", p.share))
                .set("lambda_version", p.lambda_version.clone())
                .set("by", who(&p.deployer))
                .set("key", p.key.clone()),
        );
    }
    for e in v.retirements.iter().chain(&v.endpoints).chain(&v.deletions) {
        rows.push(
            base()
                .set("record", e.event.as_str())
                .set("time", plain(&e.time))
                .set("detail", e.summary.clone())
                .set("by", who(&e.deployer))
                .set("key", e.key.clone()),
        );
    }
    for c in &v.verifications {
        let details: Vec<String> = c.findings.iter().map(|f| plain(&f["detail"])).collect();
        rows.push(
            base()
                .set("record", "verification")
                .set("time", plain(&c.time))
                .set("result", if c.ok { "ok" } else { "FAIL" })
                .set("detail", details.join("; "))
                .set("by", who(&c.deployer))
                .set("key", c.key.clone()),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Window;
    use crate::evidence::tests::story;

    #[test]
    fn fields_a_spreadsheet_would_run_are_shown_not_run_and_quoting_survives_any_text() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("Zoë Ångström, QA"), "\"Zoë Ångström, QA\"");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(field(" padded"), "\" padded\"");
        assert_eq!(field("plain-text"), "plain-text");
    }

    #[test]
    fn every_row_has_every_column_and_the_bundle_row_names_the_digest() {
        let b = story().bundle(Window::default());
        let csv = render(&b);
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0].split(',').count(), COLUMNS.len());
        assert!(lines[1].contains(&b.digest()));
        // approval, deploy, two stage periods and a retirement for v1; approval, deploy, two periods for v2.
        assert_eq!(lines.len(), 2 + 5 + 4);
        assert!(lines.iter().any(|l| l.starts_with(
            "risk,2,v2,stage-period,2026-11-02T11:00:00Z,2026-11-03T11:00:00Z,production,0.1,2,"
        )));
        assert!(csv.contains("maria.rodriguez-fernandez@clinical-research.example.org"));
    }
}
