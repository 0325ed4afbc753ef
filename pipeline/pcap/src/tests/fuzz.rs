//! Random and mutated input: the reader must end (packets, then `None` or an error) without
//! panicking, looping or growing memory without bound, and must not depend on how the input
//! is split into `read` calls.

use proptest::prelude::*;

use super::{Ng, Trickle, drain, pcap_header, pcap_record};
use crate::{CaptureReader, PcapNgWriter, TsResolution};

/// Error offset and message.
type Failure = (u64, String);

/// Everything a reader run can observe, comparable across runs.
fn observe<R: std::io::Read>(
    src: R,
    len: usize,
) -> Result<(Vec<super::Owned>, Option<Failure>), Failure> {
    match CaptureReader::new(src) {
        Ok(mut r) => {
            let (pkts, err) = drain(&mut r, len);
            Ok((pkts, err.map(|e| (e.offset, e.to_string()))))
        }
        Err(e) => Err((e.offset, e.to_string())),
    }
}

fn prefixes() -> Vec<Vec<u8>> {
    let mut shb_be = Ng::new(true);
    shb_be.idb(1, 0, &[]);
    let mut shb_le = Ng::new(false);
    shb_le.idb(1, 64, &[]);
    vec![
        Vec::new(),
        pcap_header(false, false, 1, 65_535),
        pcap_header(true, true, 113, 0),
        Ng::new(false).out,
        shb_le.out,
        shb_be.out,
    ]
}

fn valid_files() -> Vec<Vec<u8>> {
    let mut pcap = pcap_header(false, false, 1, 65_535);
    for i in 0..6u32 {
        pcap_record(&mut pcap, false, i, i, &vec![i as u8; i as usize * 9], 100);
    }
    let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
    w.add_interface(1, Some(TsResolution::Binary(30)), Some("a"))
        .expect("idb");
    w.add_interface(276, None, None).expect("idb");
    for i in 0..6u32 {
        w.write_packet(
            i % 2,
            i64::from(i) * 1_000_000_007,
            &vec![i as u8; i as usize * 7],
            50,
        )
        .expect("epb");
    }
    let mut ng = w.into_inner().expect("flush");
    let mut tail = Ng {
        be: false,
        out: Vec::new(),
    };
    tail.spb(5, b"12345")
        .pb(1, 99, b"pb", 2)
        .block(0x0bad, b"custom");
    ng.extend_from_slice(&tail.out);
    let mut be = Ng::new(true);
    be.idb(0, 0, &[]).epb(0, 5, b"big", 3).spb(1, b"s");
    vec![pcap, ng, be.out]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn garbage_after_a_plausible_header(which in 0usize..6, tail in proptest::collection::vec(any::<u8>(), 0..3000), chunk in 1usize..64) {
        let mut bytes = prefixes().swap_remove(which);
        bytes.extend_from_slice(&tail);
        let whole = observe(bytes.as_slice(), bytes.len());
        let split = observe(Trickle { data: &bytes, chunk, calls: 0 }, bytes.len());
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn mutated_valid_files(which in 0usize..3, edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>(), chunk in 1usize..300) {
        let mut bytes = valid_files().swap_remove(which);
        for (at, v) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        bytes.truncate(cut.index(bytes.len() + 1).max(bytes.len() / 2));
        let whole = observe(bytes.as_slice(), bytes.len());
        let split = observe(Trickle { data: &bytes, chunk, calls: 0 }, bytes.len());
        prop_assert_eq!(whole, split);
    }

    /// Length words are the dangerous fields: set them to extreme values on purpose.
    #[test]
    fn extreme_length_words(which in 0usize..3, pos in any::<prop::sample::Index>(), v in prop_oneof![Just(0u32), Just(u32::MAX), Just(0x7fff_fffc), Just(16 * 1024 * 1024), Just(16 * 1024 * 1024 + 4), 0u32..64]) {
        let mut bytes = valid_files().swap_remove(which);
        let at = pos.index(bytes.len() - 3) & !3;
        bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let whole = observe(bytes.as_slice(), bytes.len());
        let split = observe(Trickle { data: &bytes, chunk: 17, calls: 0 }, bytes.len());
        prop_assert_eq!(whole, split);
    }
}
