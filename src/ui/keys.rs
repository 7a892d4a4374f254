//! The keymap: keys as data, one table from which key handling, the help overlay and
//! README's key table are all produced. The config file's `[keys]` table overrides it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::ui::action::Action;

/// A key with the modifiers that matter (Ctrl, Alt; Shift is part of the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl KeySpec {
    const fn plain(code: KeyCode) -> KeySpec {
        KeySpec {
            code,
            ctrl: false,
            alt: false,
        }
    }
    const fn ch(c: char) -> KeySpec {
        KeySpec::plain(KeyCode::Char(c))
    }
    const fn ctrl(c: char) -> KeySpec {
        KeySpec {
            code: KeyCode::Char(c),
            ctrl: true,
            alt: false,
        }
    }

    /// The spec a terminal key event matches.
    pub fn of(ev: &KeyEvent) -> KeySpec {
        let code = match ev.code {
            // Some terminals report Ctrl-letters in upper case.
            KeyCode::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            c => c,
        };
        KeySpec {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        }
    }

    /// Parses "q", "D", "+", "ctrl-c", "alt-x", "pgup", "f5", "space".
    pub fn parse(s: &str) -> Option<KeySpec> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if lower.starts_with("ctrl-") && rest.len() > 5 {
                ctrl = true;
                rest = &rest[5..];
            } else if lower.starts_with("alt-") && rest.len() > 4 {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "space" => KeyCode::Char(' '),
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().ok()?)
            }
            _ => {
                let mut chars = rest.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
            }
        };
        Some(KeySpec { code, ctrl, alt })
    }

    /// How the help overlay writes the key.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Up => "↑".to_string(),
            KeyCode::Down => "↓".to_string(),
            KeyCode::Left => "←".to_string(),
            KeyCode::Right => "→".to_string(),
            KeyCode::PageUp => "PgUp".to_string(),
            KeyCode::PageDown => "PgDn".to_string(),
            KeyCode::Home => "Home".to_string(),
            KeyCode::End => "End".to_string(),
            KeyCode::Enter => "Enter".to_string(),
            KeyCode::Esc => "Esc".to_string(),
            KeyCode::Tab => "Tab".to_string(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            _ => "?".to_string(),
        };
        match (self.ctrl, self.alt) {
            (true, _) => format!("Ctrl-{base}"),
            (_, true) => format!("Alt-{base}"),
            _ => base,
        }
    }
}

/// The default bindings. Several keys may map to one action.
pub const DEFAULT_BINDINGS: &[(KeySpec, Action)] = &[
    (KeySpec::ch('q'), Action::Quit),
    (KeySpec::ctrl('c'), Action::Quit),
    (KeySpec::ch('?'), Action::ToggleHelp),
    (KeySpec::plain(KeyCode::F(1)), Action::ToggleHelp),
    (KeySpec::plain(KeyCode::Up), Action::ScrollUp),
    (KeySpec::ch('k'), Action::ScrollUp),
    (KeySpec::plain(KeyCode::Down), Action::ScrollDown),
    (KeySpec::ch('j'), Action::ScrollDown),
    (KeySpec::plain(KeyCode::PageUp), Action::PageUp),
    (KeySpec::plain(KeyCode::PageDown), Action::PageDown),
    (KeySpec::plain(KeyCode::Home), Action::Top),
    (KeySpec::plain(KeyCode::End), Action::Follow),
    (KeySpec::ch('f'), Action::Follow),
    (KeySpec::ch('+'), Action::BaudUp),
    (KeySpec::ch(']'), Action::BaudUp),
    (KeySpec::ch('-'), Action::BaudDown),
    (KeySpec::ch('['), Action::BaudDown),
    (KeySpec::ch('b'), Action::EnterBaud),
    (KeySpec::ch('a'), Action::ApplyBaud),
    (KeySpec::ch('A'), Action::AutobaudScan),
    (KeySpec::ch('d'), Action::CycleDataBits),
    (KeySpec::ch('p'), Action::CycleParity),
    (KeySpec::ch('s'), Action::ToggleStopBits),
    (KeySpec::ch('w'), Action::CycleFlow),
    (KeySpec::ch('D'), Action::ToggleDtr),
    (KeySpec::ch('R'), Action::ToggleRts),
    (KeySpec::ch('B'), Action::SendBreak),
    (KeySpec::ch('i'), Action::OpenSend),
    (KeySpec::plain(KeyCode::Tab), Action::FocusNext),
    (KeySpec::plain(KeyCode::Enter), Action::Activate),
    (KeySpec::ch('g'), Action::JumpToBytes),
    (KeySpec::ch('F'), Action::FilterProtocol),
    (KeySpec::ch('E'), Action::FilterSeverity),
    (KeySpec::ch('T'), Action::TalkingTo),
    (KeySpec::ch('n'), Action::StepNext),
    (KeySpec::ch('r'), Action::Resend),
    (KeySpec::ch('e'), Action::EditApdu),
    (KeySpec::ch('c'), Action::RunToFailure),
    (KeySpec::ch('z'), Action::ReplayScript),
    (KeySpec::ch('X'), Action::ResetCard),
    (KeySpec::ch('t'), Action::ToggleTransaction),
    (KeySpec::ch(' '), Action::ReplayPause),
    (KeySpec::ch('>'), Action::ReplayFaster),
    (KeySpec::ch('<'), Action::ReplaySlower),
    (KeySpec::ch('.'), Action::ReplayStep),
    (KeySpec::ch(','), Action::ReplayStepFrame),
    (KeySpec::ch('N'), Action::ReplayNextEvent),
    (KeySpec::ch('/'), Action::Search),
];

