//! The command line (the contract in DESIGN.md: tests, docs and scripts rely on it).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// hsmon — a terminal monitor that shows the live bytes on a serial line, decodes them and
/// explains the unexpected ones ("handshaking error: unexpected response 0x68").
#[derive(Debug, Parser)]
#[command(name = "hsmon", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: CommandLine,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Run without the terminal UI: one record per line on stdout (Ctrl-C ends).
    /// In headless mode, lines on stdin are commands: `send 68 04`, `send-text AT\r`,
    /// `baud 9600`, `format 8E1`, `flow hw`, `dtr on`, `rts off`, `break`.
    #[arg(long, global = true)]
    pub headless: bool,
    /// `text` or `json`: the output of --headless. For `serial`, a line format such as 8N1
    /// is also accepted here (`--format 8N1` = `--line 8N1`); give both with two --format.
    #[arg(long, global = true, value_name = "text|json|8N1", action = clap::ArgAction::Append)]
    pub format: Vec<String>,
    /// Record the session to FILE (default: a new file under
    /// $XDG_STATE_HOME/hsmon/captures/). Replay it with `hsmon replay FILE`.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "no_capture"
    )]
    pub capture: Option<PathBuf>,
    /// Do not record the session.
    #[arg(long, global = true)]
    pub no_capture: bool,
    /// Config file to use instead of $XDG_CONFIG_HOME/hsmon/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Add `"KEY":"VALUE"` at the end of every headless JSON record (repeatable: `--label
    /// site=lab --label port=meter1`). KEY is letters, digits, `_`, `.` or `-`, and not a
    /// member hsmon writes itself (type, t, ts, hex, ...).
    #[arg(long, global = true, value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub label: Vec<String>,
    /// Log more to the log file (-v debug, -vv trace). Logs never go to the screen.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

pub use crate::output::OutputFormat;

/// What the `--format` values said: an output format and, optionally, a line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Formats {
    pub output: OutputFormat,
    pub line: Option<crate::event::FrameFormat>,
}

impl GlobalArgs {
    /// The `--label` members, checked (see [`crate::stamp::parse_label`]).
    pub fn labels(&self) -> Result<Vec<(String, String)>, crate::exit::UsageError> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.label.len());
        for arg in &self.label {
            let (k, v) = crate::stamp::parse_label(arg).map_err(crate::exit::UsageError)?;
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(crate::exit::UsageError(format!(
                    "--label {arg}: the key '{k}' is given twice"
                )));
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// Sorts the `--format` values into output (text/json) and line (8N1) formats.
    pub fn formats(&self) -> Result<Formats, crate::exit::UsageError> {
        let mut f = Formats::default();
        for v in &self.format {
            match v.to_ascii_lowercase().as_str() {
                "text" => f.output = OutputFormat::Text,
                "json" => f.output = OutputFormat::Json,
                _ => {
                    let line = v.parse().map_err(|e: crate::event::SettingsError| {
                        crate::exit::UsageError(format!("--format {v}: not text or json, and {e}"))
                    })?;
                    f.line = Some(line);
                }
            }
        }
        Ok(f)
    }
}

#[derive(Debug, Subcommand)]
pub enum CommandLine {
    /// Monitor a serial port: live hex view, line control, send, auto-reconnect.
    Serial(SerialArgs),
    /// List serial ports with USB VID:PID, serial number and /dev/serial/by-id name,
    /// and the PC/SC card readers.
    List,
    /// Watch PC/SC smart-card readers; step through an APDU script, send APDUs.
    Card(CardArgs),
    /// Play a recorded session back: the same panes, decoders and explanations as live.
    Replay(ReplayArgs),
    /// The monitor on a built-in simulated device: no hardware needed.
    Demo(DemoArgs),
    /// Decode bytes offline: frames with their fields, and what hsmon would say about them.
    Decode(DecodeArgs),
    /// Explain a code: a status word (6882), a PC/SC code (0x80100068, SCARD_W_RESET_CARD),
    /// a byte (68) or a knowledge id.
    Explain(ExplainArgs),
    /// Export a capture (.hscap): pcapng for Wireshark, jsonl for scripts, hexdump for reports.
    Export(ExportArgs),
    /// Monitor a raw TCP connection (a ser2net raw port, IEC 60870-5-104 on 2404, ...),
    /// reconnecting when it drops.
    Tcp(TcpArgs),
    /// Both directions of a UART link, one adapter per direction (a Y-cable), in one session.
    Tap(TapArgs),
    /// Ask a port what it really speaks.
    Probe(ProbeArgs),
    /// Watch your own program talk to its ports and sockets: run it under hsmon (`hsmon
    /// trace -- stm32flash /dev/ttyUSB0`) or attach to it (`--pid`). Its reads, writes and
    /// the line settings it sets become records; hsmon exits with the program's status.
    Trace(TraceArgs),
    /// Run a known handshake against a device step by step and explain the first divergence
    /// (--headless: a JSON report; exit 0 ok, 1 divergence, 2 bad profile, 3 device error).
    Handshake(HandshakeArgs),
    /// Print a shell completion script to stdout, e.g.
    /// `hsmon completions bash > ~/.local/share/bash-completion/completions/hsmon`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to stdout: `hsmon man | man -l -`.
    Man,
}

