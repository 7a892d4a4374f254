//! The top: parse config, start logging and the source, then the TUI or headless loop.
//! Errors reach here as `color_eyre` reports and leave with the exit status DESIGN.md sets.
//! `handshake.rs` is `hsmon handshake`'s command line (profiles, the device, the report).

pub mod card_wait;
pub mod handshake;

use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use crate::cli::{Cli, CommandLine, DemoArgs, Formats, GlobalArgs, SerialArgs};
use crate::clock::Clock;
use std::sync::Arc;

use crate::config::Config;
use crate::diagnose::knowledge::Knowledge;
use crate::event::{Baud, FlowControl, FrameFormat, LineSettings};
use crate::exit::{self, UsageError};
use crate::session::Session;
use crate::source::SourceHandle;
use crate::ui::state::UiState;
use crate::ui::theme::Theme;

/// Entry point behind `main`: returns the process exit status.
pub fn main(cli: Cli) -> ExitCode {
    crate::output::install_hooks();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::output::eprint_last(&format!("hsmon: cannot start the async runtime: {e}"));
            return exit::code(exit::DEVICE);
        }
    };
    let result = rt.block_on(dispatch(cli));
    // Sources may hold blocking reads; don't wait for them at exit.
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(code) => exit::code(code),
        Err(e) => {
            use crate::output::ErrorClass;
            let status = match crate::output::classify(&e) {
                // `hsmon ... | head`: the reader has what it wanted.
                ErrorClass::ClosedPipe => return exit::code(exit::OK),
                ErrorClass::WriteFailed => exit::DEVICE,
                ErrorClass::Other => crate::cli::exit_status_for(&e),
            };
            let mut msg = String::new();
            for (i, cause) in e.chain().enumerate() {
                if i > 0 {
                    msg.push_str("\n  caused by: ");
                }
                msg.push_str(&cause.to_string());
            }
            // Messages echo arguments, paths and OS or device text: nothing raw reaches the
            // terminal.
            crate::output::eprint_last(&crate::sanitize::printable_lines(&format!("hsmon: {msg}")));
            exit::code(status)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    // Generated from the command line alone: no config, no log file.
    match &cli.command {
        CommandLine::Completions(args) => {
            return print_generated(&crate::cli::completions(args.shell));
        }
        CommandLine::Man => {
            let page = crate::cli::man_page().wrap_err("rendering the manual page")?;
            return print_generated(&page);
        }
        _ => {}
    }
    let config = Config::load(cli.global.config.as_deref())?;
    let formats = cli.global.formats()?;
    // Checked here for every command: a bad --label is a usage error even where unused.
    cli.global.labels()?;
    init_logging(&config, cli.global.verbose);
    match cli.command {
        CommandLine::List => {
            let ports = crate::source::available::serial_ports();
            let readers = crate::source::card::list_readers();
            let present: Vec<crate::ports::Present> = ports
                .iter()
                .cloned()
                .map(crate::ports::Present::from)
                .collect();
            let named = crate::ports::listing(&config.ports, &present, |p| {
                std::path::Path::new(p).exists()
            });
            match formats.output {
                crate::cli::OutputFormat::Json => {
                    let readers_json = match &readers {
                        Ok(r) => serde_json::json!(
                            r.iter()
                                .map(|x| serde_json::json!({
                                    "name": x.name,
                                    "atr": x.atr.as_ref().map(|a| crate::hex::spaced(a)),
                                }))
                                .collect::<Vec<_>>()
                        ),
                        Err(e) => serde_json::json!({ "error": e }),
                    };
                    crate::output::print(&format!(
                        "{}\n",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "serial": ports, "readers": readers_json, "named": named,
                        }))?
                    ))?;
                }
                crate::cli::OutputFormat::Text => {
                    crate::output::print(&format!(
                        "{}{}{}",
                        crate::list::render_text(&ports),
                        crate::ports::render_text(&named),
                        crate::list::render_readers(&readers)
                    ))?;
                }
            }
            Ok(exit::OK)
        }
        CommandLine::Card(args) => card(&cli.global, formats, &config, args).await,
        CommandLine::Replay(args) => replay(&cli.global, formats, &config, args).await,
        CommandLine::Decode(args) => {
            let knowledge = load_knowledge()?;
            let protocol = match &args.protocol {
                Some(p) => Some(crate::decode::Protocol::from_id(p).ok_or_else(|| {
                    let ids: Vec<&str> = crate::decode::Protocol::ALL
                        .iter()
                        .map(|p| p.id())
                        .collect();
                    UsageError(format!(
                        "unknown protocol '{p}': use one of {}",
                        ids.join(", ")
                    ))
                })?),
                None => None,
            };
            let input = match (args.hex, args.file) {
                (Some(h), _) => crate::offline::Input::Hex(h),
                (None, Some(f)) => crate::offline::Input::File(f),
                (None, None) => {
                    return Err(UsageError("give the bytes with --hex or a FILE".into()).into());
                }
            };
            // A file is read as it is decoded (bounded memory, however long); --hex is at hand.
            let mut reader: Box<dyn std::io::Read> = match &input {
                crate::offline::Input::File(path) => Box::new(crate::offline::open_input(path)?),
                crate::offline::Input::Hex(_) => {
                    Box::new(std::io::Cursor::new(crate::offline::read_input(&input)?))
                }
            };
            let mut out = std::io::BufWriter::new(crate::output::Stdout::lock());
            let limit = args.max_bytes.unwrap_or(u64::MAX);
            let mut limited = std::io::Read::take(&mut reader, limit);
            let done = crate::offline::decode_stream(
                &mut limited,
                protocol,
                knowledge,
                formats.output,
                &mut out,
            )
            .and_then(|code| std::io::Write::flush(&mut out).map(|()| code));
            // The limit reached: said without reading on (a pipe could block that read).
            if done.is_ok() && args.max_bytes.is_some() && limited.limit() == 0 {
                crate::output::eprint_last(&format!(
                    "decode: stopped after {limit} input bytes (--max-bytes {limit}); anything \
                     after them was not read"
                ));
            }
            match done {
                Ok(code) => Ok(code),
                // The reader of our output went away (`| head`): nothing more to say.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
                // Our own output failed (a full disk): exit 3, not a fault in the input.
                Err(e)
                    if e.get_ref()
                        .is_some_and(|i| i.is::<crate::output::WriteError>()) =>
                {
                    Err(e.into())
                }
                Err(e) => Err(UsageError(format!("decode: {e}")).into()),
            }
        }
        CommandLine::Explain(args) => {
            let knowledge = load_knowledge()?;
            crate::output::print(&crate::offline::explain(
                &args.codes,
                &knowledge,
                formats.output,
            )?)?;
            Ok(exit::OK)
        }
        CommandLine::Export(args) => {
            use crate::export::ExportError;
            let labels = cli.global.labels()?;
            crate::export::run_cli(&args.file, args.to, args.output.as_deref(), &labels).map_err(
                |e| match e {
                    // stdout failed (a full disk): exit 3 with the one line `output` words.
                    ExportError::Write(w)
                        if w.get_ref()
                            .is_some_and(|i| i.is::<crate::output::WriteError>()) =>
                    {
                        w.into()
                    }
                    e => UsageError(e.to_string()).into(),
                },
            )
        }
        CommandLine::Serial(args) => serial(&cli.global, formats, &config, args).await,
        CommandLine::Demo(args) => demo(&cli.global, formats, &config, args).await,
        CommandLine::Tcp(args) => tcp(&cli.global, formats, &config, args).await,
        CommandLine::Tap(args) => tap(&cli.global, formats, &config, args).await,
        CommandLine::Trace(args) => trace(&cli.global, formats, &config, args).await,
        CommandLine::Probe(args) => probe(formats, args).await,
        CommandLine::Handshake(args) => handshake::run(&cli.global, formats, &config, args).await,
        // Handled above, before the config is read.
        CommandLine::Completions(_) | CommandLine::Man => Ok(exit::OK),
    }
}

