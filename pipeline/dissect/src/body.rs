//! Message bodies: kept up to a limit while they stream by, then decoded from their
//! Content-Encoding.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

/// Body bytes kept by all messages in progress, against a total limit. Shared by the
/// connections of one engine (single-threaded, hence `Rc`).
#[derive(Debug, Clone)]
pub struct BodyBudget(Rc<Budget>);

#[derive(Debug)]
struct Budget {
    limit: usize,
    used: Cell<usize>,
    /// Bytes not kept because the total was reached.
    refused: Cell<u64>,
}

impl BodyBudget {
    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget(Rc::new(Budget {
            limit,
            used: Cell::new(0),
            refused: Cell::new(0),
        }))
    }

    /// Bytes kept right now.
    pub fn used(&self) -> usize {
        self.0.used.get()
    }

    /// Body bytes not kept because the total limit was reached, since the start.
    pub fn refused(&self) -> u64 {
        self.0.refused.get()
    }

    fn take(&self, wanted: usize) -> usize {
        let b = &self.0;
        let granted = wanted.min(b.limit.saturating_sub(b.used.get()));
        b.used.set(b.used.get() + granted);
        b.refused.set(b.refused.get() + (wanted - granted) as u64);
        granted
    }

    fn give_back(&self, n: usize) {
        self.0.used.set(self.0.used.get().saturating_sub(n));
    }
}

/// Collects the start of a body and counts all of it.
#[derive(Debug, Default)]
pub struct BodyCollector {
    /// Bytes transferred (after de-chunking), including ones not kept.
    pub size: u64,
    kept: Vec<u8>,
    /// Bytes did not fit under the limit.
    pub cut: bool,
    /// Bytes of the body are missing from the capture; `kept` stops before the hole.
    pub holed: bool,
    budget: Option<BodyBudget>,
}

impl BodyCollector {
    /// A collector that counts what it keeps against `budget`.
    pub fn with_budget(budget: BodyBudget) -> BodyCollector {
        BodyCollector {
            size: 0,
            kept: Vec::new(),
            cut: false,
            holed: false,
            budget: Some(budget),
        }
    }

    pub fn kept(&self) -> &[u8] {
        &self.kept
    }

    pub fn push(&mut self, data: &[u8], limit: usize) {
        self.size += data.len() as u64;
        if self.holed {
            return;
        }
        let room = limit.saturating_sub(self.kept.len());
        let mut take = data.len().min(room);
        if let Some(b) = &self.budget {
            take = b.take(take);
        }
        if take < data.len() {
            self.cut = true;
        }
        self.kept.extend_from_slice(&data[..take]);
    }

    /// `len` body bytes were lost: count them and keep nothing after them, since a
    /// body with a silent hole would mislead.
    pub fn gap(&mut self, len: u64) {
        self.size += len;
        self.holed = true;
    }

    /// The kept bytes, leaving the budget.
    pub fn take_kept(&mut self) -> Vec<u8> {
        if let Some(b) = &self.budget {
            b.give_back(self.kept.len());
        }
        std::mem::take(&mut self.kept)
    }
}

impl Drop for BodyCollector {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give_back(self.kept.len());
        }
    }
}

/// The outcome of decoding a body.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// The decoded output was cut at the limit.
    pub cut: bool,
    /// The encoding was not understood or the data was corrupt; `bytes` are as sent.
    pub failed: bool,
}

/// Decodes `body` through the codings in a Content-Encoding value (applied in order,
/// so undone in reverse). `identity` is skipped; an unknown coding leaves the body as
/// is. Output is capped at `limit`; a body whose start was kept (`complete == false`)
/// decodes as far as it goes without counting as corrupt.
pub fn decode(body: Vec<u8>, content_encoding: &str, limit: usize, complete: bool) -> Decoded {
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    let mut bytes = body;
    let mut cut = false;
    for coding in codings.iter().rev() {
        let reader: Box<dyn Read + '_> = match coding.as_str() {
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&bytes[..])),
            "deflate" => {
                // "deflate" means zlib-wrapped, but raw deflate is common in the wild.
                if looks_like_zlib(&bytes) {
                    Box::new(flate2::read::ZlibDecoder::new(&bytes[..]))
                } else {
                    Box::new(flate2::read::DeflateDecoder::new(&bytes[..]))
                }
            }
            "br" => Box::new(brotli_decompressor::Decompressor::new(&bytes[..], 4096)),
            _ => {
                return Decoded {
                    bytes,
                    cut: false,
                    failed: true,
                };
            }
        };
        let mut out = Vec::new();
        let result = reader.take(limit as u64 + 1).read_to_end(&mut out);
        match result {
            Ok(_) => {}
            // A body kept only in part ends early; what came out before is good.
            Err(_) if !complete && !out.is_empty() => {}
            Err(_) => {
                return Decoded {
                    bytes,
                    cut: false,
                    failed: true,
                };
            }
        }
        if out.len() > limit {
            out.truncate(limit);
            cut = true;
        }
        bytes = out;
    }
    Decoded {
        bytes,
        cut,
        failed: false,
    }
}

