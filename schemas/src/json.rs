//! JSON lines that every line-splitting reader splits in the right place, written fast.
//!
//! serde_json leaves U+2028, U+2029 and U+0085 unescaped, which is valid JSON, but
//! many readers (Python's `str.splitlines`, JavaScript before ES2019, some log
//! shippers) treat them as line ends and cut an entry in two. Bodies of minified
//! JavaScript contain them often, so entries escape them.
//!
//! Entries are written by a small hand-written writer ([`JsonOut`]) rather than through
//! serde: every column kind writes its own value (`Column::write_json`), and the string
//! escaper skips clean runs 16 bytes at a time instead of looking at every byte. The
//! output is byte for byte what serde_json with the line-safe formatter writes
//! ([`write_json_line_serde`]); `tests/json_line.rs` checks that on random entries.

use std::cell::RefCell;
use std::io::{self, Write};

use serde::Serialize;

/// A value with a hand-written JSON form (the same JSON its `Serialize` impl gives).
pub trait WriteJson {
    fn write_json(&self, out: &mut JsonOut<'_>);
}

impl WriteJson for crate::Entry {
    fn write_json(&self, out: &mut JsonOut<'_>) {
        crate::Entry::write_json(self, out)
    }
}

/// Writes `value` as one JSON line (with its trailing newline) in one `write_all`.
///
/// U+2028, U+2029, U+0085 and every control character are escaped, so the line holds
/// exactly one line end under any line-splitting reader.
pub fn write_json_line<W: Write + ?Sized, T: WriteJson + ?Sized>(
    w: &mut W,
    value: &T,
) -> io::Result<()> {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = write_line(&mut buf, w, value);
            // Keep the buffer for the next line unless one huge line made it huge.
            if buf.capacity() > 4 << 20 {
                *buf = Vec::new();
            }
            result
        }
        // A writer that itself writes JSON lines while writing this one.
        Err(_) => write_line(&mut Vec::new(), w, value),
    })
}

fn write_line<W: Write + ?Sized, T: WriteJson + ?Sized>(
    buf: &mut Vec<u8>,
    w: &mut W,
    value: &T,
) -> io::Result<()> {
    value.write_json(&mut JsonOut::new(buf));
    buf.push(b'\n');
    w.write_all(buf)
}

/// The serde path: writes any `Serialize` value as one line-safe JSON line. For entries
/// it writes the same bytes as [`write_json_line`], about twice as slowly.
pub fn write_json_line_serde<W: Write + ?Sized, T: Serialize + ?Sized>(
    w: &mut W,
    value: &T,
) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(&mut *w, LineSafe);
    value.serialize(&mut ser).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

struct LineSafe;

impl serde_json::ser::Formatter for LineSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // U+2028/U+2029 are E2 80 A8/A9 in UTF-8 and U+0085 is C2 85.
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for i in memchr::memchr2_iter(0xe2, 0xc2, bytes) {
            if let Some((len, escape)) = line_separator_at(bytes, i) {
                writer.write_all(&bytes[start..i])?;
                writer.write_all(escape)?;
                start = i + len;
            }
        }
        writer.write_all(&bytes[start..])
    }
}

/// The escape of U+2028, U+2029 or U+0085 starting at `bytes[i]`, with its length in
/// UTF-8, if one starts there.
#[inline]
fn line_separator_at(bytes: &[u8], i: usize) -> Option<(usize, &'static [u8])> {
    match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
        (0xe2, Some(0x80), Some(0xa8)) => Some((3, b"\\u2028")),
        (0xe2, Some(0x80), Some(0xa9)) => Some((3, b"\\u2029")),
        (0xc2, Some(0x85), _) => Some((2, b"\\u0085")),
        _ => None,
    }
}

