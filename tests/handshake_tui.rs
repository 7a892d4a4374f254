//! `hsmon handshake` in a real terminal (tmux): the handshake pane above the usual panes shows
//! the steps, the diffed reply and the explanation, while the hex and events panes show the
//! same run as ordinary traffic; q quits with the run's exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use hsmon::handshake::peer::{Fault, Peer, Reply};
use support::{PtyLink, hsmon_bin, path_str, require, wait_until};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        require("tmux");
        let socket = format!("hsmon-hs-test-{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "40",
                cmd,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux starts");
        // Keep the pane after hsmon exits, to read its exit status.
        Command::new("tmux")
            .args(["-L", &socket, "set-option", "-g", "remain-on-exit", "on"])
            .status()
            .unwrap();
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str) -> String {
        let mut last = String::new();
        let found = wait_until(Duration::from_secs(20), || {
            last = self.screen();
            last.contains(what)
        });
        assert!(found.is_ok(), "{what:?} never appeared; screen:\n{last}");
        last
    }

    fn key(&self, k: &str) {
        Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", k])
            .status()
            .unwrap();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

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
    let t = Tmux::start(&cmd);
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
