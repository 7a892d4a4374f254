//! Named ports: `[ports.NAME]` in the config file, and finding the device a name means now.
//! Matching is pure (a list of present ports in, a path out) so it is tested without hardware;
//! `present()` reads the machine's ports through `list.rs` (serialport's enumeration, which
//! takes USB VID:PID from sysfs, `/sys/class/tty/<tty>/device/../idVendor`).
//!
//! ```toml
//! [ports.meter]
//! match_by_id = "usb-FTDI_FT232R*"   # glob over /dev/serial/by-id names
//! usb = "0403:6001"                  # VID:PID (hex)
//! path = "/dev/ttyUSB0"              # used when no rule matches; or rfc2217://host:port
//! baud = 2400
//! format = "8E1"
//! flow = "none"
//! label = "heat meter, bench 3"
//! profile = "mbus"                   # a handshake profile (hsmon handshake --list)
//! capture = false                    # do not record sessions on this port
//! ```

use serde::{Deserialize, Deserializer, Serialize};

use crate::event::{Baud, FlowControl, FrameFormat};

/// A USB vendor and product id, as `VID:PID` in hex (`0403:6001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsbId {
    pub vid: u16,
    pub pid: u16,
}

impl std::str::FromStr for UsbId {
    type Err = String;
    fn from_str(s: &str) -> Result<UsbId, String> {
        let bad = || format!("usb = \"{s}\": expected VID:PID in hex, e.g. \"0403:6001\"");
        let (v, p) = s.trim().split_once(':').ok_or_else(bad)?;
        let hex = |x: &str| {
            if x.is_empty() || x.len() > 4 {
                return Err(bad());
            }
            u16::from_str_radix(x, 16).map_err(|_| bad())
        };
        Ok(UsbId {
            vid: hex(v)?,
            pid: hex(p)?,
        })
    }
}

impl std::fmt::Display for UsbId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)
    }
}

/// One `[ports.NAME]` table. Every value is checked as it is read, so a mistake is reported
/// with the file, line and column of the value (or of the table, for rules that need two keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawNamedPort")]
pub struct NamedPort {
    /// A device path or `rfc2217://HOST:PORT`; with match rules, the fallback when none matches.
    pub path: Option<String>,
    pub baud: Option<Baud>,
    pub format: Option<FrameFormat>,
    pub flow: Option<FlowControl>,
    /// Free text shown next to the name.
    pub label: Option<String>,
    /// A handshake profile name; checked against the profiles when the port is used.
    pub profile: Option<String>,
    /// `false`: sessions on this port are not recorded unless `--capture FILE` asks.
    pub capture: Option<bool>,
    /// A glob (`*`, `?`) over the names in /dev/serial/by-id (or over full paths, when it
    /// contains a `/`).
    pub match_by_id: Option<String>,
    pub usb: Option<UsbId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedPort {
    #[serde(default, deserialize_with = "de_path")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de_baud")]
    baud: Option<Baud>,
    #[serde(default, deserialize_with = "de_parsed")]
    format: Option<FrameFormat>,
    #[serde(default, deserialize_with = "de_parsed")]
    flow: Option<FlowControl>,
    label: Option<String>,
    #[serde(default, deserialize_with = "de_nonempty")]
    profile: Option<String>,
    capture: Option<bool>,
    #[serde(default, deserialize_with = "de_nonempty")]
    match_by_id: Option<String>,
    #[serde(default, deserialize_with = "de_parsed")]
    usb: Option<UsbId>,
}

impl TryFrom<RawNamedPort> for NamedPort {
    type Error = String;
    fn try_from(r: RawNamedPort) -> Result<NamedPort, String> {
        let rules = r.match_by_id.is_some() || r.usb.is_some();
        let remote = r.path.as_deref().is_some_and(is_remote);
        if !rules && r.path.is_none() {
            return Err(
                "a named port needs `path`, `match_by_id` or `usb` to find its device".into(),
            );
        }
        if rules && remote {
            return Err(
                "`match_by_id` and `usb` find local adapters: they cannot go with an rfc2217:// path"
                    .into(),
            );
        }
        Ok(NamedPort {
            path: r.path,
            baud: r.baud,
            format: r.format,
            flow: r.flow,
            label: r.label,
            profile: r.profile,
            capture: r.capture,
            match_by_id: r.match_by_id,
            usb: r.usb,
        })
    }
}

fn de_parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

fn de_baud<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Baud>, D::Error> {
    let n = u32::deserialize(d)?;
    Baud::new(n).map(Some).map_err(serde::de::Error::custom)
}

fn de_nonempty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(Some(s))
}

