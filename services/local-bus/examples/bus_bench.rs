//! A small benchmark of the local bus: appends N messages of 64 KiB (the size of a
//! typical Arrow batch), then reads them back with a reader, with `get`, and while they
//! are being written (a reader following a writer thread). Prints MB/s and msgs/s.
//!
//! ```text
//! cargo run --release -p reef-local-bus --example bus_bench -- [N] [parent dir]
//! ```
//!
//! N defaults to 4096 (256 MiB); the bus lives in a temporary directory under the parent
//! (default: the system temp dir), removed at the end. Reads come from the page cache.

use std::error::Error;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reef_local_bus::{Limits, LocalBus, Start};

const PAYLOAD: usize = 64 << 10;
const SUBJECT: &str = "reef.v1.node.bench.entries";

fn report(what: &str, n: u64, bytes: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what:<28} {n:>7} msgs {:>9.1} MB/s {:>10.0} msgs/s  ({:.3} s)",
        bytes as f64 / 1e6 / secs,
        n as f64 / secs,
        secs
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = match args.next() {
        Some(a) => a.parse()?,
        None => 4096,
    };
    let tmp = match args.next() {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    // Retention large enough to keep everything the bench writes.
    let limits = Limits {
        max_bytes: (n + 16) * (PAYLOAD as u64 + 256) * 2,
        ..Limits::default()
    };
    let headers = vec![(
        "Content-Type".to_owned(),
        "application/vnd.apache.arrow.stream".to_owned(),
    )];
    // Incompressible-looking payload (xorshift), not that anything compresses here.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let payload: Vec<u8> = (0..PAYLOAD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let bytes = n * PAYLOAD as u64;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;

    let bus = LocalBus::open(&tmp.path().join("bus"), limits)?;
    println!(
        "local bus bench: {n} messages of {} KiB in {}",
        PAYLOAD >> 10,
        tmp.path().display()
    );

    let t = Instant::now();
    for _ in 0..n {
        bus.append(SUBJECT, &headers, &payload)?;
    }
    report("append (no fsync)", n, bytes, t.elapsed());

    let t = Instant::now();
    bus.flush()?;
    println!("{:<28} {:.3} s", "flush (fsync)", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let read = rt.block_on(async {
        let mut reader = bus.read(Start::First);
        let mut total = 0u64;
        for _ in 0..n {
            let m = reader.next().await.ok_or("the reader ended")??;
            total += m.payload.len() as u64;
        }
        Ok::<_, Box<dyn Error>>(total)
    })?;
    assert_eq!(read, bytes);
    report("read (reader, replay)", n, bytes, t.elapsed());

    let t = Instant::now();
    let mut total = 0u64;
    for seq in bus.first_seq()..=bus.last_seq() {
        total += bus.get(seq)?.ok_or("message missing")?.payload.len() as u64;
    }
    assert_eq!(total, bytes);
    report("get (by sequence)", n, bytes, t.elapsed());

    // A reader following a writer thread: time until the reader has the last message.
    let mut follower = bus.read(Start::New);
    let writer_bus = bus.clone();
    let writer_payload = payload.clone();
    let t = Instant::now();
    let writer = std::thread::spawn(move || -> Result<(), reef_local_bus::BusError> {
        for _ in 0..n {
            writer_bus.append(SUBJECT, &[], &writer_payload)?;
        }
        Ok(())
    });
    let followed = rt.block_on(async {
        let mut total = 0u64;
        for _ in 0..n {
            let m = follower.next().await.ok_or("the reader ended")??;
            total += m.payload.len() as u64;
        }
        Ok::<_, Box<dyn Error>>(total)
    })?;
    writer.join().map_err(|_| "the writer thread panicked")??;
    assert_eq!(followed, bytes);
    report("append + live follow", n, bytes, t.elapsed());

    drop(follower);
    let stats = bus.stats();
    drop(bus);
    let t = Instant::now();
    let bus = LocalBus::open(&tmp.path().join("bus"), limits)?;
    let elapsed = t.elapsed();
    assert_eq!(bus.stats().messages, stats.messages);
    println!(
        "{:<28} {:>7} msgs {:>9.1} MB/s  ({:.3} s: scan, checksum, index)",
        "reopen",
        stats.messages,
        stats.bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "stats: {} messages, {:.1} MB in {} segments, seq {}..={}",
        stats.messages,
        stats.bytes as f64 / 1e6,
        stats.segments,
        stats.first_seq,
        stats.last_seq
    );
    Ok(())
}
