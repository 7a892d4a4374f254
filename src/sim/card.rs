//! A simulated ISO/IEC 7816 card (pure: no I/O, no clock): its ATR, power and reset, and the
//! answers a T=0 (or T=1) card gives to SELECT, GET RESPONSE, GET CHALLENGE, READ BINARY,
//! VERIFY, MANAGE CHANNEL and EXTERNAL AUTHENTICATE, with the status words of
//! ISO/IEC 7816-3/-4. `hsmon demo` and the virtual card the tests put behind vpcd
//! both drive it; per-test behaviour comes from a [`CardProfile`] and from overrides
//! ([`SimCard::respond_once`], [`SimCard::respond_always`], [`SimCard::set_delay`]).
//!
//! The order of the checks a command goes through, and the status word each one answers:
//!
//! | check | SW |
//! |---|---|
//! | fewer than 4 bytes | 6700 |
//! | CLA not interindustry (0x20-0x3F reserved, 0x80-0xFE proprietary, 0xFF) | 6E00 |
//! | secure-messaging bits in CLA, card without SM / SM session not open | 6882 / 6982 |
//! | chaining bit in CLA (0x10) | 6884 |
//! | logical channel in CLA not open | 6881 |
//! | INS not implemented | 6D00 |
//! | Lc/Le inconsistent with the bytes (`apdu::parse_command` fails) or wrong case | 6700 |
//! | wrong P1/P2 | 6A86 (6A88 for an unknown VERIFY reference) |
//!
//! T=0 (ISO 7816-3, reference "T=0 transport facts"): a command that carries data and gets data
//! back (case 4, e.g. SELECT with FCI) answers 61XX and keeps the data for GET RESPONSE
//! (`xC C0 00 00 XX` on the same logical channel); any other command in between loses it. A
//! case-2 command whose Le is not the exact length available answers 6CXX, XX = that length.
//! Under T=1 case-4 data comes back directly and Le is a maximum.

use std::time::Duration;

use crate::decode::iso7816::apdu::{self, ApduCase, CommandApdu};
use crate::decode::iso7816::cla::{Chaining, Cla, ClassKind};

/// ATR of the default T=0 card: TS=3B (direct convention), T0=15 (TA1 follows, 5 historical
/// bytes), TA1=11 (Fi=372, Di=1, fmax 5 MHz), historical bytes "HSMON" (proprietary, made up
/// for the simulation so that no real card's name is looked up for it). Only T=0 is offered
/// (no TD1), so there is no TCK (ISO 7816-3).
pub const T0_ATR: [u8; 8] = [0x3B, 0x15, 0x11, 0x48, 0x53, 0x4D, 0x4F, 0x4E];

/// ATR of the T=1 variant: TS=3B, T0=85 (TD1 follows, 5 historical bytes), TD1=01 (T=1, no
/// more interface bytes), "HSMON", TCK=D3 so that T0..TCK XOR to 00 (required once T=1 is
/// announced).
pub const T1_ATR: [u8; 9] = [0x3B, 0x85, 0x01, 0x48, 0x53, 0x4D, 0x4F, 0x4E, 0xD3];

/// AID of the demo application: RID F0 (unregistered, category F) then "hsmon" and 01.
pub const DEMO_AID: [u8; 7] = [0xF0, 0x68, 0x73, 0x6D, 0x6F, 0x6E, 0x01];

/// The demo PIN: ASCII "1234".
pub const DEMO_PIN: [u8; 4] = [0x31, 0x32, 0x33, 0x34];

/// PIN reference of VERIFY's P2 (0x80: specific reference data, number 0).
pub const DEMO_PIN_REFERENCE: u8 = 0x80;

/// A file of the demo application anyone may read (16 bytes).
pub const PUBLIC_EF: u16 = 0x0101;
/// A file of the demo application that needs the PIN (8 bytes).
pub const SECRET_EF: u16 = 0x0102;

/// Content of [`PUBLIC_EF`]: "hsmon public EF" and a 00 (16 bytes).
pub const PUBLIC_EF_CONTENT: &[u8; 16] = b"hsmon public EF\0";
/// Content of [`SECRET_EF`]: "secret!" and a 00 (8 bytes).
pub const SECRET_EF_CONTENT: &[u8; 8] = b"secret!\0";

/// Challenge length GET CHALLENGE answers (any other Le gets 6C08).
pub const CHALLENGE_LEN: u8 = 8;

/// Which transmission protocol the simulated card speaks; it decides 61XX versus direct data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardProtocol {
    T0,
    T1,
}

/// A transparent elementary file inside an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementaryFile {
    pub fid: u16,
    pub content: Vec<u8>,
    /// READ BINARY answers 6982 until the PIN is verified.
    pub needs_pin: bool,
}

/// An application the card selects by AID (SELECT 00 A4 04 00), with the FCI it returns and
/// its files (SELECT 00 A4 02 0C by file identifier once the application is selected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub aid: Vec<u8>,
    pub fci: Vec<u8>,
    pub files: Vec<ElementaryFile>,
}

impl Application {
    /// An application whose FCI is the template `6F L 84 L AID` (DF name only).
    pub fn new(aid: &[u8]) -> Application {
        let aid = aid.get(..16).unwrap_or(aid).to_vec();
        let mut fci = Vec::with_capacity(aid.len() + 4);
        fci.push(0x6F);
        fci.push((aid.len() + 2) as u8);
        fci.push(0x84);
        fci.push(aid.len() as u8);
        fci.extend_from_slice(&aid);
        Application {
            aid,
            fci,
            files: Vec::new(),
        }
    }

    /// Adds a file anyone may read.
    pub fn with_file(mut self, fid: u16, content: &[u8]) -> Application {
        self.files.push(ElementaryFile {
            fid,
            content: content.to_vec(),
            needs_pin: false,
        });
        self
    }

    /// Adds a file READ BINARY only returns after a successful VERIFY.
    pub fn with_protected_file(mut self, fid: u16, content: &[u8]) -> Application {
        self.files.push(ElementaryFile {
            fid,
            content: content.to_vec(),
            needs_pin: true,
        });
        self
    }
}

/// The card's PIN: VERIFY P2 = `reference`, compared byte for byte with `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub reference: u8,
    pub value: Vec<u8>,
    /// Tries before the PIN blocks, 1-15 (the X of 63CX is one nibble).
    pub max_tries: u8,
}

