//! `reef dissect`: capture files to entries, like `tshark -r`, but as Reef entries.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args as ClapArgs, ValueEnum};
use reef_engine::{Config, Engine, Stats};
use reef_pcap::CaptureReader;
use reef_schema::Entry;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// One JSON entry per line, with the entry schema's column names.
    Jsonl,
    /// One readable line per transaction.
    Table,
}

#[derive(ClapArgs)]
pub struct Args {
    /// pcap or pcapng files; each is dissected on its own.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Print packet, flow, entry and drop counts and the speed to stderr.
    #[arg(long)]
    stats: bool,
    /// Body bytes kept per message (after decoding).
    #[arg(long, default_value_t = reef_dissect::DEFAULT_MAX_BODY_BYTES)]
    max_body: usize,
    /// Protobuf descriptor set (`protoc --include_imports --descriptor_set_out=FILE`)
    /// to decode gRPC messages with; without it they are shown by wire format.
    #[arg(long, value_name = "FILE")]
    proto_descriptors: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 20, stdout);
    let mut failed = false;
    // Read once and kept for the whole run: every file's engine refers to it.
    let proto_schema = match &args.proto_descriptors {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            let schema = reef_dissect::grpc::ProtoSchema::from_descriptor_set(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: not a descriptor set: {e}", p.display()))?;
            let schema: &'static reef_dissect::grpc::ProtoSchema = Box::leak(Box::new(schema));
            Some(schema)
        }
        None => None,
    };
    for (i, path) in args.files.iter().enumerate() {
        let cfg = Config {
            dissect: reef_dissect::Limits {
                max_body_bytes: args.max_body,
                proto_schema,
                ..reef_dissect::Limits::default()
            },
            id_prefix: format!("f{i}"),
            ..Config::default()
        };
        match dissect_file(path, cfg, args.format, &mut out) {
            Ok(report) => {
                if args.stats {
                    // Entries first, then the summary, when both go to one terminal.
                    let _ = out.flush();
                    report.print(path);
                }
                if let Some(err) = report.error {
                    eprintln!(
                        "reef: {}: {err} (entries up to there were printed)",
                        path.display()
                    );
                    failed = true;
                }
            }
            Err(e) => {
                // A broken pipe (e.g. `| head`) is the reader's choice, not an error.
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                {
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("reef: {}: {e:#}", path.display());
                failed = true;
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

struct Report {
    stats: Stats,
    file_bytes: u64,
    format: String,
    seconds: f64,
    /// The reader stopped early: what was wrong and where.
    error: Option<reef_pcap::PcapError>,
}

fn dissect_file(
    path: &PathBuf,
    cfg: Config,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let file = File::open(path).context("cannot open the capture")?;
    let file_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = CaptureReader::new(file).context("cannot read the capture")?;
    let fmt = match reader.format() {
        reef_pcap::Format::Pcap {
            nanosecond,
            big_endian,
        } => format!(
            "pcap, {} timestamps{}",
            if nanosecond { "ns" } else { "µs" },
            if big_endian { ", big-endian" } else { "" }
        ),
        reef_pcap::Format::PcapNg => "pcapng".to_string(),
    };
    let mut engine = Engine::new(cfg);
    let mut error = None;
    let mut since_flush = 0u32;
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => engine.packet(p.ts_ns, p.link_type, p.data),
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        since_flush += 1;
        if since_flush == 4096 {
            since_flush = 0;
            write_entries(engine.drain_entries(), format, out)?;
        }
    }
    engine.finish();
    write_entries(engine.drain_entries(), format, out)?;
    Ok(Report {
        stats: engine.stats(),
        file_bytes,
        format: fmt,
        seconds: started.elapsed().as_secs_f64(),
        error,
    })
}

fn write_entries(
    entries: impl Iterator<Item = Entry>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for e in entries {
        match format {
            Format::Jsonl => reef_schema::write_json_line(out, &e)?,
            Format::Table => writeln!(out, "{}", table_line(&e))?,
        }
    }
    Ok(())
}

fn table_line(e: &Entry) -> String {
    let secs = e.timestamp.div_euclid(1_000_000_000);
    let micros = e.timestamp.rem_euclid(1_000_000_000) / 1000;
    let endpoint = |ip: &std::net::IpAddr, port: Option<u16>| match (ip, port) {
        (std::net::IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (ip, Some(p)) => format!("{ip}:{p}"),
        (ip, None) => ip.to_string(),
    };
    let elapsed = e
        .elapsed_time
        .map(|us| format!("{:.1} ms", us as f64 / 1000.0))
        .unwrap_or_else(|| "-".into());
    let protocol = match e.http_version.as_deref() {
        Some(v) => format!("{}/{v}", e.protocol.as_str().to_uppercase()),
        None => e.protocol.as_str().to_uppercase(),
    };
    let mut line = format!(
        "{} {:>21} → {:<21} {} {} {}",
        format_utc(secs, micros),
        endpoint(&e.src_ip, e.src_port),
        endpoint(&e.dst_ip, e.dst_port),
        protocol,
        e.summary.as_deref().unwrap_or(""),
        elapsed,
    );
    if !e.flags.is_empty() {
        line.push_str(&format!(
            " [{}]",
            e.flags.names().collect::<Vec<_>>().join(",")
        ));
    }
    line
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, without a date library.
fn format_utc(secs: i64, micros: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Report {
    fn print(&self, path: &std::path::Path) {
        let s = &self.stats;
        let mb = self.file_bytes as f64 / 1e6;
        let secs = self.seconds.max(1e-9);
        eprintln!("{} ({})", path.display(), self.format);
        eprintln!(
            "  packets {}  bytes {}  tcp segments {}  udp {}  icmp {}  tunnelled {}",
            s.packets, s.bytes, s.tcp_segments, s.udp_datagrams, s.icmp_messages, s.tunnelled
        );
        let by_protocol = |m: &std::collections::BTreeMap<&str, u64>, unknown: u64| {
            let mut parts: Vec<String> = m.iter().map(|(p, n)| format!("{p} {n}")).collect();
            parts.push(format!("not dissected {unknown}"));
            parts.join(", ")
        };
        eprintln!(
            "  tcp flows {} ({}; switched protocols {}, of which not dissected {})  udp flows ({})  ip fragments {} → {} datagrams",
            s.reassembly.flows_created,
            by_protocol(&s.dissect.connections, s.dissect.connections_unknown),
            s.dissect.upgrades,
            s.dissect.tunnels_unknown,
            by_protocol(&s.dissect.udp_flows, s.dissect.udp_flows_unknown),
            s.fragments.fragments,
            s.fragments.reassembled,
        );
        let h = &s.dissect.http;
        eprintln!(
            "  entries {}  http requests {} responses {} matched {} unmatched requests {} unmatched responses {} responses lost in gaps {} timeouts {}",
            s.entries,
            h.requests,
            h.responses,
            h.matched,
            h.unmatched_requests,
            h.unmatched_responses,
            h.responses_lost,
            h.timeouts,
        );
        eprintln!(
            "  tcp gaps {} ({} bytes)  out of order {} bytes  retransmitted {} bytes  http heads lost {}  skipped {} bytes",
            s.reassembly.gaps,
            s.reassembly.gap_bytes,
            s.reassembly.out_of_order_bytes,
            s.reassembly.duplicate_bytes,
            s.dissect.http_lost_heads,
            s.dissect.http_skipped_bytes,
        );
        let d = &s.dissect.dns;
        if d.responses_without_query + d.duplicate_responses > 0 {
            eprintln!(
                "  dns responses without their query {}  duplicate responses {} (different answers {})",
                d.responses_without_query, d.duplicate_responses, d.duplicate_responses_differing
            );
        }
        let m = &s.dissect.mqtt;
        if m.packets > 0 {
            eprintln!(
                "  mqtt packets {}  answered pings {}  pingresps without request {}  clean disconnects {}  skipped {} bytes",
                m.packets, m.pings, m.pingresps_without_request, m.disconnects, m.skipped_bytes
            );
        }
        let i = &s.icmp;
        if i.messages > 0 {
            eprintln!(
                "  icmp messages {}  echo requests {} answered {} unanswered {}  replies without request {}  errors {}  evicted {}",
                i.messages,
                i.echo_requests,
                i.echo_pairs,
                i.echo_unanswered,
                i.echo_replies_unrequested,
                i.errors,
                i.evicted
            );
        }
        let drops = s.drops();
        if drops.is_empty() {
            eprintln!("  drops: none");
        } else {
            let list: Vec<String> = drops.iter().map(|(r, n)| format!("{r} {n}")).collect();
            eprintln!("  drops: {}", list.join(", "));
        }
        eprintln!(
            "  {:.3} s  {:.0} packets/s  {:.1} MB/s",
            self.seconds,
            s.packets as f64 / secs,
            mb / secs
        );
    }
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0, 0), "1970-01-01 00:00:00.000000");
        assert_eq!(
            format_utc(1_258_577_884, 844_956),
            "2009-11-18 20:58:04.844956"
        );
        assert_eq!(format_utc(951_782_400, 1), "2000-02-29 00:00:00.000001");
    }
}
