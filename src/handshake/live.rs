//! `hsmon handshake`: picks the profile, opens the device through its ordinary source, and
//! drives the runner through an ordinary session — every byte, frame and explanation is
//! recorded as for any other traffic — headless (records, then the report; exit 0 ok,
//! 1 divergence, 2 bad profile, 3 device error) or in the TUI with the handshake pane on top.

use std::io::Write;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use tokio::time::Instant;

use super::profile::{Profile, Profiles, Transport};
use super::report;
use super::runner::{Outcome, Output, Runner, Update};
use crate::cli::{Formats, GlobalArgs, HandshakeArgs, OutputFormat};
use crate::clock::Clock;
use crate::config::Config;
use crate::diagnose::knowledge::Knowledge;
use crate::event::{Baud, Command, FrameFormat, LineSettings, TimedEvent, Timestamp};
use crate::exit::{self, DeviceError, UsageError};
use crate::session::Session;
use crate::source::SourceHandle;
use crate::ui::state::UiState;
use crate::ui::theme::Theme;

/// How long the session keeps recording after the run ended (late bytes, the source's
/// goodbye), before the report is printed.
const LINGER: Duration = Duration::from_millis(300);

/// Where the device is, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Serial {
        port: std::path::PathBuf,
        settings: LineSettings,
    },
    Card {
        reader: Option<String>,
    },
    Tcp {
        addr: String,
    },
}

/// The profiles a run can use: built-in, then the user's directory.
/// A broken user profile is one line on stderr and left out: the others still run.
pub fn load_profiles(knowledge: &Knowledge) -> Result<Profiles> {
    let profiles = Profiles::load(Profiles::user_dir().as_deref(), knowledge)
        .map_err(|e| UsageError(format!("{e}\n  fix the profile or move it aside")))?;
    for e in profiles.skipped() {
        let one_line = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        crate::output::eprint_line(&format!(
            "hsmon: skipped profile {one_line} (fix the file or move it aside)"
        ))?;
    }
    Ok(profiles)
}

/// Matches the command line against the profile's transport.
pub fn target(profile: &Profile, args: &HandshakeArgs, formats: Formats) -> Result<Target> {
    let given = [
        args.port.is_some(),
        args.reader.is_some(),
        args.tcp.is_some(),
    ];
    let wrong = |want: &str| -> color_eyre::Report {
        UsageError(format!(
            "profile {} talks over {}: give {want}",
            profile.name,
            match profile.transport {
                Transport::Serial(_) => "a serial port",
                Transport::Card => "a smart-card reader",
                Transport::Tcp { .. } => "TCP",
            }
        ))
        .into()
    };
    match &profile.transport {
        Transport::Serial(s) => {
            let Some(port) = &args.port else {
                return Err(wrong("--port PORT (e.g. --port /dev/ttyUSB0)"));
            };
            if given[1] || given[2] {
                return Err(wrong("--port PORT, not --reader or --tcp"));
            }
            let mut settings = *s;
            if let Some(b) = &args.baud {
                settings.baud = b.parse::<Baud>()?;
            }
            if let Some(f) = formats.line {
                settings.format = f;
            }
            if let Some(f) = &args.line_format {
                settings.format = f.parse::<FrameFormat>()?;
            }
            Ok(Target::Serial {
                port: port.clone(),
                settings,
            })
        }
        Transport::Card => {
            if given[0] || given[2] {
                return Err(wrong(
                    "--reader NAME (or nothing: the first reader with a card)",
                ));
            }
            Ok(Target::Card {
                reader: args.reader.clone(),
            })
        }
        Transport::Tcp { default_port } => {
            let Some(addr) = &args.tcp else {
                return Err(wrong("--tcp HOST:PORT"));
            };
            if given[0] || given[1] {
                return Err(wrong("--tcp HOST:PORT, not --port or --reader"));
            }
            let has_port = addr.rsplit_once(':').is_some_and(|(h, p)| {
                !h.is_empty() && !h.ends_with(':') && p.parse::<u16>().is_ok()
            });
            let addr = match (has_port, default_port) {
                (true, _) => addr.clone(),
                (false, Some(p)) => format!("{addr}:{p}"),
                (false, None) => {
                    return Err(UsageError(format!(
                        "--tcp {addr}: write HOST:PORT, e.g. 127.0.0.1:2404"
                    ))
                    .into());
                }
            };
            Ok(Target::Tcp { addr })
        }
    }
}