/// `hsmon completions` and `hsmon man`: text generated from the command line, to stdout.
fn print_generated(text: &[u8]) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    match std::io::Write::write_all(&mut out, text).and_then(|()| std::io::Write::flush(&mut out)) {
        Ok(()) => Ok(exit::OK),
        // The reader of our output went away (`| head`): nothing more to say.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(e).wrap_err("writing to stdout"),
    }
}

/// The embedded knowledge base, extended by `$XDG_CONFIG_HOME/hsmon/knowledge.toml` when
/// that file exists (same id replaces, new ids add). A malformed file is a usage error with
/// file, line and column.
pub fn load_knowledge() -> Result<Arc<Knowledge>> {
    Ok(Arc::new(Knowledge::with_user_file().map_err(UsageError)?))
}

/// Line settings from, in order: the command line, the named port, the config file's
/// `[serial]`, the defaults.
fn line_settings(
    config: &Config,
    formats: Formats,
    args: &SerialArgs,
    named: Option<&crate::ports::NamedPort>,
) -> Result<LineSettings> {
    let path = Config::default_path().map_or_else(String::new, |p| p.display().to_string());
    let mut s = config.line_settings(&path)?;
    if let Some(n) = named {
        s.baud = n.baud.unwrap_or(s.baud);
        s.format = n.format.unwrap_or(s.format);
        s.flow = n.flow.unwrap_or(s.flow);
    }
    if let Some(b) = &args.baud {
        s.baud = b.parse::<Baud>()?;
    }
    if let Some(f) = formats.line {
        s.format = f;
    }
    if let Some(f) = &args.line_format {
        s.format = f.parse::<FrameFormat>()?;
    }
    if let Some(f) = &args.flow {
        s.flow = f.parse::<FlowControl>()?;
    }
    Ok(s)
}

