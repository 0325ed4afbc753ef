//! Tests of the local bus against real files in temporary directories.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use reef_local_bus::{BusError, Limits, LocalBus, MAX_MESSAGE_BYTES, Message, Reader, Start};

const SUBJECT: &str = "reef.v1.test";

/// Length of a record with `SUBJECT`, no headers and this payload (32-byte header,
/// subject with its length, header count, payload).
fn record_len(payload: usize) -> u64 {
    (32 + 4 + SUBJECT.len() + 4 + payload) as u64
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut p = vec![(i % 251) as u8; len];
    p[..8].copy_from_slice(&i.to_le_bytes());
    p
}

async fn next(reader: &mut Reader) -> Result<Message, BusError> {
    tokio::time::timeout(Duration::from_secs(10), reader.next())
        .await
        .expect("the reader waited 10 s for a message")
        .expect("the reader ended")
}

/// True when the reader has nothing to yield right now (it would wait).
fn is_waiting(reader: &mut Reader) -> bool {
    reader.next().now_or_never().is_none()
}

fn one_message_per_segment(payload_len: usize, max_bytes: u64, max_age: Duration) -> Limits {
    Limits {
        max_bytes,
        max_age,
        segment_bytes: 2 * record_len(payload_len) - 1,
    }
}

#[tokio::test]
async fn append_get_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    let headers = vec![
        (
            "Content-Type".to_owned(),
            "application/vnd.apache.arrow.stream".to_owned(),
        ),
        ("Reef-Node".to_owned(), "node-a".to_owned()),
    ];
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut sent = Vec::new();
    for i in 1..=3u64 {
        let seq = bus
            .append(&format!("reef.v1.node.a.{i}"), &headers, &payload(i, 1000))
            .unwrap();
        assert_eq!(seq, i);
        sent.push(seq);
    }
    let mut got = Vec::new();
    for seq in 1..=3 {
        let m = bus.get(seq).unwrap().unwrap();
        assert_eq!(m.seq, seq);
        assert_eq!(m.subject, format!("reef.v1.node.a.{seq}"));
        assert_eq!(m.headers, headers);
        assert_eq!(&m.payload[..], &payload(seq, 1000)[..]);
        assert!(m.time_ns >= before, "store time is now");
        got.push(m);
    }
    assert!(got.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
    assert_eq!(bus.get(0).unwrap(), None);
    assert_eq!(bus.get(4).unwrap(), None);

    let mut reader = bus.read(Start::First);
    for expected in &got {
        assert_eq!(&next(&mut reader).await.unwrap(), expected);
    }
    assert!(is_waiting(&mut reader));

    let stats = bus.stats();
    assert_eq!(stats.messages, 3);
    assert_eq!((stats.first_seq, stats.last_seq), (1, 3));
    assert_eq!(stats.first_time_ns, Some(got[0].time_ns));
    assert_eq!(stats.last_time_ns, Some(got[2].time_ns));
    assert_eq!(stats.segments, 1);
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(stats.bytes, on_disk);
    assert_eq!(
        segment_files(dir.path())[0].file_name().unwrap(),
        "00000000000000000001.seg"
    );
}

#[test]
fn empty_bus_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    assert_eq!((bus.first_seq(), bus.last_seq()), (1, 0));
    assert_eq!(bus.seq_at_time(0), 1);
    assert_eq!(bus.get(1).unwrap(), None);
    let stats = bus.stats();
    assert_eq!(stats.messages, 0);
    assert_eq!(stats.bytes, 0);
    assert_eq!((stats.first_time_ns, stats.last_time_ns), (None, None));
    assert_eq!(stats.segments, 1);
}

