//! The `hsmon` binary: parse the command line and hand over to [`hsmon::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = hsmon::cli::Cli::parse();
    hsmon::run::main(cli)
}