async fn serial(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    mut args: SerialArgs,
) -> Result<u8> {
    let named = named_port(config, &args.port)?;
    let named_global;
    let global = match &named {
        Some(n) => {
            args.port = n.path.clone().into();
            named_global = GlobalArgs {
                // `capture = false` on the port: no recording unless --capture FILE asks.
                no_capture: global.no_capture
                    || (n.port.capture == Some(false) && global.capture.is_none()),
                ..global.clone()
            };
            &named_global
        }
        None => global,
    };
    let named = named.map(|n| n.port);
    if let Some(target) = crate::source::rfc2217::target_of(&args.port) {
        return rfc2217(global, formats, config, args, target, named.as_ref()).await;
    }
    let settings = line_settings(config, formats, &args, named.as_ref())?;
    let clock = Clock::start();
    let handle = crate::source::serial::spawn(args.port.clone(), settings, clock)?;
    monitor(global, formats, config, handle, clock, None, args.autobaud).await
}

/// A named port, resolved to the device it means now.
struct Named {
    path: String,
    port: crate::ports::NamedPort,
}

/// `serial ARG`: when ARG is not an existing path and the config names it, the named port
/// (exit 3 naming the rules tried when nothing matches; 2 for an unknown profile).
fn named_port(config: &Config, arg: &std::path::Path) -> Result<Option<Named>> {
    use crate::ports::Resolution;
    let Some(name) = arg.to_str() else {
        return Ok(None);
    };
    let Some(port) = config.ports.get(name) else {
        return Ok(None);
    };
    if arg.exists() {
        return Ok(None);
    }
    if let Some(profile) = &port.profile {
        let knowledge = load_knowledge()?;
        let profiles = handshake::load_profiles(&knowledge)?;
        if let Err(e) = profiles.get(profile) {
            let at = config
                .ports_at
                .get(name)
                .map_or_else(String::new, |(f, l, c)| format!("{f}:{l}:{c}: "));
            return Err(UsageError(format!(
                "{at}[ports.{name}] profile = \"{profile}\": {e}\n  `hsmon handshake --list` shows the profiles"
            ))
            .into());
        }
    }
    match port.resolve(&crate::ports::present(), &|p| std::path::Path::new(p).exists()) {
        Resolution::Present { path, .. } => Ok(Some(Named {
            path,
            port: port.clone(),
        })),
        Resolution::Ambiguous { paths } => Err(crate::exit::DeviceError(format!(
            "named port '{name}' matches {} ports: {}\n  narrow its rules (match_by_id on the serial number in /dev/serial/by-id), or open one by path",
            paths.len(),
            paths.join(", ")
        ))
        .into()),
        Resolution::NotPresent { tried } => Err(crate::exit::DeviceError(format!(
            "named port '{name}' is not present: tried {}\n  plug the adapter in, or see `hsmon list` for what is here",
            tried.join(", ")
        ))
        .into()),
    }
}

