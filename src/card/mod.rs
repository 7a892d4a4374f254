//! Smart cards: what an exchange, a card event or a PC/SC code means in words (`describe`),
//! the card side of a session (`log`), APDU scripts (`script`) and stepping through them
//! (`runner`). Pure: the PC/SC I/O lives in `source/card.rs`, the simulated card in
//! `sim/card.rs`.

pub mod describe;
pub mod log;
pub mod runner;
pub mod script;
