//! Any bytes as a capture file, through the whole pipeline: reader, link layers, IP
//! defragmentation, TCP reassembly and dissection. Must never panic, and the stream
//! buffers must be empty once the capture is finished.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_engine::{Config, Engine};
use reef_pcap::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(data) else {
        return;
    };
    let mut engine = Engine::new(Config::default());
    let mut n = 0;
    while let Ok(Some(p)) = reader.next_packet() {
        engine.packet(p.ts_ns, p.link_type, p.data);
        let _ = engine.take_entries();
        n += 1;
        if n > 100_000 {
            break;
        }
    }
    engine.finish();
    let _ = engine.take_entries();
    let stats = engine.stats();
    assert_eq!(stats.live_flows, 0);
});