/// `serial rfc2217://HOST:PORT`: a remote port behind ser2net, set like a local one.
async fn rfc2217(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: SerialArgs,
    target: Result<crate::source::tcp::HostPort, crate::source::tcp::AddressError>,
    named: Option<&crate::ports::NamedPort>,
) -> Result<u8> {
    let target = target.map_err(|e| UsageError(e.to_string()))?;
    let settings = line_settings(config, formats, &args, named)?;
    let clock = Clock::start();
    let handle = crate::source::rfc2217::spawn(target, settings, clock).await?;
    monitor(global, formats, config, handle, clock, None, args.autobaud).await
}

/// `tcp HOST:PORT`: a raw TCP stream.
async fn tcp(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: crate::cli::TcpArgs,
) -> Result<u8> {
    let target = args
        .target
        .parse::<crate::source::tcp::HostPort>()
        .map_err(|e| UsageError(e.to_string()))?;
    let clock = Clock::start();
    let handle = crate::source::tcp::spawn(target, clock).await?;
    monitor(global, formats, config, handle, clock, None, false).await
}

/// `trace [--pid PID] [-- CMD ARGS...]`: the user's program as the source. Headless, the
/// program's stdout goes to hsmon's stderr (stdout carries the records). hsmon's exit status
/// is the program's (128 + signal when killed); 0 when hsmon let go of it first.
async fn trace(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: crate::cli::TraceArgs,
) -> Result<u8> {
    use crate::source::trace::source::TraceError;
    use crate::source::trace::tracer::Target;
    let target = match (args.pid, args.command.split_first()) {
        (Some(pid), None) => Target::Attach { pid },
        (None, Some((program, rest))) => Target::Launch {
            program: program.clone(),
            args: rest.to_vec(),
            stdout_to_stderr: global.headless,
        },
        _ => {
            return Err(UsageError(
                "name the program after --, e.g. hsmon trace -- stm32flash /dev/ttyUSB0, or attach with hsmon trace --pid PID".into(),
            )
            .into());
        }
    };
    // A launched program has hsmon's stdin: headless reads no control lines from it.
    let launched = matches!(target, Target::Launch { .. });
    let clock = Clock::start();
    let traced = crate::source::trace::source::spawn(target, clock).map_err(|e| match e {
        TraceError::Usage(m) => color_eyre::Report::new(UsageError(m)),
        TraceError::Device(m) => color_eyre::Report::new(crate::exit::DeviceError(m)),
    })?;
    let extras = Extras {
        program_stdin: launched,
        ..Extras::default()
    };
    let status = monitor_with(global, formats, config, traced.handle, clock, None, extras).await?;
    let exit = traced.exit.lock().ok().and_then(|e| *e);
    Ok(exit.map_or(status, crate::event::ProgramExit::shell_status))
}

