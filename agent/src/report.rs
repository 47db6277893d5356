//! How errors reach a person: one line for the problem (file and field first), then `caused by:` lines for the
//! underlying AWS or HTTP error. No stack traces for user errors.
use std::fmt::Write;

pub fn render_error(err: &anyhow::Error) -> String {
    let mut out = format!("error: {err}");
    let mut seen = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        // thiserror messages often embed their source; don't print the same words twice.
        if seen.contains(&text) {
            continue;
        }
        let _ = write!(out, "\n  caused by: {text}");
        seen.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_listed_once_each() {
        let err = anyhow::anyhow!("connection refused")
            .context("registry http://127.0.0.1:1: unreachable");
        assert_eq!(
            render_error(&err),
            "error: registry http://127.0.0.1:1: unreachable\n  caused by: connection refused"
        );
    }
}
