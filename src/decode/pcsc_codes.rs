//! PC/SC return codes (SCARD_S/E/W/F/P_*): name, value, meaning, pcsc-lite text, the Rust
//! `pcsc` crate variant and a fix, plus parsing of "0x80100068", "80100068", "-2146434968"
//! (Windows prints HRESULTs signed) and "SCARD_W_RESET_CARD" / "w_reset_card".
//!
//! Source: pcsc-lite ( 1.9.9 `pcsclite.h` [run], `error.c`, Microsoft
//! "Smart Card Return Values", the reset-semantics trace and issue threads for the hints).

use std::fmt;

/// What the S/E/W/F/P letter of a code's name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeClass {
    /// SCARD_S_*: success.
    Success,
    /// SCARD_E_*: the call failed.
    Error,
    /// SCARD_W_*: a warning about the card's state (reset, removed, ...).
    Warning,
    /// SCARD_F_*: an internal failure of the resource manager.
    Failure,
    /// SCARD_P_*: the resource manager is shutting down.
    Shutdown,
    /// Not a SCARD_ code but met in the same place (ERROR_BROKEN_PIPE).
    Other,
}

/// One PC/SC return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcscCode {
    /// Canonical name, e.g. "SCARD_W_RESET_CARD".
    pub name: &'static str,
    /// Other names for the same value (pcsc-lite's SCARD_E_UNSUPPORTED_FEATURE = 0x8010001F).
    pub aliases: &'static [&'static str],
    /// The value as an unsigned 32-bit number (Windows LONG/HRESULT bits).
    pub code: u32,
    pub class: CodeClass,
    /// Meaning (header comment / Microsoft documentation).
    pub meaning: &'static str,
    /// `pcsc_stringify_error()` text of pcsc-lite, where it has one.
    pub pcsc_lite_text: Option<&'static str>,
    /// Variant of the Rust `pcsc` crate's `Error`, where it maps the code.
    pub rust_pcsc: Option<&'static str>,
    /// Defined only on Windows.
    pub windows_only: bool,
    /// What to do about it, where the reference gives a fix.
    pub hint: Option<&'static str>,
}

impl PcscCode {
    /// The value as Windows prints it (a negative HRESULT for error codes).
    pub fn signed(&self) -> i32 {
        self.code as i32
    }

    /// Stable knowledge-base id, e.g. "pcsc.w_reset_card".
    pub fn knowledge_id(&self) -> String {
        let short = self.name.strip_prefix("SCARD_").unwrap_or(self.name);
        format!("pcsc.{}", short.to_ascii_lowercase())
    }
}

impl fmt::Display for PcscCode {
    /// "0x80100068 SCARD_W_RESET_CARD: Card has been reset; shared state information invalid".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X} {}: {}", self.code, self.name, self.meaning)
    }
}

const HINT_RESET: &str = "another PC/SC client (or your own SCardEndTransaction/SCardDisconnect with SCARD_RESET_CARD) reset the card; the APDU was NOT sent. Call SCardReconnect(hCard, SCARD_SHARE_SHARED, protocols, SCARD_LEAVE_CARD), rebuild card state (re-SELECT the applet, re-VERIFY the PIN, re-open secure messaging) and resend. Reconnecting with SCARD_RESET_CARD resets the card again for everybody else. Rust `pcsc`: dropping a Card resets the card; disconnect with Disposition::LeaveCard";
const HINT_SHARING: &str = "another process holds the reader exclusively (GnuPG scdaemon is a frequent one) or holds a transaction; find it (PCSC-contrib list_pcsc_applications.sh greps /proc/*/maps for libpcsclite) or connect in shared mode. A reset requested while another handle holds a transaction is refused with this code too";
const HINT_NO_SERVICE: &str = "the PC/SC resource manager (pcscd) is not running or not reachable: start it (on systemd: the pcscd socket/service) and check that client and daemon versions match";
const HINT_STALE: &str = "the handle or context is stale (pcscd restarted, hibernation): establish a new context and reconnect";
const HINT_WINDOWS_ONLY_UNMAPPED: &str = "Windows-only code; the Rust `pcsc` crate does not map it (Error::from_raw panics in debug builds, UnknownError in release)";