/// `tap PORT_A PORT_B`: two ports, one per direction of a link, in one session.
async fn tap(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: crate::cli::TapArgs,
) -> Result<u8> {
    let as_serial = SerialArgs {
        port: args.port_a.clone(),
        baud: args.baud,
        line_format: args.line_format,
        flow: args.flow,
        autobaud: false,
    };
    let settings = line_settings(config, formats, &as_serial, None)?;
    let labels = crate::session::DirectionLabels {
        tx: args.label_a,
        rx: args.label_b,
    };
    let ports = crate::source::tap::TapPorts {
        a: args.port_a,
        b: args.port_b,
        labels: labels.clone(),
    };
    let clock = Clock::start();
    let handle = crate::source::tap::spawn(ports, settings, clock).map_err(|e| match e {
        crate::source::tap::TapError::SamePort(_) => {
            color_eyre::Report::new(UsageError(e.to_string()))
        }
        other => color_eyre::Report::new(other),
    })?;
    let extras = Extras {
        labels: Some(labels),
        ..Extras::default()
    };
    monitor_with(global, formats, config, handle, clock, None, extras).await
}

/// `probe tls HOST:PORT`: one probe, one report, an exit status that says what answered.
async fn probe(formats: Formats, args: crate::cli::ProbeArgs) -> Result<u8> {
    let crate::cli::ProbeKind::Tls(a) = args.kind;
    let target = a
        .target
        .parse::<crate::source::tcp::HostPort>()
        .map_err(|e| UsageError(e.to_string()))?;
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err(UsageError(format!(
            "--timeout {}: give a positive number of seconds",
            a.timeout
        ))
        .into());
    }
    if !(a.deadline.is_finite() && a.deadline > 0.0) {
        return Err(UsageError(format!(
            "--deadline {}: give a positive number of seconds",
            a.deadline
        ))
        .into());
    }
    let opts = crate::probe::tls::ProbeOptions {
        sni: a.sni,
        timeout: Duration::from_secs_f64(a.timeout.min(600.0)),
        deadline: Duration::from_secs_f64(a.deadline.min(3600.0)),
    };
    let knowledge = load_knowledge()?;
    let report = crate::probe::tls::probe(&target, &opts, &knowledge)
        .await
        .map_err(|e| match e {
            crate::probe::tls::ProbeError::BadServerName(_) => {
                color_eyre::Report::new(UsageError(e.to_string()))
            }
            other => color_eyre::Report::new(other),
        })?;
    match formats.output {
        crate::cli::OutputFormat::Json => crate::output::print(&format!("{}\n", report.to_json()))?,
        crate::cli::OutputFormat::Text => crate::output::print(&report.to_text())?,
    }
    Ok(report.exit_code())
}

async fn card(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: crate::cli::CardArgs,
) -> Result<u8> {
    let protocol = args
        .protocol
        .parse::<crate::source::card::ProtocolChoice>()
        .map_err(UsageError)?;
    let follow_up = !args.no_follow_up;
    let script = match &args.script {
        Some(path) => Some(load_script(path, follow_up, args.transaction)?),
        None => None,
    };
    let opts = crate::source::card::CardOptions {
        reader: args.reader.clone(),
        share: if args.exclusive {
            crate::event::ShareMode::Exclusive
        } else {
            crate::event::ShareMode::Shared
        },
        protocol,
        follow_up,
    };
    let clock = Clock::start();
    let handle = crate::source::card::spawn(opts, clock);
    monitor_with(
        global,
        formats,
        config,
        handle,
        clock,
        None,
        Extras {
            autobaud: false,
            card_wait: card_wait::CardWaitDriver::new(args.reader.clone(), script.is_some()),
            script,
            labels: None,
            ..Extras::default()
        },
    )
    .await
}

