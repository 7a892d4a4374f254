//! `hsmon handshake` in a real terminal (tmux): the handshake pane above the usual panes shows
//! the steps, the diffed reply and the explanation, while the hex and events panes show the
//! same run as ordinary traffic; q quits with the run's exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};

use support::peer::{Fault, Peer, Reply};
use support::tmux::Tmux;
use support::{PtyLink, hsmon_bin, path_str};

#[test]
fn the_pane_shows_the_divergence_over_the_ordinary_panes() {
    let link = PtyLink::new();
    let mut dev = link.device();
    std::thread::spawn(move || {
        let mut peer = Peer::new("mbus", Fault::LongFrame).unwrap();
        let mut buf = [0u8; 256];
        while let Ok(n) = dev.read(&mut buf) {
            if n == 0 {
                break;
            }
            for r in peer.on_bytes(&buf[..n]) {
                if let Reply::Bytes(b) = r {
                    let _ = dev.write_all(&b);
                }
            }
        }
    });
    let cfg = tempfile::tempdir().unwrap();
    let cmd = format!(
        // The exit status is printed by the shell and the pane kept open: reading it does not
        // race tmux's remain-on-exit against a fast exit.
        "env XDG_CONFIG_HOME={} {} --config /dev/null handshake mbus --port {}; echo EXIT=$?; sleep 30",
        cfg.path().display(),
        hsmon_bin(),
        path_str(&link.a())
    );
    let t = Tmux::start_sized(&cmd, 160, 40);
    let screen = t.wait_for("diverged at \"snd-nke\"");
    assert!(screen.contains("handshake mbus · serial"), "{screen}");
    assert!(screen.contains("✖ snd-nke"), "{screen}");
    assert!(screen.contains("expected E5"), "{screen}");
    assert!(screen.contains("got 68 15 15 68 08"), "{screen}");
    let screen = t.wait_for("mbus.stale_response");
    assert!(screen.contains("· req-ud2"), "{screen}");
    // The usual panes below: the same bytes in the hex view, and the session's events.
    assert!(screen.contains("10 40 FE 3E 16"), "{screen}");
    assert!(screen.contains(" events "), "{screen}");
    t.key("q");
    // A divergence exits 1.
    let screen = t.wait_for("EXIT=1");
    assert!(
        !screen.contains("handshake mbus · serial"),
        "the terminal is restored: {screen}"
    );
}
