//! The test stack itself, proved with the bare `pcsc` crate (no hsmon code but the simulated
//! card): pcscd lists the vpcd reader, our virtual card's ATR reaches the reader state, APDUs
//! round-trip with 61XX/6CXX passed through unchanged, removal and reinsertion, and a reset by
//! a second PC/SC context giving SCARD_W_RESET_CARD (0x80100068) without the APDU reaching
//! the card — the behaviour `shared/reference/pcsc.md` records for pcsc-lite 1.9.9.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use hsmon::sim::card::{self, CardProfile, SimCard};
use pcsc::{Context, Disposition, Error, Protocol, Protocols, Scope, ShareMode};
use support::pcscd::{self, connect_shared, leave, pcsc_test};
use support::vpcd::{VirtualCard, VpcdEvent};

const SELECT_DEMO_CASE4: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x68, 0x73, 0x6D, 0x6F, 0x6E, 0x01, 0x00,
];
const GET_RESPONSE_0B: &[u8] = &[0x00, 0xC0, 0x00, 0x00, 0x0B];
const GET_CHALLENGE_4: &[u8] = &[0x00, 0x84, 0x00, 0x00, 0x04];
const GET_CHALLENGE_8: &[u8] = &[0x00, 0x84, 0x00, 0x00, 0x08];

fn transmit(card: &pcsc::Card, command: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    card.transmit(command, &mut buffer).map(<[u8]>::to_vec)
}

fn context() -> Context {
    Context::establish(Scope::User).expect("pcscd answers")
}

#[test]
fn the_vpcd_reader_is_listed() {
    let (_lock, reader) = pcsc_test();
    let readers = context().list_readers_owned().unwrap();
    assert!(
        readers.contains(&reader),
        "{reader:?} not among {readers:?}"
    );
    assert!(reader.to_string_lossy().starts_with("Virtual PCD"));
}