fn de_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = de_nonempty(d)?.unwrap_or_default();
    if is_remote(&s) {
        if let Some(Err(e)) = crate::source::rfc2217::target_of(std::path::Path::new(&s)) {
            return Err(serde::de::Error::custom(e));
        }
    } else if !s.starts_with('/') {
        return Err(serde::de::Error::custom(format!(
            "path = \"{s}\": give an absolute device path (/dev/ttyUSB0) or rfc2217://HOST:PORT"
        )));
    }
    Ok(Some(s))
}

fn is_remote(path: &str) -> bool {
    crate::source::rfc2217::target_of(std::path::Path::new(path)).is_some()
}

/// A port name must not look like a path, so `hsmon serial ARG` can tell them apart.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.contains(':') {
        return Err(format!(
            "[ports.{name}]: a port name must be non-empty and contain no '/' or ':' (it would read as a path)"
        ));
    }
    Ok(())
}

/// A serial port present now, as the matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    pub path: String,
    /// The /dev/serial/by-id links to it (full paths).
    pub by_id: Vec<String>,
    pub usb: Option<UsbId>,
}

impl From<crate::source::available::PortInfo> for Present {
    fn from(p: crate::source::available::PortInfo) -> Present {
        Present {
            usb: p.vid_pid.as_deref().and_then(|v| v.parse().ok()),
            by_id: p.by_id.into_iter().collect(),
            path: p.path,
        }
    }
}

/// The ports on this machine now.
pub fn present() -> Vec<Present> {
    crate::source::available::serial_ports()
        .into_iter()
        .map(Present::from)
        .collect()
}

/// `*` any run of characters, `?` one character; everything else literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn by_id_matches(glob: &str, link: &str) -> bool {
    if glob.contains('/') {
        glob_match(glob, link)
    } else {
        let name = link.rsplit('/').next().unwrap_or(link);
        glob_match(glob, name)
    }
}

/// What a name resolves to now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Resolution {
    /// The device to open, and which rule found it.
    Present { path: String, via: String },
    /// Several ports match the rules: which one is meant is not clear.
    Ambiguous { paths: Vec<String> },
    /// Nothing matches; `tried` says each rule and why it failed.
    NotPresent { tried: Vec<String> },
}

impl NamedPort {
    /// How the port is found, for `hsmon list`: `by-id usb-FTDI* · usb 0403:6001 · path /dev/x`.
    pub fn rules(&self) -> String {
        let mut r = Vec::new();
        if let Some(g) = &self.match_by_id {
            r.push(format!("by-id {g}"));
        }
        if let Some(u) = &self.usb {
            r.push(format!("usb {u}"));
        }
        if let Some(p) = &self.path {
            r.push(format!("path {p}"));
        }
        r.join(" · ")
    }

    /// Finds the device: the ports matching every rule given (`match_by_id`, `usb`); when no
    /// rule is given or none matches, `path` if it exists (an rfc2217:// path always does).
    pub fn resolve(&self, ports: &[Present], exists: &dyn Fn(&str) -> bool) -> Resolution {
        let mut tried = Vec::new();
        if self.match_by_id.is_some() || self.usb.is_some() {
            let hits: Vec<&Present> = ports
                .iter()
                .filter(|p| {
                    self.match_by_id
                        .as_deref()
                        .is_none_or(|g| p.by_id.iter().any(|l| by_id_matches(g, l)))
                        && self.usb.is_none_or(|u| p.usb == Some(u))
                })
                .collect();
            match hits.as_slice() {
                [one] => {
                    return Resolution::Present {
                        path: one.path.clone(),
                        via: self.rules_used(),
                    };
                }
                [] => {
                    if let Some(g) = &self.match_by_id {
                        let n = ports.iter().filter(|p| !p.by_id.is_empty()).count();
                        tried.push(format!(
                            "match_by_id = \"{g}\" (no match among {n} /dev/serial/by-id link(s))"
                        ));
                    }
                    if let Some(u) = &self.usb {
                        let n = ports.iter().filter(|p| p.usb.is_some()).count();
                        tried.push(format!("usb = \"{u}\" (no match among {n} USB port(s))"));
                    }
                    if self.match_by_id.is_some() && self.usb.is_some() {
                        tried.push("(a port must match both rules)".into());
                    }
                }
                many => {
                    return Resolution::Ambiguous {
                        paths: many.iter().map(|p| p.path.clone()).collect(),
                    };
                }
            }
        }
        if let Some(p) = &self.path {
            if is_remote(p) || exists(p) {
                return Resolution::Present {
                    path: p.clone(),
                    via: "path".into(),
                };
            }
            tried.push(format!("path = \"{p}\" (does not exist)"));
        }
        Resolution::NotPresent { tried }
    }