macro_rules! code {
    ($name:literal, $code:literal, $class:ident, $meaning:literal, $text:expr, $rust:expr, $win:literal, $hint:expr) => {
        PcscCode {
            name: $name,
            aliases: &[],
            code: $code,
            class: CodeClass::$class,
            meaning: $meaning,
            pcsc_lite_text: $text,
            rust_pcsc: $rust,
            windows_only: $win,
            hint: $hint,
        }
    };
}

static CODES: &[PcscCode] = &[
    code!(
        "SCARD_S_SUCCESS",
        0x0000_0000,
        Success,
        "No error",
        Some("Command successful."),
        None,
        false,
        None
    ),
    code!(
        "SCARD_F_INTERNAL_ERROR",
        0x8010_0001,
        Failure,
        "Internal consistency check failed",
        Some("Internal error."),
        Some("InternalError"),
        false,
        None
    ),
    code!(
        "SCARD_E_CANCELLED",
        0x8010_0002,
        Error,
        "The action was cancelled by an SCardCancel request",
        Some("Command cancelled."),
        Some("Cancelled"),
        false,
        None
    ),
    code!(
        "SCARD_E_INVALID_HANDLE",
        0x8010_0003,
        Error,
        "The supplied handle was invalid",
        Some("Invalid handle."),
        Some("InvalidHandle"),
        false,
        Some(HINT_STALE)
    ),
    code!(
        "SCARD_E_INVALID_PARAMETER",
        0x8010_0004,
        Error,
        "One or more of the supplied parameters could not be properly interpreted",
        Some("Invalid parameter given."),
        Some("InvalidParameter"),
        false,
        None
    ),
    code!(
        "SCARD_E_INVALID_TARGET",
        0x8010_0005,
        Error,
        "Registry startup information is missing or invalid",
        Some("Invalid target given."),
        Some("InvalidTarget"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_MEMORY",
        0x8010_0006,
        Error,
        "Not enough memory available to complete this command",
        Some("Not enough memory."),
        Some("NoMemory"),
        false,
        None
    ),
    code!(
        "SCARD_F_WAITED_TOO_LONG",
        0x8010_0007,
        Failure,
        "An internal consistency timer has expired",
        Some("Waited too long."),
        Some("WaitedTooLong"),
        false,
        None
    ),
    code!(
        "SCARD_E_INSUFFICIENT_BUFFER",
        0x8010_0008,
        Error,
        "The data buffer to receive returned data is too small",
        Some("Insufficient buffer."),
        Some("InsufficientBuffer"),
        false,
        Some(
            "give a larger receive buffer: a short APDU response needs up to 256 data bytes + SW1 SW2 = 258"
        )
    ),
    code!(
        "SCARD_E_UNKNOWN_READER",
        0x8010_0009,
        Error,
        "The specified reader name is not recognized",
        Some("Unknown reader specified."),
        Some("UnknownReader"),
        false,
        Some("list the readers again (SCardListReaders) and use a current name")
    ),
    code!(
        "SCARD_E_TIMEOUT",
        0x8010_000A,
        Error,
        "The user-specified timeout value has expired",
        Some("Command timeout."),
        Some("Timeout"),
        false,
        None
    ),
    code!(
        "SCARD_E_SHARING_VIOLATION",
        0x8010_000B,
        Error,
        "The smart card cannot be accessed because of other connections outstanding",
        Some("Sharing violation."),
        Some("SharingViolation"),
        false,
        Some(HINT_SHARING)
    ),
    code!(
        "SCARD_E_NO_SMARTCARD",
        0x8010_000C,
        Error,
        "The operation requires a smart card, but no smart card is currently in the device",
        Some("No smart card inserted."),
        Some("NoSmartcard"),
        false,
        Some(
            "insert the card; after a removal, SCardReconnect(SCARD_LEAVE_CARD) on the old handle works again once the card is back"
        )
    ),
    code!(
        "SCARD_E_UNKNOWN_CARD",
        0x8010_000D,
        Error,
        "The specified smart card name is not recognized",
        Some("Unknown card."),
        Some("UnknownCard"),
        false,
        None
    ),
    code!(
        "SCARD_E_CANT_DISPOSE",
        0x8010_000E,
        Error,
        "The system could not dispose of the media in the requested manner",
        Some("Cannot dispose handle."),
        Some("CantDispose"),
        false,
        None
    ),
    code!(
        "SCARD_E_PROTO_MISMATCH",
        0x8010_000F,
        Error,
        "The requested protocols are incompatible with the protocol currently in use with the smart card",
        Some("Card protocol mismatch."),
        Some("ProtoMismatch"),
        false,
        Some(
            "request SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1 and use the protocol SCardConnect returns"
        )
    ),
    code!(
        "SCARD_E_NOT_READY",
        0x8010_0010,
        Error,
        "The reader or smart card is not ready to accept commands",
        Some("Subsystem not ready."),
        Some("NotReady"),
        false,
        None
    ),
    code!(
        "SCARD_E_INVALID_VALUE",
        0x8010_0011,
        Error,
        "One or more of the supplied parameter values could not be properly interpreted",
        Some("Invalid value given."),
        Some("InvalidValue"),
        false,
        None
    ),
    code!(
        "SCARD_E_SYSTEM_CANCELLED",
        0x8010_0012,
        Error,
        "The action was cancelled by the system, presumably to log off or shut down",
        Some("System cancelled."),
        Some("SystemCancelled"),
        false,
        None
    ),
    code!(
        "SCARD_F_COMM_ERROR",
        0x8010_0013,
        Failure,
        "An internal communications error has been detected",
        Some("RPC transport error."),
        Some("CommError"),
        false,
        Some(HINT_STALE)
    ),
    code!(
        "SCARD_F_UNKNOWN_ERROR",
        0x8010_0014,
        Failure,
        "An internal error has been detected, but the source is unknown",
        Some("Unknown error."),
        Some("UnknownError"),
        false,
        None
    ),
    code!(
        "SCARD_E_INVALID_ATR",
        0x8010_0015,
        Error,
        "An ATR obtained from the registry is not a valid ATR string",
        Some("Invalid ATR."),
        Some("InvalidAtr"),
        false,
        None
    ),
    code!(
        "SCARD_E_NOT_TRANSACTED",
        0x8010_0016,
        Error,
        "An attempt was made to end a non-existent transaction (pcsc-lite also returns it for reader transmit failures, e.g. \"Card not transacted: 612\")",
        Some("Transaction failed."),
        Some("NotTransacted"),
        false,
        Some(
            "for a transmit failure: check the reader/driver log; stale handles after a daemon restart or hibernation show this too (reconnect)"
        )
    ),
    code!(
        "SCARD_E_READER_UNAVAILABLE",
        0x8010_0017,
        Error,
        "The specified reader is not currently available for use",
        Some("Reader is unavailable."),
        Some("ReaderUnavailable"),
        false,
        None
    ),
    code!(
        "SCARD_P_SHUTDOWN",
        0x8010_0018,
        Shutdown,
        "The operation has been aborted to allow the server application to exit",
        None,
        Some("Shutdown"),
        false,
        None
    ),
    code!(
        "SCARD_E_PCI_TOO_SMALL",
        0x8010_0019,
        Error,
        "The PCI receive buffer was too small",
        Some("PCI struct too small."),
        Some("PciTooSmall"),
        false,
        None
    ),
    code!(
        "SCARD_E_READER_UNSUPPORTED",
        0x8010_001A,
        Error,
        "The reader driver does not meet minimal requirements for support",
        Some("Reader is unsupported."),
        Some("ReaderUnsupported"),
        false,
        None
    ),
    code!(
        "SCARD_E_DUPLICATE_READER",
        0x8010_001B,
        Error,
        "The reader driver did not produce a unique reader name",
        Some("Reader already exists."),
        Some("DuplicateReader"),
        false,
        None
    ),
    code!(
        "SCARD_E_CARD_UNSUPPORTED",
        0x8010_001C,
        Error,
        "The smart card does not meet minimal requirements for support",
        Some("Card is unsupported."),
        Some("CardUnsupported"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_SERVICE",
        0x8010_001D,
        Error,
        "The smart card resource manager is not running",
        Some("Service not available."),
        Some("NoService"),
        false,
        Some(HINT_NO_SERVICE)
    ),
    code!(
        "SCARD_E_SERVICE_STOPPED",
        0x8010_001E,
        Error,
        "The smart card resource manager has shut down",
        Some("Service was stopped."),
        Some("ServiceStopped"),
        false,
        Some(HINT_STALE)
    ),
    PcscCode {
        name: "SCARD_E_UNEXPECTED",
        aliases: &["SCARD_E_UNSUPPORTED_FEATURE"],
        code: 0x8010_001F,
        class: CodeClass::Error,
        meaning: "An unexpected card error has occurred (Windows); pcsc-lite defines both SCARD_E_UNEXPECTED and SCARD_E_UNSUPPORTED_FEATURE as this value (\"feature not supported\")",
        pcsc_lite_text: Some("Feature not supported."),
        rust_pcsc: Some("Unexpected (Windows) / UnsupportedFeature (pcsc-lite)"),
        windows_only: false,
        hint: None,
    },
    code!(
        "SCARD_E_ICC_INSTALLATION",
        0x8010_0020,
        Error,
        "No primary provider can be found for the smart card",
        None,
        Some("IccInstallation"),
        false,
        None
    ),
    code!(
        "SCARD_E_ICC_CREATEORDER",
        0x8010_0021,
        Error,
        "The requested order of object creation is not supported",
        None,
        Some("IccCreateorder"),
        false,
        None
    ),
    code!(
        "SCARD_E_UNSUPPORTED_FEATURE",
        0x8010_0022,
        Error,
        "This smart card does not support the requested feature (Windows value; pcsc-lite uses 0x8010001F for this name)",
        None,
        Some("UnsupportedFeature (Windows build)"),
        true,
        None
    ),
    code!(
        "SCARD_E_DIR_NOT_FOUND",
        0x8010_0023,
        Error,
        "The identified directory does not exist in the smart card",
        None,
        Some("DirNotFound"),
        false,
        None
    ),
    code!(
        "SCARD_E_FILE_NOT_FOUND",
        0x8010_0024,
        Error,
        "The identified file does not exist in the smart card",
        None,
        Some("FileNotFound"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_DIR",
        0x8010_0025,
        Error,
        "The supplied path does not represent a smart card directory",
        None,
        Some("NoDir"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_FILE",
        0x8010_0026,
        Error,
        "The supplied path does not represent a smart card file",
        None,
        Some("NoFile"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_ACCESS",
        0x8010_0027,
        Error,
        "Access is denied to this file",
        None,
        Some("NoAccess"),
        false,
        None
    ),
    code!(
        "SCARD_E_WRITE_TOO_MANY",
        0x8010_0028,
        Error,
        "The smart card does not have enough memory to store the information",
        None,
        Some("WriteTooMany"),
        false,
        None
    ),
    code!(
        "SCARD_E_BAD_SEEK",
        0x8010_0029,
        Error,
        "There was an error trying to set the smart card file object pointer",
        None,
        Some("BadSeek"),
        false,
        None
    ),
    code!(
        "SCARD_E_INVALID_CHV",
        0x8010_002A,
        Error,
        "The supplied PIN is incorrect",
        None,
        Some("InvalidChv"),
        false,
        None
    ),
    code!(
        "SCARD_E_UNKNOWN_RES_MNG",
        0x8010_002B,
        Error,
        "An unrecognized error code was returned from a layered component",
        None,
        Some("UnknownResMng"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_SUCH_CERTIFICATE",
        0x8010_002C,
        Error,
        "The requested certificate does not exist",
        None,
        Some("NoSuchCertificate"),
        false,
        None
    ),
    code!(
        "SCARD_E_CERTIFICATE_UNAVAILABLE",
        0x8010_002D,
        Error,
        "The requested certificate could not be obtained",
        None,
        Some("CertificateUnavailable"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_READERS_AVAILABLE",
        0x8010_002E,
        Error,
        "Cannot find a smart card reader",
        Some("Cannot find a smart card reader."),
        Some("NoReadersAvailable"),
        false,
        Some(
            "plug in a reader; if one is attached, its driver is likely missing (for USB CCID readers: libccid) or pcscd does not see it"
        )
    ),
    code!(
        "SCARD_E_COMM_DATA_LOST",
        0x8010_002F,
        Error,
        "A communications error with the smart card has been detected; retry the operation",
        None,
        Some("CommDataLost"),
        false,
        None
    ),
    code!(
        "SCARD_E_NO_KEY_CONTAINER",
        0x8010_0030,
        Error,
        "The requested key container does not exist on the smart card",
        None,
        Some("NoKeyContainer"),
        false,
        None
    ),
    code!(
        "SCARD_E_SERVER_TOO_BUSY",
        0x8010_0031,
        Error,
        "The smart card resource manager is too busy to complete this operation",
        None,
        Some("ServerTooBusy"),
        false,
        None
    ),
    code!(
        "SCARD_E_PIN_CACHE_EXPIRED",
        0x8010_0032,
        Error,
        "The smart card PIN cache has expired (Windows only)",
        None,
        None,
        true,
        Some(HINT_WINDOWS_ONLY_UNMAPPED)
    ),
    code!(
        "SCARD_E_NO_PIN_CACHE",
        0x8010_0033,
        Error,
        "The smart card PIN cannot be cached (Windows only)",
        None,
        None,
        true,
        Some(HINT_WINDOWS_ONLY_UNMAPPED)
    ),
    code!(
        "SCARD_E_READ_ONLY_CARD",
        0x8010_0034,
        Error,
        "The smart card is read-only and cannot be written to (Windows only)",
        None,
        None,
        true,
        Some(HINT_WINDOWS_ONLY_UNMAPPED)
    ),
    code!(
        "SCARD_W_UNSUPPORTED_CARD",
        0x8010_0065,
        Warning,
        "The reader cannot communicate with the card, due to ATR string configuration conflicts",
        Some("Card is not supported."),
        Some("UnsupportedCard"),
        false,
        None
    ),
    code!(
        "SCARD_W_UNRESPONSIVE_CARD",
        0x8010_0066,
        Warning,
        "The smart card is not responding to a reset (mute card, or a failed PTS/PPS)",
        Some("Card is unresponsive."),
        Some("UnresponsiveCard"),
        false,
        Some(
            "reseat the card (contacts, orientation); if the card answers elsewhere, a failed PPS/speed negotiation is likely: check the reader driver"
        )
    ),
    code!(
        "SCARD_W_UNPOWERED_CARD",
        0x8010_0067,
        Warning,
        "Power has been removed from the smart card, so that further communication is not possible",
        Some("Card is unpowered."),
        Some("UnpoweredCard"),
        false,
        Some("reconnect to power the card up again, then rebuild its state")
    ),
    code!(
        "SCARD_W_RESET_CARD",
        0x8010_0068,
        Warning,
        "The smart card has been reset, so any shared state information is invalid",
        Some("Card was reset."),
        Some("ResetCard"),
        false,
        Some(HINT_RESET)
    ),
    code!(
        "SCARD_W_REMOVED_CARD",
        0x8010_0069,
        Warning,
        "The smart card has been removed, so further communication is not possible",
        Some("Card was removed."),
        Some("RemovedCard"),
        false,
        Some(
            "reinsert the card, then SCardReconnect(SCARD_LEAVE_CARD) on the same handle and rebuild the card state (Reconnect returns SCARD_E_NO_SMARTCARD while it is out)"
        )
    ),
    code!(
        "SCARD_W_SECURITY_VIOLATION",
        0x8010_006A,
        Warning,
        "Access was denied because of a security violation",
        Some("Access denied."),
        Some("SecurityViolation"),
        false,
        None
    ),
    code!(
        "SCARD_W_WRONG_CHV",
        0x8010_006B,
        Warning,
        "The card cannot be accessed because the wrong PIN was presented",
        None,
        Some("WrongChv"),
        false,
        None
    ),
    code!(
        "SCARD_W_CHV_BLOCKED",
        0x8010_006C,
        Warning,
        "The card cannot be accessed because the maximum number of PIN entry attempts has been reached",
        None,
        Some("ChvBlocked"),
        false,
        None
    ),
    code!(
        "SCARD_W_EOF",
        0x8010_006D,
        Warning,
        "The end of the smart card file has been reached",
        None,
        Some("Eof"),
        false,
        None
    ),
    code!(
        "SCARD_W_CANCELLED_BY_USER",
        0x8010_006E,
        Warning,
        "The action was cancelled by the user (Cancel in the card selection dialog)",
        None,
        Some("CancelledByUser"),
        false,
        None
    ),
    code!(
        "SCARD_W_CARD_NOT_AUTHENTICATED",
        0x8010_006F,
        Warning,
        "No PIN was presented to the smart card",
        None,
        Some("CardNotAuthenticated"),
        false,
        None
    ),
    code!(
        "SCARD_W_CACHE_ITEM_NOT_FOUND",
        0x8010_0070,
        Warning,
        "The requested item could not be found in the cache (Windows only)",
        None,
        Some("CacheItemNotFound"),
        true,
        None
    ),
    code!(
        "SCARD_W_CACHE_ITEM_STALE",
        0x8010_0071,
        Warning,
        "The requested cache item is too old and was deleted from the cache (Windows only)",
        None,
        Some("CacheItemStale"),
        true,
        None
    ),
    code!(
        "SCARD_W_CACHE_ITEM_TOO_BIG",
        0x8010_0072,
        Warning,
        "The new cache item exceeds the maximum per-item size defined for the cache (Windows only)",
        None,
        Some("CacheItemTooBig"),
        true,
        None
    ),
    code!(
        "ERROR_BROKEN_PIPE",
        0x0000_0109,
        Other,
        "Windows: a remote session without smart-card redirection",
        None,
        None,
        true,
        Some("enable smart-card redirection in the remote-desktop client, or run the tool locally")
    ),
];

/// Every known code, in value order within each class as listed by pcsc-lite.
pub fn all() -> &'static [PcscCode] {
    CODES
}

/// The code with this value. For 0x8010001F (two names in pcsc-lite) the entry lists both.
pub fn lookup_code(code: u32) -> Option<&'static PcscCode> {
    CODES.iter().find(|c| c.code == code)
}

/// The code with this name: case-insensitive, "SCARD_" prefix optional ("w_reset_card").
/// Canonical names win over aliases, so SCARD_E_UNSUPPORTED_FEATURE gives the Windows value
/// 0x80100022 (whose meaning notes pcsc-lite's 0x8010001F).
pub fn lookup_name(name: &str) -> Option<&'static PcscCode> {
    let name = name.trim();
    let matches = |candidate: &str| {
        candidate.eq_ignore_ascii_case(name)
            || candidate
                .strip_prefix("SCARD_")
                .is_some_and(|short| short.eq_ignore_ascii_case(name))
    };
    CODES
        .iter()
        .find(|c| matches(c.name))
        .or_else(|| CODES.iter().find(|c| c.aliases.iter().any(|a| matches(a))))
}

/// Why a code text did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeParseError {
    Empty,
    /// Not a number in any of the accepted forms.
    NotANumber,
    /// A number outside the 32-bit range (signed or unsigned).
    OutOfRange,
}

impl CodeParseError {
    pub fn hint(&self) -> &'static str {
        "write the code as 0x80100068, 80100068, 2148532328 or -2146434968 (Windows' signed form), or by name: SCARD_W_RESET_CARD"
    }
}

impl fmt::Display for CodeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeParseError::Empty => write!(f, "empty code"),
            CodeParseError::NotANumber => write!(f, "not a PC/SC code number"),
            CodeParseError::OutOfRange => write!(f, "number does not fit in 32 bits"),
        }
    }
}

