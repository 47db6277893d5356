//! docs/cli.md is the CLI reference, generated from the command-line definition itself: this test fails when the
//! two differ. Regenerate with `FERRY_BLESS=1 cargo test -p ferry --test cli_reference`.
use clap::CommandFactory;
use ferry::cli::Cli;

fn reference() -> String {
    let mut cmd = Cli::command().term_width(100);
    let mut doc = String::from(
        "# `ferry` command-line reference\n\n\
         Generated from the command-line definition (`agent/src/cli.rs`); `make test` fails when it is out of date.\n\
         Regenerate with `FERRY_BLESS=1 cargo test -p ferry --test cli_reference`.\n\n",
    );
    doc.push_str(&format!(
        "## ferry\n\n```text\n{}\n```\n\n",
        cmd.render_long_help().to_string().trim_end()
    ));
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let sub = cmd.find_subcommand_mut(&name).expect("listed above");
        let help = sub
            .clone()
            .bin_name(format!("ferry {name}"))
            .render_long_help()
            .to_string();
        doc.push_str(&format!(
            "## ferry {name}\n\n```text\n{}\n```\n\n",
            help.trim_end()
        ));
    }
    doc.trim_end().to_string() + "\n"
}

#[test]
fn the_cli_reference_is_generated_from_the_binarys_definition() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
    let expected = reference();
    if std::env::var_os("FERRY_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/cli.md is out of date: run `FERRY_BLESS=1 cargo test -p ferry --test cli_reference`"
    );
}
