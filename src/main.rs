//! The `hsmon` binary: parse the command line and hand over to [`hsmon::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `hsmon trace` runs its tracer as this same binary with a hidden first argument.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a == hsmon::source::trace::tracer::HELPER_ARG)
    {
        return std::process::ExitCode::from(hsmon::source::trace::tracer::helper_main(&args));
    }
    let cli = match hsmon::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    hsmon::run::main(cli)
}

/// clap's message for a bad command line, with the arguments it echoes made terminal-safe
/// (`hsmon $'\e]0;X\a'` must not set the window title); help and version as clap prints them.
fn usage_error(e: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Help and version come from our own text only.
        let _ = e.print();
        let code = u8::try_from(e.exit_code()).unwrap_or(hsmon::exit::USAGE);
        return std::process::ExitCode::from(code);
    }
    let text = e.render().to_string();
    let safe = hsmon::sanitize::printable_lines(text.trim_end_matches('\n'));
    hsmon::output::eprint_last(&safe);
    std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(hsmon::exit::USAGE))
}
