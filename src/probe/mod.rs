//! Probes: one active question to a port, one report. `hsmon probe tls` asks a "TLS" port
//! what it really speaks.

pub mod tls;