/// Opens the device through its ordinary source.
async fn open(target: &Target, clock: Clock) -> Result<SourceHandle> {
    match target {
        Target::Serial { port, settings } => Ok(crate::source::serial::spawn(
            port.clone(),
            *settings,
            clock,
        )?),
        Target::Card { reader } => {
            let opts = crate::source::card::CardOptions {
                reader: reader.clone(),
                share: crate::event::ShareMode::Shared,
                protocol: crate::source::card::ProtocolChoice::Any,
                follow_up: true,
            };
            Ok(crate::source::card::spawn(opts, clock))
        }
        Target::Tcp { addr } => {
            let target: crate::source::tcp::HostPort =
                addr.parse()
                    .map_err(|e: crate::source::tcp::AddressError| {
                        crate::exit::UsageError(e.to_string())
                    })?;
            crate::source::tcp::spawn(target, clock)
                .await
                .map_err(|e| DeviceError(e.to_string()).into())
        }
    }
}

/// `hsmon handshake`.
pub async fn run(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: HandshakeArgs,
) -> Result<u8> {
    let knowledge = crate::run::load_knowledge()?;
    let profiles = load_profiles(&knowledge)?;
    if args.list {
        crate::output::print(&list(&profiles, formats.output))?;
        return Ok(exit::OK);
    }
    let Some(name) = &args.profile else {
        return Err(UsageError(
            "name a profile (hsmon handshake --list shows them), e.g. hsmon handshake stm32 --port /dev/ttyUSB0".into(),
        )
        .into());
    };
    let profile = profiles
        .get(name)
        .map_err(|e| UsageError(e.to_string()))?
        .clone()
        .with_vars(&args.set)
        .map_err(|e| UsageError(e.to_string()))?;
    let target = target(&profile, &args, formats)?;
    let clock = Clock::start();
    let started = std::time::SystemTime::now();
    let handle = match open(&target, clock).await {
        Ok(h) => h,
        Err(e) => {
            if global.headless {
                // Scripts read the report whatever happened.
                let runner = Runner::new(profile, Some(knowledge.clone()), clock.now());
                let msg = e.to_string();
                let stamp = crate::stamp::Stamp::new(started, global.labels()?);
                print_report(&runner, clock.now(), Some(&msg), formats.output, &stamp)?;
            }
            return Err(e);
        }
    };
    let mut session = Session::with_knowledge(
        handle.name.clone(),
        config.window_bytes(),
        Some(knowledge.clone()),
    );
    session.stamp = crate::stamp::Stamp::new(started, global.labels()?);
    let runner = Runner::new(profile, Some(knowledge), clock.now());
    if global.headless {
        headless(handle, session, runner, formats.output, clock).await
    } else {
        let path = Config::default_path().map_or_else(String::new, |p| p.display().to_string());
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let ui = UiState::new(
            config.keymap(&path)?,
            Theme::select(config.ui.theme.as_deref(), no_color),
            config.ui.line_ending.unwrap_or_default(),
            (80, 24),
        );
        tui(handle, session, runner, ui, clock)
            .await
            .wrap_err("the terminal UI failed")
    }
}

/// `--list`: one line per profile (JSON: one object per line).
pub fn list(profiles: &Profiles, format: OutputFormat) -> String {
    let mut out = String::new();
    for p in profiles.all() {
        match format {
            OutputFormat::Text => out.push_str(&format!("{}\n", p.list_line())),
            OutputFormat::Json => out.push_str(&format!(
                "{}\n",
                serde_json::json!({
                    "name": p.name, "transport": p.transport.label(),
                    "description": p.description, "source": p.source, "built_in": p.built_in,
                })
            )),
        }
    }
    out
}