async fn replay(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: crate::cli::ReplayArgs,
) -> Result<u8> {
    if !(args.speed.is_finite() && args.speed >= 0.0) {
        return Err(UsageError(format!(
            "--speed {}: give a positive number (1 = as recorded, 10 = ten times faster) or max",
            args.speed
        ))
        .into());
    }
    if global.headless && args.speed == crate::source::replay::UNPACED && !args.paused {
        return crate::export::replay_headless(&args.file, formats.output, &global.labels()?)
            .map_err(|e| UsageError(e.to_string()).into());
    }
    let clock = Clock::start();
    let handle =
        crate::source::replay::spawn(&args.file, clock, args.speed, args.paused, !global.headless)
            .map_err(|e| UsageError(e.to_string()))?;
    // A replay is not recorded again.
    let mut g = global.clone();
    g.no_capture = true;
    g.capture = None;
    monitor_with(&g, formats, config, handle, clock, None, Extras::default()).await
}

/// Reads and parses an APDU script; errors name the file and line.
pub fn load_script(
    path: &std::path::Path,
    follow_up: bool,
    transaction: bool,
) -> Result<crate::card::runner::ScriptRunner> {
    let text = crate::textfile::read_text(path).map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::InvalidData {
            ""
        } else {
            " — check the path"
        };
        UsageError(format!(
            "cannot read the script {}: {e}{fix}",
            path.display()
        ))
    })?;
    let script = crate::card::script::Script::parse(&text).map_err(|e| {
        UsageError(format!(
            "{}:{} — {}",
            path.display(),
            script_error_at(&e.to_string()),
            e.hint()
        ))
    })?;
    let mut runner =
        crate::card::runner::ScriptRunner::new(script, path.display().to_string(), follow_up);
    runner.transaction = transaction;
    Ok(runner)
}

/// A script error's text ("line 3, column 5: …", "line 3: …") as `3:5: …` / `3: …`, to
/// follow the path once (`bad.apdu:3:5: …`, not `bad.apdu:3: line 3, column 5: …`).
fn script_error_at(text: &str) -> String {
    let Some(rest) = text.strip_prefix("line ") else {
        return text.to_string();
    };
    let Some((place, what)) = rest.split_once(": ") else {
        return text.to_string();
    };
    match place.split_once(", column ") {
        Some((line, column)) => format!("{line}:{column}: {what}"),
        None => format!("{place}: {what}"),
    }
}

/// The session's capture: `--capture FILE`, else a new file in the default directory; none
/// with `--no-capture`. A `--capture` that cannot be created (its directory missing outside
/// hsmon's own, a directory, a path the OS refuses) is a usage error at start: the user named
/// that file and would otherwise find out afterwards. The default capture failing does not stop
/// the session: the writer carries the reason and the status bar says recording stopped. A new
/// default capture then prunes the default directory to the `[capture]` limits.
fn open_capture(
    global: &GlobalArgs,
    config: &Config,
    source: &str,
    now: std::time::SystemTime,
) -> Result<Option<crate::capture::writer::CaptureWriter>> {
    use crate::capture::{meta, writer::CaptureWriter};
    if global.no_capture {
        return Ok(None);
    }
    let path = match &global.capture {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() && !meta::is_in_capture_dir(dir) {
                    return Err(UsageError(format!(
                        "--capture {}: the directory {} does not exist: create it first (mkdir -p {}), choose another place, or turn recording off with --no-capture",
                        p.display(),
                        dir.display(),
                        dir.display()
                    ))
                    .into());
                }
            }
            let file = CaptureWriter::open(p).map_err(|f| {
                UsageError(format!(
                    "--capture {}: {}",
                    p.display(),
                    f.detail.trim_start_matches("recording stopped: ")
                ))
            })?;
            let m = meta::CaptureMeta::new(source, None, now);
            return Ok(Some(CaptureWriter::new(file, p.display().to_string(), &m)));
        }
        None => match meta::default_capture_path(source, now) {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let m = meta::CaptureMeta::new(source, None, now);
    let writer = CaptureWriter::create_or_stopped(&path, &m);
    if let Some(dir) = path.parent() {
        prune_captures(dir, &path, config);
    }
    Ok(Some(writer))
}

