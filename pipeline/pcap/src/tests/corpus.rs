//! Real captures from the shared corpus, checked against the packet counts and times that
//! tshark/capinfos recorded in the `*.truth.json` beside each file.

use std::path::{Path, PathBuf};

use crate::{CaptureReader, Format};

/// The first `"key": value` of a JSON text, as raw text. Enough for the flat top-level fields
/// of the truth files without pulling a JSON parser into this crate.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = json[at..].trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return s.split('"').next();
    }
    rest.split([',', '\n', '}']).next().map(str::trim)
}

/// `YYYY-MM-DD HH:MM:SS.frac` in UTC with `digits` fraction digits, as capinfos prints.
fn utc(ts_ns: i64, digits: usize) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let ns = ts_ns.rem_euclid(1_000_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let frac = format!("{ns:09}");
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        &frac[..digits.min(9)]
    )
}

#[test]
fn utc_formatting() {
    assert_eq!(
        utc(1_705_456_993_230_738_000, 6),
        "2024-01-17 02:03:13.230738"
    );
    assert_eq!(
        utc(951_420_235_155_866_123, 9),
        "2000-02-24 19:23:55.155866123"
    );
    assert_eq!(utc(0, 6), "1970-01-01 00:00:00.000000");
}

fn link_type_of(short: &str) -> Option<u16> {
    Some(match short {
        "ether" => 1,
        "null" => 0,
        "rawip" => 101,
        "linux-sll" => 113,
        "nflog" => 239,
        "linux-sll2" => 276,
        _ => return None,
    })
}

#[test]
fn shared_corpus_matches_tshark() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("note: {} not found, corpus test skipped", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    files.sort();
    let mut checked = 0;
    for path in &files {
        let truth_path = path.with_extension("truth.json");
        let Ok(truth) = std::fs::read_to_string(&truth_path) else {
            println!("note: no truth file for {}", path.display());
            continue;
        };
        let name = path.display();
        let want: usize = json_field(&truth, "packet_count")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no packet_count"));
        let file = std::fs::File::open(path).expect("open");
        let mut r = CaptureReader::new(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let format = json_field(&truth, "format").expect("format");
        assert_eq!(
            matches!(r.format(), Format::PcapNg),
            format == "pcapng",
            "{name}: format {:?} vs {format}",
            r.format()
        );
        let allowed: Vec<u16> = truth
            .match_indices("\"short\":")
            .filter_map(|(i, _)| json_field(&truth[i..], "short").and_then(link_type_of))
            .collect();
        let (mut count, mut min_ts, mut max_ts) = (0usize, i64::MAX, i64::MIN);
        loop {
            match r.next_packet() {
                Ok(Some(p)) => {
                    count += 1;
                    min_ts = min_ts.min(p.ts_ns);
                    max_ts = max_ts.max(p.ts_ns);
                    assert!(
                        allowed.is_empty() || allowed.contains(&p.link_type),
                        "{name}: link type {} not in {allowed:?}",
                        p.link_type
                    );
                    assert!(p.data.len() <= crate::MAX_RECORD_BYTES);
                }
                Ok(None) => break,
                Err(e) => panic!("{name}: after {count} packets: {e}"),
            }
        }
        assert_eq!(count, want, "{name}: packet count");
        for (key, ts) in [("first_packet_time", min_ts), ("last_packet_time", max_ts)] {
            if let Some(t) = json_field(&truth, key).filter(|t| t.contains('.')) {
                let digits = t.len() - t.find('.').map_or(t.len(), |d| d + 1);
                assert_eq!(utc(ts, digits), t, "{name}: {key}");
            }
        }
        checked += 1;
    }
    println!("corpus: {checked} captures checked against their truth files");
    assert!(checked > 0 || files.is_empty());
}
