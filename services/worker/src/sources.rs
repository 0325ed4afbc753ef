//! Where packets come from: live capture threads, or capture files replayed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use reef_pcap::CaptureReader;

use crate::config::Speed;
use crate::producer::Producer;

/// LINKTYPE_RAW: live sockets are SOCK_DGRAM and hand over IP packets.
const RAW_IP: u16 = 101;
/// Longest a capture thread sleeps waiting for packets.
const MAX_POLL: Duration = Duration::from_millis(10);

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// One capture thread: its sockets into its producer until `stop` is set.
pub fn capture_thread(
    mut source: reef_capture::Source,
    mut producer: Producer,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let wait = producer
            .next_deadline()
            .map_or(MAX_POLL, |d| d.saturating_duration_since(Instant::now()))
            .min(MAX_POLL);
        source
            .poll(wait.as_millis() as i32, |p| {
                if matches!(p.protocol, 0x0800 | 0x86dd) {
                    producer.packet(p.ts_ns, RAW_IP, p.data);
                }
            })
            .context("reading the capture ring")?;
        producer.idle(Some(now_ns()));
    }
    producer.finish();
    Ok(())
}

/// Replays capture files, one producer (and engine) per file, as `reef dissect`
/// dissects each file on its own.
pub fn replay(
    files: &[PathBuf],
    speed: Speed,
    mut producer_for: impl FnMut(usize) -> Producer,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    for (i, path) in files.iter().enumerate() {
        let file = std::fs::File::open(path)
            .with_context(|| format!("{}: cannot open the capture", path.display()))?;
        let mut reader = CaptureReader::new(file)
            .with_context(|| format!("{}: cannot read the capture", path.display()))?;
        let mut producer = producer_for(i);
        let mut pace: Option<(i64, Instant)> = None;
        let mut n = 0u32;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let p = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    // What could be read is published; the rest is reported.
                    tracing::error!(file = %path.display(), error = %e, "capture file ends early");
                    break;
                }
            };
            if speed == Speed::Realtime {
                let (first_ts, started) = *pace.get_or_insert((p.ts_ns, Instant::now()));
                let due =
                    started + Duration::from_nanos(p.ts_ns.saturating_sub(first_ts).max(0) as u64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            producer.packet(p.ts_ns, p.link_type, p.data);
            n = n.wrapping_add(1);
            if n.is_multiple_of(4096) || speed == Speed::Realtime {
                producer.idle(None);
            }
        }
        producer.finish();
    }
    Ok(())
}
