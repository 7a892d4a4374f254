//! The config file (TOML): defaults for line settings, scrollback, theme, line ending and
//! key bindings. Read from `--config FILE` or `$XDG_CONFIG_HOME/hsmon/config.toml`.
//!
//! ```toml
//! [serial]
//! baud = 115200
//! format = "8N1"
//! flow = "none"
//!
//! [ui]
//! scrollback_mib = 64
//! theme = "color"       # or "mono"; NO_COLOR in the environment forces mono
//! line_ending = "cr"    # none | cr | lf | crlf, added to text typed in the send line
//!
//! [keys]
//! baud_up = ["+", "]"]
//!
//! [capture]
//! max_total_mib = 1024  # limits on $XDG_STATE_HOME/hsmon/captures, applied at start
//! max_age_days = 30
//! max_files = 500
//!
//! [ports.meter]         # `hsmon serial meter`; see `ports.rs` for every key
//! match_by_id = "usb-FTDI_*A50285BI*"
//! baud = 2400
//! format = "8E1"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::{Baud, FlowControl, FrameFormat, LineSettings};
use crate::ui::keys::{Keymap, KeymapError};
use crate::ui::sendline::LineEnding;

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub serial: SerialDefaults,
    #[serde(default)]
    pub ui: UiConfig,
    /// Action name → keys.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub capture: CaptureConfig,
    /// Named ports: `[ports.NAME]`.
    #[serde(default)]
    pub ports: BTreeMap<String, crate::ports::NamedPort>,
    /// Where each `[ports.NAME]` was written (file, line, column), for errors found later
    /// (an unknown handshake profile).
    #[serde(skip)]
    pub ports_at: BTreeMap<String, (String, usize, usize)>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SerialDefaults {
    pub baud: Option<u32>,
    pub format: Option<String>,
    pub flow: Option<String>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// In-memory scrollback cap, in MiB (default 64, 1 to 4096).
    pub scrollback_mib: Option<Bounded<1, 4096>>,
    pub theme: Option<String>,
    pub line_ending: Option<LineEnding>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log file (default: $XDG_STATE_HOME/hsmon/hsmon.log).
    pub file: Option<PathBuf>,
}

/// `[capture]`: bounds on hsmon's own capture directory, applied at the start of each session
/// that records there (oldest captures go first; see [`crate::capture::cleanup`]).
///
/// The defaults keep about a month of ordinary use and stay small next to a disk: 1 GiB holds
/// weeks of serial traffic (115200 baud flat out is ~11 KiB/s, ~1 GiB a day only when never
/// idle), 30 days covers "what happened last week", and 500 files bounds the listing even
/// when sessions are many and short (scripts running `hsmon --headless` in a loop).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// Total size of the captures, in MiB (default 1024, 1 to 1048576).
    pub max_total_mib: Option<Bounded<1, 1_048_576>>,
    /// Captures older than this many days go (default 30, 1 to 36500).
    pub max_age_days: Option<Bounded<1, 36_500>>,
    /// At most this many captures (default 500, 1 to 1000000).
    pub max_files: Option<Bounded<1, 1_000_000>>,
}

/// An integer within `MIN..=MAX`, checked while parsing so a bad value's error carries its
/// file, line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<const MIN: u64, const MAX: u64> TryFrom<i64> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        match u64::try_from(v) {
            Ok(u) if (MIN..=MAX).contains(&u) => Ok(Bounded(u)),
            _ => Err(format!("{v} is out of range: give {MIN} to {MAX}")),
        }
    }
}

impl CaptureConfig {
    pub const DEFAULT_MAX_TOTAL_MIB: u64 = 1024;
    pub const DEFAULT_MAX_AGE_DAYS: u64 = 30;
    pub const DEFAULT_MAX_FILES: u64 = 500;

    /// The limits, defaults where absent.
    pub fn limits(&self) -> crate::capture::cleanup::Limits {
        let mib = self
            .max_total_mib
            .map_or(Self::DEFAULT_MAX_TOTAL_MIB, Bounded::get);
        let days = self
            .max_age_days
            .map_or(Self::DEFAULT_MAX_AGE_DAYS, Bounded::get);
        let files = self.max_files.map_or(Self::DEFAULT_MAX_FILES, Bounded::get);
        crate::capture::cleanup::Limits {
            max_total_bytes: mib << 20,
            max_age: std::time::Duration::from_secs(days * 86_400),
            max_files: usize::try_from(files).unwrap_or(usize::MAX),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{path}:{line}:{column}: {message}\n  fix the config file, or run with --config /dev/null to ignore it"
    )]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {error}")]
    Keymap { path: String, error: KeymapError },
}