/// The completion script for `shell`, generated from this very command line (so it never
/// drifts from the subcommands and flags). Built in memory: clap_complete panics on a failed
/// write, and stdout may be a closed pipe.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "hsmon", &mut out);
    out
}

/// The manual page, hsmon(1), as roff, generated from this command line.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct HandshakeArgs {
    /// The profile: mtk-brom, stm32, esp32, mbus, iec104, dlt645, iso7816-select, or one of
    /// yours in $XDG_CONFIG_HOME/hsmon/profiles/ (--list shows them).
    #[arg(required_unless_present = "list")]
    pub profile: Option<String>,
    /// List the profiles, one line each.
    #[arg(long)]
    pub list: bool,
    /// The serial port, for serial profiles.
    #[arg(long, value_name = "PORT")]
    pub port: Option<PathBuf>,
    /// Baud rate instead of the profile's.
    #[arg(
        short,
        long,
        value_name = "BAUD",
        requires = "port",
        allow_negative_numbers = true
    )]
    pub baud: Option<String>,
    /// Character format instead of the profile's (8N1, 8E1, ...).
    #[arg(long = "line", value_name = "8N1", requires = "port")]
    pub line_format: Option<String>,
    /// The card reader (name, unique part of it, or index), for card profiles.
    #[arg(long, value_name = "NAME|INDEX")]
    pub reader: Option<String>,
    /// HOST:PORT, for TCP profiles (HOST alone takes the profile's port).
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<String>,
    /// Set a profile variable, e.g. --set aid=A0000000041010 (repeatable).
    #[arg(long = "set", value_name = "NAME=HEX")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The capture file (.hscap) to export.
    pub file: PathBuf,
    /// The output format.
    #[arg(long, value_enum, value_name = "pcapng|jsonl|hexdump")]
    pub to: crate::export::ExportFormat,
    /// Write to OUT instead of stdout.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TcpArgs {
    /// HOST:PORT, e.g. 10.0.0.5:2404, lab-pi:7000, [::1]:2000.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Attach to this running process (and its threads) instead of starting a program.
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD ARGS")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct TapArgs {
    /// The adapter whose RX hears the host (master): shown as TX, the request direction.
    pub port_a: PathBuf,
    /// The adapter whose RX hears the device: shown as RX, the answers.
    pub port_b: PathBuf,
    /// Baud rate of both ports. Default: the config file's, else 115200.
    #[arg(short, long, value_name = "BAUD", allow_negative_numbers = true)]
    pub baud: Option<String>,
    /// Character format of both ports (8N1, 7E1, 8E2). `--format 8N1` works too.
    #[arg(long = "line", value_name = "8N1")]
    pub line_format: Option<String>,
    /// Flow control of both ports: none, hw or sw.
    #[arg(long, value_name = "none|hw|sw")]
    pub flow: Option<String>,
    /// Name of the sender PORT_A hears.
    #[arg(long, value_name = "NAME", default_value = "master")]
    pub label_a: String,
    /// Name of the sender PORT_B hears.
    #[arg(long, value_name = "NAME", default_value = "device")]
    pub label_b: String,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(subcommand)]
    pub kind: ProbeKind,
}

#[derive(Debug, Subcommand)]
pub enum ProbeKind {
    /// Send a real TLS ClientHello and classify the answer: a TLS handshake (version, cipher,
    /// certificate chain), a TLS alert, plaintext (HTTP where TLS was expected), or nothing.
    /// Exit 0 TLS, 1 plaintext/alert/nothing, 3 connection error.
    Tls(TlsProbeArgs),
}

