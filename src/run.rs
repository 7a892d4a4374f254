//! The top: parse config, start logging and the source, then the TUI or headless loop.
//! Errors reach here as `color_eyre` reports and leave with the exit status DESIGN.md sets.

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
    let _ = color_eyre::install();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hsmon: cannot start the async runtime: {e}");
            return exit::code(exit::DEVICE);
        }
    };
    let result = rt.block_on(dispatch(cli));
    // Sources may hold blocking reads; don't wait for them at exit.
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(code) => exit::code(code),
        Err(e) => {
            let mut msg = String::new();
            for (i, cause) in e.chain().enumerate() {
                if i > 0 {
                    msg.push_str("\n  caused by: ");
                }
                msg.push_str(&cause.to_string());
            }
            eprintln!("hsmon: {msg}");
            exit::code(exit::status_for(&e))
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let config = Config::load(cli.global.config.as_deref())?;
    let formats = cli.global.formats()?;
    init_logging(&config, cli.global.verbose);
    match cli.command {
        CommandLine::List => {
            let ports = crate::list::serial_ports();
            match formats.output {
                crate::cli::OutputFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&ports)?)
                }
                crate::cli::OutputFormat::Text => print!("{}", crate::list::render_text(&ports)),
            }
            Ok(exit::OK)
        }
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
            let bytes = crate::offline::read_input(&input)?;
            let (code, out) = crate::offline::decode(&bytes, protocol, knowledge, formats.output);
            print!("{out}");
            Ok(code)
        }
        CommandLine::Explain(args) => {
            let knowledge = load_knowledge()?;
            print!(
                "{}",
                crate::offline::explain(&args.codes, &knowledge, formats.output)?
            );
            Ok(exit::OK)
        }
        CommandLine::Export(args) => {
            crate::capture::export::run_cli(&args.file, args.to, args.output.as_deref())
                .map_err(|e| UsageError(e.to_string()).into())
        }
        CommandLine::Serial(args) => serial(&cli.global, formats, &config, args).await,
        CommandLine::Demo(args) => demo(&cli.global, formats, &config, args).await,
    }
}

/// The embedded knowledge base, extended by `$XDG_CONFIG_HOME/hsmon/knowledge.toml` when
/// that file exists (same id replaces, new ids add). A malformed file is a usage error with
/// file, line and column.
pub fn load_knowledge() -> Result<Arc<Knowledge>> {
    let k = Knowledge::embedded().map_err(|e| UsageError(format!("built-in knowledge: {e}")))?;
    let user = dirs::config_dir().map(|d| d.join("hsmon").join("knowledge.toml"));
    let k = match user {
        Some(p) if p.exists() => k
            .load_file(&p)
            .map_err(|e| UsageError(format!("{e}\n  fix the file or move it aside")))?,
        _ => k,
    };
    Ok(Arc::new(k))
}

/// Line settings from, in order: the command line, the config file, the defaults.
fn line_settings(config: &Config, formats: Formats, args: &SerialArgs) -> Result<LineSettings> {
    let path = Config::default_path().map_or_else(String::new, |p| p.display().to_string());
    let mut s = config.line_settings(&path)?;
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
    args: SerialArgs,
) -> Result<u8> {
    let settings = line_settings(config, formats, &args)?;
    let clock = Clock::start();
    let handle = crate::source::serial::spawn(args.port.clone(), settings, clock)?;
    monitor(global, formats, config, handle, clock, None).await
}

async fn demo(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: DemoArgs,
) -> Result<u8> {
    let clock = Clock::start();
    let handle = crate::sim::devices::spawn(&args.scenario, clock).ok_or_else(|| {
        let names: Vec<&str> = crate::sim::devices::SCENARIOS.iter().map(|s| s.0).collect();
        UsageError(format!(
            "unknown demo scenario '{}': use one of {}",
            args.scenario,
            names.join(", ")
        ))
    })?;
    let deadline = match args.duration {
        Some(d) if d.is_finite() && d > 0.0 => Some(Duration::from_secs_f64(d.min(1e6))),
        Some(d) => {
            return Err(
                UsageError(format!("--duration {d}: give a positive number of seconds")).into(),
            );
        }
        None => None,
    };
    monitor(global, formats, config, handle, clock, deadline).await
}

async fn monitor(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    handle: SourceHandle,
    clock: Clock,
    deadline: Option<Duration>,
) -> Result<u8> {
    let session = Session::with_knowledge(
        handle.name.clone(),
        config.window_bytes(),
        Some(load_knowledge()?),
    );
    if global.headless {
        crate::headless::run(handle, session, formats.output, deadline).await?;
    } else {
        let path = Config::default_path().map_or_else(String::new, |p| p.display().to_string());
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let ui = UiState::new(
            config.keymap(&path)?,
            Theme::select(config.ui.theme.as_deref(), no_color),
            config.ui.line_ending.unwrap_or_default(),
            (80, 24),
        );
        crate::app::run(handle, session, ui, clock, deadline)
            .await
            .wrap_err("the terminal UI failed")?;
    }
    Ok(exit::OK)
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

/// SIGINT, SIGTERM and SIGHUP as one stream: each ends a session cleanly.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).wrap_err("cannot watch SIGINT")?,
            term: signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?,
            hup: signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}