/// Everything that makes one simulated card differ from another. Built with the `with_*`
/// methods from [`CardProfile::t0`] (the demo card), [`CardProfile::t1`] or
/// [`CardProfile::bare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardProfile {
    pub atr: Vec<u8>,
    pub protocol: CardProtocol,
    pub applications: Vec<Application>,
    pub pin: Option<Pin>,
    /// Logical channels including the basic channel 0 (1 = no MANAGE CHANNEL), at most 20.
    pub logical_channels: u8,
    /// Whether the card knows secure messaging: CLA SM bits then answer 6982 until EXTERNAL
    /// AUTHENTICATE opened a session, instead of 6882.
    pub secure_messaging: bool,
    /// Seed of GET CHALLENGE's generator (deterministic, so tests can repeat a run).
    pub challenge_seed: u64,
}

impl Default for CardProfile {
    fn default() -> CardProfile {
        CardProfile::t0()
    }
}

impl CardProfile {
    /// A card with an ATR and a protocol but no application, PIN, channel or SM.
    pub fn bare(protocol: CardProtocol) -> CardProfile {
        CardProfile {
            atr: match protocol {
                CardProtocol::T0 => T0_ATR.to_vec(),
                CardProtocol::T1 => T1_ATR.to_vec(),
            },
            protocol,
            applications: Vec::new(),
            pin: None,
            logical_channels: 1,
            secure_messaging: false,
            challenge_seed: 0x6873_6D6F_6E00_0001,
        }
    }

    /// The demo card under T=0: the [`DEMO_AID`] application with [`PUBLIC_EF`] and
    /// [`SECRET_EF`], PIN [`DEMO_PIN`] with 3 tries, 4 logical channels, no secure messaging.
    pub fn t0() -> CardProfile {
        CardProfile::demo(CardProtocol::T0)
    }

    /// The demo card under T=1 (ATR [`T1_ATR`]).
    pub fn t1() -> CardProfile {
        CardProfile::demo(CardProtocol::T1)
    }

    fn demo(protocol: CardProtocol) -> CardProfile {
        CardProfile::bare(protocol)
            .with_application(
                Application::new(&DEMO_AID)
                    .with_file(PUBLIC_EF, PUBLIC_EF_CONTENT)
                    .with_protected_file(SECRET_EF, SECRET_EF_CONTENT),
            )
            .with_pin(&DEMO_PIN, 3)
            .with_logical_channels(4)
    }

    pub fn with_application(mut self, application: Application) -> CardProfile {
        self.applications.push(application);
        self
    }

    /// PIN with reference [`DEMO_PIN_REFERENCE`]; `max_tries` is clamped to 1-15.
    pub fn with_pin(mut self, value: &[u8], max_tries: u8) -> CardProfile {
        self.pin = Some(Pin {
            reference: DEMO_PIN_REFERENCE,
            value: value.to_vec(),
            max_tries: max_tries.clamp(1, 15),
        });
        self
    }

    pub fn without_pin(mut self) -> CardProfile {
        self.pin = None;
        self
    }

    /// Number of logical channels including channel 0, clamped to 1-20.
    pub fn with_logical_channels(mut self, channels: u8) -> CardProfile {
        self.logical_channels = channels.clamp(1, 20);
        self
    }

    pub fn with_secure_messaging(mut self, supported: bool) -> CardProfile {
        self.secure_messaging = supported;
        self
    }

    pub fn with_challenge_seed(mut self, seed: u64) -> CardProfile {
        self.challenge_seed = seed;
        self
    }
}

/// What a card reset takes away: the state an application has to rebuild after someone else
/// reset the card (SCARD_W_RESET_CARD).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolatileState {
    /// (logical channel, AID) of each channel with an application selected.
    pub selected: Vec<(u8, Vec<u8>)>,
    /// Logical channels other than 0 that are open.
    pub open_channels: Vec<u8>,
    pub pin_verified: bool,
    pub secure_messaging: bool,
}

impl VolatileState {
    /// True when a reset would lose nothing.
    pub fn is_empty(&self) -> bool {
        self.selected.is_empty()
            && self.open_channels.is_empty()
            && !self.pin_verified
            && !self.secure_messaging
    }
}

/// A canned answer that replaces the card's own for commands starting with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Override {
    prefix: Vec<u8>,
    response: Vec<u8>,
    /// `None` = always; `Some(n)` = n more times.
    remaining: Option<u32>,
}

/// What the selection of one logical channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Channel {
    /// Index into `profile.applications`.
    application: Option<usize>,
    /// Index into that application's `files`.
    file: Option<usize>,
}

/// Response data a T=0 card keeps for GET RESPONSE.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    channel: u8,
    data: Vec<u8>,
}

/// The simulated card. Starts powered, as if the reader had just powered it on.
#[derive(Debug, Clone)]
pub struct SimCard {
    profile: CardProfile,
    powered: bool,
    /// One entry per logical channel of the profile; `None` = closed. Channel 0 is always open.
    channels: Vec<Option<Channel>>,
    pin_verified: bool,
    /// Tries left; non-volatile (survives reset and power-off).
    pin_tries: u8,
    sm_session: bool,
    pending: Option<Pending>,
    overrides: Vec<Override>,
    delay: Duration,
    rng: u64,
}

impl Default for SimCard {
    fn default() -> SimCard {
        SimCard::new(CardProfile::t0())
    }
}

fn sw(value: u16) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

fn data_sw(data: &[u8], value: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(&value.to_be_bytes());
    out
}

/// SW2 of 61XX / 6CXX for `len` bytes: 00 stands for 256 or more.
fn length_byte(len: usize) -> u16 {
    if len >= 256 { 0 } else { len as u16 }
}

impl SimCard {
    pub fn new(profile: CardProfile) -> SimCard {
        let pin_tries = profile.pin.as_ref().map_or(0, |p| p.max_tries);
        let rng = profile.challenge_seed | 1;
        let mut card = SimCard {
            profile,
            powered: true,
            channels: Vec::new(),
            pin_verified: false,
            pin_tries,
            sm_session: false,
            pending: None,
            overrides: Vec::new(),
            delay: Duration::ZERO,
            rng,
        };
        card.clear_volatile();
        card
    }

    /// The ATR the card answers to a power-on or reset.
    pub fn atr(&self) -> &[u8] {
        &self.profile.atr
    }

    pub fn protocol(&self) -> CardProtocol {
        self.profile.protocol
    }

    pub fn profile(&self) -> &CardProfile {
        &self.profile
    }