/// JSON text being written into a byte buffer, by [`Entry::write_json`](crate::Entry::write_json)
/// and the column kinds. Writing cannot fail; the caller writes the buffer out.
pub struct JsonOut<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> JsonOut<'a> {
    /// Appends to `buf` (which is not cleared).
    pub fn new(buf: &'a mut Vec<u8>) -> JsonOut<'a> {
        JsonOut { buf }
    }

    /// Bytes that are JSON text already (punctuation, names known to need no escape).
    #[inline]
    pub(crate) fn raw(&mut self, text: &[u8]) {
        self.buf.extend_from_slice(text);
    }

    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// `s` as a JSON string.
    #[inline]
    pub(crate) fn str(&mut self, s: &str) {
        self.buf.reserve(s.len() + 2);
        self.buf.push(b'"');
        escape_into(self.buf, s);
        self.buf.push(b'"');
    }

    /// `s` escaped, without quotes: for a string written in pieces.
    #[inline]
    pub(crate) fn str_contents(&mut self, s: &str) {
        escape_into(self.buf, s);
    }

    /// `bytes` as a JSON string if they are UTF-8; otherwise nothing, and false.
    #[inline]
    pub(crate) fn utf8_str(&mut self, bytes: &[u8]) -> bool {
        let at = self.buf.len();
        self.buf.reserve(bytes.len() + 2);
        self.buf.push(b'"');
        if escape_bytes::<true>(self.buf, bytes) {
            self.buf.push(b'"');
            true
        } else {
            self.buf.truncate(at);
            false
        }
    }

    /// A string known to need no escaping (enum and flag names, column names).
    #[inline]
    pub(crate) fn plain_str(&mut self, s: &str) {
        debug_assert!(!s.bytes().any(needs_attention), "{s:?} needs escaping");
        self.buf.reserve(s.len() + 2);
        self.buf.push(b'"');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(b'"');
    }

    #[inline]
    pub(crate) fn i64(&mut self, v: i64) {
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    #[inline]
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    #[inline]
    pub(crate) fn bool(&mut self, v: bool) {
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    #[inline]
    pub(crate) fn null(&mut self) {
        self.buf.extend_from_slice(b"null");
    }

    /// The underlying buffer, for writers that produce JSON-safe text themselves
    /// (base64, IP addresses).
    #[inline]
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }

    /// A list of strings.
    pub(crate) fn str_list<'s>(&mut self, items: impl IntoIterator<Item = &'s str>) {
        self.byte(b'[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.byte(b',');
            }
            self.str(s);
        }
        self.byte(b']');
    }
}

/// Bytes the escaper must look at: control characters, `"`, `\` and the lead bytes of
/// U+2028/U+2029 (E2) and U+0085 (C2). Lead bytes are only a hint: "€" is E2 82 AC.
/// `|` rather than `||`, so that it compiles to vector compares without branches.
#[inline(always)]
const fn needs_attention(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\') | (b | 0x20 == 0xe2)
}

/// Strings are scanned this many bytes at a time.
const CHUNK: usize = 16;

/// The top bit of byte `j` (little-endian) is set when `chunk[j]` needs attention. Written
/// as a loop filling an array, which the compiler turns into a few vector compares (SSE2
/// on x86-64, NEON on aarch64); a loop building a bit mask directly ends up scalar.
#[inline(always)]
fn attention_mask(chunk: &[u8; CHUNK]) -> u128 {
    let mut lanes = [0u8; CHUNK];
    for (lane, &b) in lanes.iter_mut().zip(chunk) {
        *lane = 0u8.wrapping_sub(u8::from(needs_attention(b)));
    }
    u128::from_le_bytes(lanes) & TOP_BITS
}

const TOP_BITS: u128 = u128::from_le_bytes([0x80; CHUNK]);

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` escaped as JSON string contents, with serde_json's escapes (`\"`, `\\`,
/// `\b`, `\f`, `\n`, `\r`, `\t`, `\u00XX` for other control characters) plus `\u2028`,
/// `\u2029` and `\u0085`.
#[inline]
fn escape_into(out: &mut Vec<u8>, s: &str) {
    escape_bytes::<false>(out, s.as_bytes());
}

