//! hsmon: a terminal monitor for serial lines, smart-card readers and sockets that finds the
//! unexpected byte (0x68 first among them), decodes the frames around it and explains it.
//!
//! The flow is one-directional (see DESIGN.md): sources emit [`event::Event`]s, the
//! [`session::Session`] ingests them, and the TUI ([`app`]) or the headless printer
//! ([`headless`]) shows the session. The UI talks back to sources only through
//! [`event::Command`]s.

pub mod app;
pub mod capture;
pub mod card;
pub mod cli;
pub mod clock;
pub mod config;
pub mod decode;
pub mod diagnose;
pub mod event;
pub mod exit;
pub mod handshake;
pub mod headless;
pub mod list;
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
pub mod ui;
