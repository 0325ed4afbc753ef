//! Live capture for tests: AF_PACKET on an interface (usually `lo`) feeding the same
//! engine `reef dissect` and the worker run, on a thread of its own, while the test
//! drives a real client against a real server. Needs root, as CI has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use reef_capture::{CaptureConfig, FilterSpec};
use reef_engine::{Config, Engine, Stats};
use reef_schema::{CaptureSource, Entry};

/// Link type of what the capture sockets deliver: the network header first.
const RAW_IP: u16 = 101;

/// A capture running until [`LiveCapture::stop`].
pub struct LiveCapture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(Vec<Entry>, Stats)>>,
}

impl LiveCapture {
    /// Starts capturing on `interface` (all of its traffic: tests filter the entries
    /// they get by port). Returns once the socket is open, so nothing sent after it is
    /// missed.
    pub fn start(interface: &str) -> LiveCapture {
        let (mut sources, _control) = reef_capture::open(&CaptureConfig {
            interfaces: vec![interface.to_string()],
            threads: 1,
            filter: FilterSpec::default(),
            ..CaptureConfig::default()
        })
        .unwrap_or_else(|e| panic!("capture on {interface} (run the tests as root): {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut engine = Engine::new(Config {
                capture_source: CaptureSource::AfPacket,
                ..Config::default()
            });
            let mut entries = Vec::new();
            // A last poll after the stop request picks up what was in flight.
            let mut last = false;
            loop {
                for s in sources.iter_mut() {
                    s.poll(20, |p| engine.packet(p.ts_ns, RAW_IP, p.data))
                        .expect("poll the capture ring");
                }
                entries.extend(engine.drain_entries());
                if last {
                    break;
                }
                last = flag.load(Ordering::Relaxed);
            }
            engine.finish();
            entries.extend(engine.drain_entries());
            (entries, engine.stats())
        });
        LiveCapture {
            stop,
            thread: Some(thread),
        }
    }

    /// Waits `settle` for the last packets to arrive, stops, and closes every
    /// connection: the entries of everything captured, and the engine's counters.
    pub fn stop(mut self, settle: Duration) -> (Vec<Entry>, Stats) {
        std::thread::sleep(settle);
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("stopped once")
            .join()
            .expect("capture thread")
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
