//! Protobuf messages shown without their schema: the wire format walked into
//! JSON-like text (field numbers as keys), the way `protoc --decode_raw` reads it.
//!
//! Length-delimited fields are ambiguous without a schema: printable UTF-8 is shown
//! as a string, bytes that parse completely as a message as a nested object, other
//! UTF-8 as a string, anything else as `{"base64": ...}`.

use std::fmt::Write;

/// Nested messages followed before the rest is shown as bytes.
pub const MAX_DEPTH: usize = 16;
/// Fields read per message before the rest is left out.
pub const MAX_FIELDS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// A varint at `*p` (at most 10 bytes).
pub fn varint(b: &[u8], p: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = *b.get(*p)?;
        *p += 1;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of `b` if it parses as a message from start to end.
fn fields(b: &[u8]) -> Option<Vec<(u32, Val<'_>)>> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < b.len() {
        if out.len() >= MAX_FIELDS {
            return None;
        }
        let key = varint(b, &mut p)?;
        let number = u32::try_from(key >> 3).ok()?;
        if number == 0 || number > (1 << 29) - 1 {
            return None;
        }
        let val = match key & 7 {
            0 => Val::Varint(varint(b, &mut p)?),
            1 => {
                let v = b.get(p..p + 8)?;
                p += 8;
                Val::Fixed64(u64::from_le_bytes(v.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(varint(b, &mut p)?).ok()?;
                let end = p.checked_add(len)?;
                let v = b.get(p..end)?;
                p = end;
                Val::Bytes(v)
            }
            5 => {
                let v = b.get(p..p + 4)?;
                p += 4;
                Val::Fixed32(u32::from_le_bytes(v.try_into().ok()?))
            }
            // Groups (3, 4) are long deprecated; anything else is not protobuf.
            _ => return None,
        };
        out.push((number, val));
    }
    Some(out)
}

/// Writes `b` as a message, or (when it does not parse as one) as a string or bytes.
pub fn render(b: &[u8], out: &mut String) {
    match fields(b) {
        Some(f) => write_message(&f, out, 0),
        None => write_bytes(b, out, MAX_DEPTH),
    }
}

fn write_message(f: &[(u32, Val<'_>)], out: &mut String, depth: usize) {
    out.push('{');
    // Repeated fields are gathered under their number, in the order first seen.
    let mut numbers: Vec<u32> = Vec::new();
    for (n, _) in f {
        if !numbers.contains(n) {
            numbers.push(*n);
        }
    }
    for (i, n) in numbers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{n}\": ");
        let vals: Vec<&Val<'_>> = f.iter().filter(|(m, _)| m == n).map(|(_, v)| v).collect();
        if let [v] = vals[..] {
            write_val(v, out, depth);
        } else {
            out.push('[');
            for (j, v) in vals.iter().enumerate() {
                if j > 0 {
                    out.push_str(", ");
                }
                write_val(v, out, depth);
            }
            out.push(']');
        }
    }
    out.push('}');
}

fn write_val(v: &Val<'_>, out: &mut String, depth: usize) {
    match *v {
        Val::Varint(x) => {
            let _ = write!(out, "{x}");
        }
        // Without a schema fixed-width values are most often doubles and floats;
        // bits that do not read as an everyday number are shown as they are.
        Val::Fixed64(x) => match plausible_float(f64::from_bits(x)) {
            Some(f) => {
                let _ = write!(out, "{f}");
            }
            None => {
                let _ = write!(out, "\"0x{x:016x}\"");
            }
        },
        Val::Fixed32(x) => match plausible_float(f64::from(f32::from_bits(x))) {
            Some(f) => {
                let _ = write!(out, "{}", f as f32);
            }
            None => {
                let _ = write!(out, "\"0x{x:08x}\"");
            }
        },
        Val::Bytes(b) => write_bytes(b, out, depth + 1),
    }
}

fn plausible_float(f: f64) -> Option<f64> {
    (f.is_finite() && (1e-6..1e12).contains(&f.abs())).then_some(f)
}

fn write_bytes(b: &[u8], out: &mut String, depth: usize) {
    let text = std::str::from_utf8(b).ok();
    if let Some(s) = text
        && s.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
    {
        json_string(s, out);
        return;
    }
    if depth < MAX_DEPTH
        && let Some(f) = fields(b)
    {
        write_message(&f, out, depth);
        return;
    }
    match text {
        Some(s) => json_string(s, out),
        None => {
            out.push_str("{\"base64\": \"");
            out.push_str(&base64(b));
            out.push_str("\"}");
        }
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(b: &[u8]) -> String {
        let mut s = String::new();
        render(b, &mut s);
        s
    }

    #[test]
    fn wire_types_and_nesting() {
        // {1: 150, 2: "testing", 3: {1: 1}, 4: fixed32, 5: fixed64, 6: 1.5, 7: 0.25f}
        let mut m = vec![0x08, 0x96, 0x01, 0x12, 0x07];
        m.extend(b"testing");
        m.extend([0x1a, 0x02, 0x08, 0x01]);
        m.extend([0x25, 1, 0, 0, 0]);
        m.extend([0x29, 2, 0, 0, 0, 0, 0, 0, 0]);
        m.push(0x31);
        m.extend(1.5f64.to_le_bytes());
        m.push(0x3d);
        m.extend(0.25f32.to_le_bytes());
        assert_eq!(
            show(&m),
            r#"{"1": 150, "2": "testing", "3": {"1": 1}, "4": "0x00000001", "5": "0x0000000000000002", "6": 1.5, "7": 0.25}"#
        );
    }

    #[test]
    fn repeated_fields_become_lists_and_bytes_base64() {
        let m = [0x08, 0x01, 0x08, 0x02, 0x12, 0x02, 0xff, 0xfe];
        assert_eq!(show(&m), r#"{"1": [1, 2], "2": {"base64": "//4="}}"#);
        assert_eq!(show(&[]), "{}");
        // Not a message at all: shown as bytes.
        assert_eq!(show(&[0xff]), r#"{"base64": "/w=="}"#);
        assert_eq!(base64(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
    }

    #[test]
    fn strings_are_escaped() {
        let mut m = vec![0x0a, 0x04];
        m.extend(b"a\"\n\\");
        assert_eq!(show(&m), r#"{"1": "a\"\n\\"}"#);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(0u8..=255, 0..200)) {
            let _ = show(&b);
        }
    }
}