/// Keys of the line editors (send line, baud entry); fixed, listed in the help overlay.
pub const EDITOR_KEYS: &[(&str, &str)] = &[
    ("Enter", "send the line / apply the baud rate"),
    ("Esc", "close the line without sending"),
    ("Tab", "switch the send line between text and hex"),
    ("↑ / ↓", "previous / next line from the history"),
    (
        "text mode",
        "escapes \\r \\n \\t \\\\ \\xNN; the configured line ending is added",
    ),
    ("hex mode", "bytes as 68 04 04 68 or 68040468"),
];

/// A keymap: the default table with the user's overrides applied.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(KeySpec, Action)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: DEFAULT_BINDINGS.to_vec(),
        }
    }
}

/// A `[keys]` entry that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeymapError {
    #[error("unknown action '{0}' in [keys]: use one of {names}", names = Action::ALL.map(|a| a.name()).join(", "))]
    UnknownAction(String),
    #[error(
        "cannot read key '{key}' for '{action}' in [keys]: write a character (q, D, +), a name (up, pgup, f5, space) or ctrl-x / alt-x"
    )]
    BadKey { action: String, key: String },
    #[error(
        "key '{key}' is bound to both '{first}' and '{second}' in [keys]: keep it for one of them"
    )]
    TwoActions {
        key: String,
        first: String,
        second: String,
    },
}

impl KeymapError {
    /// The action whose `[keys]` entry is to blame (for the error's line and column).
    pub fn action(&self) -> &str {
        match self {
            KeymapError::UnknownAction(a) => a,
            KeymapError::BadKey { action, .. } => action,
            KeymapError::TwoActions { second, .. } => second,
        }
    }
}