    fn rules_used(&self) -> String {
        match (&self.match_by_id, &self.usb) {
            (Some(_), Some(_)) => "match_by_id+usb".into(),
            (Some(_), None) => "match_by_id".into(),
            _ => "usb".into(),
        }
    }
}

/// One named port as `hsmon list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub name: String,
    pub label: Option<String>,
    pub profile: Option<String>,
    /// How it is found: `by-id usb-FTDI* · usb 0403:6001 · path /dev/ttyUSB0`.
    pub rules: String,
    /// Where it is now.
    pub resolves: Resolution,
}

/// The named ports of a config, each resolved against `ports`.
pub fn listing<'a>(
    named: impl IntoIterator<Item = (&'a String, &'a NamedPort)>,
    ports: &[Present],
    exists: impl Fn(&str) -> bool,
) -> Vec<Listed> {
    named
        .into_iter()
        .map(|(name, p)| Listed {
            name: name.clone(),
            label: p.label.clone(),
            profile: p.profile.clone(),
            rules: p.rules(),
            resolves: p.resolve(ports, &exists),
        })
        .collect()
}

/// The `Named ports:` block of `hsmon list` (empty when the config names none).
pub fn render_text(listed: &[Listed]) -> String {
    use crate::sanitize::printable;
    if listed.is_empty() {
        return String::new();
    }
    let mut s = String::from("Named ports (config file):\n");
    for l in listed {
        let now = match &l.resolves {
            Resolution::Present { path, via } => format!("{path} (by {via})"),
            Resolution::Ambiguous { paths } => format!("ambiguous: {}", paths.join(", ")),
            Resolution::NotPresent { .. } => "not present".to_string(),
        };
        s.push_str(&format!(
            "  {:<12} {}  -> {}",
            printable(&l.name),
            printable(&l.rules),
            printable(&now)
        ));
        if let Some(label) = &l.label {
            s.push_str(&format!("  \"{}\"", printable(label)));
        }
        if let Some(p) = &l.profile {
            s.push_str(&format!("  profile {}", printable(p)));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn port(path: &str, by_id: &[&str], usb: Option<&str>) -> Present {
        Present {
            path: path.into(),
            by_id: by_id.iter().map(|s| s.to_string()).collect(),
            usb: usb.map(|u| u.parse().unwrap()),
        }
    }

    fn machine() -> Vec<Present> {
        vec![
            port("/dev/ttyS0", &[], None),
            port(
                "/dev/ttyUSB3",
                &["/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"],
                Some("0403:6001"),
            ),
            port(
                "/dev/ttyUSB4",
                &["/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_B00001XY-if00-port0"],
                Some("0403:6001"),
            ),
            port(
                "/dev/ttyACM0",
                &["/dev/serial/by-id/usb-STMicroelectronics_STLINK-V3_0029-if02"],
                Some("0483:374e"),
            ),
        ]
    }

    fn none_exist(_: &str) -> bool {
        false
    }

    #[test]
    fn glob_basics() {
        assert!(glob_match("usb-FTDI*", "usb-FTDI_FT232R"));
        assert!(glob_match(
            "*A50285BI*",
            "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
        ));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("usb-FTDI", "usb-FTDI_x"));
        assert!(glob_match("*-if0?-port0", "usb-x-if00-port0"));
        assert!(!glob_match("*-if01*", "usb-x-if00-port0"));
    }

    #[test]
    fn by_id_glob_finds_the_replugged_adapter() {
        let p = NamedPort {
            match_by_id: Some("usb-FTDI_*A50285BI*".into()),
            path: Some("/dev/ttyUSB0".into()),
            ..NamedPort::default()
        };
        assert_eq!(
            p.resolve(&machine(), &none_exist),
            Resolution::Present {
                path: "/dev/ttyUSB3".into(),
                via: "match_by_id".into()
            }
        );
        // A glob with a '/' is matched against the full link path.
        let p = NamedPort {
            match_by_id: Some("/dev/serial/by-id/usb-STM*".into()),
            ..NamedPort::default()
        };
        assert!(matches!(
            p.resolve(&machine(), &none_exist),
            Resolution::Present { path, .. } if path == "/dev/ttyACM0"
        ));
    }

    #[test]
    fn usb_id_matches_and_ambiguity_is_reported() {
        let p = NamedPort {
            usb: Some("0483:374E".parse().unwrap()),
            ..NamedPort::default()
        };
        assert!(matches!(
            p.resolve(&machine(), &none_exist),
            Resolution::Present { path, via } if path == "/dev/ttyACM0" && via == "usb"
        ));
        let p = NamedPort {
            usb: Some("0403:6001".parse().unwrap()),
            ..NamedPort::default()
        };
        assert_eq!(
            p.resolve(&machine(), &none_exist),
            Resolution::Ambiguous {
                paths: vec!["/dev/ttyUSB3".into(), "/dev/ttyUSB4".into()]
            }
        );
        // Both rules: the port must satisfy both.
        let p = NamedPort {
            usb: Some("0403:6001".parse().unwrap()),
            match_by_id: Some("*B00001XY*".into()),
            ..NamedPort::default()
        };
        assert!(matches!(
            p.resolve(&machine(), &none_exist),
            Resolution::Present { path, .. } if path == "/dev/ttyUSB4"
        ));
    }

    #[test]
    fn nothing_matches_names_every_rule_tried() {
        let p = NamedPort {
            usb: Some("1a86:7523".parse().unwrap()),
            match_by_id: Some("usb-1a86*".into()),
            path: Some("/dev/ttyUSB9".into()),
            ..NamedPort::default()
        };
        let Resolution::NotPresent { tried } = p.resolve(&machine(), &none_exist) else {
            panic!("expected not present");
        };
        let all = tried.join("; ");
        assert!(all.contains("match_by_id = \"usb-1a86*\""), "{all}");
        assert!(all.contains("usb = \"1a86:7523\""), "{all}");
        assert!(
            all.contains("path = \"/dev/ttyUSB9\" (does not exist)"),
            "{all}"
        );
        // The path is the fallback when it exists.
        assert!(matches!(
            p.resolve(&machine(), &|x| x == "/dev/ttyUSB9"),
            Resolution::Present { via, .. } if via == "path"
        ));
    }

    #[test]
    fn remote_path_is_always_present() {
        let p = NamedPort {
            path: Some("rfc2217://lab-pi:7001".into()),
            ..NamedPort::default()
        };
        assert!(matches!(
            p.resolve(&[], &none_exist),
            Resolution::Present { .. }
        ));
    }

    #[test]
    fn usb_id_parses_hex() {
        let u: UsbId = "0403:6001".parse().unwrap();
        assert_eq!((u.vid, u.pid), (0x0403, 0x6001));
        assert_eq!(
            "1A86:7523".parse::<UsbId>().unwrap().to_string(),
            "1a86:7523"
        );
        for bad in ["0403", "0403:", "xyz:0001", "12345:1", ":1"] {
            assert!(bad.parse::<UsbId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn listing_shows_each_name_and_where_it_is() {
        let mut named = std::collections::BTreeMap::new();
        named.insert(
            "stlink".to_string(),
            NamedPort {
                usb: Some("0483:374e".parse().unwrap()),
                label: Some("bench 3".into()),
                ..NamedPort::default()
            },
        );
        named.insert(
            "gone".to_string(),
            NamedPort {
                path: Some("/dev/ttyUSB9".into()),
                ..NamedPort::default()
            },
        );
        let l = listing(&named, &machine(), none_exist);
        let text = render_text(&l);
        assert!(
            text.contains("gone         path /dev/ttyUSB9  -> not present"),
            "{text}"
        );
        assert!(
            text.contains("stlink       usb 0483:374e  -> /dev/ttyACM0 (by usb)  \"bench 3\""),
            "{text}"
        );
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json[1]["resolves"]["status"], "present");
        assert_eq!(json[1]["resolves"]["path"], "/dev/ttyACM0");
        assert_eq!(json[0]["resolves"]["status"], "not_present");
        assert!(render_text(&[]).is_empty());
    }

    #[test]
    fn names_that_read_as_paths_are_refused() {
        assert!(check_name("meter").is_ok());
        assert!(check_name("a/b").is_err());
        assert!(check_name("rfc2217:x").is_err());
        assert!(check_name("").is_err());
    }
}
