//! A small BSON reader: documents walked in place, and shown as relaxed Extended JSON
//! (v2) within a depth and a size limit.
//!
//! Hand-written rather than the `bson` crate: Reef only reads (never builds or
//! deserialises into types), needs bounded output from cut documents, and the crate
//! would bring serde, chrono-style time handling and a large dependency tree for it.

use std::fmt::Write as _;

/// Nesting shown in JSON; deeper values are replaced by a marker.
pub const MAX_DEPTH: usize = 32;
/// Elements walked per document when looking fields up.
const MAX_ELEMENTS: usize = 100_000;

/// A BSON document: its bytes from the length prefix on. The bytes may be cut short
/// (a message longer than what was kept): reading stops where they stop.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    b: &'a [u8],
    /// The document's declared length was longer than its bytes.
    pub cut: bool,
}

impl<'a> Doc<'a> {
    /// The document at the start of `b` and the bytes it declares it takes.
    pub fn parse(b: &'a [u8]) -> Option<(Doc<'a>, usize)> {
        let len = i32::from_le_bytes(b.get(..4)?.try_into().ok()?);
        let len = usize::try_from(len).ok().filter(|l| *l >= 5)?;
        if len <= b.len() {
            Some((
                Doc {
                    b: &b[..len],
                    cut: false,
                },
                len,
            ))
        } else {
            Some((Doc { b, cut: true }, len))
        }
    }

    pub fn iter(&self) -> Elements<'a> {
        Elements {
            b: self.b,
            at: 4,
            end: if self.cut {
                self.b.len()
            } else {
                self.b.len() - 1
            },
            n: 0,
            broken: false,
        }
    }

    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    pub fn first(&self) -> Option<(&'a [u8], Value<'a>)> {
        self.iter().next()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Does the document end where its length says, with every element readable?
    pub fn well_formed(&self) -> bool {
        if self.cut || self.b.last() != Some(&0) {
            return false;
        }
        let mut it = self.iter();
        for _ in it.by_ref() {}
        !it.broken && it.at == it.end
    }
}

/// A value of an element.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Double(f64),
    Str(&'a [u8]),
    Doc(Doc<'a>),
    Array(Doc<'a>),
    Binary(u8, &'a [u8]),
    Undefined,
    ObjectId(&'a [u8]),
    Bool(bool),
    DateTime(i64),
    Null,
    Regex(&'a [u8], &'a [u8]),
    DbPointer(&'a [u8], &'a [u8]),
    Code(&'a [u8]),
    Symbol(&'a [u8]),
    CodeWithScope(&'a [u8], Doc<'a>),
    Int32(i32),
    Timestamp(u32, u32),
    Int64(i64),
    Decimal128(&'a [u8]),
    MinKey,
    MaxKey,
}

impl<'a> Value<'a> {
    pub fn as_str(&self) -> Option<&'a [u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Double(d) => Some(d),
            Value::Int32(i) => Some(f64::from(i)),
            Value::Int64(i) => Some(i as f64),
            Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int32(i) => Some(i64::from(i)),
            Value::Int64(i) => Some(i),
            Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Some(d as i64),
            _ => None,
        }
    }

    pub fn as_doc(&self) -> Option<Doc<'a>> {
        match self {
            Value::Doc(d) | Value::Array(d) => Some(*d),
            _ => None,
        }
    }
}

pub struct Elements<'a> {
    b: &'a [u8],
    at: usize,
    end: usize,
    n: usize,
    /// An element could not be read (malformed, or cut).
    pub broken: bool,
}

impl<'a> Iterator for Elements<'a> {
    type Item = (&'a [u8], Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.broken || self.at >= self.end || self.n >= MAX_ELEMENTS {
            return None;
        }
        match self.element() {
            Some(e) => {
                self.n += 1;
                Some(e)
            }
            None => {
                self.broken = true;
                None
            }
        }
    }
}

impl<'a> Elements<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        if end > self.end {
            return None;
        }
        let s = &self.b[self.at..end];
        self.at = end;
        Some(s)
    }

    fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..self.end)?;
        let n = memchr::memchr(0, rest)?;
        self.at += n + 1;
        Some(&rest[..n])
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.i32()?).ok().filter(|n| *n >= 1)?;
        let s = self.take(n)?;
        s.split_last().filter(|(z, _)| **z == 0).map(|(_, s)| s)
    }

    fn doc(&mut self) -> Option<Doc<'a>> {
        let (d, len) = Doc::parse(&self.b[self.at..self.end])?;
        if d.cut {
            // The rest of the bytes belong to this (cut) document.
            self.at = self.end;
        } else {
            self.at += len;
        }
        Some(d)
    }

    fn element(&mut self) -> Option<(&'a [u8], Value<'a>)> {
        let t = self.take(1)?[0];
        let key = self.cstr()?;
        let v = match t {
            0x01 => Value::Double(f64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            0x02 => Value::Str(self.string()?),
            0x03 => Value::Doc(self.doc()?),
            0x04 => Value::Array(self.doc()?),
            0x05 => {
                let n = usize::try_from(self.i32()?).ok()?;
                let sub = self.take(1)?[0];
                Value::Binary(sub, self.take(n)?)
            }
            0x06 => Value::Undefined,
            0x07 => Value::ObjectId(self.take(12)?),
            0x08 => Value::Bool(self.take(1)?[0] != 0),
            0x09 => Value::DateTime(self.i64()?),
            0x0A => Value::Null,
            0x0B => {
                let p = self.cstr()?;
                Value::Regex(p, self.cstr()?)
            }
            0x0C => {
                let ns = self.string()?;
                Value::DbPointer(ns, self.take(12)?)
            }
            0x0D => Value::Code(self.string()?),
            0x0E => Value::Symbol(self.string()?),
            0x0F => {
                let _total = self.i32()?;
                let code = self.string()?;
                Value::CodeWithScope(code, self.doc()?)
            }
            0x10 => Value::Int32(self.i32()?),
            0x11 => {
                let v = self.i64()? as u64;
                Value::Timestamp((v >> 32) as u32, v as u32)
            }
            0x12 => Value::Int64(self.i64()?),
            0x13 => Value::Decimal128(self.take(16)?),
            0xFF => Value::MinKey,
            0x7F => Value::MaxKey,
            _ => return None,
        };
        Some((key, v))
    }
}