/// Line and column of `action` under `[keys]` (the start of `[keys]` if not found).
fn key_position(text: &str, action: &str) -> (usize, usize) {
    let keys = text.find("[keys]").unwrap_or(0);
    let at = text
        .get(keys..)
        .and_then(|t| {
            t.match_indices(action).find_map(|(i, _)| {
                let line_start = t.get(..i)?.rfind('\n').map_or(0, |n| n + 1);
                t.get(line_start..i)?.trim().is_empty().then_some(i)
            })
        })
        .map_or(keys, |i| keys + i);
    crate::toml_pos::line_col(text, at)
}

/// Line and column of `file` under `[log]`.
fn log_file_position(text: &str) -> (usize, usize) {
    let log = text.find("[log]").unwrap_or(0);
    let at = text
        .get(log..)
        .and_then(|t| t.find("file"))
        .map_or(log, |i| log + i);
    crate::toml_pos::line_col(text, at)
}

/// Line and column of the `[ports.NAME]` header (or of `NAME` under a `[ports]` table).
fn ports_position(text: &str, name: &str) -> (usize, usize) {
    let candidates = [
        format!("ports.{name}"),
        format!("ports.\"{name}\""),
        format!("ports.'{name}'"),
    ];
    let at = candidates
        .iter()
        .filter_map(|c| text.find(c.as_str()))
        .min()
        .or_else(|| text.find(name))
        .unwrap_or(0);
    crate::toml_pos::line_col(text, at)
}

