//! Where each pane goes. `update` uses the same layout as `render`, so paging moves by
//! exactly what is on screen.
//!
//! ```text
//! ┌ bytes ──────────────────────────────────────────┐
//! │ 00000000      0.012 RX▸ 68 04 04 68 ...  h..h  │
//! └─────────────────────────────────────────────────┘
//!  /dev/ttyUSB0 │ 9600 8N1 flow none │ DTR on RTS on │ connected     (status, 2 lines)
//!  RX 1.2 KiB 120 B/s │ TX 4 B │ dropped 0 │ …
//!  ? help  q quit  +/- baud …                                       (hints or send line)
//! ```

use ratatui::layout::{Constraint, Layout, Rect};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub hex: Rect,
    pub status: Rect,
    pub bottom: Rect,
}

impl Areas {
    pub fn new(area: Rect) -> Areas {
        let [hex, status, bottom] = Layout::vertical([
            Constraint::Min(0),
            Constraint::Length(2),
            Constraint::Length(1),
        ])
        .areas(area);
        Areas {
            hex,
            status,
            bottom,
        }
    }
}
