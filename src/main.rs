//! The `hsmon` binary: parse the command line and hand over to [`hsmon::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `hsmon trace` runs its tracer as this same binary with a hidden first argument.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a == hsmon::trace::tracer::HELPER_ARG)
    {
        return std::process::ExitCode::from(hsmon::trace::tracer::helper_main(&args));
    }
    let cli = hsmon::cli::Cli::parse();
    hsmon::run::main(cli)
}