impl std::error::Error for CodeParseError {}

/// Parse a code value: "0x80100068" (hex), "80100068" (exactly 8 hex digits: hex, the way
/// logs print it), "-2146434968" (signed decimal, as Windows prints HRESULTs), or unsigned
/// decimal ("2148532328", "0"). Underscores are ignored.
pub fn parse_code(text: &str) -> Result<u32, CodeParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CodeParseError::Empty);
    }
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let cleaned = cleaned.as_str();
    if let Some(hex) = cleaned
        .strip_prefix("0x")
        .or_else(|| cleaned.strip_prefix("0X"))
    {
        return parse_hex(hex);
    }
    if let Some(digits) = cleaned.strip_prefix('-') {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeParseError::NotANumber);
        }
        let value: i64 = digits.parse().map_err(|_| CodeParseError::OutOfRange)?;
        return i32::try_from(-value)
            .map(|v| v as u32)
            .map_err(|_| CodeParseError::OutOfRange);
    }
    if cleaned.len() == 8 && cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
        return parse_hex(cleaned);
    }
    if cleaned.bytes().all(|b| b.is_ascii_digit()) {
        return cleaned
            .parse::<u32>()
            .map_err(|_| CodeParseError::OutOfRange);
    }
    Err(CodeParseError::NotANumber)
}