/// Escapes `bytes` as [`escape_into`] does. With `CHECK_UTF8` the bytes may be anything:
/// it returns false, having appended some prefix the caller must drop, as soon as they
/// prove not to be UTF-8. The check is fused into the scan: ASCII, the usual body, costs
/// nothing, and the rest is validated once from the first non-ASCII byte on. Without
/// `CHECK_UTF8` the bytes must be UTF-8 and it returns true.
///
/// The bytes are scanned 16 at a time; clean runs between escapes are copied whole.
#[inline(always)]
fn escape_bytes<const CHECK_UTF8: bool>(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let len = bytes.len();
    // Start of the clean run not yet copied.
    let mut start = 0;
    let mut i = 0;
    // Whether `bytes[i..]` is known to be UTF-8.
    let mut valid = !CHECK_UTF8;
    while let Some(chunk) = bytes[i..].first_chunk::<CHUNK>() {
        if !valid && u128::from_le_bytes(*chunk) & TOP_BITS != 0 {
            // All before `i` is ASCII, so a character starts at `i`.
            if std::str::from_utf8(&bytes[i..]).is_err() {
                return false;
            }
            valid = true;
        }
        let mut mask = attention_mask(chunk);
        while mask != 0 {
            escape_at(
                out,
                bytes,
                i + mask.trailing_zeros() as usize / 8,
                &mut start,
            );
            mask &= mask - 1;
        }
        i += CHUNK;
    }
    if i == len {
        out.extend_from_slice(&bytes[start..]);
        return true;
    }
    // The last 1 to 15 bytes: in a long string, the last 16 bytes with the lanes already
    // scanned masked off; a short string, padded (the usual header name or value).
    let (chunk, base) = match bytes.last_chunk::<CHUNK>() {
        Some(last) => (*last, len - CHUNK),
        None => (padded(bytes), 0),
    };
    // Drops the lanes before `i`.
    let skip = (i - base) * 8;
    let from_i = |m: u128| (m >> skip) << skip;
    if !valid
        && from_i(u128::from_le_bytes(chunk) & TOP_BITS) != 0
        && std::str::from_utf8(&bytes[i..]).is_err()
    {
        return false;
    }
    let mut mask = from_i(attention_mask(&chunk));
    if mask == 0 && start == 0 && base == 0 {
        // A short clean string: one 16-byte store, cut back, instead of a `memcpy`.
        let at = out.len();
        out.extend_from_slice(&chunk);
        out.truncate(at + len);
        return true;
    }
    while mask != 0 {
        escape_at(
            out,
            bytes,
            base + mask.trailing_zeros() as usize / 8,
            &mut start,
        );
        mask &= mask - 1;
    }
    out.extend_from_slice(&bytes[start..]);
    true
}

/// `bytes` (shorter than 16) padded with spaces to 16, with fixed-size copies only.
#[inline(always)]
fn padded(bytes: &[u8]) -> [u8; CHUNK] {
    let mut chunk = [b' '; CHUNK];
    let n = bytes.len();
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        // Two overlapping 8-byte copies cover 8 to 15 bytes.
        chunk[..8].copy_from_slice(head);
        chunk[n - 8..n].copy_from_slice(tail);
    } else if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        chunk[..4].copy_from_slice(head);
        chunk[n - 4..n].copy_from_slice(tail);
    } else {
        for (c, &b) in chunk.iter_mut().zip(bytes) {
            *c = b;
        }
    }
    chunk
}

/// Appends `bytes[start..end]`. Short runs, the common case in JSON bodies where every
/// few bytes are a quote, are copied as a fixed 16 bytes and cut back: one vector move
/// instead of a call to `memcpy`.
#[inline(always)]
fn copy_run(out: &mut Vec<u8>, bytes: &[u8], start: usize, end: usize) {
    let len = end - start;
    if len <= CHUNK
        && let Some(run) = bytes[start..].first_chunk::<CHUNK>()
    {
        let at = out.len();
        out.extend_from_slice(run);
        out.truncate(at + len);
    } else {
        out.extend_from_slice(&bytes[start..end]);
    }
}

/// The character after the backslash of a byte's two-character escape, `u` for the
/// control characters written `\u00XX`, and 0 for bytes not escaped on their own.
const SHORT_ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t
};

