//! Standard output and standard error as a Unix tool uses them: a reader that went away
//! (EPIPE, `hsmon ... | head`) ends hsmon quietly with status 0, as `cat` does; any other
//! write error (`> /dev/full`) is one line on stderr and exit status 3. Nothing here panics on
//! a closed stream, unlike `print!` and `eprintln!`, and the panic hook writes no colour
//! where no terminal reads it.

use std::io::{self, IsTerminal, Write};

/// How records are written: text lines, or one JSON object per line (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Which standard stream a write failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A write to stdout or stderr failed. Carried inside an `io::Error` of the same kind (so
/// `e.kind() == BrokenPipe` still holds) and found again at the top by [`classify`].
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard {}: {error} — free space on the disk or write elsewhere", match .stream { Stream::Stdout => "output", Stream::Stderr => "error" })]
pub struct WriteError {
    pub stream: Stream,
    pub error: io::Error,
}

impl WriteError {
    /// The `io::Error` a writer returns: same kind, this error inside.
    pub fn wrap(stream: Stream, error: io::Error) -> io::Error {
        // Already tagged (a BufWriter passing on its inner writer's error): keep it.
        if error
            .get_ref()
            .is_some_and(|inner| inner.is::<WriteError>())
        {
            return error;
        }
        io::Error::new(error.kind(), WriteError { stream, error })
    }

    pub fn is_closed_pipe(&self) -> bool {
        self.error.kind() == io::ErrorKind::BrokenPipe
    }
}

/// What the top does with an error that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The reader of our output went away: exit 0, say nothing.
    ClosedPipe,
    /// Writing our output failed otherwise: one line, exit status 3.
    WriteFailed,
    /// Not an output error.
    Other,
}

/// Looks through an error's chain for a [`WriteError`] (bare, or inside an `io::Error`).
pub fn classify(err: &color_eyre::Report) -> ErrorClass {
    for cause in err.chain() {
        let found = cause.downcast_ref::<WriteError>().or_else(|| {
            cause
                .downcast_ref::<io::Error>()
                .and_then(|e| e.get_ref())
                .and_then(|inner| inner.downcast_ref::<WriteError>())
        });
        if let Some(w) = found {
            return if w.is_closed_pipe() {
                ErrorClass::ClosedPipe
            } else {
                ErrorClass::WriteFailed
            };
        }
    }
    ErrorClass::Other
}

/// Standard output, locked, with every error tagged as a [`WriteError`]. Wrap it in a
/// `BufWriter` for record streams.
pub struct Stdout {
    inner: io::StdoutLock<'static>,
}

impl Stdout {
    pub fn lock() -> Stdout {
        Stdout {
            inner: io::stdout().lock(),
        }
    }
}

impl Default for Stdout {
    fn default() -> Stdout {
        Stdout::lock()
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .write(buf)
            .map_err(|e| WriteError::wrap(Stream::Stdout, e))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner
            .write_all(buf)
            .map_err(|e| WriteError::wrap(Stream::Stdout, e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .flush()
            .map_err(|e| WriteError::wrap(Stream::Stdout, e))
    }
}

/// Writes all of `text` to stdout and flushes: the replacement for `print!`.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = Stdout::lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// One line on stderr: the replacement for `eprintln!` where a failure should end the run
/// (the caller's `?` takes a closed pipe to a quiet exit 0).
pub fn eprint_line(text: &str) -> io::Result<()> {
    let mut err = io::stderr().lock();
    writeln!(err, "{text}")
        .and_then(|()| err.flush())
        .map_err(|e| WriteError::wrap(Stream::Stderr, e))
}

/// One line on stderr, a failure ignored: for the last words before exit, when nothing is
/// left to tell.
pub fn eprint_last(text: &str) {
    let _ = eprint_line(text);
}

/// Whether colour is wanted on stderr: a terminal, and `NO_COLOR` unset or empty
/// (<https://no-color.org>).
pub fn stderr_colour() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// color-eyre's hooks, without colour unless [`stderr_colour`], and a panic hook that never
/// panics itself on a closed stderr (color-eyre's own uses `eprintln!`; a second panic would
/// abort with SIGABRT).
pub fn install_hooks() {
    let theme = if stderr_colour() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let Ok((panic_hook, eyre_hook)) = color_eyre::config::HookBuilder::new()
        .theme(theme)
        .try_into_hooks()
    else {
        return;
    };
    let _ = eyre_hook.install();
    std::panic::set_hook(Box::new(move |info| {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "{}", panic_hook.panic_report(info));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use color_eyre::eyre::WrapErr;

    #[test]
    fn a_closed_pipe_is_found_through_io_error_and_report() {
        let e = WriteError::wrap(Stream::Stdout, io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        let r = color_eyre::Report::new(e);
        assert_eq!(classify(&r), ErrorClass::ClosedPipe);
        let full = WriteError::wrap(Stream::Stdout, io::Error::from_raw_os_error(28));
        let r: Result<(), io::Error> = Err(full);
        let r = r.wrap_err("while printing").err().map(|r| classify(&r));
        assert_eq!(r, Some(ErrorClass::WriteFailed));
        let plain = color_eyre::Report::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(classify(&plain), ErrorClass::Other);
    }

    #[test]
    fn wrapping_twice_keeps_one_tag() {
        let e = WriteError::wrap(Stream::Stdout, io::Error::from_raw_os_error(28));
        let again = WriteError::wrap(Stream::Stdout, e);
        let msg = again.to_string();
        assert_eq!(msg.matches("cannot write").count(), 1, "{msg}");
    }
}