/// Writes JSON into a string of at most `max` bytes (2 at least, for `{}`): output
/// stops after the last value that fits, long strings and binaries show their start,
/// the JSON stays valid, and `cut` is set when anything was left out.
pub struct Json {
    pub out: String,
    max: usize,
    /// Brackets open: the bytes their closing will take are kept free.
    closers: usize,
    pub cut: bool,
}

/// Bytes of a key shown at most (its start, past that), so that its value has room.
const MAX_KEY_BYTES: usize = 128;

impl Json {
    pub fn new(max: usize) -> Json {
        Json {
            out: String::new(),
            max,
            closers: 0,
            cut: false,
        }
    }

    /// No room left for another value (or something was cut already)?
    fn full(&mut self) -> bool {
        if self.out.len() + self.closers >= self.max {
            self.cut = true;
        }
        self.cut
    }

    /// Bytes left, with the open brackets' closing kept free.
    fn room(&self) -> usize {
        self.max.saturating_sub(self.out.len() + self.closers)
    }

    /// Drops what was written from `mark` on if it went past the limit; true if so.
    fn drop_past_limit(&mut self, mark: usize) -> bool {
        if self.out.len() + self.closers <= self.max {
            return false;
        }
        self.out.truncate(mark);
        self.cut = true;
        true
    }

    /// `s`, which opens one bracket.
    fn open(&mut self, s: &str) {
        self.out.push_str(s);
        self.closers += 1;
    }

    fn close(&mut self, c: char) {
        self.out.push(c);
        self.closers -= 1;
    }