#[derive(Debug, Args)]
pub struct TlsProbeArgs {
    /// HOST:PORT, e.g. api.example:443, 10.0.0.5:19998.
    pub target: String,
    /// The server name to send (SNI) and verify the certificate against. Default: HOST, when
    /// it is a name (an IP address sends no SNI).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Seconds to wait for the connection and for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
    /// Seconds the whole probe may take, however the server paces its bytes.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0)]
    pub deadline: f64,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The protocol (default: guessed): apdu, atr, iso7816-3, mbus, iec101, iec104, dlt645,
    /// mtk-brom, stm32, esp-slip, tls, http, text.
    #[arg(long, short)]
    pub protocol: Option<String>,
    /// The bytes as hex: "68 03 03 68 53 FE 50 A1 16" or 680303...
    #[arg(long, conflicts_with = "file")]
    pub hex: Option<String>,
    /// A file of raw bytes.
    #[arg(required_unless_present = "hex")]
    pub file: Option<PathBuf>,
    /// Stop after this many input bytes (say so on stderr): for endless inputs such as a
    /// device or a pipe that does not end.
    #[arg(long, value_name = "N")]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// One or more codes: 68 · 6882 · 0x80100068 · SCARD_W_RESET_CARD · -2146434968 · iso7816.sw.6882
    #[arg(required = true, allow_negative_numbers = true)]
    pub codes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SerialArgs {
    /// The port: /dev/ttyUSB0, /dev/ttyACM0, /dev/serial/by-id/..., a pty, or a remote port
    /// behind an RFC 2217 server (ser2net) as rfc2217://HOST:PORT; or the NAME of a
    /// `[ports.NAME]` in the config file (its settings are the defaults, flags override).
    #[arg(value_name = "PORT|NAME")]
    pub port: PathBuf,
    /// Baud rate in bits per second (any rate the adapter supports, e.g. 74880).
    /// Default: the config file's, else 115200.
    #[arg(short, long, value_name = "BAUD", allow_negative_numbers = true)]
    pub baud: Option<String>,
    /// Character format: data bits 5-8, parity N/E/O/M/S, stop bits 1/2 (8N1, 7E1, 8E2).
    /// `--format 8N1` works too.
    #[arg(long = "line", value_name = "8N1")]
    pub line_format: Option<String>,
    /// Flow control: none, hw (RTS/CTS) or sw (XON/XOFF).
    #[arg(long, value_name = "none|hw|sw")]
    pub flow: Option<String>,
    /// Find the device's rate: try the common rates one by one on the port, score what
    /// arrives, and propose the best (TUI) or print `baud` records and exit 0 when one locks,
    /// 1 when none scores (--headless).
    #[arg(long)]
    pub autobaud: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A capture file (every session records one; see --capture).
    pub file: PathBuf,
    /// Playback speed: 1 = as recorded, 10 = ten times faster, 0.5 = half; `max` (or 0) =
    /// as fast as it can (a script reading --headless output waits for no recorded pause).
    #[arg(long, default_value = "1", value_name = "FACTOR|max", value_parser = parse_speed)]
    pub speed: f64,
    /// Start paused (step with `.`, play with Space).
    #[arg(long)]
    pub paused: bool,
}

/// `--speed`: a factor, or `max`/`0` for unpaced playback (returned as 0.0, which the replay
/// source reads as "no waiting").
fn parse_speed(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(0.0);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "give a positive number (1 = as recorded, 10 = ten times faster) or max (as fast as it can), not {s:?}"
        )),
    }
}

#[derive(Debug, Args)]
pub struct CardArgs {
    /// The reader: its name (or a unique part of it) or its index in `hsmon list`.
    /// Default: the first reader with a card in it.
    #[arg(long, value_name = "NAME|INDEX")]
    pub reader: Option<String>,
    /// An APDU script in pcsc-tools' scriptor format (hex lines, # comments, reset, exit),
    /// with optional `# expect 9000` lines. The TUI steps through it; --headless runs it and
    /// exits 1 if an expectation fails.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Connect exclusively (other applications cannot use the card meanwhile).
    #[arg(long)]
    pub exclusive: bool,
    /// Protocol to negotiate: t0, t1 or any.
    #[arg(long, value_name = "t0|t1|any", default_value = "any")]
    pub protocol: String,
    /// Do not answer 61XX with GET RESPONSE or 6CXX with a resend automatically.
    #[arg(long)]
    pub no_follow_up: bool,
    /// Wrap each script run in SCardBeginTransaction / SCardEndTransaction.
    #[arg(long)]
    pub transaction: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which simulated device: `tour` (default) — a device printing a boot log, then
    /// M-Bus, IEC 104 and DL/T 645 frames, each opening with 0x68.
    #[arg(default_value = "tour")]
    pub scenario: String,
    /// Stop after this many seconds (for scripts and tests); default: run until quit.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Start an active baud scan at once, as `serial --autobaud` does.
    #[arg(long)]
    pub autobaud: bool,
}

/// The exit status for an error that reached the top: usage and input errors (the config
/// file, line settings) 2, device and connection errors 3, anything else 3.
pub fn exit_status_for(err: &color_eyre::Report) -> u8 {
    for cause in err.chain() {
        if cause.is::<crate::exit::UsageError>()
            || cause.is::<crate::config::ConfigError>()
            || cause.is::<crate::event::SettingsError>()
        {
            return crate::exit::USAGE;
        }
        if cause.is::<crate::exit::DeviceError>() || cause.is::<crate::source::serial::OpenError>()
        {
            return crate::exit::DEVICE;
        }
    }
    crate::exit::DEVICE
}