impl Keymap {
    /// Applies `action name → keys` overrides: the action's default keys are replaced,
    /// and the keys are taken from any action that had them.
    pub fn with_overrides<'a>(
        overrides: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<Keymap, KeymapError> {
        let mut map = Keymap::default();
        // Keys the user bound, and to what: one key for two actions is an error, not a
        // silent "last wins".
        let mut bound: Vec<(KeySpec, &str)> = Vec::new();
        for (name, keys) in overrides {
            let action =
                Action::from_name(name).ok_or_else(|| KeymapError::UnknownAction(name.into()))?;
            let specs = keys
                .iter()
                .map(|k| {
                    KeySpec::parse(k).ok_or_else(|| KeymapError::BadKey {
                        action: name.to_string(),
                        key: k.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            for k in &specs {
                if let Some((_, first)) = bound.iter().find(|(b, a)| b == k && *a != name) {
                    return Err(KeymapError::TwoActions {
                        key: k.label(),
                        first: (*first).to_string(),
                        second: name.to_string(),
                    });
                }
                bound.push((*k, name));
            }
            map.bindings
                .retain(|(k, a)| *a != action && !specs.contains(k));
            map.bindings.extend(specs.into_iter().map(|k| (k, action)));
        }
        Ok(map)
    }

    pub fn action_for(&self, ev: &KeyEvent) -> Option<Action> {
        let spec = KeySpec::of(ev);
        self.bindings
            .iter()
            .find(|(k, _)| *k == spec)
            .map(|(_, a)| *a)
    }

    /// The keys bound to an action, for hints ("+/]").
    pub fn keys_for(&self, action: Action) -> Vec<KeySpec> {
        self.bindings
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(k, _)| *k)
            .collect()
    }

    /// (keys, description) per action in `Action::ALL` order, for the help overlay.
    pub fn help_rows(&self) -> Vec<(String, &'static str)> {
        Action::ALL
            .iter()
            .filter_map(|&a| {
                let keys = self.keys_for(a);
                (!keys.is_empty()).then(|| {
                    (
                        keys.iter()
                            .map(|k| k.label())
                            .collect::<Vec<_>>()
                            .join(" / "),
                        a.describe(),
                    )
                })
            })
            .collect()
    }

    /// README's key table, produced from the same rows as the help overlay.
    pub fn markdown_table(&self) -> String {
        let mut s = String::from("| keys | action |\n|---|---|\n");
        for (k, d) in self.help_rows() {
            s.push_str(&format!("| {} | {} |\n", k.replace('|', "\\|"), d));
        }
        for (k, d) in EDITOR_KEYS {
            s.push_str(&format!(
                "| {} (send line) | {} |\n",
                k,
                d.replace('|', "\\|")
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crossterm::event::KeyEventKind;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        let mut k = KeyEvent::new(code, mods);
        k.kind = KeyEventKind::Press;
        k
    }

    #[test]
    fn defaults_map_keys() {
        let m = Keymap::default();
        assert_eq!(
            m.action_for(&key(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            m.action_for(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            m.action_for(&key(KeyCode::Char('D'), KeyModifiers::SHIFT)),
            Some(Action::ToggleDtr)
        );
        assert_eq!(
            m.action_for(&key(KeyCode::Char('d'), KeyModifiers::NONE)),
            Some(Action::CycleDataBits)
        );
        assert_eq!(
            m.action_for(&key(KeyCode::Char('z'), KeyModifiers::NONE)),
            Some(Action::ReplayScript)
        );
        assert_eq!(
            m.action_for(&key(KeyCode::Char('y'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn every_action_has_a_key() {
        let m = Keymap::default();
        for a in Action::ALL {
            assert!(!m.keys_for(a).is_empty(), "{a:?} has no key");
        }
    }

    #[test]
    fn overrides_replace_and_steal() {
        let keys = vec!["x".to_string()];
        let m = Keymap::with_overrides([("baud_up", keys.as_slice())]).unwrap();
        assert_eq!(
            m.action_for(&key(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::BaudUp)
        );
        assert_eq!(
            m.action_for(&key(KeyCode::Char('+'), KeyModifiers::NONE)),
            None
        );
        let bad = vec!["nonsense-key".to_string()];
        assert!(matches!(
            Keymap::with_overrides([("baud_up", bad.as_slice())]),
            Err(KeymapError::BadKey { .. })
        ));
        assert!(matches!(
            Keymap::with_overrides([("fly", keys.as_slice())]),
            Err(KeymapError::UnknownAction(_))
        ));
    }

    #[test]
    fn parse_key_names() {
        assert_eq!(KeySpec::parse("ctrl-c"), Some(KeySpec::ctrl('c')));
        assert_eq!(
            KeySpec::parse("pgup"),
            Some(KeySpec::plain(KeyCode::PageUp))
        );
        assert_eq!(KeySpec::parse("f5"), Some(KeySpec::plain(KeyCode::F(5))));
        assert_eq!(KeySpec::parse("D"), Some(KeySpec::ch('D')));
        assert_eq!(KeySpec::parse(""), None);
        assert_eq!(KeySpec::parse("xyz"), None);
    }
}