#[tokio::test]
async fn read_from_seq_time_first_and_new() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that positions are looked up across several files.
    let limits = Limits {
        segment_bytes: 3 * record_len(100),
        ..Limits::default()
    };
    let bus = LocalBus::open(dir.path(), limits).unwrap();
    let mut times = vec![0i64]; // index = seq
    for i in 1..=10u64 {
        bus.append(SUBJECT, &[], &payload(i, 100)).unwrap();
        times.push(bus.get(i).unwrap().unwrap().time_ns);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(bus.stats().segments >= 3);

    // Seq
    let mut r = bus.read(Start::Seq(4));
    for seq in 4..=10 {
        assert_eq!(next(&mut r).await.unwrap().seq, seq);
    }
    assert!(is_waiting(&mut r));
    let mut r0 = bus.read(Start::Seq(0));
    assert_eq!(next(&mut r0).await.unwrap().seq, 1);

    // TimeNs: exact store time, between two store times, before everything, after.
    assert_eq!(bus.seq_at_time(times[7]), 7);
    assert_eq!(bus.seq_at_time(times[7] - 1), 7);
    assert_eq!(bus.seq_at_time(times[7] + 1), 8);
    assert_eq!(bus.seq_at_time(i64::MIN), 1);
    assert_eq!(bus.seq_at_time(i64::MAX), 11);
    let mut r = bus.read(Start::TimeNs(times[7] + 1));
    assert_eq!(next(&mut r).await.unwrap().seq, 8);
    let mut r_late = bus.read(Start::TimeNs(i64::MAX));
    assert!(is_waiting(&mut r_late));

    // First
    let mut r = bus.read(Start::First);
    assert_eq!(next(&mut r).await.unwrap().seq, 1);

    // New: nothing until the next append, then exactly that one.
    let mut r_new = bus.read(Start::New);
    assert!(is_waiting(&mut r_new));
    let mut r_future = bus.read(Start::Seq(12));
    bus.append(SUBJECT, &[], b"eleven").unwrap();
    let m = next(&mut r_new).await.unwrap();
    assert_eq!((m.seq, &m.payload[..]), (11, &b"eleven"[..]));
    assert!(is_waiting(&mut r_new));
    // A reader at TimeNs(MAX) resolved to "after the last message" when created.
    assert_eq!(next(&mut r_late).await.unwrap().seq, 11);
    // A future sequence waits for it.
    assert!(is_waiting(&mut r_future));
    bus.append(SUBJECT, &[], b"twelve").unwrap();
    assert_eq!(next(&mut r_future).await.unwrap().seq, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_follow_live_appends_from_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(
        dir.path(),
        Limits {
            segment_bytes: 20 * record_len(1000), // rolls while readers follow
            ..Limits::default()
        },
    )
    .unwrap();
    const N: u64 = 300;
    let r_new = bus.read(Start::New);
    let r_first = bus.read(Start::First);

    let collect = |mut reader: Reader| {
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            while seqs.len() < N as usize {
                let m = next(&mut reader).await.unwrap();
                assert_eq!(&m.payload[..], &payload(m.seq, 1000)[..]);
                seqs.push(m.seq);
            }
            seqs
        })
    };
    let a = collect(r_new);
    let b = collect(r_first);

    let writer_bus = bus.clone();
    let writer = std::thread::spawn(move || {
        for i in 1..=N {
            assert_eq!(
                writer_bus.append(SUBJECT, &[], &payload(i, 1000)).unwrap(),
                i
            );
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let expected: Vec<u64> = (1..=N).collect();
    assert_eq!(a.await.unwrap(), expected);
    assert_eq!(b.await.unwrap(), expected);
    writer.join().unwrap();
    assert!(bus.stats().segments > 1);
}

#[test]
fn reopen_continues_sequences_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let limits = one_message_per_segment(100, 0, Duration::ZERO);
    let before;
    {
        let bus = LocalBus::open(dir.path(), limits).unwrap();
        for i in 1..=5u64 {
            bus.append(SUBJECT, &[("i".into(), i.to_string())], &payload(i, 100))
                .unwrap();
        }
        before = (1..=5)
            .map(|s| bus.get(s).unwrap().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(bus.stats().segments, 5);
    }
    let bus = LocalBus::open(dir.path(), limits).unwrap();
    let after = (1..=5)
        .map(|s| bus.get(s).unwrap().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(before, after);
    let stats = bus.stats();
    assert_eq!((stats.first_seq, stats.last_seq, stats.messages), (1, 5, 5));
    assert_eq!(stats.torn_tails_truncated, 0);
    assert_eq!(bus.append(SUBJECT, &[], b"six").unwrap(), 6);
    assert_eq!(&bus.get(6).unwrap().unwrap().payload[..], b"six");
    // Store times keep going forward across the restart.
    assert!(bus.get(6).unwrap().unwrap().time_ns >= before[4].time_ns);
}

#[test]
fn directory_is_locked_while_the_bus_or_a_reader_lives() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    let err = LocalBus::open(dir.path(), Limits::default()).unwrap_err();
    assert!(matches!(err, BusError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("--data-dir"), "{err}");
    let reader = bus.read(Start::First);
    drop(bus);
    assert!(matches!(
        LocalBus::open(dir.path(), Limits::default()),
        Err(BusError::Locked { .. })
    ));
    drop(reader);
    LocalBus::open(dir.path(), Limits::default()).unwrap();
}

#[test]
fn torn_tail_is_truncated_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
        for i in 1..=5u64 {
            bus.append(SUBJECT, &[], &payload(i, 500)).unwrap();
        }
    }
    // A crash in the middle of writing record 5: its last 3 bytes never made it.
    let seg = segment_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    assert_eq!(len, 5 * record_len(500));
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    {
        let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
        let stats = bus.stats();
        assert_eq!((stats.first_seq, stats.last_seq, stats.messages), (1, 4, 4));
        assert_eq!(stats.torn_tails_truncated, 1);
        assert_eq!(stats.torn_bytes_truncated, record_len(500) - 3);
        assert_eq!(fs::metadata(&seg).unwrap().len(), 4 * record_len(500));
        assert_eq!(bus.get(5).unwrap(), None);
        for i in 1..=4 {
            assert_eq!(
                &bus.get(i).unwrap().unwrap().payload[..],
                &payload(i, 500)[..]
            );
        }
        // The torn message was never stored: its sequence goes to the next append.
        assert_eq!(bus.append(SUBJECT, &[], b"after the crash").unwrap(), 5);
    }
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(bus.stats().torn_tails_truncated, 0, "the repair is clean");
    assert_eq!(
        &bus.get(5).unwrap().unwrap().payload[..],
        b"after the crash"
    );
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
        for i in 1..=3u64 {
            bus.append(SUBJECT, &[], &payload(i, 200)).unwrap();
        }
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    // Garbage that even starts like a record: magic, then a plausible length.
    let mut garbage = b"RFB1".to_vec();
    garbage.extend_from_slice(&40u32.to_le_bytes());
    garbage.extend_from_slice(&[0xA5; 92]);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&garbage)
        .unwrap();

    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    let stats = bus.stats();
    assert_eq!((stats.last_seq, stats.messages), (3, 3));
    assert_eq!(stats.torn_tails_truncated, 1);
    assert_eq!(stats.torn_bytes_truncated, 100);
    for i in 1..=3 {
        assert_eq!(
            &bus.get(i).unwrap().unwrap().payload[..],
            &payload(i, 200)[..]
        );
    }
    assert_eq!(bus.append(SUBJECT, &[], b"4").unwrap(), 4);
    drop(bus);
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(bus.stats().torn_tails_truncated, 0);
    assert_eq!(bus.last_seq(), 4);
}

