//! hsmon's TUI as a person sees it: a real terminal (a tmux server of the test's own), keys
//! typed with send-keys, the screen read with capture-pane. Commands run under the pane's
//! shell, so a test can append `; echo EXIT=$?; sleep 30` to read the exit status without
//! racing tmux's remain-on-exit against a fast exit.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{require, wait_until};

/// How long a screen may take to show what a test waits for (a loaded CI machine).
const SCREEN_WAIT: Duration = Duration::from_secs(20);

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// `cmd` in a 120×32 terminal.
    pub fn start(cmd: &str) -> Tmux {
        Self::start_sized(cmd, 120, 32)
    }

    pub fn start_sized(cmd: &str, width: u16, height: u16) -> Tmux {
        require("tmux");
        // One tmux server per terminal: tests run in parallel.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let socket = format!("hsmon-test-{}-{n}", std::process::id());
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg(cmd)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux starts");
        Tmux { socket }
    }

    /// Runs a tmux command against this terminal's server; its standard output.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// Types one key (tmux key names: "Enter", "PageUp", "q", or a whole word).
    pub fn key(&self, k: &str) {
        self.tmux(&["send-keys", k]);
    }

    /// Types keys one after another, as a person would.
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.key(k);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// The screen once it shows `what`; fails the test with the last screen if it never does.
    pub fn wait_for(&self, what: &str) -> String {
        self.wait_until(what, |s| s.contains(what))
    }

    /// The screen once `f` holds for it; `what` names the condition in the failure.
    pub fn wait_until(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = wait_until(SCREEN_WAIT, || {
            last = self.screen();
            f(&last)
        });
        assert!(found.is_ok(), "{what:?} never appeared; screen:\n{last}");
        last
    }

    /// The pid of hsmon: the child of the pane's shell.
    pub fn hsmon_pid(&self) -> i32 {
        let shell: i32 = self
            .tmux(&["display", "-p", "#{pane_pid}"])
            .trim()
            .parse()
            .unwrap();
        let mut pid = None;
        let _ = wait_until(Duration::from_secs(5), || {
            pid = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
            pid.is_some()
        });
        pid.expect("hsmon runs under the pane's shell")
    }

    /// `#{alternate_on}` and `#{cursor_flag}`: is the alternate screen on, is the cursor shown.
    pub fn modes(&self) -> (String, String) {
        let s = self.tmux(&["display", "-p", "#{alternate_on} #{cursor_flag}"]);
        let mut it = s.split_whitespace().map(str::to_string);
        (it.next().unwrap_or_default(), it.next().unwrap_or_default())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}
