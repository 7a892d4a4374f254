//! hsmon: a terminal monitor for serial lines, smart-card readers and sockets that finds the
//! unexpected byte (0x68 first among them), decodes the frames around it and explains it.
//!
//! The flow is one-directional (see ARCHITECTURE.md): sources emit [`event::Event`]s, the one
//! loop in [`monitor`] hands them to the [`session::Session`] and the drivers, and a front end
//! — the TUI ([`tui`]) or the headless printer ([`headless`]) — shows the session. Front ends
//! talk back only through [`monitor::Effect`]s; sources take only [`event::Command`]s.

pub mod capture;
pub mod card;
pub mod cli;
pub mod clock;
pub mod config;
pub mod decode;
pub mod diagnose;
pub mod event;
pub mod exit;
pub mod export;
pub mod handshake;
pub mod headless;
pub mod hex;
pub mod history;
pub mod list;
pub mod monitor;
pub mod offline;
pub mod output;
pub mod ports;
pub mod probe;
pub mod record;
pub mod run;
pub mod sanitize;
pub mod session;
pub mod sim;
pub mod source;
pub mod stamp;
pub mod textfile;
pub mod toml_pos;
pub mod tui;
pub mod uart_line;
pub mod ui;
pub mod utc;
