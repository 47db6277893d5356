//! Log lines go to stderr: human-readable on a terminal, one JSON object per line for CI (`--log-format json`).
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

pub fn init(global: &GlobalArgs) {
    let default_level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    // FERRY_LOG overrides the flags with a full filter (e.g. `ferry=debug,aws_smithy_runtime=info`).
    let filter = EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("ferry={default_level},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match global.log_format {
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init(),
    };
    // A second init (only in tests that call this twice) keeps the first subscriber.
    let _ = result;
}