    /// Changes the card mid-run (a test swapping the ATR, adding an application, ...). Channel
    /// changes take effect at the next reset.
    pub fn profile_mut(&mut self) -> &mut CardProfile {
        &mut self.profile
    }

    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Cold reset: power and a fresh volatile state.
    pub fn power_on(&mut self) {
        self.powered = true;
        self.clear_volatile();
    }

    /// Warm reset: the selected applications, the verified PIN, the secure-messaging session,
    /// the open logical channels and any response kept for GET RESPONSE are gone. The PIN try
    /// counter is non-volatile and stays.
    pub fn reset(&mut self) {
        self.powered = true;
        self.clear_volatile();
    }

    pub fn power_off(&mut self) {
        self.powered = false;
        self.clear_volatile();
    }

    fn clear_volatile(&mut self) {
        let count = usize::from(self.profile.logical_channels.clamp(1, 20));
        self.channels = vec![None; count];
        if let Some(basic) = self.channels.first_mut() {
            *basic = Some(Channel::default());
        }
        self.pin_verified = false;
        self.sm_session = false;
        self.pending = None;
    }

    /// What a reset would take away now.
    pub fn volatile_state(&self) -> VolatileState {
        let mut state = VolatileState {
            pin_verified: self.pin_verified,
            secure_messaging: self.sm_session,
            ..VolatileState::default()
        };
        for (number, channel) in self.channels.iter().enumerate() {
            let Some(channel) = channel else { continue };
            let number = number as u8;
            if number != 0 {
                state.open_channels.push(number);
            }
            if let Some(app) = channel
                .application
                .and_then(|i| self.profile.applications.get(i))
            {
                state.selected.push((number, app.aid.clone()));
            }
        }
        state
    }

    /// PIN tries left (0 = blocked, or no PIN).
    pub fn pin_tries_left(&self) -> u8 {
        self.pin_tries
    }

    /// Delay the transport should wait before delivering each response (the vpcd test card
    /// honours it; the pure card never sleeps).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    /// The next command starting with `prefix` gets `response` (taken as is: it may even be
    /// shorter than a status word, to test how a host copes).
    pub fn respond_once(&mut self, prefix: &[u8], response: &[u8]) {
        self.respond_times(prefix, response, 1);
    }

    /// The next `times` commands starting with `prefix` get `response`.
    pub fn respond_times(&mut self, prefix: &[u8], response: &[u8], times: u32) {
        if times == 0 {
            return;
        }
        self.overrides.push(Override {
            prefix: prefix.to_vec(),
            response: response.to_vec(),
            remaining: Some(times),
        });
    }

    /// Every command starting with `prefix` gets `response` until [`SimCard::clear_overrides`].
    pub fn respond_always(&mut self, prefix: &[u8], response: &[u8]) {
        self.overrides.push(Override {
            prefix: prefix.to_vec(),
            response: response.to_vec(),
            remaining: None,
        });
    }

    pub fn clear_overrides(&mut self) {
        self.overrides.clear();
    }

    /// Overrides still waiting to be used (an `always` one counts until cleared).
    pub fn pending_overrides(&self) -> usize {
        self.overrides.len()
    }