/// Deletes the oldest captures in hsmon's own directory beyond the `[capture]` limits, keeping
/// `current`. What went, and what could not, goes to the log.
fn prune_captures(dir: &std::path::Path, current: &std::path::Path, config: &Config) {
    let limits = config.capture.limits();
    let done = crate::capture::cleanup::prune(dir, current, std::time::SystemTime::now(), &limits);
    if done.deleted > 0 {
        tracing::info!(
            "capture cleanup: deleted {} old captures ({} bytes) in {} ({limits:?})",
            done.deleted,
            done.freed_bytes,
            dir.display()
        );
    }
    for (path, why) in &done.failed {
        tracing::warn!("capture cleanup: cannot delete {}: {why}", path.display());
    }
}

/// What a monitor runs besides the session: its drivers (an active baud scan, an APDU
/// script, a handshake profile), the names of the two directions (a tap), and the knowledge
/// base when the caller has loaded it already.
#[derive(Default)]
pub struct Extras {
    pub autobaud: bool,
    pub script: Option<crate::card::runner::ScriptRunner>,
    pub labels: Option<crate::session::DirectionLabels>,
    pub handshake: Option<crate::handshake::runner::Runner>,
    pub knowledge: Option<Arc<Knowledge>>,
    /// stdin belongs to a traced program: headless reads no control lines from it.
    pub program_stdin: bool,
    /// Headless `card` with `--reader` or `--script`: end after a stated wait with nothing.
    pub card_wait: Option<card_wait::CardWaitDriver>,
}

async fn demo(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: DemoArgs,
) -> Result<u8> {
    let clock = Clock::start();
    let deadline = demo_deadline(args.duration)?;
    if args.scenario == "card" {
        let handle = crate::sim::card_reader::spawn(clock);
        let script = crate::card::script::Script::parse(crate::sim::card_reader::DEMO_SCRIPT)
            .map_err(|e| UsageError(format!("the built-in demo script: {e}")))?;
        let extras = Extras {
            autobaud: false,
            script: Some(crate::card::runner::ScriptRunner::new(
                script,
                "demo card.apdu",
                true,
            )),
            labels: None,
            ..Extras::default()
        };
        return monitor_with(global, formats, config, handle, clock, deadline, extras).await;
    }
    let handle = crate::sim::devices::spawn(&args.scenario, clock).ok_or_else(|| {
        let names: Vec<&str> = crate::sim::devices::SCENARIOS.iter().map(|s| s.0).collect();
        UsageError(format!(
            "unknown demo scenario '{}': use one of {}",
            args.scenario,
            names.join(", ")
        ))
    })?;
    monitor(
        global,
        formats,
        config,
        handle,
        clock,
        deadline,
        args.autobaud,
    )
    .await
}

fn demo_deadline(duration: Option<f64>) -> Result<Option<Duration>> {
    match duration {
        Some(d) if d.is_finite() && d > 0.0 => Ok(Some(Duration::from_secs_f64(d.min(1e6)))),
        Some(d) => {
            Err(UsageError(format!("--duration {d}: give a positive number of seconds")).into())
        }
        None => Ok(None),
    }
}

async fn monitor(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    handle: SourceHandle,
    clock: Clock,
    deadline: Option<Duration>,
    autobaud: bool,
) -> Result<u8> {
    let extras = Extras {
        autobaud,
        script: None,
        labels: None,
        ..Extras::default()
    };
    monitor_with(global, formats, config, handle, clock, deadline, extras).await
}