#[test]
fn bad_checksum_in_the_last_record_drops_it_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
        for i in 1..=3u64 {
            bus.append(SUBJECT, &[], &payload(i, 200)).unwrap();
        }
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let file = OpenOptions::new().write(true).open(&seg).unwrap();
    // A byte in the middle of record 3's payload.
    file.write_all_at(&[0xFF], 2 * record_len(200) + 100)
        .unwrap();
    drop(file);
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(bus.last_seq(), 2);
    assert_eq!(bus.stats().torn_tails_truncated, 1);
    assert_eq!(bus.stats().torn_bytes_truncated, record_len(200));
}

#[tokio::test]
async fn damage_after_open_is_reported_and_skipped_by_readers() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    for i in 1..=3u64 {
        bus.append(SUBJECT, &[], &payload(i, 200)).unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let file = OpenOptions::new().write(true).open(&seg).unwrap();
    file.write_all_at(&[0xFF], record_len(200) + 100).unwrap(); // in record 2
    drop(file);

    let err = bus.get(2).unwrap_err();
    assert!(matches!(err, BusError::Corrupt { seq: 2, .. }), "{err:?}");
    let mut r = bus.read(Start::First);
    assert_eq!(next(&mut r).await.unwrap().seq, 1);
    assert!(matches!(
        next(&mut r).await,
        Err(BusError::Corrupt { seq: 2, .. })
    ));
    assert_eq!(next(&mut r).await.unwrap().seq, 3);
}

