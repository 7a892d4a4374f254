//! Where each pane goes. `update` uses the same layout as `render`, so paging moves by
//! exactly what is on screen.
//!
//! Wide terminals (≥ 150 columns):
//! ```text
//! ┌ bytes ─────────────────────────┐┌ frames ───────────────┐
//! │ 00000000  0.012 RX▸ 68 04 …    ││ 0.012 RX M-Bus long ✓ │
//! │                                │└───────────────────────┘
//! │                                │┌ events ───────────────┐
//! │                                ││ ⚠ 0x68 opens an M-Bus │
//! └────────────────────────────────┘└───────────────────────┘
//!  status (2 lines)
//!  hints or send line
//! ```
//! Tall terminals put frames and events side by side under the bytes; small ones show
//! the bytes only (Tab still reaches the lists, which then replace the bytes pane).

use ratatui::layout::{Constraint, Layout, Rect};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub hex: Rect,
    pub frames: Option<Rect>,
    pub events: Option<Rect>,
    pub status: Rect,
    pub bottom: Rect,
}

impl Areas {
    pub fn new(area: Rect) -> Areas {
        let [main, status, bottom] = Layout::vertical([
            Constraint::Min(0),
            Constraint::Length(2),
            Constraint::Length(1),
        ])
        .areas(area);
        if main.width >= 150 && main.height >= 12 {
            let [hex, side] =
                Layout::horizontal([Constraint::Min(92), Constraint::Percentage(40)]).areas(main);
            let [frames, events] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(side);
            Areas {
                hex,
                frames: Some(frames),
                events: Some(events),
                status,
                bottom,
            }
        } else if main.height >= 24 && main.width >= 60 {
            let [hex, lists] =
                Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                    .areas(main);
            let [frames, events] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(lists);
            Areas {
                hex,
                frames: Some(frames),
                events: Some(events),
                status,
                bottom,
            }
        } else {
            Areas {
                hex: main,
                frames: None,
                events: None,
                status,
                bottom,
            }
        }
    }
}