fn print_report(
    runner: &Runner,
    at: Timestamp,
    error: Option<&str>,
    format: OutputFormat,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<()> {
    let mut out = crate::output::Stdout::lock();
    match format {
        OutputFormat::Json => {
            crate::record::handshake::write_report(&mut out, runner, at, error, stamp)?
        }
        OutputFormat::Text => write!(out, "{}", report::text_report(runner, error))?,
    }
    out.flush()
}

/// The session time `t` as a tokio instant.
fn instant_at(clock: &Clock, t: Timestamp) -> Instant {
    Instant::now() + t.saturating_sub(clock.now())
}

/// What the loops do with a runner's output: raise the divergence in the session, send the
/// commands; returns whether the run just finished.
async fn apply(
    out: Output,
    runner: &Runner,
    session: &mut Session,
    handle: &SourceHandle,
    at: Timestamp,
) -> bool {
    let finished = out.updates.contains(&Update::Finished);
    if finished {
        if let Some(Outcome::Diverged(d)) = runner.outcome() {
            // A status word is already explained by the card log as the response arrives.
            if !matches!(
                d.observation,
                crate::diagnose::observation::Observation::StatusWord(_)
            ) {
                let prefer = runner.profile().explain_ids(d.step, d.kind).to_vec();
                session.observe(&d.observation, &prefer, at, d.text.clone());
            }
        }
    }
    for c in out.commands {
        if handle.commands.send(c).await.is_err() {
            break;
        }
    }
    finished
}

fn write_updates(
    w: &mut impl Write,
    runner: &Runner,
    updates: &[Update],
    at: Timestamp,
    format: OutputFormat,
    stamp: &crate::stamp::Stamp,
) -> std::io::Result<()> {
    for u in updates {
        let Update::StepDone(i) = u else { continue };
        let Some(v) = report::step_event_json(runner, *i) else {
            continue;
        };
        match format {
            OutputFormat::Json => {
                crate::record::handshake::write_step_event(w, runner, *i, at, stamp)?
            }
            OutputFormat::Text => writeln!(
                w,
                "{:12.6} event {}: handshake {}",
                at.as_secs_f64(),
                v["severity"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("")
            )?,
        }
    }
    Ok(())
}

/// Headless: every record as `hsmon serial --headless` prints it, the `handshake.step` events,
/// then the report.
async fn headless(
    mut handle: SourceHandle,
    mut session: Session,
    mut runner: Runner,
    format: OutputFormat,
    clock: Clock,
) -> Result<u8> {
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, crate::output::Stdout::lock());
    let mut signals = crate::run::Signals::new()?;
    let mut linger: Option<Instant> = None;
    let mut interrupted = false;
    if format == OutputFormat::Json {
        crate::headless::write_live_session(&mut w, &session)?;
    }
    loop {
        let wake = runner.next_wake().map(|t| instant_at(&clock, t));
        tokio::select! {
            ev = handle.events.recv() => {
                let Some(ev) = ev else { break };
                let mut batch = vec![ev];
                while let Ok(ev) = handle.events.try_recv() {
                    batch.push(ev);
                }
                for ev in &batch {
                    record(&mut w, &mut session, ev, format)?;
                    let out = runner.on_event(ev);
                    write_updates(&mut w, &runner, &out.updates, ev.at, format, &session.stamp)?;
                    if apply(out, &runner, &mut session, &handle, ev.at).await {
                        linger = Some(Instant::now() + LINGER);
                    }
                    crate::headless::write_findings(&mut w, &mut session, format)?;
                }
                w.flush()?;
            }
            _ = async { match wake { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } }, if linger.is_none() => {
                let now = clock.now();
                let out = runner.poll(now);
                write_updates(&mut w, &runner, &out.updates, now, format, &session.stamp)?;
                if apply(out, &runner, &mut session, &handle, now).await {
                    linger = Some(Instant::now() + LINGER);
                }
                crate::headless::write_findings(&mut w, &mut session, format)?;
                w.flush()?;
            }
            _ = crate::headless::session_timer(&session, &clock) => {
                if session.poll(clock.now()) {
                    crate::headless::write_findings(&mut w, &mut session, format)?;
                    w.flush()?;
                }
            }
            _ = async { match linger { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => break,
            _ = signals.recv() => {
                interrupted = !runner.is_finished();
                break;
            }
        }
    }
    let _ = handle.commands.try_send(Command::Shutdown);
    // What the source still had queued belongs to the session too.
    while let Ok(ev) = handle.events.try_recv() {
        record(&mut w, &mut session, &ev, format)?;
    }
    session.flush_decoders();
    crate::headless::write_findings(&mut w, &mut session, format)?;
    w.flush()?;
    drop(w);
    let at = clock.now();
    print_report(&runner, at, None, format, &session.stamp)?;
    Ok(match runner.outcome() {
        Some(o) => o.exit_code(),
        None if interrupted => exit::EXPECTATION_FAILED,
        None => {
            // The source stopped before the run ended.
            exit::DEVICE
        }
    })
}

fn record(
    w: &mut impl Write,
    session: &mut Session,
    ev: &TimedEvent,
    format: OutputFormat,
) -> std::io::Result<()> {
    session.ingest(ev);
    match format {
        OutputFormat::Json => {
            crate::record::event::write_event(w, ev, None, &session.stamp).map(|_| ())
        }
        OutputFormat::Text => writeln!(w, "{}", crate::headless::text_record(ev)),
    }
}

/// Restores the terminal however the TUI loop ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// The TUI: the handshake pane above the usual panes; the run starts at once, and the screen
/// stays until the user quits. Exit status as headless (1 if quit before the end).
async fn tui(
    mut handle: SourceHandle,
    mut session: Session,
    mut runner: Runner,
    mut ui: UiState,
    clock: Clock,
) -> Result<u8> {
    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    let mut input = EventStream::new();
    let mut signals = crate::run::Signals::new()?;
    let size = terminal.size()?;
    let mut screen = ratatui::layout::Rect::new(0, 0, size.width, size.height);
    let mut dirty = true;
    let mut next_frame = Instant::now();
    let mut source_open = true;
    loop {
        // Keys page by what the lower panes show.
        let (_, rest) = crate::ui::handshake::split(screen, &runner);
        ui.size = (rest.width, rest.height);
        if dirty && Instant::now() >= next_frame {
            ui.now = clock.now();
            terminal.draw(|f| crate::ui::handshake::render_screen(f, &session, &ui, &runner))?;
            dirty = false;
            next_frame = Instant::now() + crate::app::FRAME_INTERVAL;
        }
        let wake = runner.next_wake().map(|t| instant_at(&clock, t));
        tokio::select! {
            ev = handle.events.recv(), if source_open => match ev {
                Some(ev) => {
                    let mut batch = vec![ev];
                    while let Ok(ev) = handle.events.try_recv() {
                        batch.push(ev);
                    }
                    for ev in &batch {
                        session.ingest(ev);
                        let out = runner.on_event(ev);
                        apply(out, &runner, &mut session, &handle, ev.at).await;
                    }
                    dirty = true;
                }
                None => {
                    source_open = false;
                    ui.message = Some("the source stopped".to_string());
                    dirty = true;
                }
            },
            _ = async { match wake { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                let now = clock.now();
                let out = runner.poll(now);
                apply(out, &runner, &mut session, &handle, now).await;
                dirty = true;
            }
            term = input.next() => match term {
                Some(Ok(TermEvent::Key(key))) => {
                    for c in ui.on_key(&session, key) {
                        if handle.commands.try_send(c.clone()).is_err() {
                            ui.message = Some(format!("{}: not done, the source is not taking commands", c.describe()));
                        }
                    }
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    screen = ratatui::layout::Rect::new(0, 0, w, h);
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            _ = crate::headless::session_timer(&session, &clock) => dirty |= session.poll(clock.now()),
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
            _ = signals.recv() => break,
        }
        if ui.quit {
            break;
        }
    }
    let _ = handle.commands.try_send(Command::Shutdown);
    Ok(runner
        .outcome()
        .map_or(exit::EXPECTATION_FAILED, Outcome::exit_code))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(profile: &str, extra: &[&str]) -> HandshakeArgs {
        use clap::Parser;
        let mut v = vec!["hsmon", "handshake", profile];
        v.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(v).command {
            crate::cli::CommandLine::Handshake(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn profile(name: &str) -> Profile {
        Profiles::built_in().unwrap().get(name).unwrap().clone()
    }

    #[test]
    fn the_command_line_must_fit_the_transport() {
        let f = Formats::default();
        let t = target(
            &profile("stm32"),
            &args("stm32", &["--port", "/dev/x", "-b", "115200"]),
            f,
        )
        .unwrap();
        let Target::Serial { settings, .. } = t else {
            panic!()
        };
        assert_eq!(
            settings.to_string(),
            "115200 8E1 flow none",
            "the profile's format, the given rate"
        );
        let t = target(
            &profile("stm32"),
            &args("stm32", &["--port", "/dev/x", "--line", "8N1"]),
            f,
        )
        .unwrap();
        let Target::Serial { settings, .. } = t else {
            panic!()
        };
        assert_eq!(settings.to_string(), "57600 8N1 flow none");
        let e = target(&profile("stm32"), &args("stm32", &["--tcp", "h:1"]), f).unwrap_err();
        assert!(
            e.to_string()
                .contains("profile stm32 talks over a serial port: give --port"),
            "{e}"
        );
        let e = target(&profile("iec104"), &args("iec104", &["--reader", "x"]), f).unwrap_err();
        assert!(e.to_string().contains("talks over TCP"), "{e}");
        assert_eq!(
            target(
                &profile("iec104"),
                &args("iec104", &["--tcp", "10.0.0.5"]),
                f
            )
            .unwrap(),
            Target::Tcp {
                addr: "10.0.0.5:2404".into()
            },
            "the profile's default port"
        );
        assert_eq!(
            target(
                &profile("iec104"),
                &args("iec104", &["--tcp", "[::1]:2405"]),
                f
            )
            .unwrap(),
            Target::Tcp {
                addr: "[::1]:2405".into()
            }
        );
        assert_eq!(
            target(&profile("iso7816-select"), &args("iso7816-select", &[]), f).unwrap(),
            Target::Card { reader: None }
        );
    }
}