#[tokio::test]
async fn retention_by_bytes_removes_oldest_segments_and_a_lagging_reader_gets_lost_once() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record_len(1000);
    let limits = one_message_per_segment(1000, 8 * rec, Duration::ZERO);
    let bus = LocalBus::open(dir.path(), limits).unwrap();
    assert_eq!(
        bus.limits(),
        limits,
        "no adjustment needed: segment <= max_bytes / 4"
    );

    let mut lagging = bus.read(Start::First);
    for i in 1..=2u64 {
        bus.append(SUBJECT, &[], &payload(i, 1000)).unwrap();
    }
    assert_eq!(next(&mut lagging).await.unwrap().seq, 1);
    assert_eq!(next(&mut lagging).await.unwrap().seq, 2);

    for i in 3..=20u64 {
        bus.append(SUBJECT, &[], &payload(i, 1000)).unwrap();
        let stats = bus.stats();
        assert!(stats.bytes <= limits.max_bytes, "{stats:?}");
    }
    let stats = bus.stats();
    // 8 one-message segments fit in max_bytes exactly.
    assert_eq!(stats.segments, 8);
    assert_eq!(segment_files(dir.path()).len(), 8);
    assert_eq!(
        (stats.first_seq, stats.last_seq, stats.messages),
        (13, 20, 8)
    );
    assert_eq!(stats.bytes, 8 * rec);
    assert_eq!(stats.removed_by_retention, 12);
    assert_eq!(bus.get(12).unwrap(), None);
    assert_eq!(bus.get(13).unwrap().unwrap().seq, 13);
    assert_eq!(bus.seq_at_time(i64::MIN), 13);

    // The reader had read up to 2: 3..=12 are gone. Reported once, then it continues.
    match next(&mut lagging).await {
        Err(BusError::Lost { from_seq, to_seq }) => assert_eq!((from_seq, to_seq), (3, 12)),
        other => panic!("expected Lost, got {other:?}"),
    }
    for seq in 13..=20 {
        assert_eq!(next(&mut lagging).await.unwrap().seq, seq);
    }
    assert!(is_waiting(&mut lagging));
    bus.append(SUBJECT, &[], &payload(21, 1000)).unwrap();
    assert_eq!(next(&mut lagging).await.unwrap().seq, 21);

    // A reader asking for a removed sequence hears about it; one asking for the first
    // retained message does not.
    let mut from_one = bus.read(Start::Seq(1));
    assert!(matches!(
        next(&mut from_one).await,
        Err(BusError::Lost {
            from_seq: 1,
            to_seq: 13
        })
    ));
    assert_eq!(next(&mut from_one).await.unwrap().seq, 14);
    let mut first = bus.read(Start::First);
    assert_eq!(next(&mut first).await.unwrap().seq, 14);
}

#[test]
fn segment_size_is_lowered_to_a_quarter_of_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(
        dir.path(),
        Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        },
    )
    .unwrap();
    assert_eq!(bus.limits().segment_bytes, 256 << 10);
    let err = LocalBus::open(
        &dir.path().join("other"),
        Limits {
            segment_bytes: 0,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, BusError::InvalidLimits(_)), "{err:?}");
}

#[test]
fn retention_by_age_then_everything_removed_and_sequences_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(1);
    let limits = one_message_per_segment(100, 0, max_age);
    {
        let bus = LocalBus::open(dir.path(), limits).unwrap();
        for i in 1..=3u64 {
            bus.append(SUBJECT, &[], &payload(i, 100)).unwrap();
        }
        assert_eq!(bus.stats().segments, 3);
        std::thread::sleep(max_age + Duration::from_millis(100));
        // The append expires the three old segments (the one being written included:
        // it is closed first).
        assert_eq!(bus.append(SUBJECT, &[], &payload(4, 100)).unwrap(), 4);
        let stats = bus.stats();
        assert_eq!((stats.first_seq, stats.last_seq, stats.messages), (4, 4, 1));
        assert_eq!(stats.removed_by_retention, 3);
        assert_eq!(segment_files(dir.path()).len(), 1);

        // Without appends, enforce_retention expires the rest.
        std::thread::sleep(max_age + Duration::from_millis(100));
        assert_eq!(bus.enforce_retention().unwrap(), 1);
        let stats = bus.stats();
        assert_eq!((stats.first_seq, stats.last_seq, stats.messages), (5, 4, 0));
        assert_eq!(stats.bytes, 0);
        assert_eq!(bus.get(4).unwrap(), None);
        assert_eq!(bus.seq_at_time(0), 5);
        assert_eq!(bus.enforce_retention().unwrap(), 0);
    }
    // Everything is gone, yet the sequence survives the restart.
    {
        let bus = LocalBus::open(dir.path(), limits).unwrap();
        assert_eq!((bus.first_seq(), bus.last_seq()), (5, 4));
        assert_eq!(bus.append(SUBJECT, &[], b"five").unwrap(), 5);
    }
    // Expiry also happens at open, after a long stop.
    std::thread::sleep(max_age + Duration::from_millis(100));
    let bus = LocalBus::open(dir.path(), limits).unwrap();
    let stats = bus.stats();
    assert_eq!((stats.first_seq, stats.last_seq, stats.messages), (6, 5, 0));
    assert_eq!(bus.append(SUBJECT, &[], b"six").unwrap(), 6);
}