fn parse_hex(digits: &str) -> Result<u32, CodeParseError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CodeParseError::NotANumber);
    }
    u32::from_str_radix(digits, 16).map_err(|_| CodeParseError::OutOfRange)
}

/// Find a code by name or by any number form [`parse_code`] accepts.
pub fn explain(text: &str) -> Option<&'static PcscCode> {
    lookup_name(text).or_else(|| parse_code(text).ok().and_then(lookup_code))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reset_card_from_reference() {
        let c = lookup_code(0x8010_0068).unwrap();
        assert_eq!(c.name, "SCARD_W_RESET_CARD");
        assert_eq!(c.class, CodeClass::Warning);
        assert_eq!(c.pcsc_lite_text, Some("Card was reset."));
        assert_eq!(c.rust_pcsc, Some("ResetCard"));
        assert!(c.hint.unwrap().contains("SCardReconnect"));
        assert!(c.hint.unwrap().contains("SCARD_LEAVE_CARD"));
        assert_eq!(c.knowledge_id(), "pcsc.w_reset_card");
        assert_eq!(c.signed(), -2146434968);
        assert!(c.to_string().starts_with("0x80100068 SCARD_W_RESET_CARD"));
    }

    #[test]
    fn neighbours_and_other_rows() {
        let expect = [
            (0x8010_0065, "SCARD_W_UNSUPPORTED_CARD"),
            (0x8010_0066, "SCARD_W_UNRESPONSIVE_CARD"),
            (0x8010_0067, "SCARD_W_UNPOWERED_CARD"),
            (0x8010_0069, "SCARD_W_REMOVED_CARD"),
            (0x8010_000B, "SCARD_E_SHARING_VIOLATION"),
            (0x8010_001D, "SCARD_E_NO_SERVICE"),
            (0x8010_000C, "SCARD_E_NO_SMARTCARD"),
            (0x8010_0018, "SCARD_P_SHUTDOWN"),
            (0x8010_0001, "SCARD_F_INTERNAL_ERROR"),
            (0x0000_0000, "SCARD_S_SUCCESS"),
            (0x8010_002E, "SCARD_E_NO_READERS_AVAILABLE"),
            (0x8010_0072, "SCARD_W_CACHE_ITEM_TOO_BIG"),
            (0x0000_0109, "ERROR_BROKEN_PIPE"),
        ];
        for (code, name) in expect {
            assert_eq!(lookup_code(code).map(|c| c.name), Some(name), "{code:08X}");
        }
        assert!(
            lookup_code(0x8010_000B)
                .unwrap()
                .hint
                .unwrap()
                .contains("scdaemon")
        );
        assert!(lookup_code(0x8010_001D).unwrap().hint.is_some());
        assert_eq!(lookup_code(0x8010_0099), None);
    }

    #[test]
    fn table_is_complete_and_consistent() {
        // 0x80100001..=0x80100034 and 0x80100065..=0x80100072 are all present (reference).
        for code in (0x8010_0001..=0x8010_0034).chain(0x8010_0065..=0x8010_0072) {
            assert!(lookup_code(code).is_some(), "{code:08X} missing");
        }
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert!(seen.insert(c.code), "duplicate {:08X}", c.code);
            let class = match c.name.get(..8) {
                Some("SCARD_S_") => CodeClass::Success,
                Some("SCARD_E_") => CodeClass::Error,
                Some("SCARD_W_") => CodeClass::Warning,
                Some("SCARD_F_") => CodeClass::Failure,
                Some("SCARD_P_") => CodeClass::Shutdown,
                _ => CodeClass::Other,
            };
            assert_eq!(c.class, class, "{}", c.name);
            assert!(!c.meaning.is_empty());
        }
        assert_eq!(all().len(), 1 + 0x34 + (0x72 - 0x65 + 1) + 1);
    }

    #[test]
    fn names_case_and_prefix_insensitive() {
        for n in [
            "SCARD_W_RESET_CARD",
            "scard_w_reset_card",
            "W_RESET_CARD",
            "w_reset_card",
            " W_Reset_Card ",
        ] {
            assert_eq!(lookup_name(n).map(|c| c.code), Some(0x8010_0068), "{n}");
        }
        assert_eq!(lookup_name("SCARD_E_UNEXPECTED").unwrap().code, 0x8010_001F);
        assert_eq!(
            lookup_name("SCARD_E_UNSUPPORTED_FEATURE").unwrap().code,
            0x8010_0022
        );
        assert_eq!(
            lookup_code(0x8010_001F).unwrap().aliases,
            &["SCARD_E_UNSUPPORTED_FEATURE"]
        );
        assert_eq!(lookup_name("RESET"), None);
        assert_eq!(lookup_name("error_broken_pipe").unwrap().code, 0x109);
    }

    #[test]
    fn number_forms() {
        assert_eq!(parse_code("0x80100068"), Ok(0x8010_0068));
        assert_eq!(parse_code("0X80100068"), Ok(0x8010_0068));
        assert_eq!(parse_code("80100068"), Ok(0x8010_0068));
        assert_eq!(parse_code("8010006b"), Ok(0x8010_006B));
        assert_eq!(parse_code("2148532328"), Ok(0x8010_0068));
        assert_eq!(parse_code("-2146434968"), Ok(0x8010_0068));
        // Signed values the reference quotes from windows-sys.
        assert_eq!(parse_code("-2146435022"), Ok(0x8010_0032));
        assert_eq!(parse_code("-2146434958"), Ok(0x8010_0072));
        assert_eq!(parse_code("0"), Ok(0));
        assert_eq!(parse_code("0x8010_0068"), Ok(0x8010_0068));
        assert_eq!(parse_code(""), Err(CodeParseError::Empty));
        assert_eq!(parse_code("0x"), Err(CodeParseError::NotANumber));
        assert_eq!(parse_code("-"), Err(CodeParseError::NotANumber));
        assert_eq!(parse_code("hello"), Err(CodeParseError::NotANumber));
        assert_eq!(parse_code("0x1_0000_0000"), Err(CodeParseError::OutOfRange));
        assert_eq!(parse_code("-2147483649"), Err(CodeParseError::OutOfRange));
        assert_eq!(parse_code("4294967296"), Err(CodeParseError::OutOfRange));
    }

    #[test]
    fn explain_accepts_names_and_numbers() {
        for t in [
            "SCARD_W_RESET_CARD",
            "0x80100068",
            "80100068",
            "-2146434968",
        ] {
            assert_eq!(
                explain(t).map(|c| c.name),
                Some("SCARD_W_RESET_CARD"),
                "{t}"
            );
        }
        assert_eq!(explain("nonsense"), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,24}") {
            let _ = parse_code(&text);
            let _ = explain(&text);
        }

        #[test]
        fn every_code_round_trips(index in 0usize..70) {
            let codes = all();
            let c = &codes[index % codes.len()];
            prop_assert_eq!(parse_code(&format!("0x{:08X}", c.code)), Ok(c.code));
            prop_assert_eq!(parse_code(&format!("{:08x}", c.code)), Ok(c.code));
            prop_assert_eq!(parse_code(&c.signed().to_string()).map(|v| v as i32), Ok(c.signed()));
            prop_assert_eq!(lookup_name(c.name).map(|x| x.code), Some(c.code));
        }
    }
}
