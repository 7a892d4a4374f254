//! "Talking to" on the demos' simulated wire, fed to a session as the monitor does: garbage
//! at a wrong rate names nothing, what it showed fades when the rate is turned to the right
//! one, and a port that only hears hsmon's own bytes says "no answer".

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use hsmon::clock::Clock;
use hsmon::decode::Protocol;
use hsmon::event::{Baud, Command, Event, TimedEvent};
use hsmon::session::Session;

/// Runs `scenario` for `secs`, sending `commands` at the times given, into a session.
fn run(scenario: &str, secs: f64, commands: Vec<(f64, Command)>) -> Session {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let clock = Clock::start();
        let mut handle = hsmon::sim::devices::spawn(scenario, clock).expect("a demo scenario");
        let mut s = Session::new(handle.name.clone(), 1 << 22);
        let mut pending = commands.into_iter().peekable();
        let end = Duration::from_secs_f64(secs);
        loop {
            let now = clock.now();
            if now >= end {
                break;
            }
            while let Some((_, c)) = pending.next_if(|(t, _)| *t <= now.as_secs_f64()) {
                handle.commands.send(c).await.unwrap();
            }
            match tokio::time::timeout(Duration::from_millis(50), handle.events.recv()).await {
                Ok(Some(ev)) => s.ingest(&ev),
                Ok(None) => break,
                Err(_) => {
                    s.poll(clock.now());
                }
            }
        }
        let _ = handle.commands.send(Command::Shutdown).await;
        s
    })
}

fn headline(s: &Session) -> String {
    s.engine()
        .unwrap()
        .classifier
        .headline()
        .unwrap_or_default()
}

/// A protocol named in "talking to" is backed by a frame strong enough to count alone (not
/// a lone E5 in the garbage of a drifting clock).
fn named_protocol_is_backed(s: &Session) {
    let ranking = s.engine().unwrap().classifier.ranking();
    for g in ranking.iter().filter(|g| g.confidence >= 0.2) {
        assert!(
            g.tally.strong > 0 || g.evidence.contains("before the last setting change"),
            "{:?} named on weak frames only: {g:?}\n{}",
            g.protocol,
            headline(s)
        );
    }
}

#[test]
fn a_drifting_clock_names_what_its_strong_frames_show() {
    let s = run("drift", 8.0, vec![]);
    named_protocol_is_backed(&s);
    let ranking = s.engine().unwrap().classifier.ranking();
    let mbus = ranking.iter().find(|g| g.protocol == Protocol::Mbus);
    if let Some(m) = mbus.filter(|m| m.confidence >= 0.2) {
        // The board does send M-Bus telegrams; if one came through whole it may count.
        assert!(
            s.frames().iter().any(|f| f.frame.protocol == Protocol::Mbus
                && f.frame.kind == "long"
                && f.frame.status.is_ok()),
            "M-Bus named without a whole telegram: {m:?}"
        );
    }
}

#[test]
fn garbage_at_wrong_rates_fades_when_the_right_one_is_set() {
    // wrong-baud: the board sends at 9600; the monitor starts at 115200, goes to 14400
    // (garbage at both), then to 9600.
    let s = run(
        "wrong-baud",
        9.0,
        vec![
            (1.5, Command::SetBaud(Baud::new(14400).unwrap())),
            (4.0, Command::SetBaud(Baud::new(9600).unwrap())),
        ],
    );
    assert_eq!(s.settings.unwrap().baud.bps(), 9600);
    named_protocol_is_backed(&s);
    // At 9600 the board's text and telegrams arrive whole: what is named comes from them.
    let ranking = s.engine().unwrap().classifier.ranking();
    assert!(ranking[0].confidence >= 0.2, "{ranking:#?}");
    assert!(ranking[0].tally.strong > 0, "{ranking:#?}");
    assert!(
        !ranking
            .iter()
            .any(|g| g.protocol == Protocol::Stm32Boot && g.confidence >= 0.2),
        "{ranking:#?}"
    );
}

#[test]
fn what_hsmon_sent_is_no_evidence_and_silence_is_no_answer() {
    // An STM32 handshake nobody answers: 7F, then GET (00 FF), and nothing comes back.
    let mut s = Session::new("/dev/ttyUSB0", 1 << 20);
    for (i, bytes) in [vec![0x7F], vec![0x00, 0xFF], vec![0x7F]]
        .into_iter()
        .enumerate()
    {
        s.ingest(&TimedEvent::new(
            Duration::from_millis(500 * i as u64),
            Event::Tx(bytes),
        ));
    }
    s.flush_decoders();
    assert_eq!(
        headline(&s),
        "talking to: no answer (4 bytes sent, nothing received)"
    );
    // Later the device answers: now its ACK (in reply to the request) is evidence, and the
    // request it answers is shown with it (the unanswered ones a reply window before are not).
    s.ingest(&TimedEvent::new(
        Duration::from_millis(2600),
        Event::Tx(vec![0x7F]),
    ));
    s.ingest(&TimedEvent::new(
        Duration::from_millis(2610),
        Event::Rx(vec![0x79]),
    ));
    s.flush_decoders();
    let acks: Vec<_> = s
        .frames()
        .iter()
        .filter(|f| f.frame.protocol == Protocol::Stm32Boot)
        .map(|f| (f.direction.label(), f.frame.kind))
        .collect();
    assert_eq!(acks, vec![("tx", "sync"), ("rx", "ack")]);
    let t = s.engine().unwrap().classifier.tally(Protocol::Stm32Boot);
    assert_eq!((t.rx, t.tx), (1, 0), "only the device's frame counts");
}