#[test]
fn age_expires_a_single_large_segment() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = Duration::from_secs(1);
    let bus = LocalBus::open(
        dir.path(),
        Limits {
            max_age,
            ..Limits::default()
        },
    )
    .unwrap();
    for i in 1..=3u64 {
        bus.append(SUBJECT, &[], &payload(i, 100)).unwrap();
    }
    assert_eq!(bus.enforce_retention().unwrap(), 0, "not old yet");
    std::thread::sleep(max_age + Duration::from_millis(100));
    assert_eq!(bus.enforce_retention().unwrap(), 3);
    assert_eq!(bus.stats().messages, 0);
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "only the new, empty segment"
    );
    assert_eq!(bus.append(SUBJECT, &[], b"x").unwrap(), 4);
}

#[test]
fn concurrent_appends_get_unique_increasing_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(
        dir.path(),
        Limits {
            segment_bytes: 64 << 10, // many rolls under contention
            ..Limits::default()
        },
    )
    .unwrap();
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 250;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        let tag = format!("{t}/{i}");
                        let seq = bus.append(SUBJECT, &[], tag.as_bytes()).unwrap();
                        (seq, tag)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        let appended = h.join().unwrap();
        // Each thread sees its own sequences increase.
        assert!(appended.windows(2).all(|w| w[0].0 < w[1].0));
        for (seq, tag) in appended {
            assert!(all.insert(seq), "sequence {seq} given twice");
            assert_eq!(&bus.get(seq).unwrap().unwrap().payload[..], tag.as_bytes());
        }
    }
    assert_eq!(all, (1..=THREADS * PER_THREAD).collect::<HashSet<_>>());
    assert_eq!(bus.stats().messages, THREADS * PER_THREAD);
}

#[test]
fn bigger_than_max_message_bytes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    let big = vec![7u8; MAX_MESSAGE_BYTES];
    let err = bus.append(SUBJECT, &[], &big).unwrap_err();
    match &err {
        BusError::MessageTooLarge { size, max } => {
            assert_eq!(*max, MAX_MESSAGE_BYTES);
            assert_eq!(*size, MAX_MESSAGE_BYTES + 8 + SUBJECT.len());
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert!(err.to_string().contains("smaller batches"), "{err}");
    assert_eq!(bus.last_seq(), 0, "nothing was stored");
    // Exactly at the limit is fine (empty subject, no headers: 8 bytes of framing).
    let seq = bus.append("", &[], &big[..MAX_MESSAGE_BYTES - 8]).unwrap();
    assert_eq!(
        bus.get(seq).unwrap().unwrap().payload.len(),
        MAX_MESSAGE_BYTES - 8
    );
}

#[tokio::test]
async fn close_ends_readers_after_the_stored_messages() {
    let dir = tempfile::tempdir().unwrap();
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    bus.append(SUBJECT, &[], b"1").unwrap();
    bus.append(SUBJECT, &[], b"2").unwrap();
    let mut caught_up = bus.read(Start::New);
    let waiting = tokio::spawn(async move { caught_up.next().await.is_none() });
    tokio::task::yield_now().await;
    let mut r = bus.read(Start::First);
    bus.close();
    assert_eq!(next(&mut r).await.unwrap().seq, 1);
    assert_eq!(next(&mut r).await.unwrap().seq, 2);
    assert!(r.next().await.is_none());
    assert!(
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap(),
        "a waiting reader wakes up and ends"
    );
    assert!(matches!(
        bus.append(SUBJECT, &[], b"3"),
        Err(BusError::Closed)
    ));
}

#[test]
fn foreign_files_are_ignored_and_bad_directories_explained() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();
    fs::write(dir.path().join("1.seg"), "not our naming").unwrap();
    let bus = LocalBus::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(bus.append(SUBJECT, &[], b"x").unwrap(), 1);
    assert!(dir.path().join("notes.txt").exists());

    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let err = LocalBus::open(&file.join("bus"), Limits::default()).unwrap_err();
    assert!(matches!(err, BusError::CreateDir { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("a-file/bus") && text.contains("--data-dir"),
        "{text}"
    );
}
