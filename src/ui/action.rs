//! What the user wants, produced only by the keymap (and by the line editors).

/// One user intent. `name()` is the id used in the config file's `[keys]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    ToggleHelp,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Top,
    /// Jump to the newest bytes and follow them again.
    Follow,
    BaudUp,
    BaudDown,
    /// Open the custom baud entry.
    EnterBaud,
    /// Switch to the setting the baud estimate or a finished scan suggests.
    ApplyBaud,
    /// Start (or stop) an active baud scan on the port.
    AutobaudScan,
    CycleDataBits,
    CycleParity,
    ToggleStopBits,
    CycleFlow,
    ToggleDtr,
    ToggleRts,
    SendBreak,
    /// Open the send line.
    OpenSend,
    /// Move the keyboard to the next pane (bytes → frames → events).
    FocusNext,
    /// Enter: open the selected frame or event, or the send line in the bytes pane.
    Activate,
    /// Scroll the bytes pane to the selected frame's or event's bytes.
    JumpToBytes,
    /// Show only one protocol's frames (cycles through those seen).
    FilterProtocol,
    /// Show only events at or above a severity (cycles).
    FilterSeverity,
    /// The "what am I talking to?" overlay.
    TalkingTo,
    /// Card: send the script's next step.
    StepNext,
    /// Card: send the last command again.
    Resend,
    /// Card: edit the current command in the send line.
    EditApdu,
    /// Card: run the script until a step fails.
    RunToFailure,
    /// Card: back to the script's first step and run it (after a reset lost the card's state).
    ReplayScript,
    /// Card: reset the card (SCardReconnect with SCARD_RESET_CARD).
    ResetCard,
    /// Card: wrap script runs in a PC/SC transaction, or not.
    ToggleTransaction,
    /// Replay: pause or play.
    ReplayPause,
    ReplayFaster,
    ReplaySlower,
    /// Replay: play one event.
    ReplayStep,
    /// Replay: play until the next frame (or APDU exchange in a card session).
    ReplayStepFrame,
    /// Replay: play until the next diagnostic event.
    ReplayNextEvent,
    /// Search the bytes (hex or text); in a replay, on through the whole capture.
    Search,
}

impl Action {
    pub const ALL: [Action; 41] = [
        Action::Quit,
        Action::ToggleHelp,
        Action::ScrollUp,
        Action::ScrollDown,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Follow,
        Action::BaudUp,
        Action::BaudDown,
        Action::EnterBaud,
        Action::ApplyBaud,
        Action::AutobaudScan,
        Action::CycleDataBits,
        Action::CycleParity,
        Action::ToggleStopBits,
        Action::CycleFlow,
        Action::ToggleDtr,
        Action::ToggleRts,
        Action::SendBreak,
        Action::OpenSend,
        Action::FocusNext,
        Action::Activate,
        Action::JumpToBytes,
        Action::FilterProtocol,
        Action::FilterSeverity,
        Action::TalkingTo,
        Action::StepNext,
        Action::Resend,
        Action::EditApdu,
        Action::RunToFailure,
        Action::ReplayScript,
        Action::ResetCard,
        Action::ToggleTransaction,
        Action::ReplayPause,
        Action::ReplayFaster,
        Action::ReplaySlower,
        Action::ReplayStep,
        Action::ReplayStepFrame,
        Action::ReplayNextEvent,
        Action::Search,
    ];

