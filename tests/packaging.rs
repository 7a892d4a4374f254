//! Packaging: `hsmon completions` / `hsmon man` produce what bash, zsh, fish, elvish,
//! PowerShell and man accept. Missing tools (bash, groff, man) fail the test;
//! `scripts/setup.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::run_hsmon;

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in SHELLS {
        let (code, out, err) = run_hsmon(&["completions", shell]);
        assert_eq!(code, 0, "hsmon completions {shell}: {err}");
        for sub in [
            "decode",
            "handshake",
            "serial",
            "card",
            "completions",
            "man",
        ] {
            assert!(
                out.contains(sub),
                "hsmon completions {shell} does not name `{sub}`:\n{out}"
            );
        }
    }
    let (code, _, err) = run_hsmon(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");
}

#[test]
fn bash_accepts_the_bash_completion_script() {
    let (code, script, err) = run_hsmon(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hsmon.bash");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash is needed for this test (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "bash -n rejects the completion script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sourcing it registers the completion function for hsmon.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source '{}' && complete -p hsmon", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hsmon"),
        "sourcing the script registers no completion: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program args` with `input` on stdin; returns (success, stdout, stderr).
fn pipe_through(program: &str, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed for this test (scripts/setup.sh): {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_man_page_is_roff_that_groff_and_man_render() {
    let out = support::hsmon_command()
        .arg("man")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = out.stdout;
    assert!(
        page.starts_with(b".ie") || page.starts_with(b".TH"),
        "not roff"
    );

    // groff with every warning on: valid roff renders without a complaint.
    let (ok, text, err) = pipe_through("groff", &["-man", "-Tutf8", "-ww", "-P-cbou"], &page);
    assert!(ok && err.is_empty(), "groff -man complains:\n{err}");
    for heading in ["NAME", "SYNOPSIS", "SUBCOMMANDS"] {
        assert!(text.contains(heading), "no {heading} section:\n{text}");
    }
    assert!(text.contains("hsmon"), "{text}");

    // And man itself, reading the page from stdin as `hsmon man | man -l -` does.
    let (ok, text, err) = pipe_through("man", &["-l", "-"], &page);
    assert!(ok, "man -l - fails: {err}");
    for heading in ["NAME", "SYNOPSIS"] {
        assert!(
            text.contains(heading),
            "man -l -: no {heading} section:\n{text}"
        );
    }
    assert!(
        text.contains("hsmon-decode"),
        "the subcommands are listed:\n{text}"
    );
}
