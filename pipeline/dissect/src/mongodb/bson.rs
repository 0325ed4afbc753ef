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

/// Writes JSON into a string of at most `max` bytes; past it, output stops at the
/// next value boundary (the JSON stays valid) and `cut` is set.
pub struct Json {
    pub out: String,
    max: usize,
    pub cut: bool,
}

impl Json {
    pub fn new(max: usize) -> Json {
        Json {
            out: String::new(),
            max,
            cut: false,
        }
    }

    fn full(&mut self) -> bool {
        if self.out.len() >= self.max {
            self.cut = true;
        }
        self.cut
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
        self.out.push('{');
        let mut first = true;
        let mut it = d.iter();
        for (k, v) in it.by_ref() {
            if self.full() {
                break;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            string(&mut self.out, k);
            self.out.push(':');
            self.value(&v, depth + 1);
        }
        if it.broken || d.cut {
            self.cut = true;
        }
        for (name, docs) in extra {
            if self.full() {
                break;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            string(&mut self.out, name);
            self.out.push_str(":[");
            for (i, x) in docs.iter().enumerate() {
                if self.full() {
                    break;
                }
                if i > 0 {
                    self.out.push(',');
                }
                self.object(x, depth + 1, &[]);
            }
            self.out.push(']');
        }
        self.out.push('}');
    }

    fn array(&mut self, d: &Doc<'_>, depth: usize) {
        self.out.push('[');
        let mut first = true;
        let mut it = d.iter();
        for (_, v) in it.by_ref() {
            if self.full() {
                break;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            self.value(&v, depth + 1);
        }
        if it.broken || d.cut {
            self.cut = true;
        }
        self.out.push(']');
    }

    /// Bytes a string may take of what is left (a little at least, so that it
    /// shows its start).
    fn room(&self) -> usize {
        self.max.saturating_sub(self.out.len()).max(32)
    }

    fn value(&mut self, v: &Value<'_>, depth: usize) {
        if depth > MAX_DEPTH && matches!(v, Value::Doc(_) | Value::Array(_)) {
            self.out.push_str("\"…(nested too deep)\"");
            self.cut = true;
            return;
        }
        if let Value::Str(s) | Value::Code(s) | Value::Symbol(s) = *v
            && s.len() > self.room()
        {
            // A long string shows its start.
            let keep = self.room();
            let mut t = String::from_utf8_lossy(&s[..keep]).into_owned();
            while t.ends_with('\u{FFFD}') {
                t.pop();
            }
            t.push('…');
            self.cut = true;
            let (open, close) = match *v {
                Value::Code(_) => ("{\"$code\":", "}"),
                Value::Symbol(_) => ("{\"$symbol\":", "}"),
                _ => ("", ""),
            };
            self.out.push_str(open);
            string(&mut self.out, t.as_bytes());
            self.out.push_str(close);
            return;
        }
        if let Value::Binary(sub, b) = *v
            && b.len() * 4 / 3 > self.room()
        {
            self.cut = true;
            let keep = (self.room() * 3 / 4).min(b.len());
            let _ = write!(self.out, "{{\"$binary\":{{\"base64\":\"");
            base64(&mut self.out, &b[..keep]);
            let _ = write!(self.out, "\",\"subType\":\"{sub:02x}\"}}}}");
            return;
        }
        let o = &mut self.out;
        match *v {
            Value::Double(d) => double(o, d),
            Value::Str(s) => string(o, s),
            Value::Doc(d) => self.object(&d, depth, &[]),
            Value::Array(d) => self.array(&d, depth),
            Value::Binary(sub, b) => {
                let _ = write!(o, "{{\"$binary\":{{\"base64\":\"");
                base64(o, b);
                let _ = write!(o, "\",\"subType\":\"{sub:02x}\"}}}}");
            }
            Value::Undefined => o.push_str("{\"$undefined\":true}"),
            Value::ObjectId(id) => {
                o.push_str("{\"$oid\":\"");
                hex(o, id);
                o.push_str("\"}");
            }
            Value::Bool(b) => o.push_str(if b { "true" } else { "false" }),
            Value::DateTime(ms) => date(o, ms),
            Value::Null => o.push_str("null"),
            Value::Regex(p, opt) => {
                o.push_str("{\"$regularExpression\":{\"pattern\":");
                string(o, p);
                o.push_str(",\"options\":");
                string(o, opt);
                o.push_str("}}");
            }
            Value::DbPointer(ns, id) => {
                o.push_str("{\"$dbPointer\":{\"$ref\":");
                string(o, ns);
                o.push_str(",\"$id\":{\"$oid\":\"");
                hex(o, id);
                o.push_str("\"}}}");
            }
            Value::Code(c) => {
                o.push_str("{\"$code\":");
                string(o, c);
                o.push('}');
            }
            Value::Symbol(s) => {
                o.push_str("{\"$symbol\":");
                string(o, s);
                o.push('}');
            }
            Value::CodeWithScope(c, scope) => {
                o.push_str("{\"$code\":");
                string(o, c);
                o.push_str(",\"$scope\":");
                self.object(&scope, depth, &[]);
                self.out.push('}');
            }
            Value::Int32(i) => {
                let _ = write!(o, "{i}");
            }
            Value::Int64(i) => {
                let _ = write!(o, "{i}");
            }
            Value::Timestamp(t, i) => {
                let _ = write!(o, "{{\"$timestamp\":{{\"t\":{t},\"i\":{i}}}}}");
            }
            Value::Decimal128(b) => {
                o.push_str("{\"$numberDecimal\":\"");
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[..16]);
                o.push_str(&decimal128(u128::from_le_bytes(a)));
                o.push_str("\"}");
            }
            Value::MinKey => o.push_str("{\"$minKey\":1}"),
            Value::MaxKey => o.push_str("{\"$maxKey\":1}"),
        }
    }
}

/// A JSON string from bytes (lossy UTF-8).
pub fn string(o: &mut String, b: &[u8]) {
    o.push('"');
    for c in String::from_utf8_lossy(b).chars() {
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
    o.push('"');
}

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
    } else {
        let _ = write!(o, "{d}");
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