    fn take_override(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        let index = self
            .overrides
            .iter()
            .position(|o| command.starts_with(&o.prefix))?;
        let entry = self.overrides.get_mut(index)?;
        let response = entry.response.clone();
        if let Some(left) = entry.remaining.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.overrides.remove(index);
            }
        }
        Some(response)
    }

    /// Answers one command APDU: response data then SW1 SW2 (always at least 2 bytes unless
    /// an override says otherwise). A card that is not powered answers 6F00; a real reader
    /// would not send it anything.
    pub fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        // T=0: the response kept for GET RESPONSE survives only until the next command.
        let pending = self.pending.take();
        if let Some(response) = self.take_override(command) {
            return response;
        }
        if !self.powered {
            return sw(0x6F00);
        }
        self.process(command, pending)
    }

    fn process(&mut self, command: &[u8], pending: Option<Pending>) -> Vec<u8> {
        let Some(&[cla, ins, p1, p2]) = command.get(..4) else {
            return sw(0x6700);
        };
        let class = Cla::decode(cla);
        if !matches!(
            class.kind,
            ClassKind::FirstInterindustry | ClassKind::FurtherInterindustry
        ) {
            return sw(0x6E00);
        }
        if class.uses_secure_messaging() {
            if !self.profile.secure_messaging {
                return sw(0x6882);
            }
            if !self.sm_session {
                return sw(0x6982);
            }
        }
        if class.chaining == Some(Chaining::NotLast) {
            return sw(0x6884);
        }
        let channel = class.channel.unwrap_or(0);
        if !self.channel_open(channel) {
            return sw(0x6881);
        }
        let known = match ins {
            0xA4 | 0xC0 | 0x84 | 0xB0 => true,
            0x20 => self.profile.pin.is_some(),
            0x70 => true,
            0x82 => self.profile.secure_messaging,
            _ => false,
        };
        if !known {
            return sw(0x6D00);
        }
        let Ok(apdu) = apdu::parse_command(command) else {
            return sw(0x6700);
        };
        let data = command.get(apdu.data.clone()).unwrap_or(&[]);
        match ins {
            0xA4 => self.select(channel, &apdu, data, p1, p2),
            0xC0 => self.get_response(channel, &apdu, pending),
            0x84 => self.get_challenge(&apdu, p1, p2),
            0xB0 => self.read_binary(channel, &apdu, p1, p2),
            0x20 => self.verify(&apdu, data, p1, p2),
            0x70 => self.manage_channel(channel, &apdu, p1, p2),
            _ => self.external_authenticate(&apdu),
        }
    }

    fn channel_open(&self, channel: u8) -> bool {
        matches!(self.channels.get(usize::from(channel)), Some(Some(_)))
    }

    fn channel_mut(&mut self, channel: u8) -> Option<&mut Channel> {
        self.channels.get_mut(usize::from(channel))?.as_mut()
    }

    fn channel_state(&self, channel: u8) -> Channel {
        self.channels
            .get(usize::from(channel))
            .copied()
            .flatten()
            .unwrap_or_default()
    }

    /// Data answering a command that carried data (case 3/4): 61XX under T=0, the data itself
    /// under T=1 (Le a maximum; the rest through GET RESPONSE).
    fn answer_with_data(&mut self, channel: u8, apdu: &CommandApdu, data: Vec<u8>) -> Vec<u8> {
        if data.is_empty() {
            return sw(0x9000);
        }
        match self.profile.protocol {
            CardProtocol::T0 => {
                let sw2 = length_byte(data.len());
                self.pending = Some(Pending { channel, data });
                sw(0x6100 | sw2)
            }
            CardProtocol::T1 => {
                let ne = apdu.le.map_or(data.len(), |n| n as usize);
                self.deliver(channel, data, ne)
            }
        }
    }

    /// The first `ne` bytes of `data` and 9000, or 61XX with the rest kept for GET RESPONSE.
    fn deliver(&mut self, channel: u8, mut data: Vec<u8>, ne: usize) -> Vec<u8> {
        if data.len() <= ne {
            return data_sw(&data, 0x9000);
        }
        let rest = data.split_off(ne);
        let sw2 = length_byte(rest.len());
        self.pending = Some(Pending {
            channel,
            data: rest,
        });
        data_sw(&data, 0x6100 | sw2)
    }

    fn select(&mut self, channel: u8, apdu: &CommandApdu, data: &[u8], p1: u8, p2: u8) -> Vec<u8> {
        if !matches!(apdu.case, ApduCase::Case3Short | ApduCase::Case4Short) {
            return sw(0x6700);
        }
        match p1 {
            0x04 => self.select_by_name(channel, apdu, data, p2),
            0x00 | 0x02 => self.select_by_fid(channel, apdu, data, p2),
            _ => sw(0x6A86),
        }
    }

    fn select_by_name(&mut self, channel: u8, apdu: &CommandApdu, aid: &[u8], p2: u8) -> Vec<u8> {
        if p2 != 0x00 && p2 != 0x0C {
            return sw(0x6A86);
        }
        // Partial DF names select the first application whose AID starts with them.
        let Some(index) = self
            .profile
            .applications
            .iter()
            .position(|a| a.aid.starts_with(aid))
        else {
            return sw(0x6A82);
        };
        if let Some(state) = self.channel_mut(channel) {
            *state = Channel {
                application: Some(index),
                file: None,
            };
        }
        if p2 == 0x0C {
            return sw(0x9000);
        }
        let fci = self
            .profile
            .applications
            .get(index)
            .map(|a| a.fci.clone())
            .unwrap_or_default();
        self.answer_with_data(channel, apdu, fci)
    }

    fn select_by_fid(&mut self, channel: u8, apdu: &CommandApdu, fid: &[u8], p2: u8) -> Vec<u8> {
        if !matches!(p2, 0x00 | 0x04 | 0x0C) {
            return sw(0x6A86);
        }
        let &[hi, lo] = fid else {
            return sw(0x6700);
        };
        let fid = u16::from_be_bytes([hi, lo]);
        if fid == 0x3F00 {
            // The MF: leaves any application.
            if let Some(state) = self.channel_mut(channel) {
                *state = Channel::default();
            }
            return sw(0x9000);
        }
        let state = self.channel_state(channel);
        let Some(app) = state
            .application
            .and_then(|i| self.profile.applications.get(i))
        else {
            return sw(0x6A82);
        };
        let Some(index) = app.files.iter().position(|f| f.fid == fid) else {
            return sw(0x6A82);
        };
        let size = app.files.get(index).map_or(0, |f| f.content.len());
        if let Some(state) = self.channel_mut(channel) {
            state.file = Some(index);
        }
        if p2 == 0x0C {
            return sw(0x9000);
        }
        // FCP: 62 L, file size (80), descriptor transparent EF (82 01 01), file id (83).
        let [s1, s2] = (size.min(0xFFFF) as u16).to_be_bytes();
        let fcp = vec![
            0x62, 0x0B, 0x80, 0x02, s1, s2, 0x82, 0x01, 0x01, 0x83, 0x02, hi, lo,
        ];
        self.answer_with_data(channel, apdu, fcp)
    }

    fn get_response(
        &mut self,
        channel: u8,
        apdu: &CommandApdu,
        pending: Option<Pending>,
    ) -> Vec<u8> {
        let Some(pending) = pending.filter(|p| p.channel == channel) else {
            return sw(0x6985);
        };
        if (apdu.p1, apdu.p2) != (0, 0) {
            self.pending = Some(pending);
            return sw(0x6A86);
        }
        let Some(ne) = apdu.le.filter(|_| apdu.case == ApduCase::Case2Short) else {
            self.pending = Some(pending);
            return sw(0x6700);
        };
        let ne = ne as usize;
        if ne > pending.data.len() && self.profile.protocol == CardProtocol::T0 {
            // T=0: P3 is the exact count; tell the reader how many there are.
            let sw2 = length_byte(pending.data.len());
            self.pending = Some(pending);
            return sw(0x6C00 | sw2);
        }
        self.deliver(channel, pending.data, ne)
    }

    fn next_challenge_byte(&mut self) -> u8 {
        // xorshift64*: deterministic from the profile's seed, good enough to look random.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
    }

    fn get_challenge(&mut self, apdu: &CommandApdu, p1: u8, p2: u8) -> Vec<u8> {
        if (p1, p2) != (0, 0) {
            return sw(0x6A86);
        }
        let Some(ne) = apdu.le.filter(|_| apdu.case == ApduCase::Case2Short) else {
            return sw(0x6700);
        };
        if ne != u32::from(CHALLENGE_LEN) {
            return sw(0x6C00 | u16::from(CHALLENGE_LEN));
        }
        let challenge: Vec<u8> = (0..CHALLENGE_LEN)
            .map(|_| self.next_challenge_byte())
            .collect();
        data_sw(&challenge, 0x9000)
    }

    fn read_binary(&mut self, channel: u8, apdu: &CommandApdu, p1: u8, p2: u8) -> Vec<u8> {
        let Some(ne) = apdu
            .le
            .filter(|_| matches!(apdu.case, ApduCase::Case2Short | ApduCase::Case2Extended))
        else {
            return sw(0x6700);
        };
        if p1 & 0x80 != 0 {
            // Short EF identifier in P1: not implemented by this card.
            return sw(0x6A81);
        }
        let state = self.channel_state(channel);
        let Some(file) = state
            .application
            .and_then(|a| self.profile.applications.get(a))
            .and_then(|a| state.file.and_then(|f| a.files.get(f)))
        else {
            return sw(0x6986);
        };
        if file.needs_pin && !self.pin_verified {
            return sw(0x6982);
        }
        let offset = usize::from(p1) << 8 | usize::from(p2);
        let Some(available) = file.content.get(offset..) else {
            return sw(0x6B00);
        };
        if available.is_empty() {
            return sw(0x6282);
        }
        let ne = ne as usize;
        if let Some(part) = available.get(..ne) {
            return data_sw(part, 0x9000);
        }
        // Fewer bytes than Le asked for.
        match self.profile.protocol {
            CardProtocol::T0 if available.len() < 256 => sw(0x6C00 | available.len() as u16),
            _ => {
                let le_is_zero = apdu.le_field.len() == 1 && ne == 256 || ne == 65536;
                data_sw(available, if le_is_zero { 0x9000 } else { 0x6282 })
            }
        }
    }

    fn verify(&mut self, apdu: &CommandApdu, data: &[u8], p1: u8, p2: u8) -> Vec<u8> {
        let Some(pin) = self.profile.pin.as_ref() else {
            return sw(0x6D00);
        };
        if p1 != 0x00 {
            return sw(0x6A86);
        }
        if p2 != pin.reference {
            return sw(0x6A88);
        }
        if self.pin_tries == 0 {
            return sw(0x6983);
        }
        match apdu.case {
            // No data: ask for the state (ISO 7816-4: 9000 verified, else 63CX tries left).
            ApduCase::Case1 => {
                if self.pin_verified {
                    sw(0x9000)
                } else {
                    sw(0x63C0 | u16::from(self.pin_tries))
                }
            }
            ApduCase::Case3Short | ApduCase::Case3Extended => {
                if data == pin.value.as_slice() {
                    self.pin_tries = pin.max_tries;
                    self.pin_verified = true;
                    sw(0x9000)
                } else {
                    // The last wrong try answers 63C0 and blocks; then VERIFY answers 6983.
                    self.pin_tries = self.pin_tries.saturating_sub(1);
                    self.pin_verified = false;
                    sw(0x63C0 | u16::from(self.pin_tries))
                }
            }
            _ => sw(0x6700),
        }
    }

    fn manage_channel(&mut self, channel: u8, apdu: &CommandApdu, p1: u8, p2: u8) -> Vec<u8> {
        let count = self.channels.len() as u8;
        if count <= 1 {
            return sw(0x6881);
        }
        match (p1, p2) {
            // Open, the card chooses: one byte comes back.
            (0x00, 0x00) => {
                let ne = match apdu.case {
                    ApduCase::Case2Short => apdu.le.unwrap_or(0),
                    ApduCase::Case1 => 0,
                    _ => return sw(0x6700),
                };
                if ne != 1 && (self.profile.protocol == CardProtocol::T0 || ne == 0) {
                    return sw(0x6C01);
                }
                let Some(free) = (1..count).find(|c| !self.channel_open(*c)) else {
                    return sw(0x6A81);
                };
                if let Some(slot) = self.channels.get_mut(usize::from(free)) {
                    *slot = Some(Channel::default());
                }
                data_sw(&[free], 0x9000)
            }
            // Open the channel named in P2.
            (0x00, wanted) => {
                if apdu.case != ApduCase::Case1 {
                    return sw(0x6700);
                }
                if wanted >= count || self.channel_open(wanted) {
                    return sw(0x6A86);
                }
                if let Some(slot) = self.channels.get_mut(usize::from(wanted)) {
                    *slot = Some(Channel::default());
                }
                sw(0x9000)
            }
            // Close the channel named in P2 (00: the one in CLA).
            (0x80, named) => {
                if apdu.case != ApduCase::Case1 {
                    return sw(0x6700);
                }
                let target = if named == 0 { channel } else { named };
                if target == 0 || !self.channel_open(target) {
                    return sw(0x6A86);
                }
                if let Some(slot) = self.channels.get_mut(usize::from(target)) {
                    *slot = None;
                }
                sw(0x9000)
            }
            _ => sw(0x6A86),
        }
    }

    /// Opens the simulated secure-messaging session. Any data is accepted: the simulation
    /// models the session's existence (what a reset destroys), not its cryptography, and
    /// commands with SM bits in CLA are then processed as if they were plain.
    fn external_authenticate(&mut self, apdu: &CommandApdu) -> Vec<u8> {
        if !matches!(apdu.case, ApduCase::Case3Short | ApduCase::Case3Extended) {
            return sw(0x6700);
        }
        self.sm_session = true;
        sw(0x9000)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::iso7816::atr::{self, TckStatus, TransmissionProtocol};
    use proptest::prelude::*;

    fn h(text: &str) -> Vec<u8> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    fn send(card: &mut SimCard, command: &str) -> Vec<u8> {
        card.transmit(&h(command))
    }

    fn fci() -> Vec<u8> {
        h("6F 09 84 07 F0 68 73 6D 6F 6E 01")
    }

    const SELECT_DEMO: &str = "00 A4 04 00 07 F0 68 73 6D 6F 6E 01";
    const SELECT_PUBLIC: &str = "00 A4 02 0C 02 01 01";
    const SELECT_SECRET: &str = "00 A4 02 0C 02 01 02";

    #[test]
    fn t0_atr_parses_as_t0_only_without_tck() {
        let card = SimCard::default();
        let parsed = atr::parse(card.atr()).unwrap();
        assert_eq!(parsed.protocols(), vec![TransmissionProtocol::T0]);
        assert_eq!(parsed.tck, TckStatus::NotPresent);
        assert_eq!((parsed.fi(), parsed.di()), (Some(372), Some(1)));
        assert_eq!(parsed.historical_bytes(), b"HSMON");
    }

    #[test]
    fn t1_atr_has_a_valid_tck() {
        let card = SimCard::new(CardProfile::t1());
        let parsed = atr::parse(card.atr()).unwrap();
        assert_eq!(parsed.protocols(), vec![TransmissionProtocol::T1]);
        assert_eq!(parsed.tck, TckStatus::Valid);
        assert_eq!(card.atr().iter().skip(1).fold(0, |a, b| a ^ b), 0);
    }

    #[test]
    fn demo_fci_is_the_default_template() {
        assert_eq!(Application::new(&DEMO_AID).fci, fci());
    }

    #[test]
    fn select_case4_under_t0_answers_61xx_then_get_response() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, &format!("{SELECT_DEMO} 00")), h("61 0B"));
        let mut expected = fci();
        expected.extend(h("90 00"));
        assert_eq!(send(&mut card, "00 C0 00 00 0B"), expected);
        // Consumed: a second GET RESPONSE has nothing to give.
        assert_eq!(send(&mut card, "00 C0 00 00 0B"), h("69 85"));
    }

    #[test]
    fn select_case3_under_t0_also_answers_61xx() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, SELECT_DEMO), h("61 0B"));
    }

    #[test]
    fn select_partial_aid_and_no_data_variant() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 A4 04 0C 03 F0 68 73"), h("90 00"));
        assert_eq!(card.volatile_state().selected, vec![(0, DEMO_AID.to_vec())]);
    }

    #[test]
    fn get_response_le_too_long_gives_6cxx_and_keeps_the_data() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, "00 C0 00 00 00"), h("6C 0B"));
        assert_eq!(send(&mut card, "00 C0 00 00 20"), h("6C 0B"));
        let mut expected = fci();
        expected.extend(h("90 00"));
        assert_eq!(send(&mut card, "00 C0 00 00 0B"), expected);
    }

    #[test]
    fn get_response_in_parts() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, "00 C0 00 00 04"), h("6F 09 84 07 61 07"));
        assert_eq!(send(&mut card, "00 C0 00 00 05"), h("F0 68 73 6D 6F 61 02"));
        assert_eq!(send(&mut card, "00 C0 00 00 02"), h("6E 01 90 00"));
    }

    #[test]
    fn another_command_loses_the_pending_response() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, "00 84 00 00 04"), h("6C 08"));
        assert_eq!(send(&mut card, "00 C0 00 00 0B"), h("69 85"));
    }

    #[test]
    fn get_response_on_another_channel_finds_nothing() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 70 00 00 01"), h("01 90 00"));
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, "01 C0 00 00 0B"), h("69 85"));
    }

    #[test]
    fn get_response_wrong_p1p2_and_wrong_case() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, "00 C0 01 00 09"), h("6A 86"));
        assert_eq!(send(&mut card, "00 C0 00 00"), h("67 00"));
    }

    #[test]
    fn get_challenge_wrong_le_then_right_le() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 84 00 00 04"), h("6C 08"));
        assert_eq!(send(&mut card, "00 84 00 00 00"), h("6C 08"));
        let first = send(&mut card, "00 84 00 00 08");
        assert_eq!(first.len(), 10);
        assert_eq!(&first[8..], &h("90 00")[..]);
        let second = send(&mut card, "00 84 00 00 08");
        assert_ne!(first, second, "a challenge is not repeated");
        assert_eq!(send(&mut card, "00 84 01 00 08"), h("6A 86"));
        assert_eq!(send(&mut card, "00 84 00 00"), h("67 00"));
    }

    #[test]
    fn challenges_repeat_with_the_same_seed() {
        let mut a = SimCard::default();
        let mut b = SimCard::default();
        assert_eq!(
            send(&mut a, "00 84 00 00 08"),
            send(&mut b, "00 84 00 00 08")
        );
        let mut c = SimCard::new(CardProfile::t0().with_challenge_seed(7));
        assert_ne!(
            send(&mut a, "00 84 00 00 08"),
            send(&mut c, "00 84 00 00 08")
        );
    }

    #[test]
    fn read_binary_needs_a_selected_file() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 B0 00 00 10"), h("69 86"));
        assert_eq!(
            send(&mut card, SELECT_PUBLIC),
            h("6A 82"),
            "no application yet"
        );
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, SELECT_PUBLIC), h("90 00"));
        assert_eq!(send(&mut card, "00 A4 02 0C 02 09 09"), h("6A 82"));
    }

    #[test]
    fn read_binary_wrong_le_gives_6cxx_then_the_data() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        send(&mut card, SELECT_PUBLIC);
        assert_eq!(send(&mut card, "00 B0 00 00 00"), h("6C 10"));
        assert_eq!(send(&mut card, "00 B0 00 00 20"), h("6C 10"));
        let mut expected = PUBLIC_EF_CONTENT.to_vec();
        expected.extend(h("90 00"));
        assert_eq!(send(&mut card, "00 B0 00 00 10"), expected);
        // Fewer bytes than available is a normal partial read; an offset works too.
        assert_eq!(send(&mut card, "00 B0 00 00 05"), data_sw(b"hsmon", 0x9000));
        assert_eq!(
            send(&mut card, "00 B0 00 06 06"),
            data_sw(b"public", 0x9000)
        );
        assert_eq!(send(&mut card, "00 B0 00 10 01"), h("62 82"));
        assert_eq!(send(&mut card, "00 B0 00 11 01"), h("6B 00"));
        assert_eq!(send(&mut card, "00 B0 81 00 01"), h("6A 81"));
        assert_eq!(send(&mut card, "00 B0 00 00 02 01 02"), h("67 00"));
    }

    #[test]
    fn select_ef_with_fcp_under_t0() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, "00 A4 02 04 02 01 01"), h("61 0D"));
        assert_eq!(
            send(&mut card, "00 C0 00 00 0D"),
            h("62 0B 80 02 00 10 82 01 01 83 02 01 01 90 00")
        );
        assert_eq!(send(&mut card, "00 A4 02 07 02 01 01"), h("6A 86"));
        assert_eq!(send(&mut card, "00 A4 02 0C 03 01 01 01"), h("67 00"));
        // The MF leaves the application.
        assert_eq!(send(&mut card, "00 A4 00 0C 02 3F 00"), h("90 00"));
        assert!(card.volatile_state().selected.is_empty());
    }

    #[test]
    fn unknown_aid_is_6a82_and_keeps_the_selection() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, "00 A4 04 00 05 A0 00 00 00 03"), h("6A 82"));
        assert_eq!(card.volatile_state().selected, vec![(0, DEMO_AID.to_vec())]);
    }

    #[test]
    fn secure_messaging_cla_without_sm_is_6882() {
        let mut card = SimCard::default();
        assert_eq!(
            send(&mut card, "0C A4 04 00 07 F0 68 73 6D 6F 6E 01"),
            h("68 82")
        );
        assert_eq!(send(&mut card, "04 84 00 00 08"), h("68 82"));
        assert_eq!(send(&mut card, "08 84 00 00 08"), h("68 82"));
        // Further interindustry class, SM bit b6 (0x60 = channel 4 with SM).
        assert_eq!(send(&mut card, "60 84 00 00 08"), h("68 82"));
    }

    #[test]
    fn secure_messaging_session_opens_and_a_reset_closes_it() {
        let mut card = SimCard::new(CardProfile::t0().with_secure_messaging(true));
        assert_eq!(send(&mut card, "0C 84 00 00 08"), h("69 82"));
        assert_eq!(
            send(&mut card, "00 82 00 00 08 01 02 03 04 05 06 07 08"),
            h("90 00")
        );
        assert_eq!(send(&mut card, "0C 84 00 00 08").len(), 10);
        assert!(card.volatile_state().secure_messaging);
        card.reset();
        assert_eq!(send(&mut card, "0C 84 00 00 08"), h("69 82"));
        assert_eq!(send(&mut card, "00 82 00 00"), h("67 00"));
    }

    #[test]
    fn external_authenticate_is_unknown_without_sm() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 82 00 00 02 01 02"), h("6D 00"));
    }

    #[test]
    fn logical_channel_not_open_is_6881() {
        let mut card = SimCard::default();
        assert_eq!(
            send(&mut card, "01 A4 04 00 07 F0 68 73 6D 6F 6E 01"),
            h("68 81")
        );
        assert_eq!(send(&mut card, "03 84 00 00 08"), h("68 81"));
        // Further interindustry: 0x41 is channel 5, beyond this card's 4 channels.
        assert_eq!(send(&mut card, "41 84 00 00 08"), h("68 81"));
    }

    #[test]
    fn manage_channel_opens_and_closes() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 70 00 00 01"), h("01 90 00"));
        assert_eq!(
            send(&mut card, "01 A4 04 0C 07 F0 68 73 6D 6F 6E 01"),
            h("90 00")
        );
        assert_eq!(
            card.volatile_state().selected,
            vec![(1, DEMO_AID.to_vec())],
            "channel 0 has nothing selected"
        );
        assert_eq!(card.volatile_state().open_channels, vec![1]);
        assert_eq!(send(&mut card, "00 70 00 00 02"), h("6C 01"));
        assert_eq!(send(&mut card, "00 70 00 03"), h("90 00"));
        assert_eq!(send(&mut card, "00 70 00 03"), h("6A 86"), "already open");
        assert_eq!(send(&mut card, "00 70 00 00 01"), h("02 90 00"));
        assert_eq!(send(&mut card, "00 70 00 00 01"), h("6A 81"), "all in use");
        assert_eq!(send(&mut card, "00 70 80 01"), h("90 00"));
        assert_eq!(send(&mut card, "03 70 80 00"), h("90 00"));
        assert_eq!(send(&mut card, "01 84 00 00 08"), h("68 81"));
        assert_eq!(
            send(&mut card, "00 70 80 00"),
            h("6A 86"),
            "channel 0 stays"
        );
        assert_eq!(send(&mut card, "00 70 00 04"), h("6A 86"), "no channel 4");
        assert_eq!(send(&mut card, "00 70 40 00"), h("6A 86"));
    }

    #[test]
    fn manage_channel_without_channels_is_6881() {
        let mut card = SimCard::new(CardProfile::t0().with_logical_channels(1));
        assert_eq!(send(&mut card, "00 70 00 00 01"), h("68 81"));
    }

    #[test]
    fn verify_counts_down_and_blocks() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 20 00 80"), h("63 C3"));
        assert_eq!(send(&mut card, "00 20 00 80 04 39 39 39 39"), h("63 C2"));
        assert_eq!(send(&mut card, "00 20 00 80 04 31 32 33 34"), h("90 00"));
        assert_eq!(card.pin_tries_left(), 3, "a good PIN resets the counter");
        assert_eq!(send(&mut card, "00 20 00 80"), h("90 00"));
        assert_eq!(send(&mut card, "00 20 00 80 04 39 39 39 39"), h("63 C2"));
        assert_eq!(
            send(&mut card, "00 20 00 80"),
            h("63 C2"),
            "verified state lost"
        );
        assert_eq!(send(&mut card, "00 20 00 80 02 39 39"), h("63 C1"));
        assert_eq!(send(&mut card, "00 20 00 80 04 39 39 39 39"), h("63 C0"));
        assert_eq!(send(&mut card, "00 20 00 80 04 31 32 33 34"), h("69 83"));
        card.reset();
        assert_eq!(send(&mut card, "00 20 00 80 04 31 32 33 34"), h("69 83"));
    }

    #[test]
    fn verify_wrong_parameters() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 20 01 80 04 31 32 33 34"), h("6A 86"));
        assert_eq!(send(&mut card, "00 20 00 81 04 31 32 33 34"), h("6A 88"));
        assert_eq!(send(&mut card, "00 20 00 80 04 31 32 33 34 00"), h("67 00"));
        let mut no_pin = SimCard::new(CardProfile::t0().without_pin());
        assert_eq!(send(&mut no_pin, "00 20 00 80 04 31 32 33 34"), h("6D 00"));
    }

    #[test]
    fn protected_file_needs_the_pin() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        assert_eq!(send(&mut card, SELECT_SECRET), h("90 00"));
        assert_eq!(send(&mut card, "00 B0 00 00 08"), h("69 82"));
        assert_eq!(send(&mut card, "00 20 00 80 04 31 32 33 34"), h("90 00"));
        assert_eq!(
            send(&mut card, "00 B0 00 00 08"),
            data_sw(SECRET_EF_CONTENT, 0x9000)
        );
    }

    #[test]
    fn unknown_ins_cla_and_malformed() {
        let mut card = SimCard::default();
        assert_eq!(send(&mut card, "00 CA 00 6E 00"), h("6D 00"));
        assert_eq!(send(&mut card, "00 60 00 00"), h("6D 00"));
        assert_eq!(
            send(&mut card, "80 A4 04 00 07 F0 68 73 6D 6F 6E 01"),
            h("6E 00")
        );
        assert_eq!(send(&mut card, "FF A4 04 00"), h("6E 00"));
        assert_eq!(send(&mut card, "20 84 00 00 08"), h("6E 00"));
        assert_eq!(send(&mut card, "10 84 00 00 08"), h("68 84"));
        assert_eq!(send(&mut card, "00 A4 05 00 02 3F 00"), h("6A 86"));
        assert_eq!(
            send(&mut card, "00 A4 04 01 07 F0 68 73 6D 6F 6E 01"),
            h("6A 86")
        );
        // Lc says 5 data bytes, 2 follow.
        assert_eq!(send(&mut card, "00 A4 04 00 05 01 02"), h("67 00"));
        assert_eq!(send(&mut card, "00 A4 04"), h("67 00"));
        assert_eq!(send(&mut card, ""), h("67 00"));
        assert_eq!(send(&mut card, "00 A4 04 00 00 00"), h("67 00"));
        // SELECT needs data.
        assert_eq!(send(&mut card, "00 A4 04 00"), h("67 00"));
    }

    #[test]
    fn reset_clears_volatile_state_but_not_the_try_counter() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        send(&mut card, "00 70 00 00 01");
        send(&mut card, "00 20 00 80 04 39 39 39 39");
        send(&mut card, "00 20 00 80 04 31 32 33 34");
        send(&mut card, "00 20 00 80 04 39 39 39 39");
        send(&mut card, "00 20 00 80 04 31 32 33 34");
        let before = card.volatile_state();
        assert_eq!(before.selected, vec![(0, DEMO_AID.to_vec())]);
        assert_eq!(before.open_channels, vec![1]);
        assert!(before.pin_verified);
        send(&mut card, "00 20 00 80 04 39 39 39 39");
        assert_eq!(card.pin_tries_left(), 2);
        send(&mut card, SELECT_DEMO);
        card.reset();
        assert!(card.volatile_state().is_empty());
        assert_eq!(card.pin_tries_left(), 2);
        assert_eq!(
            send(&mut card, "00 C0 00 00 0B"),
            h("69 85"),
            "61XX data lost"
        );
        assert_eq!(
            send(&mut card, "01 84 00 00 08"),
            h("68 81"),
            "channel closed"
        );
        send(&mut card, SELECT_DEMO);
        send(&mut card, SELECT_SECRET);
        assert_eq!(
            send(&mut card, "00 B0 00 00 08"),
            h("69 82"),
            "PIN not verified"
        );
    }

    #[test]
    fn power_off_and_on() {
        let mut card = SimCard::default();
        send(&mut card, SELECT_DEMO);
        card.power_off();
        assert!(!card.is_powered());
        assert_eq!(send(&mut card, "00 84 00 00 08"), h("6F 00"));
        card.power_on();
        assert!(card.is_powered());
        assert!(card.volatile_state().is_empty());
        assert_eq!(send(&mut card, "00 84 00 00 08").len(), 10);
    }

    #[test]
    fn t1_returns_case4_data_directly() {
        let mut card = SimCard::new(CardProfile::t1());
        let mut expected = fci();
        expected.extend(h("90 00"));
        assert_eq!(send(&mut card, &format!("{SELECT_DEMO} 00")), expected);
        assert_eq!(send(&mut card, SELECT_DEMO), expected);
        // Le smaller than the FCI: the rest through GET RESPONSE.
        assert_eq!(
            send(&mut card, &format!("{SELECT_DEMO} 04")),
            h("6F 09 84 07 61 07")
        );
        // T=1: Le 00 (256) is a maximum, the 7 bytes left come with 9000.
        assert_eq!(
            send(&mut card, "00 C0 00 00 00"),
            h("F0 68 73 6D 6F 6E 01 90 00")
        );
        send(&mut card, SELECT_PUBLIC);
        let mut whole = PUBLIC_EF_CONTENT.to_vec();
        whole.extend(h("90 00"));
        assert_eq!(
            send(&mut card, "00 B0 00 00 00"),
            whole,
            "Le 00: all there is"
        );
        let mut short = PUBLIC_EF_CONTENT.to_vec();
        short.extend(h("62 82"));
        assert_eq!(send(&mut card, "00 B0 00 00 20"), short);
    }

    #[test]
    fn overrides_once_times_always() {
        let mut card = SimCard::default();
        card.respond_once(&h("00 A4"), &h("6A 82"));
        assert_eq!(send(&mut card, SELECT_DEMO), h("6A 82"));
        assert_eq!(send(&mut card, SELECT_DEMO), h("61 0B"));
        card.respond_times(&h("00 84"), &h("12 34 90 00"), 2);
        assert_eq!(send(&mut card, "00 84 00 00 02"), h("12 34 90 00"));
        assert_eq!(card.pending_overrides(), 1);
        assert_eq!(send(&mut card, "00 84 00 00 02"), h("12 34 90 00"));
        assert_eq!(send(&mut card, "00 84 00 00 02"), h("6C 08"));
        card.respond_always(&[], &h("68 82"));
        for _ in 0..3 {
            assert_eq!(send(&mut card, "00 84 00 00 08"), h("68 82"));
        }
        card.respond_once(&h("00"), &[0x90]);
        assert_eq!(card.pending_overrides(), 2);
        assert_eq!(
            send(&mut card, "00 84 00 00 08"),
            h("68 82"),
            "first added wins"
        );
        card.clear_overrides();
        assert_eq!(send(&mut card, "00 84 00 00 08").len(), 10);
    }

    #[test]
    fn override_may_answer_less_than_a_status_word() {
        let mut card = SimCard::default();
        card.respond_once(&[], &[]);
        assert_eq!(send(&mut card, "00 84 00 00 08"), Vec::<u8>::new());
    }

    #[test]
    fn delay_is_a_value_for_the_transport() {
        let mut card = SimCard::default();
        assert_eq!(card.delay(), Duration::ZERO);
        card.set_delay(Duration::from_millis(250));
        assert_eq!(card.delay(), Duration::from_millis(250));
    }

    #[test]
    fn profile_can_change_mid_run() {
        let mut card = SimCard::default();
        card.profile_mut()
            .applications
            .push(Application::new(&h("A0 00 00 00 03 10 10")));
        assert_eq!(
            send(&mut card, "00 A4 04 0C 07 A0 00 00 00 03 10 10"),
            h("90 00")
        );
        card.profile_mut().atr = T1_ATR.to_vec();
        assert_eq!(card.atr(), &T1_ATR[..]);
    }

    proptest! {
        #[test]
        fn transmit_never_panics_and_answers_a_status_word(
            commands in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..300),
                    // Commands the card knows, with random parameters and bodies.
                    (
                        prop_oneof![Just(0x00u8), Just(0x01), Just(0x0C), Just(0x41), any::<u8>()],
                        prop_oneof![Just(0xA4u8), Just(0xC0), Just(0x84), Just(0xB0), Just(0x20), Just(0x70), Just(0x82)],
                        any::<u8>(),
                        any::<u8>(),
                        proptest::collection::vec(any::<u8>(), 0..12),
                    ).prop_map(|(cla, ins, p1, p2, rest)| {
                        let mut c = vec![cla, ins, p1, p2];
                        c.extend(rest);
                        c
                    }),
                ],
                1..40,
            ),
            t1 in any::<bool>(),
            sm in any::<bool>(),
            resets in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let profile = if t1 { CardProfile::t1() } else { CardProfile::t0() };
            let mut card = SimCard::new(profile.with_secure_messaging(sm));
            for (i, command) in commands.iter().enumerate() {
                let response = card.transmit(command);
                prop_assert!(response.len() >= 2, "{:02X?} -> {:02X?}", command, response);
                if resets.get(i).copied().unwrap_or(false) {
                    card.reset();
                }
            }
        }
    }
}