impl Config {
    /// The default location.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("hsmon").join("config.toml"))
    }

    /// Loads `explicit` (must exist) or the default file (may be absent).
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Self::load_file(p),
            None => match Self::default_path() {
                Some(p) if p.exists() => Self::load_file(&p),
                _ => Ok(Config::default()),
            },
        }
    }

    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::textfile::read_text(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; errors carry file, line and column.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |s| crate::toml_pos::line_col(text, s.start));
            ConfigError::Parse {
                path: path.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let mut cfg = cfg;
        // Validate the values now, so a bad default fails at start-up, not at first use.
        cfg.line_settings(path)?;
        cfg.keymap(path).map_err(|e| match e {
            ConfigError::Keymap { error, .. } => {
                let (line, column) = key_position(text, error.action());
                ConfigError::Parse {
                    path: path.to_string(),
                    line,
                    column,
                    message: error.to_string(),
                }
            }
            other => other,
        })?;
        if let Some(file) = &cfg.log.file {
            // The log is opened later, quietly: a folder that is not there would lose it.
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                let (line, column) = log_file_position(text);
                return Err(ConfigError::Parse {
                    path: path.to_string(),
                    line,
                    column,
                    message: format!(
                        "[log] file = \"{}\": the folder {} does not exist: create it (mkdir -p {}) or choose another file",
                        crate::sanitize::printable(&file.display().to_string()),
                        crate::sanitize::printable(&dir.display().to_string()),
                        crate::sanitize::printable(&dir.display().to_string()),
                    ),
                });
            }
        }
        for name in cfg.ports.keys() {
            let (line, column) = ports_position(text, name);
            if let Err(message) = crate::ports::check_name(name) {
                return Err(ConfigError::Parse {
                    path: path.to_string(),
                    line,
                    column,
                    message,
                });
            }
            cfg.ports_at
                .insert(name.clone(), (path.to_string(), line, column));
        }
        Ok(cfg)
    }

    /// The configured line settings (defaults where absent).
    pub fn line_settings(&self, path: &str) -> Result<LineSettings, ConfigError> {
        let invalid = |e: &dyn std::fmt::Display| ConfigError::Invalid {
            path: path.to_string(),
            message: format!("[serial] {e}"),
        };
        let mut s = LineSettings::default();
        if let Some(b) = self.serial.baud {
            s.baud = Baud::new(b).map_err(|e| invalid(&e))?;
        }
        if let Some(f) = &self.serial.format {
            s.format = f.parse::<FrameFormat>().map_err(|e| invalid(&e))?;
        }
        if let Some(f) = &self.serial.flow {
            s.flow = f.parse::<FlowControl>().map_err(|e| invalid(&e))?;
        }
        Ok(s)
    }

    pub fn keymap(&self, path: &str) -> Result<Keymap, ConfigError> {
        Keymap::with_overrides(self.keys.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).map_err(
            |error: KeymapError| ConfigError::Keymap {
                path: path.to_string(),
                error,
            },
        )
    }

    pub fn window_bytes(&self) -> usize {
        let mib = self.ui.scrollback_mib.map_or(
            (crate::session::DEFAULT_WINDOW_BYTES >> 20) as u64,
            Bounded::get,
        );
        usize::try_from(mib).unwrap_or(4096) << 20
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn full_config_parses() {
        let c = Config::parse(
            "[serial]\nbaud = 9600\nformat = \"7E1\"\nflow = \"hw\"\n[ui]\nscrollback_mib = 8\ntheme = \"mono\"\nline_ending = \"crlf\"\n[keys]\nbaud_up = [\"x\"]\n",
            "c.toml",
        )
        .unwrap();
        let s = c.line_settings("c.toml").unwrap();
        assert_eq!(s.to_string(), "9600 7E1 flow hw");
        assert_eq!(c.window_bytes(), 8 << 20);
        assert_eq!(c.ui.line_ending, Some(LineEnding::CrLf));
    }

    #[test]
    fn malformed_config_names_file_line_column() {
        let cases = [
            ("[serial]\nbaud = \n", "c.toml:2:"),
            ("[serial]\nbaud = 9600\nspeed = 3\n", "c.toml:3:1"),
            ("[ui]\ntheme = 3\n", "c.toml:2:9"),
        ];
        for (text, want) in cases {
            let e = Config::parse(text, "c.toml").unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        let e = Config::parse("[serial]\nformat = \"9Q1\"\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("invalid frame format"), "{e}");
        let e = Config::parse("[keys]\nfly = [\"x\"]\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("unknown action 'fly'"), "{e}");
        let e = Config::parse("[serial]\nbaud = 1\n", "c.toml").unwrap_err();
        assert!(e.to_string().contains("invalid baud rate 1"), "{e}");
    }

    #[test]
    fn capture_limits_default_and_parse() {
        let l = Config::parse("", "c.toml").unwrap().capture.limits();
        assert_eq!(l.max_total_bytes, 1024 << 20);
        assert_eq!(l.max_age.as_secs(), 30 * 86_400);
        assert_eq!(l.max_files, 500);
        let c = Config::parse(
            "[capture]\nmax_total_mib = 10\nmax_age_days = 2\nmax_files = 3\n",
            "c.toml",
        )
        .unwrap();
        let l = c.capture.limits();
        assert_eq!(l.max_total_bytes, 10 << 20);
        assert_eq!(l.max_age.as_secs(), 2 * 86_400);
        assert_eq!(l.max_files, 3);
    }

    #[test]
    fn bad_capture_limits_name_file_line_column() {
        let cases = [
            (
                "[capture]\nmax_total_mib = 0\n",
                "c.toml:2:17",
                "give 1 to 1048576",
            ),
            (
                "[capture]\n\nmax_age_days = 99999\n",
                "c.toml:3:16",
                "give 1 to 36500",
            ),
            (
                "[capture]\nmax_files = -1\n",
                "c.toml:2:13",
                "-1 is out of range",
            ),
            ("[capture]\nmax_files = 1e9\n", "c.toml:2:13", ""),
            ("[capture]\nmax_size = 1\n", "c.toml:2:1", "unknown field"),
        ];
        for (text, at, why) in cases {
            let e = Config::parse(text, "c.toml").unwrap_err().to_string();
            assert!(e.starts_with(at), "{text:?}: {e}");
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn named_ports_parse() {
        let c = Config::parse(
            "[serial]\nbaud = 9600\n\n[ports.meter]\nmatch_by_id = \"usb-FTDI_*\"\nusb = \"0403:6001\"\npath = \"/dev/ttyUSB0\"\nbaud = 2400\nformat = \"8E1\"\nflow = \"hw\"\nlabel = \"heat meter\"\nprofile = \"mbus\"\ncapture = false\n\n[ports.remote]\npath = \"rfc2217://lab-pi:7001\"\n",
            "c.toml",
        )
        .unwrap();
        let m = &c.ports["meter"];
        assert_eq!(m.baud.unwrap().bps(), 2400);
        assert_eq!(m.format.unwrap().to_string(), "8E1");
        assert_eq!(m.flow, Some(FlowControl::Hardware));
        assert_eq!(m.usb.unwrap().to_string(), "0403:6001");
        assert_eq!(m.match_by_id.as_deref(), Some("usb-FTDI_*"));
        assert_eq!(m.label.as_deref(), Some("heat meter"));
        assert_eq!(m.profile.as_deref(), Some("mbus"));
        assert_eq!(m.capture, Some(false));
        assert_eq!(c.ports_at["meter"], ("c.toml".to_string(), 4, 2));
        assert_eq!(
            c.ports["remote"].path.as_deref(),
            Some("rfc2217://lab-pi:7001")
        );
    }

    #[test]
    fn bad_named_ports_name_file_line_column() {
        let cases = [
            // A bad value points at the value.
            (
                "[ports.a]\npath = \"/dev/x\"\nbaud = 1\n",
                "c.toml:3:8",
                "invalid baud rate 1",
            ),
            (
                "[ports.a]\npath = \"/dev/x\"\nformat = \"9Q1\"\n",
                "c.toml:3:10",
                "frame format",
            ),
            (
                "[ports.a]\npath = \"/dev/x\"\nflow = \"maybe\"\n",
                "c.toml:3:8",
                "",
            ),
            ("[ports.a]\nusb = \"0403\"\n", "c.toml:2:7", "VID:PID"),
            (
                "[ports.a]\npath = \"ttyUSB0\"\n",
                "c.toml:2:8",
                "absolute device path",
            ),
            ("[ports.a]\npath = \"rfc2217://nohost\"\n", "c.toml:2:8", ""),
            (
                "[ports.a]\npath = \"/dev/x\"\nspeed = 3\n",
                "c.toml:3:1",
                "unknown field",
            ),
            (
                "[ports.a]\npath = \"/dev/x\"\ncapture = \"yes\"\n",
                "c.toml:3:11",
                "",
            ),
            // Rules that need two keys point at the table.
            (
                "[ports.a]\nbaud = 9600\n",
                "c.toml:",
                "needs `path`, `match_by_id` or `usb`",
            ),
            (
                "[ports.a]\npath = \"rfc2217://h:1\"\nusb = \"0403:6001\"\n",
                "c.toml:",
                "cannot go with an rfc2217",
            ),
            (
                "[ports.\"a/b\"]\npath = \"/dev/x\"\n",
                "c.toml:1:2",
                "contain no '/'",
            ),
        ];
        for (text, at, want) in cases {
            let e = Config::parse(text, "c.toml").unwrap_err().to_string();
            assert!(e.starts_with(at), "{text:?}: {e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn values_out_of_range_conflicting_keys_and_a_missing_log_folder_are_refused_with_their_place()
    {
        for (text, at, want) in [
            (
                "[ui]\nscrollback_mib = 0\n",
                "c.toml:2:18:",
                "give 1 to 4096",
            ),
            (
                "[ui]\nscrollback_mib = 999999999\n",
                "c.toml:2:18:",
                "give 1 to 4096",
            ),
            (
                "[keys]\nbaud_up = [\"x\"]\nbaud_down = [\"x\"]\n",
                "c.toml:2:1:",
                "bound to both 'baud_down' and 'baud_up'",
            ),
            (
                "[log]\nfile = \"/nonexistent-hsmon/dir/hsmon.log\"\n",
                "c.toml:2:1:",
                "mkdir -p /nonexistent-hsmon/dir",
            ),
        ] {
            let e = Config::parse(text, "c.toml").unwrap_err().to_string();
            assert!(e.starts_with(at), "{text:?}: {e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
        // In range, one key per action, a log folder that exists: accepted.
        let ok = Config::parse(
            "[ui]\nscrollback_mib = 8\n[keys]\nbaud_up = [\"x\"]\nbaud_down = [\"y\"]\n[log]\nfile = \"/tmp/hsmon.log\"\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(ok.window_bytes(), 8 << 20);
    }
}