fn looks_like_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn collector_caps_and_counts() {
        let mut c = BodyCollector::default();
        c.push(b"hello ", 8);
        c.push(b"world", 8);
        assert_eq!(c.kept(), b"hello wo");
        assert_eq!(c.size, 11);
        assert!(c.cut);
        c.gap(5);
        c.push(b"more", 100);
        assert_eq!(c.size, 20);
        assert_eq!(c.kept(), b"hello wo");
        assert!(c.holed);
    }

    #[test]
    fn the_total_budget_is_shared_and_returned() {
        let budget = BodyBudget::new(10);
        let mut a = BodyCollector::with_budget(budget.clone());
        let mut b = BodyCollector::with_budget(budget.clone());
        a.push(b"123456", 100);
        b.push(b"abcdef", 100);
        assert_eq!(budget.used(), 10);
        assert_eq!(budget.refused(), 2);
        assert_eq!(b.kept(), b"abcd");
        assert!(b.cut);
        assert_eq!(a.take_kept(), b"123456");
        assert_eq!(budget.used(), 4);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn gzip_deflate_and_stacked() {
        let text = b"the quick brown fox ".repeat(50);
        let d = decode(gzip(&text), "gzip", 1 << 20, true);
        assert_eq!(d.bytes, text);
        assert!(!d.failed && !d.cut);

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&text).unwrap();
        assert_eq!(
            decode(z.finish().unwrap(), "deflate", 1 << 20, true).bytes,
            text
        );
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&text).unwrap();
        assert_eq!(
            decode(raw.finish().unwrap(), "Deflate", 1 << 20, true).bytes,
            text
        );

        // gzip applied twice, with identity in between.
        let twice = gzip(&gzip(&text));
        assert_eq!(
            decode(twice, "identity, gzip, identity, gzip", 1 << 20, true).bytes,
            text
        );
    }

    #[test]
    fn brotli() {
        let text = b"brotli body ".repeat(100);
        let mut out = Vec::new();
        {
            let mut w = BrotliWriter::new(&mut out);
            w.write_all(&text).unwrap();
        }
        assert_eq!(decode(out, "br", 1 << 20, true).bytes, text);
    }

    /// A minimal brotli stream writer for tests: stores the data uncompressed in
    /// metablocks, which every decoder must accept (RFC 7932 §9.2).
    struct BrotliWriter<'a> {
        out: &'a mut Vec<u8>,
        data: Vec<u8>,
    }
    impl<'a> BrotliWriter<'a> {
        fn new(out: &'a mut Vec<u8>) -> Self {
            BrotliWriter {
                out,
                data: Vec::new(),
            }
        }
    }
    impl Write for BrotliWriter<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for BrotliWriter<'_> {
        fn drop(&mut self) {
            // WBITS=16 (one 0 bit), then one uncompressed metablock, then an empty last one.
            let mut bits: Vec<bool> = vec![false];
            let len = self.data.len() - 1;
            bits.push(false); // ISLAST = 0
            // MNIBBLES: 00 -> 4 nibbles
            bits.push(false);
            bits.push(false);
            for i in 0..16 {
                bits.push(len >> i & 1 == 1);
            }
            bits.push(true); // ISUNCOMPRESSED
            let mut bytes = Vec::new();
            let mut cur = 0u8;
            for (i, b) in bits.iter().enumerate() {
                if *b {
                    cur |= 1 << (i % 8);
                }
                if i % 8 == 7 {
                    bytes.push(cur);
                    cur = 0;
                }
            }
            if !bits.len().is_multiple_of(8) {
                bytes.push(cur);
            }
            bytes.extend_from_slice(&self.data);
            // ISLAST = 1, ISLASTEMPTY = 1
            bytes.push(0b11);
            self.out.extend_from_slice(&bytes);
        }
    }

    #[test]
    fn limits_and_failures() {
        let text = vec![b'a'; 10_000];
        let d = decode(gzip(&text), "gzip", 100, true);
        assert_eq!(d.bytes.len(), 100);
        assert!(d.cut);

        let bad = decode(b"not gzip".to_vec(), "gzip", 100, true);
        assert!(bad.failed);
        assert_eq!(bad.bytes, b"not gzip");

        let unknown = decode(b"xyz".to_vec(), "compress", 100, true);
        assert!(unknown.failed);

        // The first half of a gzip stream still yields its start.
        let z = gzip(
            &(0..5000u32)
                .flat_map(|i| i.to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let partial = decode(z[..z.len() / 2].to_vec(), "gzip", 1 << 20, false);
        assert!(!partial.failed);
        assert!(!partial.bytes.is_empty());
    }
}