    /// Stable name for the config file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleHelp => "help",
            Action::ScrollUp => "scroll_up",
            Action::ScrollDown => "scroll_down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Follow => "follow",
            Action::BaudUp => "baud_up",
            Action::BaudDown => "baud_down",
            Action::EnterBaud => "enter_baud",
            Action::ApplyBaud => "apply_baud",
            Action::AutobaudScan => "autobaud",
            Action::CycleDataBits => "data_bits",
            Action::CycleParity => "parity",
            Action::ToggleStopBits => "stop_bits",
            Action::CycleFlow => "flow",
            Action::ToggleDtr => "dtr",
            Action::ToggleRts => "rts",
            Action::SendBreak => "break",
            Action::OpenSend => "send",
            Action::FocusNext => "focus_next",
            Action::Activate => "activate",
            Action::JumpToBytes => "jump",
            Action::FilterProtocol => "filter_protocol",
            Action::FilterSeverity => "filter_severity",
            Action::TalkingTo => "talking_to",
            Action::StepNext => "step",
            Action::Resend => "resend",
            Action::EditApdu => "edit",
            Action::RunToFailure => "run_to_failure",
            Action::ReplayScript => "replay",
            Action::ResetCard => "reset_card",
            Action::ToggleTransaction => "transaction",
            Action::ReplayPause => "replay_pause",
            Action::ReplayFaster => "replay_faster",
            Action::ReplaySlower => "replay_slower",
            Action::ReplayStep => "replay_step",
            Action::ReplayStepFrame => "replay_step_frame",
            Action::ReplayNextEvent => "replay_next_event",
            Action::Search => "search",
        }
    }

    /// What the help overlay says.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleHelp => "show or hide this help",
            Action::ScrollUp => "scroll up / select the previous row (pauses follow)",
            Action::ScrollDown => "scroll down / select the next row",
            Action::PageUp => "up one page (pauses follow; then older bytes from the capture)",
            Action::PageDown => "down one page",
            Action::Top => "go to the oldest bytes in memory",
            Action::Follow => "go to the newest bytes and follow them",
            Action::BaudUp => "baud rate up to the next standard rate",
            Action::BaudDown => "baud rate down to the next standard rate",
            Action::EnterBaud => "type a custom baud rate",
            Action::ApplyBaud => "apply the suggested baud rate / format (status bar)",
            Action::AutobaudScan => {
                "active baud scan: try the common rates, propose the best (again: stop)"
            }
            Action::CycleDataBits => "data bits 8 → 7 → 6 → 5",
            Action::CycleParity => "parity none → even → odd → mark → space",
            Action::ToggleStopBits => "stop bits 1 ↔ 2",
            Action::CycleFlow => "flow control none → hw (RTS/CTS) → sw (XON/XOFF)",
            Action::ToggleDtr => "toggle DTR",
            Action::ToggleRts => "toggle RTS",
            Action::SendBreak => "send a break (250 ms)",
            Action::OpenSend => "send text or hex (Tab switches, Enter sends)",
            Action::FocusNext => "next pane: bytes → frames → events",
            Action::Activate => "open the selected frame or event (in bytes: the send line)",
            Action::JumpToBytes => "show the selected frame's or event's bytes in the hex pane",
            Action::FilterProtocol => "frames: show one protocol only (cycles)",
            Action::FilterSeverity => "events: warnings and errors only, errors only, all",
            Action::TalkingTo => "what am I talking to? (the evidence)",
            Action::StepNext => "card: send the script's next step",
            Action::Resend => "card: send the last command again",
            Action::EditApdu => "card: edit the current command in the send line",
            Action::RunToFailure => "card: run the script to the next failure",
            Action::ReplayScript => "card: replay the script from the start",
            Action::ResetCard => {
                "card: reset it (SCARD_RESET_CARD: other applications lose their state)"
            }
            Action::ToggleTransaction => "card: wrap script runs in a PC/SC transaction (toggle)",
            Action::ReplayPause => "replay: pause / play",
            Action::ReplayFaster => "replay: twice as fast",
            Action::ReplaySlower => "replay: half as fast",
            Action::ReplayStep => "replay: one chunk (the next bytes or APDU exchange)",
            Action::ReplayStepFrame => {
                "replay: on to the next frame (card: the next APDU exchange)"
            }
            Action::ReplayNextEvent => "replay: on to the next diagnostic event",
            Action::Search => {
                "search the bytes: hex (68 04) or text; / then Enter on an empty line finds the next"
            }
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }
}
