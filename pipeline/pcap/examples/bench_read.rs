//! Read throughput of `CaptureReader`.
//!
//! `cargo run --release -p reef-pcap --example bench_read [FILE...]`
//!
//! Without arguments, generates ~200 MB pcap and pcapng files in the temp directory (once)
//! with a realistic mix of ACK-sized, mid-sized and full-MTU packets, and one of 60-byte
//! packets only, then reads each from the file (page cache warm; best of 3) and from memory.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use reef_pcap::{CaptureReader, PcapNgWriter, PcapWriter, TsResolution};

const TARGET_BYTES: usize = 200 * 1000 * 1000;
const SIZES: [usize; 8] = [66, 1514, 1514, 583, 66, 1514, 120, 1514];
/// Worst case for per-packet overhead: nothing but bare TCP ACKs.
const SMALL: [usize; 1] = [60];

fn generate(path: &Path, ng: bool, sizes: &[usize]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let frame: Vec<u8> = (0..1514).map(|i| (i * 13) as u8).collect();
    let out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut written = 0usize;
    let mut ts = 1_700_000_000_000_000_000i64;
    if ng {
        let mut w = PcapNgWriter::new(out)?;
        w.add_interface(1, Some(TsResolution::NANOSECONDS), Some("eth0"))?;
        w.add_interface(276, None, Some("any"))?;
        for i in 0.. {
            let data = &frame[..sizes[i % sizes.len()]];
            w.write_packet((i % 2) as u32, ts, data, data.len() as u32)?;
            written += 32 + data.len().next_multiple_of(4);
            ts += 12_345;
            if written >= TARGET_BYTES {
                break;
            }
        }
        w.into_inner()?;
    } else {
        let mut w = PcapWriter::new(out, 1, false)?;
        for i in 0.. {
            let data = &frame[..sizes[i % sizes.len()]];
            w.write_packet(ts, data, data.len() as u32)?;
            written += 16 + data.len();
            ts += 12_345;
            if written >= TARGET_BYTES {
                break;
            }
        }
        w.into_inner()?;
    }
    Ok(())
}

/// Reads every packet and folds the bytes into a checksum so nothing is optimised away.
fn read_all<R: Read>(src: R) -> Result<(u64, u64), reef_pcap::PcapError> {
    let mut r = CaptureReader::new(src)?;
    let (mut n, mut sum) = (0u64, 0u64);
    while let Some(p) = r.next_packet()? {
        n += 1;
        sum = sum
            .wrapping_add(p.data.len() as u64)
            .wrapping_add(u64::from(p.data.last().copied().unwrap_or(0)))
            .wrapping_add(p.ts_ns as u64);
    }
    Ok((n, sum))
}

fn report(label: &str, bytes: u64, packets: u64, secs: f64) {
    println!(
        "{label:<40} {:>8.0} MB/s {:>6.2} Mpkt/s ({packets} packets, {:.1} MB in {:.3} s)",
        bytes as f64 / secs / 1e6,
        packets as f64 / secs / 1e6,
        bytes as f64 / 1e6,
        secs
    );
}

fn bench(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let size = std::fs::metadata(path)?.len();
    let mut best = f64::MAX;
    let mut packets = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let (n, _) = read_all(File::open(path)?)?;
        best = best.min(t.elapsed().as_secs_f64());
        packets = n;
    }
    report(&format!("{} (file)", path.display()), size, packets, best);

    let mem = std::fs::read(path)?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let (n, _) = read_all(mem.as_slice())?;
        best = best.min(t.elapsed().as_secs_f64());
        packets = n;
    }
    report(&format!("{} (memory)", path.display()), size, packets, best);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        let dir = std::env::temp_dir();
        for (name, ng, sizes) in [
            ("reef-pcap-bench.pcap", false, &SIZES[..]),
            ("reef-pcap-bench.pcapng", true, &SIZES[..]),
            ("reef-pcap-bench-small.pcapng", true, &SMALL[..]),
        ] {
            let p = dir.join(name);
            generate(&p, ng, sizes)?;
            paths.push(p);
        }
    }
    for p in &paths {
        bench(p)?;
    }
    Ok(())
}
