//! `hsmon handshake`'s command line: the profiles a run can use, the device a profile talks
//! to (`--port`, `--reader`, `--tcp`), opening it through its ordinary source, and the report.
//! The run itself is a driver ([`crate::handshake::driver`]) of the ordinary monitor loop.

use std::io::Write;

use color_eyre::eyre::Result;

use crate::cli::{Formats, GlobalArgs, HandshakeArgs, OutputFormat};
use crate::clock::Clock;
use crate::config::Config;
use crate::diagnose::knowledge::Knowledge;
use crate::event::{Baud, FrameFormat, LineSettings, Timestamp};
use crate::exit::{self, DeviceError, UsageError};
use crate::handshake::profile::{Profile, Profiles, Transport};
use crate::handshake::report;
use crate::handshake::runner::Runner;
use crate::source::SourceHandle;

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
pub async fn open(target: &Target, clock: Clock) -> Result<SourceHandle> {
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

/// `--list`: one line per profile (JSON: one object per line).
pub fn list(profiles: &Profiles, format: OutputFormat) -> String {
    let mut out = String::new();
    for p in profiles.all() {
        match format {
            // A user's profile is shared text: printed terminal-safe.
            OutputFormat::Text => {
                out.push_str(&crate::sanitize::printable(&p.list_line()));
                out.push('\n');
            }
            OutputFormat::Json => {
                let mut line = Vec::new();
                // Writing to a Vec cannot fail.
                let _ = crate::sanitize::write_json_line(
                    &mut line,
                    &serde_json::json!({
                        "name": p.name, "transport": p.transport.label(),
                        "description": p.description, "source": p.source, "built_in": p.built_in,
                    }),
                );
                out.push_str(&String::from_utf8_lossy(&line));
            }
        }
    }
    out
}

/// The handshake report (text, or one JSON record), after the run's records.
pub fn print_report(
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

/// `hsmon handshake`: picks the profile, opens the device through its ordinary source, and
/// runs the profile as a driver of an ordinary monitor — every byte, frame and explanation
/// is recorded (and captured) as for any other traffic — headless (records, then the report;
/// exit 0 ok, 1 divergence, 2 bad profile, 3 device error) or in the TUI with the handshake
/// pane on top.
pub(super) async fn run(
    global: &GlobalArgs,
    formats: Formats,
    config: &Config,
    args: crate::cli::HandshakeArgs,
) -> Result<u8> {
    let knowledge = super::load_knowledge()?;
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
                let stamp = crate::stamp::Stamp::new(started, global.labels()?);
                print_report(
                    &runner,
                    clock.now(),
                    Some(&e.to_string()),
                    formats.output,
                    &stamp,
                )?;
            }
            return Err(e);
        }
    };
    let runner = Runner::new(profile, Some(knowledge.clone()), clock.now());
    let extras = super::Extras {
        handshake: Some(runner),
        knowledge: Some(knowledge),
        ..super::Extras::default()
    };
    super::monitor_with(global, formats, config, handle, clock, None, extras).await
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
