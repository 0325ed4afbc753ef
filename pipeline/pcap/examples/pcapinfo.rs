//! Summary of capture files, like a tiny `capinfos`, plus the oddities a reader must cope with.
//!
//! `cargo run -p reef-pcap --example pcapinfo FILE...`

use std::collections::BTreeMap;
use std::fs::File;

use reef_pcap::CaptureReader;

fn main() {
    for path in std::env::args().skip(1) {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        let mut r = match CaptureReader::new(file) {
            Ok(r) => r,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        let format = r.format();
        let mut links: BTreeMap<u16, u64> = BTreeMap::new();
        let (mut n, mut bytes, mut max_cap) = (0u64, 0u64, 0usize);
        let (mut cut, mut orig_short, mut backwards, mut zero_len) = (0u64, 0u64, 0u64, 0u64);
        let mut over_snaplen = 0u64;
        let mut last_ts = i64::MIN;
        let end = loop {
            // Copy what is needed out of the packet, which borrows the reader.
            let (len, orig_len, ts_ns, link, iface) = match r.next_packet() {
                Ok(Some(p)) => (p.data.len(), p.orig_len, p.ts_ns, p.link_type, p.interface),
                Ok(None) => break "clean end".to_owned(),
                Err(e) => break e.to_string(),
            };
            n += 1;
            bytes += len as u64;
            max_cap = max_cap.max(len);
            *links.entry(link).or_default() += 1;
            cut += u64::from((len as u64) < u64::from(orig_len));
            orig_short += u64::from((orig_len as usize) < len);
            zero_len += u64::from(len == 0);
            backwards += u64::from(ts_ns < last_ts);
            last_ts = ts_ns;
            let snap = r.interfaces().get(iface as usize).map_or(0, |i| i.snaplen);
            over_snaplen += u64::from(snap != 0 && len > snap as usize);
        };
        let ifs: Vec<String> = r
            .interfaces()
            .iter()
            .map(|i| {
                format!(
                    "link {} snaplen {} {:?} offset {}s name {:?}",
                    i.link_type, i.snaplen, i.ts_resolution, i.ts_offset_s, i.name
                )
            })
            .collect();
        println!(
            "{path}: {format:?}; {n} packets, {bytes} captured bytes, largest {max_cap}; links {links:?}; \
             cut by snaplen {cut}, orig<caplen {orig_short}, caplen>snaplen {over_snaplen}, empty {zero_len}, \
             time going backwards {backwards}; {end}; interfaces [{}]",
            ifs.join("; ")
        );
    }
}