/// Escapes the character at `bytes[j]`, a byte that needs attention, if it needs
/// escaping: copies the clean run `bytes[*start..j]`, then the escape, and moves `start`
/// past the character. (The continuation bytes of a character never need attention, so
/// `j >= *start` always.)
#[inline(always)]
fn escape_at(out: &mut Vec<u8>, bytes: &[u8], j: usize, start: &mut usize) {
    let b = bytes[j];
    // Branches rather than a `match`: a jump table on every quote of a JSON body costs
    // more than the escaping.
    if b < 0x80 {
        let short = SHORT_ESCAPE[usize::from(b)];
        copy_run(out, bytes, *start, j);
        if short != b'u' {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        }
        *start = j + 1;
        return;
    }
    // E2 or C2: U+2028, U+2029, U+0085 or another character that needs nothing.
    if let Some((len, escape)) = line_separator_at(bytes, j) {
        copy_run(out, bytes, *start, j);
        out.extend_from_slice(escape);
        *start = j + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fast(s: &str) -> String {
        let mut buf = Vec::new();
        JsonOut::new(&mut buf).str(s);
        String::from_utf8(buf).unwrap()
    }

    fn serde(s: &str) -> String {
        let mut buf = Vec::new();
        write_json_line_serde(&mut buf, s).unwrap();
        assert_eq!(buf.pop(), Some(b'\n'));
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn unicode_line_separators_are_escaped() {
        let mut out = Vec::new();
        write_json_line_serde(&mut out, &"a\u{2028}b\u{2029}c\u{85}d\u{e9}").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "\"a\\u2028b\\u2029c\\u0085d\u{e9}\"\n");
        assert_eq!(text.lines().count(), 1);
        let back: String = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(back, "a\u{2028}b\u{2029}c\u{85}d\u{e9}");
        assert_eq!(fast("a\u{2028}b\u{2029}c\u{85}d\u{e9}"), text.trim_end());
    }

    #[test]
    fn escaper_edge_cases() {
        let cases: &[(&str, &str)] = &[
            ("", r#""""#),
            ("plain", r#""plain""#),
            ("€", "\"€\""),
            ("ends with €", "\"ends with €\""),
            ("\u{2027}\u{202a}\u{2030}", "\"\u{2027}\u{202a}\u{2030}\""),
            ("\u{84}\u{86}\u{a0}é", "\"\u{84}\u{86}\u{a0}é\""),
            ("\u{2028}", r#""\u2028""#),
            ("\u{2029}", r#""\u2029""#),
            ("\u{85}", r#""\u0085""#),
            ("x\u{2028}", r#""x\u2028""#),
            ("\"\\", r#""\"\\""#),
            ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
            (
                "\0\u{1}\u{b}\u{1f}\u{7f}",
                "\"\\u0000\\u0001\\u000b\\u001f\u{7f}\"",
            ),
            ("😀\u{10ffff}", "\"😀\u{10ffff}\""),
        ];
        for (input, want) in cases {
            assert_eq!(fast(input), *want, "{input:?}");
            assert_eq!(serde(input), *want, "{input:?}");
        }
    }

    /// Every special character at every offset around the 16-byte chunk boundaries,
    /// including three-byte sequences split across two chunks.
    #[test]
    fn chunk_boundaries() {
        let specials = [
            "\u{2028}", "\u{2029}", "\u{85}", "€", "\u{2000}", "é", "\"", "\\", "\n", "\u{1}",
            "\u{1f}", "😀",
        ];
        for pad in 0..(3 * CHUNK + 3) {
            for sp in specials {
                for tail in ["", "a", "abc", &"z".repeat(CHUNK)] {
                    let s = format!("{}{sp}{tail}", "a".repeat(pad));
                    assert_eq!(fast(&s), serde(&s), "{s:?}");
                    let s = format!("{}{sp}{sp}{tail}{sp}", "€".repeat(pad));
                    assert_eq!(fast(&s), serde(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn integers_and_literals() {
        let mut buf = Vec::new();
        let mut out = JsonOut::new(&mut buf);
        out.i64(i64::MIN);
        out.byte(b' ');
        out.u64(u64::MAX);
        out.byte(b' ');
        out.i64(0);
        out.byte(b' ');
        out.bool(true);
        out.bool(false);
        out.null();
        out.str_list(["a", "b\n"]);
        out.str_list([]);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"-9223372036854775808 18446744073709551615 0 truefalsenull["a","b\n"][]"#
        );
    }

    proptest! {
        #[test]
        fn escaper_matches_serde(s in "(\\PC|[\\x00-\\x1f\"\\\\\u{85}\u{2028}\u{2029}€])*") {
            prop_assert_eq!(fast(&s), serde(&s));
        }

        #[test]
        fn escaper_matches_serde_on_any_string(s in any::<String>()) {
            prop_assert_eq!(fast(&s), serde(&s));
        }
    }
}
