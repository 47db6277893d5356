//! `ferry`: the binary edge. Parses the command line, sets up logging, runs the command, maps errors to exit codes.
use std::process::ExitCode;

use clap::Parser;
use ferry::cli::Cli;

fn main() -> ExitCode {
    ferry::memory::reuse_freed_buffers();
    let cli = Cli::parse();
    ferry::logging::init(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(ferry::commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("{}", ferry::report::render_error(&err));
            ExitCode::from(1)
        }
    }
}
