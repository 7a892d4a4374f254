//! The whole-buffer ISO 7816 parsers (ATR, command and response APDUs): never panic.
#![no_main]

use hsmon::decode::iso7816::{apdu, atr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = atr::parse(data);
    let _ = atr::frame(0, data);
    let _ = apdu::parse_command(data);
    let _ = apdu::command_frame(0, data);
    let _ = apdu::response_frame(0, data);
});
