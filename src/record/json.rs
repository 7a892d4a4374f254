//! The serializer the records are written with: serde_json's compact JSON, byte for byte
//! (numbers formatted by serde_json's own formatter, strings escaped by serde_json), with
//! three differences that make it the one writer of records:
//!
//! - the record's own object is written without its braces and with a comma before every
//!   member, so [`super::write`] puts `type`, `t` and `ts` before the members and the labels
//!   after them;
//! - every string is terminal-safe ([`crate::sanitize::write_terminal_safe`]), and one of
//!   printable ASCII without `"` or `\` (ids, names, most summaries) is written as it is,
//!   without serde_json's byte-by-byte escape scan: records with a dozen short strings (a
//!   frame) are most of the lines after the reads;
//! - bytes ([`super::Hex`]) are written as the hex string `"68 04 04 68"`, straight from the
//!   bytes.

use std::fmt::Display;
use std::io::{self, Write};

use serde::ser::{self, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};

/// Writes `value`'s members (see the module doc).
pub fn members<W: Write + ?Sized, R: Serialize + ?Sized>(out: &mut W, value: &R) -> io::Result<()> {
    let mut ser = RecordSerializer { out, depth: 0 };
    value.serialize(&mut ser).map_err(|e| e.0)
}

/// A JSON string, quoted and escaped, terminal-safe.
pub fn string<W: Write + ?Sized>(out: &mut W, s: &str) -> io::Result<()> {
    let plain = s.bytes().fold(true, |plain, b| {
        plain & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\')
    });
    if plain {
        out.write_all(b"\"")?;
        out.write_all(s.as_bytes())?;
        return out.write_all(b"\"");
    }
    let mut ser = serde_json::Serializer::with_formatter(out, TerminalSafe);
    s.serialize(&mut ser).map_err(io::Error::from)
}

/// serde_json's compact format with terminal-safe strings: serde_json escapes quotes,
/// backslashes and C0 controls itself and hands the rest here as fragments.
struct TerminalSafe;

impl Formatter for TerminalSafe {
    #[inline]
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        crate::sanitize::write_terminal_safe(writer, fragment)
    }
}

/// An I/O error, or a value that is not a record's shape.
#[derive(Debug)]
pub struct Error(io::Error);

impl Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(io::Error::other(msg.to_string()))
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error(e)
    }
}

fn not_a_record(what: &str) -> Error {
    Error(io::Error::other(format!(
        "{what} is not a record member shape"
    )))
}

struct RecordSerializer<'w, W: Write + ?Sized> {
    out: &'w mut W,
    /// Objects open: 1 inside the record's own.
    depth: usize,
}

impl<W: Write + ?Sized> RecordSerializer<'_, W> {
    /// Opens an object; the record's own has no brace.
    fn open(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > 1 {
            self.out.write_all(b"{")?;
        }
        Ok(())
    }
}

/// An object or array being written.
pub struct Compound<'a, 'w, W: Write + ?Sized> {
    ser: &'a mut RecordSerializer<'w, W>,
    first: bool,
}

impl<W: Write + ?Sized> Compound<'_, '_, W> {
    /// `,` before a member (always in the record's own object, whose members follow `ts`)
    /// or an array element (not before the first).
    fn separate(&mut self, object: bool) -> Result<(), Error> {
        let first = std::mem::replace(&mut self.first, false);
        if !first || (object && self.ser.depth == 1) {
            self.ser.out.write_all(b",")?;
        }
        Ok(())
    }

    fn key(&mut self, key: &str) -> Result<(), Error> {
        self.separate(true)?;
        string(self.ser.out, key)?;
        Ok(self.ser.out.write_all(b":")?)
    }

    fn close_object(self) -> Result<(), Error> {
        self.ser.depth = self.ser.depth.saturating_sub(1);
        if self.ser.depth > 0 {
            self.ser.out.write_all(b"}")?;
        }
        Ok(())
    }
}

impl<'a, 'w, W: Write + ?Sized> ser::Serializer for &'a mut RecordSerializer<'w, W> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'w, W>;
    type SerializeTuple = Compound<'a, 'w, W>;
    type SerializeTupleStruct = Compound<'a, 'w, W>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = Compound<'a, 'w, W>;
    type SerializeStruct = Compound<'a, 'w, W>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        Ok(self.out.write_all(if v { b"true" } else { b"false" })?)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        Ok(CompactFormatter.write_i8(self.out, v)?)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        Ok(CompactFormatter.write_i16(self.out, v)?)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        Ok(CompactFormatter.write_i32(self.out, v)?)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        Ok(CompactFormatter.write_i64(self.out, v)?)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        Ok(CompactFormatter.write_u8(self.out, v)?)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        Ok(CompactFormatter.write_u16(self.out, v)?)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        Ok(CompactFormatter.write_u32(self.out, v)?)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        Ok(CompactFormatter.write_u64(self.out, v)?)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return self.serialize_unit();
        }
        Ok(CompactFormatter.write_f32(self.out, v)?)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return self.serialize_unit();
        }
        Ok(CompactFormatter.write_f64(self.out, v)?)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        let mut buf = [0u8; 4];
        self.serialize_str(v.encode_utf8(&mut buf))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        Ok(string(self.out, v)?)
    }
    /// Bytes are [`super::Hex`]: the hex string.
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.out.write_all(b"\"")?;
        crate::hex::write_spaced(self.out, v)?;
        Ok(self.out.write_all(b"\"")?)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(self.out.write_all(b"null")?)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(not_a_record("an externally tagged enum"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        self.out.write_all(b"[")?;
        Ok(Compound {
            ser: self,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(not_a_record("an externally tagged enum"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        self.open()?;
        Ok(Compound {
            ser: self,
            first: true,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(not_a_record("an externally tagged enum"))
    }
    fn collect_str<T: ?Sized + Display>(self, value: &T) -> Result<(), Error> {
        self.serialize_str(&value.to_string())
    }
}

impl<W: Write + ?Sized> ser::SerializeSeq for Compound<'_, '_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.separate(false)?;
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        Ok(self.ser.out.write_all(b"]")?)
    }
}

impl<W: Write + ?Sized> ser::SerializeTuple for Compound<'_, '_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl<W: Write + ?Sized> ser::SerializeTupleStruct for Compound<'_, '_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl<W: Write + ?Sized> ser::SerializeMap for Compound<'_, '_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.separate(true)?;
        key.serialize(&mut *self.ser)?;
        Ok(self.ser.out.write_all(b":")?)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.close_object()
    }
}

impl<W: Write + ?Sized> ser::SerializeStruct for Compound<'_, '_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.key(key)?;
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.close_object()
    }
}