#[test]
fn the_inserted_card_shows_its_atr_and_is_powered_on() {
    let (_lock, reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let ctx = context();
    let mut states = [pcsc::ReaderState::new(reader.clone(), pcsc::State::UNAWARE)];
    ctx.get_status_change(Duration::from_secs(1), &mut states)
        .unwrap();
    assert!(states[0].event_state().contains(pcsc::State::PRESENT));
    assert_eq!(states[0].atr(), &card::T0_ATR[..]);

    let handle = connect_shared(&ctx, &reader);
    let status = handle.status2_owned().unwrap();
    assert_eq!(status.atr(), &card::T0_ATR[..]);
    assert_eq!(
        status.protocol2(),
        Some(Protocol::T0),
        "the ATR offers T=0 only"
    );
    leave(handle);
    let log = vcard.log();
    assert_eq!(log.first(), Some(&VpcdEvent::Connected), "{log:?}");
    assert!(log.contains(&VpcdEvent::PowerOn), "{log:?}");
    assert!(log.contains(&VpcdEvent::GetAtr), "{log:?}");
}

#[test]
fn select_round_trips_and_61xx_and_6cxx_come_back_unchanged() {
    let (_lock, reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let ctx = context();
    let handle = connect_shared(&ctx, &reader);

    assert_eq!(transmit(&handle, SELECT_DEMO_CASE4).unwrap(), [0x61, 0x0B]);
    let mut fci = card::Application::new(&card::DEMO_AID).fci;
    fci.extend([0x90, 0x00]);
    assert_eq!(transmit(&handle, GET_RESPONSE_0B).unwrap(), fci);
    assert_eq!(transmit(&handle, GET_CHALLENGE_4).unwrap(), [0x6C, 0x08]);
    assert_eq!(transmit(&handle, GET_CHALLENGE_8).unwrap().len(), 10);
    leave(handle);

    // pcsc-lite added no GET RESPONSE nor Le retry of its own: the card saw exactly ours.
    assert_eq!(
        vcard.apdus(),
        vec![
            SELECT_DEMO_CASE4.to_vec(),
            GET_RESPONSE_0B.to_vec(),
            GET_CHALLENGE_4.to_vec(),
            GET_CHALLENGE_8.to_vec(),
        ]
    );
}

#[test]
fn the_test_changes_the_card_mid_run() {
    let (_lock, reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let ctx = context();
    let handle = connect_shared(&ctx, &reader);
    vcard.card().respond_once(&[0x00, 0x84], &[0x68, 0x82]);
    assert_eq!(transmit(&handle, GET_CHALLENGE_8).unwrap(), [0x68, 0x82]);
    assert_eq!(transmit(&handle, GET_CHALLENGE_8).unwrap().len(), 10);

    vcard.card().set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(transmit(&handle, GET_CHALLENGE_4).unwrap(), [0x6C, 0x08]);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the card's delay is honoured"
    );
    vcard.card().set_delay(Duration::ZERO);
    leave(handle);
}

#[test]
fn removal_gives_removed_card_and_reinsertion_reconnects() {
    let (_lock, reader) = pcsc_test();
    let mut vcard = VirtualCard::insert(SimCard::default());
    let ctx = context();
    let mut handle = connect_shared(&ctx, &reader);
    assert_eq!(transmit(&handle, SELECT_DEMO_CASE4).unwrap(), [0x61, 0x0B]);

    vcard.remove();
    assert!(!vcard.is_inserted());
    assert_eq!(transmit(&handle, GET_CHALLENGE_8), Err(Error::RemovedCard));
    assert_eq!(
        handle.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard),
        Err(Error::NoSmartcard),
        "no card to reconnect to"
    );

    vcard.reinsert();
    handle
        .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
        .expect("SCardReconnect(LEAVE_CARD) on the old handle after reinsertion");
    assert_eq!(transmit(&handle, GET_CHALLENGE_8).unwrap().len(), 10);
    // The reader powered the card up again: the selection is gone.
    assert!(vcard.card().volatile_state().selected.is_empty());
    leave(handle);
    let log = vcard.log();
    let connects = log.iter().filter(|e| **e == VpcdEvent::Connected).count();
    assert_eq!(connects, 2, "{log:?}");
}

#[test]
fn a_reset_by_another_context_gives_reset_card_and_the_apdu_never_reaches_the_card() {
    let (_lock, reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let ctx1 = context();
    let mut h1 = connect_shared(&ctx1, &reader);
    assert_eq!(transmit(&h1, SELECT_DEMO_CASE4).unwrap(), [0x61, 0x0B]);
    assert_eq!(
        vcard.card().volatile_state().selected,
        vec![(0, card::DEMO_AID.to_vec())]
    );

    // Another application connects in shared mode and leaves with SCARD_RESET_CARD.
    let ctx2 = context();
    let h2 = connect_shared(&ctx2, &reader);
    h2.disconnect(Disposition::ResetCard)
        .map_err(|(_, e)| e)
        .expect("second context resets the card");
    vcard.wait_log(Duration::from_secs(5), "the reset", |log| {
        log.contains(&VpcdEvent::Reset)
    });
    let before = vcard.apdus().len();

    let err = transmit(&h1, GET_CHALLENGE_8).unwrap_err();
    assert_eq!(err, Error::ResetCard);
    assert_eq!(err as u32, 0x8010_0068);
    assert_eq!(
        vcard.apdus().len(),
        before,
        "pcsc-lite refused the APDU before it reached the card"
    );
    assert!(
        vcard.card().volatile_state().is_empty(),
        "the reset took the selection away"
    );

    h1.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
        .expect("SCardReconnect(LEAVE_CARD) acknowledges the reset");
    assert_eq!(transmit(&h1, GET_CHALLENGE_8).unwrap().len(), 10);
    // What the reset lost shows: READ BINARY finds no current file.
    assert_eq!(
        transmit(&h1, &[0x00, 0xB0, 0x00, 0x00, 0x10]).unwrap(),
        [0x69, 0x86]
    );
    leave(h1);
}

#[test]
fn a_t1_card_answers_case4_directly() {
    let (_lock, reader) = pcsc_test();
    let _vcard = VirtualCard::insert(SimCard::new(CardProfile::t1()));
    let ctx = context();
    let handle = connect_shared(&ctx, &reader);
    let status = handle.status2_owned().unwrap();
    assert_eq!(status.atr(), &card::T1_ATR[..]);
    assert_eq!(status.protocol2(), Some(Protocol::T1));
    let mut fci = card::Application::new(&card::DEMO_AID).fci;
    fci.extend([0x90, 0x00]);
    assert_eq!(transmit(&handle, SELECT_DEMO_CASE4).unwrap(), fci);
    leave(handle);
}

#[test]
fn pcscd_restart_drops_contexts_and_the_card_comes_back() {
    let (_lock, reader) = pcsc_test();
    let vcard = VirtualCard::insert(SimCard::default());
    let old = context();
    let handle = connect_shared(&old, &reader);

    let reader_again = pcscd::restart_pcscd();
    assert_eq!(reader_again, reader);
    // Handle and context belong to the old daemon (pcsc-lite 1.9.9: SCARD_E_NO_SERVICE);
    // only a new context gets through.
    assert_eq!(transmit(&handle, GET_CHALLENGE_8), Err(Error::NoService));
    assert_eq!(old.list_readers_owned(), Err(Error::NoService));
    // The old handle belongs to a dead daemon: forget it rather than disconnect (or reset).
    std::mem::forget(handle);

    // The card reconnects to the new vpcd by itself.
    pcscd::wait_card(&reader, Some(&card::T0_ATR));
    let log = vcard.log();
    assert!(log.contains(&VpcdEvent::Disconnected), "{log:?}");
    let ctx = context();
    let fresh = connect_shared(&ctx, &reader);
    assert_eq!(transmit(&fresh, GET_CHALLENGE_8).unwrap().len(), 10);
    leave(fresh);
}