    /// A document as a JSON object; `extra` are arrays of further documents to show
    /// as fields (an OP_MSG's document sequences).
    pub fn doc(&mut self, d: &Doc<'_>, extra: &[(&[u8], Vec<Doc<'_>>)]) {
        self.object(d, 0, extra);
        if self.out.len() > self.max {
            self.cut = true;
        }
    }

    fn object(&mut self, d: &Doc<'_>, depth: usize, extra: &[(&[u8], Vec<Doc<'_>>)]) {
        self.open("{");
        let mut first = true;
        let mut it = d.iter();
        for (k, v) in it.by_ref() {
            if self.full() {
                break;
            }
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            self.key(k);
            self.value(&v, depth + 1);
            if self.drop_past_limit(mark) {
                break;
            }
            first = false;
        }
        if it.broken || d.cut {
            self.cut = true;
        }
        for (name, docs) in extra {
            if self.full() {
                break;
            }
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            self.key(name);
            self.open("[");
            for (i, x) in docs.iter().enumerate() {
                if self.full() {
                    break;
                }
                let item = self.out.len();
                if i > 0 {
                    self.out.push(',');
                }
                self.object(x, depth + 1, &[]);
                if self.drop_past_limit(item) {
                    break;
                }
            }
            self.close(']');
            if self.drop_past_limit(mark) {
                break;
            }
            first = false;
        }
        self.close('}');
    }

    fn array(&mut self, d: &Doc<'_>, depth: usize) {
        self.open("[");
        let mut first = true;
        let mut it = d.iter();
        for (_, v) in it.by_ref() {
            if self.full() {
                break;
            }
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            self.value(&v, depth + 1);
            if self.drop_past_limit(mark) {
                break;
            }
            first = false;
        }
        if it.broken || d.cut {
            self.cut = true;
        }
        self.close(']');
    }

    /// A key and its colon, a long key cut to leave its value room.
    fn key(&mut self, k: &[u8]) {
        let limit = self.room().saturating_sub(2).min(MAX_KEY_BYTES);
        self.string_within(k, limit);
        self.out.push(':');
    }

    /// `s` as a JSON string of at most `limit` bytes: whole if it fits, else its start
    /// and `…` (and `cut` set). Under 5 bytes not even that fits: `"…"` is written
    /// all the same, for the caller to drop as past the limit.
    fn string_within(&mut self, s: &[u8], limit: usize) {
        const CUT: &str = "…\"";
        // Each byte of `s` takes a byte of output at least: past `limit` it is cut.
        let head = &s[..s.len().min(limit)];
        let start = self.out.len();
        self.out.push('"');
        // The end of the last character after which the cut mark still fits.
        let mut keep = self.out.len();
        let mut over = false;
        for c in String::from_utf8_lossy(head).chars() {
            escaped(&mut self.out, c);
            let n = self.out.len() - start;
            if n + 1 > limit {
                over = true;
                break;
            }
            if n + CUT.len() <= limit {
                keep = self.out.len();
            }
        }
        if !over && head.len() == s.len() {
            self.out.push('"');
            return;
        }
        self.out.truncate(keep);
        self.out.push_str(CUT);
        self.cut = true;
    }

    /// `pre`, `s` as a string within what is left once `post` has room, `post`.
    fn wrapped(&mut self, pre: &str, s: &[u8], post: &str) {
        self.out.push_str(pre);
        let limit = self.room().saturating_sub(post.len());
        self.string_within(s, limit);
        self.out.push_str(post);
    }

    /// A value; one that does not fit is written all the same (its start, if it is a
    /// string or binary), for the caller to drop.
    fn value(&mut self, v: &Value<'_>, depth: usize) {
        if depth > MAX_DEPTH && matches!(v, Value::Doc(_) | Value::Array(_)) {
            self.out.push_str("\"…(nested too deep)\"");
            self.cut = true;
            return;
        }
        match *v {
            Value::Double(d) => double(&mut self.out, d),
            Value::Str(s) => self.wrapped("", s, ""),
            Value::Doc(d) => self.object(&d, depth, &[]),
            Value::Array(d) => self.array(&d, depth),
            Value::Binary(sub, b) => {
                // Four bytes of base64 for three, inside a fixed wrapping.
                let wrapping = r#"{"$binary":{"base64":"","subType":"00"}}"#.len();
                let keep = (self.room().saturating_sub(wrapping) / 4 * 3).min(b.len());
                if keep < b.len() {
                    self.cut = true;
                }
                let o = &mut self.out;
                o.push_str(r#"{"$binary":{"base64":""#);
                base64(o, &b[..keep]);
                let _ = write!(o, "\",\"subType\":\"{sub:02x}\"}}}}");
            }
            Value::Undefined => self.out.push_str("{\"$undefined\":true}"),
            Value::ObjectId(id) => {
                self.out.push_str("{\"$oid\":\"");
                hex(&mut self.out, id);
                self.out.push_str("\"}");
            }
            Value::Bool(b) => self.out.push_str(if b { "true" } else { "false" }),
            Value::DateTime(ms) => date(&mut self.out, ms),
            Value::Null => self.out.push_str("null"),
            Value::Regex(p, opt) => {
                // Options are a few letters: room is kept for up to 8 of them.
                let tail = r#","options":""}}"#.len() + opt.len().min(8);
                self.out.push_str(r#"{"$regularExpression":{"pattern":"#);
                let limit = self.room().saturating_sub(tail);
                self.string_within(p, limit);
                self.wrapped(r#","options":"#, opt, "}}");
            }
            Value::DbPointer(ns, id) => {
                let tail = r#","$id":{"$oid":""}}}"#.len() + 2 * id.len();
                self.out.push_str(r#"{"$dbPointer":{"$ref":"#);
                let limit = self.room().saturating_sub(tail);
                self.string_within(ns, limit);
                self.out.push_str(r#","$id":{"$oid":""#);
                hex(&mut self.out, id);
                self.out.push_str("\"}}}");
            }
            Value::Code(c) => self.wrapped(r#"{"$code":"#, c, "}"),
            Value::Symbol(s) => self.wrapped(r#"{"$symbol":"#, s, "}"),
            Value::CodeWithScope(c, scope) => {
                self.open(r#"{"$code":"#);
                let limit = self.room().saturating_sub(r#","$scope":{}"#.len());
                self.string_within(c, limit);
                self.out.push_str(r#","$scope":"#);
                self.object(&scope, depth, &[]);
                self.close('}');
            }
            Value::Int32(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::Int64(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::Timestamp(t, i) => {
                let _ = write!(self.out, "{{\"$timestamp\":{{\"t\":{t},\"i\":{i}}}}}");
            }
            Value::Decimal128(b) => {
                self.out.push_str("{\"$numberDecimal\":\"");
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[..16]);
                self.out.push_str(&decimal128(u128::from_le_bytes(a)));
                self.out.push_str("\"}");
            }
            Value::MinKey => self.out.push_str("{\"$minKey\":1}"),
            Value::MaxKey => self.out.push_str("{\"$maxKey\":1}"),
        }
    }
}

/// A character of a JSON string, escaped as needed.
fn escaped(o: &mut String, c: char) {
    match c {
        '"' => o.push_str("\\\""),
        '\\' => o.push_str("\\\\"),
        '\n' => o.push_str("\\n"),
        '\r' => o.push_str("\\r"),
        '\t' => o.push_str("\\t"),
        c if (c as u32) < 0x20 => {
            let _ = write!(o, "\\u{:04x}", c as u32);
        }
        c => o.push(c),
    }
}

/// A double as a JSON number: very large or small ones with an exponent (as
/// JavaScript shows them), not hundreds of digits.
fn double(o: &mut String, d: f64) {
    if d.is_nan() {
        o.push_str("{\"$numberDouble\":\"NaN\"}");
    } else if d.is_infinite() {
        o.push_str(if d > 0.0 {
            "{\"$numberDouble\":\"Infinity\"}"
        } else {
            "{\"$numberDouble\":\"-Infinity\"}"
        });
    } else if d.fract() == 0.0 && d.abs() < 1e15 {
        let _ = write!(o, "{d:.1}");
    } else if (1e-6..1e21).contains(&d.abs()) {
        let _ = write!(o, "{d}");
    } else {
        let _ = write!(o, "{d:e}");
    }
}

fn hex(o: &mut String, b: &[u8]) {
    for x in b {
        let _ = write!(o, "{x:02x}");
    }
}

fn base64(o: &mut String, b: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in b.chunks(3) {
        let n = u32::from(c[0]) << 16
            | u32::from(*c.get(1).unwrap_or(&0)) << 8
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                o.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                o.push('=');
            }
        }
    }
}

/// Relaxed Extended JSON: an ISO-8601 date for years 1970 to 9999, else the
/// milliseconds.
fn date(o: &mut String, ms: i64) {
    if !(0..253_402_300_800_000).contains(&ms) {
        let _ = write!(o, "{{\"$date\":{{\"$numberLong\":\"{ms}\"}}}}");
        return;
    }
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        o,
        "{{\"$date\":\"{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z\"}}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

/// A decimal128 as the specification's string form.
pub fn decimal128(v: u128) -> String {
    let negative = v >> 127 == 1;
    let sign = if negative { "-" } else { "" };
    let combination = (v >> 122) & 0x1F;
    if combination == 0x1F {
        return "NaN".into();
    }
    if combination == 0x1E {
        return format!("{sign}Infinity");
    }
    let (exponent, coefficient) = if (v >> 125) & 3 == 3 {
        // Non-canonical: the coefficient would exceed 34 digits; it reads as zero.
        (((v >> 111) & 0x3FFF) as i64, 0u128)
    } else {
        (((v >> 113) & 0x3FFF) as i64, v & ((1u128 << 113) - 1))
    };
    let coefficient = if coefficient >= 10u128.pow(34) {
        0
    } else {
        coefficient
    };
    let exponent = exponent - 6176;
    let digits = coefficient.to_string();
    let adjusted = exponent + digits.len() as i64 - 1;
    if exponent <= 0 && adjusted >= -6 {
        if exponent == 0 {
            return format!("{sign}{digits}");
        }
        let point = digits.len() as i64 + exponent;
        if point > 0 {
            let (a, b) = digits.split_at(point as usize);
            format!("{sign}{a}.{b}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        }
    } else {
        let (a, b) = digits.split_at(1);
        let mut s = format!("{sign}{a}");
        if !b.is_empty() {
            s.push('.');
            s.push_str(b);
        }
        s.push('E');
        if adjusted >= 0 {
            s.push('+');
        }
        s.push_str(&adjusted.to_string());
        s
    }
}