async fn monitor_with(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    handle: SourceHandle,
    clock: Clock,
    deadline: Option<Duration>,
    extras: Extras,
) -> Result<u8> {
    let knowledge = match extras.knowledge {
        Some(k) => k,
        None => load_knowledge()?,
    };
    let mut session =
        Session::with_knowledge(handle.name.clone(), config.window_bytes(), Some(knowledge));
    // The wall-clock start: the capture header's and every headless record's `ts`.
    let started = std::time::SystemTime::now();
    session.stamp = crate::stamp::Stamp::new(started, global.labels()?);
    let writer = open_capture(global, config, &handle.name, started)?;
    if global.headless {
        // Once, at start: a headless run records by default and would otherwise say nothing.
        // Not eprintln!: a stderr that cannot be written (a full disk) must not panic.
        use std::io::Write as _;
        let line = match writer.as_ref().map(|w| (w.name(), w.failure())) {
            Some((name, None)) => format!("recording to {name} (--no-capture to turn off)"),
            Some((_, Some(f))) => format!(
                "not recording: {}",
                f.detail.trim_start_matches("recording stopped: ")
            ),
            None => String::new(),
        };
        if !line.is_empty() {
            let _ = writeln!(std::io::stderr(), "hsmon: {line}");
        }
    }
    if let Some(writer) = writer {
        session.set_recorder(writer);
    }
    session.set_streams(&handle.streams, extras.labels);
    let headless = global.headless;
    let mut monitor = crate::monitor::Monitor::new(handle, session, clock);
    monitor.set_deadline(deadline);
    // Headless, a driver's end ends the run and gives the exit status; in the TUI the user
    // quits (a scan leaves a proposal, a script or a handshake stays on screen).
    if let Some(w) = extras.card_wait.filter(|_| headless) {
        monitor.push_driver(Box::new(w));
    }
    if extras.autobaud {
        monitor.push_driver(Box::new(crate::monitor::scan::ScanDriver::new(headless)));
    }
    if let Some(r) = extras.script {
        monitor.push_driver(Box::new(crate::monitor::script::ScriptDriver::new(
            r, headless,
        )));
    }
    if let Some(r) = extras.handshake {
        monitor.push_driver(Box::new(crate::handshake::driver::HandshakeDriver::new(
            r, headless,
        )));
    }
    if headless {
        let status =
            crate::headless::run_reading(&mut monitor, formats.output, !extras.program_stdin)
                .await?;
        if let Some(h) = monitor.driver::<crate::handshake::driver::HandshakeDriver>() {
            handshake::print_report(
                h.runner(),
                monitor.now(),
                None,
                formats.output,
                &monitor.session.stamp,
            )?;
        }
        return Ok(status);
    }
    let path = Config::default_path().map_or_else(String::new, |p| p.display().to_string());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ui = UiState::new(
        config.keymap(&path)?,
        Theme::select(config.ui.theme.as_deref(), no_color),
        config.ui.line_ending.unwrap_or_default(),
        (80, 24),
    );
    let end = crate::tui::run(&mut monitor, ui)
        .await
        .wrap_err("the terminal UI failed")?;
    // A handshake's outcome (1 when quit before its end); otherwise 0 — or 3 when the
    // capture could not be written (the status bar said so; stderr says it again now that
    // the screen is gone).
    let status = monitor.exit_status(end).unwrap_or(exit::OK);
    if let Some(f) = monitor.session.recording_failure() {
        crate::output::eprint_line(&format!("hsmon: {}", crate::sanitize::printable(&f.detail)))?;
        if status == exit::OK {
            return Ok(exit::DEVICE);
        }
    }
    Ok(status)
}

/// Logs go to a file, never onto the TUI: $XDG_STATE_HOME/hsmon/hsmon.log by default.
fn init_logging(config: &Config, verbose: u8) {
    let path = config.log.file.clone().or_else(|| {
        dirs::state_dir()
            .or_else(dirs::cache_dir)
            .map(|d| d.join("hsmon").join("hsmon.log"))
    });
    let Some(path) = path else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HSMON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}
