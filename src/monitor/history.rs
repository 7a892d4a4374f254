//! Reading older bytes back from the session's capture: the first page (Home), the page
//! above the oldest byte in memory (PgUp), and a search through the whole file. The monitor
//! serves the request; the front end decides what to show.

use std::ops::Range;
use std::path::PathBuf;

use super::effect::HistoryRequest;
use crate::event::Direction;
use crate::history::{self, Start};
use crate::session::Session;

/// The answer to a [`HistoryRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryReply {
    /// Back to the live session.
    Live,
    /// The capture's first bytes (the loaded session holds them).
    Beginning,
    /// The page above this byte (the loaded session holds it).
    Above(Direction, u64),
    /// The pattern was found here: in the loaded session, or, when none was loaded, in the
    /// live session's memory after all.
    Found {
        pattern: Vec<u8>,
        dir: Direction,
        range: Range<u64>,
    },
    /// The capture does not hold the pattern.
    NotFound(Vec<u8>),
    /// Nothing to read (not recorded, or the file could not be read): why.
    Unavailable(String),
}

/// Carries out `req` against `session`'s capture: the reply, and the session read back.
pub fn serve(session: &mut Session, req: HistoryRequest) -> (HistoryReply, Option<Session>) {
    if req == HistoryRequest::Leave {
        return (HistoryReply::Live, None);
    }
    session.flush_capture();
    let Some(path) = session.recorder().map(|r| PathBuf::from(r.name())) else {
        return (
            HistoryReply::Unavailable(
                "this session is not recorded: no older bytes to read".to_string(),
            ),
            None,
        );
    };
    let window = session.window_cap();
    let fail = |e: &dyn std::fmt::Display| {
        (
            HistoryReply::Unavailable(format!("cannot read the capture {}: {e}", path.display())),
            None,
        )
    };
    match req {
        HistoryRequest::Leave => (HistoryReply::Live, None),
        HistoryRequest::Beginning => match history::load(&path, &Start::Beginning, window) {
            Ok(h) => (HistoryReply::Beginning, Some(h)),
            Err(e) => fail(&e),
        },
        HistoryRequest::Above(dir, offset) => {
            match history::load(&path, &Start::Before(dir, offset), window) {
                Ok(h) => (HistoryReply::Above(dir, offset), Some(h)),
                Err(e) => fail(&e),
            }
        }
        HistoryRequest::Find(pattern, last) => match history::find(&path, &pattern, last) {
            Ok(Some((dir, range))) => {
                // Still in memory after all (it arrived while searching)?
                if session.run_holding(dir, range.start).is_some() {
                    return (
                        HistoryReply::Found {
                            pattern,
                            dir,
                            range,
                        },
                        None,
                    );
                }
                match history::load(&path, &Start::Around(dir, range.start), window) {
                    Ok(h) => (
                        HistoryReply::Found {
                            pattern,
                            dir,
                            range,
                        },
                        Some(h),
                    ),
                    Err(e) => fail(&e),
                }
            }
            Ok(None) => (HistoryReply::NotFound(pattern), None),
            Err(e) => fail(&e),
        },
    }
}
