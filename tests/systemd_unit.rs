//! contrib/systemd/hsmon@.service: `systemd-analyze verify` accepts it (no warnings), its
//! keys say what docs/lab.md promises, and its command line, run with its environment, opens
//! the named port given as the instance name without a system call its filter forbids.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{PtyLink, hsmon_bin, path_str, require};

const UNIT: &str = include_str!("../contrib/systemd/hsmon@.service");

/// Every `Key=value` of the unit, in order (comments and section headers left out).
fn keys() -> Vec<(&'static str, &'static str)> {
    UNIT.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect()
}

fn value(key: &str) -> Vec<&'static str> {
    keys()
        .into_iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    require("systemd-analyze");
    let dir = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's program exists: point it at the hsmon just built, and
    // verify an instance of the template.
    let unit = dir.path().join("hsmon@meter.service");
    std::fs::write(&unit, UNIT.replace("/usr/bin/hsmon", hsmon_bin())).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys and bad values are warnings with status 0: none allowed.
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze warned:\n{stderr}"
    );
}

#[test]
fn the_unit_runs_headless_json_and_is_hardened() {
    assert_eq!(
        value("ExecStart"),
        ["/usr/bin/hsmon --headless --format json serial %i"]
    );
    assert_eq!(value("Restart"), ["on-failure"]);
    assert_eq!(value("StandardOutput"), ["journal"]);
    assert_eq!(value("DynamicUser"), ["yes"]);
    assert_eq!(value("SupplementaryGroups"), ["dialout"]);
    assert_eq!(value("StateDirectory"), ["hsmon"]);
    assert_eq!(value("ProtectSystem"), ["strict"]);
    assert_eq!(value("NoNewPrivileges"), ["yes"]);
    // A config mistake (exit 2) is not retried in a loop.
    assert_eq!(value("RestartPreventExitStatus"), ["2"]);
    assert_eq!(value("WantedBy"), ["multi-user.target"]);
}

#[test]
fn the_units_command_opens_the_instance_port() {
    let link = PtyLink::new();
    let etc = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(etc.path().join("hsmon")).unwrap();
    std::fs::write(
        etc.path().join("hsmon/config.toml"),
        format!(
            "[ports.meter]\npath = \"{}\"\nbaud = 2400\n",
            path_str(&link.a())
        ),
    )
    .unwrap();
    // ExecStart with %i = meter, and the unit's Environment= with /etc and /var/lib moved.
    let exec = value("ExecStart")[0].replace("%i", "meter");
    let mut words = exec.split_whitespace().skip(1);
    let mut cmd = Command::new(hsmon_bin());
    cmd.args(words.by_ref());
    for assignment in value("Environment")[0].split_whitespace() {
        let (k, v) = assignment.split_once('=').unwrap();
        let v = match k {
            "XDG_CONFIG_HOME" => path_str(etc.path()),
            "XDG_STATE_HOME" => path_str(state.path()),
            _ => v,
        };
        cmd.env(k, v);
    }
    let mut child = cmd
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "settings" {
                let _ = tx.send(v);
                break;
            }
        }
    });
    let got = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let settings = got.unwrap_or_else(|_| {
        panic!(
            "no settings record; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(settings["baud"], 2400);
    // The session was recorded under XDG_STATE_HOME/hsmon (the unit's StateDirectory).
    assert!(state.path().join("hsmon").is_dir());
}

/// `systemd-analyze syscall-filter`: every group with its system calls, nested groups expanded.
fn syscall_groups() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new("systemd-analyze")
        .arg("syscall-filter")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if line.starts_with('@') {
            let name = line.split_whitespace().next().unwrap().to_string();
            raw.insert(name.clone(), Vec::new());
            current = Some(name);
        } else if let (Some(c), Some(word)) = (&current, line.split_whitespace().next()) {
            if !word.starts_with('#') {
                raw.get_mut(c).unwrap().push(word.to_string());
            }
        }
    }
    fn expand(
        g: &str,
        raw: &BTreeMap<String, Vec<String>>,
        seen: &mut BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for x in raw.get(g).into_iter().flatten() {
            if x.starts_with('@') {
                if seen.insert(x.clone()) {
                    out.extend(expand(x, raw, seen));
                }
            } else {
                out.insert(x.clone());
            }
        }
        out
    }
    raw.keys()
        .map(|g| (g.clone(), expand(g, &raw, &mut BTreeSet::new())))
        .collect()
}

#[test]
fn the_units_syscall_filter_allows_every_call_hsmon_makes() {
    require("strace");
    require("systemd-analyze");
    let groups = syscall_groups();
    let names = |words: &str| -> BTreeSet<String> {
        words
            .split_whitespace()
            .flat_map(|w| match groups.get(w) {
                Some(set) => set.clone(),
                None => BTreeSet::from([w.to_string()]),
            })
            .collect()
    };
    // SystemCallFilter= lines: the allow lists add up, then each `~` list is taken away.
    let mut allowed = BTreeSet::new();
    for v in value("SystemCallFilter")
        .iter()
        .filter(|v| !v.starts_with('~'))
    {
        allowed.extend(names(v));
    }
    assert!(allowed.len() > 100, "the unit allows a group: {allowed:?}");
    for v in value("SystemCallFilter")
        .iter()
        .filter(|v| v.starts_with('~'))
    {
        for n in names(&v[1..]) {
            allowed.remove(&n);
        }
    }

    let link = PtyLink::new();
    let etc = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(etc.path().join("hsmon")).unwrap();
    std::fs::write(
        etc.path().join("hsmon/config.toml"),
        format!("[ports.meter]\npath = \"{}\"\n", path_str(&link.a())),
    )
    .unwrap();
    let trace = etc.path().join("trace.txt");
    let exec = value("ExecStart")[0].replace("%i", "meter");
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .arg(hsmon_bin())
        .args(exec.split_whitespace().skip(1))
        .env("XDG_CONFIG_HOME", etc.path())
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    assert!(
        lines.any(|l| l.contains("\"type\":\"settings\"")),
        "hsmon under strace opened the port"
    );
    // Some traffic, then `quit` on stdin ends hsmon (and strace with it).
    link.device().write_all(b"hello 68 04").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.stdin.as_mut().unwrap().write_all(b"quit\n").unwrap();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&trace).unwrap();
    let used: BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            let rest = l.split_once(' ')?.1.trim_start();
            let name = rest.split('(').next()?;
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then(|| name.to_string())
        })
        .collect();
    assert!(used.contains("openat"), "{used:?}");
    let forbidden: Vec<&String> = used.difference(&allowed).collect();
    assert!(
        forbidden.is_empty(),
        "hsmon calls what the unit's SystemCallFilter forbids: {forbidden:?}"
    );
}
