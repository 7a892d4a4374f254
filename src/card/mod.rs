//! Smart cards: what an exchange, a card event or a PC/SC code means in words (`describe`),
//! APDU scripts (`script`) and stepping through them (`runner`). Pure: the PC/SC I/O lives in
//! `source/card.rs`, the simulated card in `sim/card.rs`.

pub mod describe;
pub mod script;
