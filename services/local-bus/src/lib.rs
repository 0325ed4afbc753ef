//! The embedded bus of single-machine mode (`reef local`).
//!
//! In a cluster, Reef's batches travel through NATS JetStream streams. On a laptop they
//! travel through this crate instead: one append-only, file-backed log of messages with
//! stream sequences and store times, retention by bytes and by age, and [`Reader`]s that
//! replay from a sequence or a time and then follow live appends. Think of it as a tiny
//! single-stream JetStream living in the process that uses it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), reef_local_bus::BusError> {
//! use futures_util::StreamExt;
//! use reef_local_bus::{Limits, LocalBus, Start};
//!
//! let bus = LocalBus::open(std::path::Path::new("/var/lib/reef/bus"), Limits::default())?;
//! let seq = bus.append("reef.v1.node.a.entries", &[], b"arrow ipc bytes")?;
//! let mut reader = bus.read(Start::Seq(seq));
//! while let Some(item) = reader.next().await {
//!     match item {
//!         Ok(message) => println!("{} {}", message.seq, message.subject),
//!         // Not terminal: the reader carries on at the first retained message.
//!         Err(reef_local_bus::BusError::Lost { from_seq, to_seq }) => {
//!             eprintln!("retention removed {from_seq}..={to_seq} before we read them")
//!         }
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Durability: an append hands the record to the operating system (a `write`), it does
//! not fsync. Messages survive a crash of the process, not necessarily a crash of the
//! machine or a power loss; call [`LocalBus::flush`] to fsync. Segments are fsynced when
//! they are closed (rolled). See README.md for the file format and the guarantees.

mod reader;
mod record;

pub use reader::Reader;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::Notify;

use record::HEADER_LEN;

/// Default retention by size: 1 GiB of segment files.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Default retention by age: 24 hours.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Default size of one segment file, the unit retention deletes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Largest message [`LocalBus::append`] accepts: subject, headers and payload together,
/// with their length prefixes (4 bytes per string, 4 for the header count).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

const SEGMENT_SUFFIX: &str = ".seg";
const SEGMENT_NAME_DIGITS: usize = 20;
const LOCK_FILE: &str = "LOCK";
/// The append buffer is kept between appends up to this size, so that a rare huge
/// message does not pin its buffer for the life of the bus.
const KEEP_BUFFER_BYTES: usize = 8 << 20;

/// Retention and segment sizing.
///
/// `max_bytes = 0` or `max_age = Duration::ZERO` disables that limit (as a zero `max_age`
/// does in JetStream). Retention removes whole segments, oldest first, and never the
/// segment being written, so the files may hold up to about one segment more than
/// `max_bytes`; to keep that overshoot small, [`LocalBus::open`] lowers `segment_bytes`
/// to `max_bytes / 4` when it is larger ([`LocalBus::limits`] shows the values in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Delete the oldest segments while the segment files total more than this.
    pub max_bytes: u64,
    /// Delete a segment once its newest message is older than this.
    pub max_age: Duration,
    /// Start a new segment file when the current one would grow past this. A message
    /// bigger than this gets a segment of its own.
    pub segment_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_age: DEFAULT_MAX_AGE,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

impl Limits {
    fn effective(self) -> Result<Limits, BusError> {
        if self.segment_bytes == 0 {
            return Err(BusError::InvalidLimits(
                "segment_bytes is 0: give segment files a size of at least a few MiB".into(),
            ));
        }
        let mut limits = self;
        if limits.max_bytes > 0 {
            limits.segment_bytes = limits.segment_bytes.min((limits.max_bytes / 4).max(1));
        }
        Ok(limits)
    }

    /// Messages stored before this time are expired, if an age limit is set.
    fn age_cutoff(&self, now_ns: i64) -> Option<i64> {
        if self.max_age.is_zero() {
            return None;
        }
        let age = i64::try_from(self.max_age.as_nanos()).unwrap_or(i64::MAX);
        Some(now_ns.saturating_sub(age))
    }
}

/// One message of the bus.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Stream sequence: starts at 1, increases by one per append, never reused.
    pub seq: u64,
    /// Store time, ns since the Unix epoch. Never decreases along the stream (if the
    /// wall clock steps back, messages keep the time of the newest one).
    pub time_ns: i64,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

/// Where a [`Reader`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The first message with a sequence >= n. If retention already removed some of the
    /// messages from n on, the reader first yields [`BusError::Lost`] for them (use
    /// [`Start::First`] to start at the oldest retained message without that). `Seq(0)`
    /// is `Seq(1)`; a sequence in the future waits for it.
    Seq(u64),
    /// The first message stored at or after this time (ns since the Unix epoch).
    TimeNs(i64),
    /// The oldest retained message.
    First,
    /// Only messages appended after the call to [`LocalBus::read`].
    New,
}

/// A snapshot of the bus, for metrics and status pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Retained messages.
    pub messages: u64,
    /// Bytes of the segment files (records with their headers).
    pub bytes: u64,
    /// Sequence of the oldest retained message; `last_seq + 1` when the bus is empty.
    pub first_seq: u64,
    /// Sequence of the newest message ever appended (retained or not); 0 before the first.
    pub last_seq: u64,
    /// Store time of the oldest retained message, if any.
    pub first_time_ns: Option<i64>,
    /// Store time of the newest retained message, if any.
    pub last_time_ns: Option<i64>,
    /// Segment files, including the one being written.
    pub segments: u64,
    /// Messages deleted by retention since this process opened the bus.
    pub removed_by_retention: u64,
    /// Torn or corrupt segment tails truncated when the bus was opened.
    pub torn_tails_truncated: u64,
    /// Bytes those truncations removed.
    pub torn_bytes_truncated: u64,
}

/// Errors of the bus. Each message says what happened and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(
        "cannot create the data directory {dir}: {error}: pass --data-dir with a writable directory"
    )]
    CreateDir { dir: PathBuf, error: io::Error },
    #[error(
        "the data directory {dir} is in use by another reef process (it holds {dir}/LOCK): \
         stop that process, or pass --data-dir with another directory"
    )]
    Locked { dir: PathBuf },
    #[error(
        "{action} {path}: {error}: check that the disk is not full and that the data \
         directory is writable"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error(
        "message of {size} bytes (subject, headers and payload) exceeds the local bus limit of \
         {max} bytes: publish smaller batches"
    )]
    MessageTooLarge { size: usize, max: usize },
    #[error("invalid local bus limits: {0}")]
    InvalidLimits(String),
    /// Not terminal for a [`Reader`]: it continues at the first retained message.
    #[error(
        "messages {from_seq}..={to_seq} were removed by retention before this reader got to \
         them: raise the retention limits (bytes or age) or consume faster"
    )]
    Lost { from_seq: u64, to_seq: u64 },
    /// A stored record failed its checks when read back. A [`Reader`] skips it and goes on.
    #[error(
        "message {seq} at offset {offset} of {path} is corrupt ({reason}): the file was \
         damaged on disk; the message is skipped"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        seq: u64,
        reason: &'static str,
    },
    #[error("the local bus is closed: no more messages can be appended")]
    Closed,
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BusError + 'a {
    move |error| BusError::Io {
        action,
        path: path.to_owned(),
        error,
    }
}

/// The embedded bus. Cheap to clone (an `Arc` inside); all clones share one log.
///
/// The directory stays locked (against other processes, and against a second
/// [`LocalBus::open`] of the same directory) until every clone and every [`Reader`] is
/// dropped.
#[derive(Clone)]
pub struct LocalBus {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    limits: Limits,
    state: Mutex<State>,
    notify: Arc<Notify>,
    /// Holds the advisory lock on `dir/LOCK` for the life of the bus.
    _lock: File,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held in a way that leaves the state
        // inconsistent; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct State {
    /// Oldest first; never empty; the last one is the active segment (being written).
    /// Only the active segment is normally empty.
    segments: VecDeque<Segment>,
    /// Append-mode handle on the active segment.
    writer: Arc<File>,
    /// A failed write could not be undone: start a new segment before the next append.
    active_broken: bool,
    next_seq: u64,
    /// Newest store time ever given, to keep store times non-decreasing.
    last_time_ns: i64,
    total_bytes: u64,
    messages: u64,
    removed_by_retention: u64,
    torn_tails: u64,
    torn_bytes: u64,
    pub(crate) closed: bool,
    buf: Vec<u8>,
}

struct Segment {
    /// The sequence the file is named after: <= its first message's.
    base: u64,
    path: Arc<Path>,
    /// Read handle, shared with readers so that they read without the lock.
    file: Arc<File>,
    size: u64,
    entries: Vec<Entry>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    time_ns: i64,
    offset: u64,
    /// Whole record, header included (at most 32 + MAX_MESSAGE_BYTES).
    len: u32,
}

/// Where a message is, enough to read it without the lock.
pub(crate) struct Location {
    file: Arc<File>,
    path: Arc<Path>,
    pub(crate) entry: Entry,
}

impl State {
    fn active(&self) -> &Segment {
        self.segments
            .back()
            .expect("the bus always has an active segment")
    }

    pub(crate) fn first_seq(&self) -> u64 {
        self.segments
            .iter()
            .find_map(|s| s.entries.first())
            .map_or(self.next_seq, |e| e.seq)
    }

    /// The first message with a sequence >= `seq`.
    pub(crate) fn locate(&self, seq: u64) -> Option<Location> {
        let start = self
            .segments
            .partition_point(|s| s.entries.last().is_some_and(|e| e.seq < seq));
        self.segments.range(start..).find_map(|s| {
            let i = s.entries.partition_point(|e| e.seq < seq);
            s.entries.get(i).map(|&entry| Location {
                file: Arc::clone(&s.file),
                path: Arc::clone(&s.path),
                entry,
            })
        })
    }

    fn seq_at_time(&self, time_ns: i64) -> u64 {
        let start = self
            .segments
            .partition_point(|s| s.entries.last().is_some_and(|e| e.time_ns < time_ns));
        self.segments
            .range(start..)
            .find_map(|s| {
                let i = s.entries.partition_point(|e| e.time_ns < time_ns);
                s.entries.get(i).map(|e| e.seq)
            })
            .unwrap_or(self.next_seq)
    }

    /// Closes the active segment (fsync) and starts a new one named `next_seq`.
    fn roll(&mut self, dir: &Path) -> Result<(), BusError> {
        let active = self.active();
        // Only a broken segment can be empty here: it is replaced rather than left
        // behind empty.
        let replace = active.entries.is_empty();
        if !replace {
            let path = Arc::clone(&active.path);
            self.writer
                .sync_data()
                .map_err(io_error("cannot fsync segment", &path))?;
        }
        let (segment, writer) = create_segment(dir, self.next_seq)?;
        if replace {
            let old = self.segments.pop_back().expect("the active segment");
            if old.base != segment.base {
                let _ = fs::remove_file(&old.path);
            }
            self.total_bytes -= old.size;
        }
        tracing::debug!(segment = %segment.path.display(), "local bus: new segment");
        self.segments.push_back(segment);
        self.writer = Arc::new(writer);
        self.active_broken = false;
        Ok(())
    }

    /// Writes one encoded record at the end of the active segment and indexes it.
    fn write_record(&mut self, record: &[u8], seq: u64, time_ns: i64) -> Result<(), BusError> {
        let active = self
            .segments
            .back_mut()
            .expect("the bus always has an active segment");
        let offset = active.size;
        if let Err(error) = (&*self.writer).write_all(record) {
            // Undo a partial write, so that the next record does not land after garbage
            // (which the scan at open would take for a torn tail, dropping what follows).
            if let Err(e) = self.writer.set_len(offset) {
                tracing::warn!(segment = %active.path.display(), error = %e,
                    "local bus: cannot undo a failed write; starting a new segment");
                self.active_broken = true;
            }
            return Err(BusError::Io {
                action: "cannot write to segment",
                path: active.path.to_path_buf(),
                error,
            });
        }
        let len = record.len() as u64;
        active.entries.push(Entry {
            seq,
            time_ns,
            offset,
            len: u32::try_from(len).expect("records are at most 32 + 64 MiB long"),
        });
        active.size += len;
        self.total_bytes += len;
        self.messages += 1;
        self.next_seq += 1;
        self.last_time_ns = time_ns;
        Ok(())
    }

    /// Deletes the oldest segments while over a limit; never the active one. Returns the
    /// number of messages removed.
    fn apply_retention(&mut self, now_ns: i64, limits: &Limits) -> u64 {
        let cutoff = limits.age_cutoff(now_ns);
        let mut removed = 0u64;
        while self.segments.len() > 1 {
            let front = &self.segments[0];
            let too_big = limits.max_bytes > 0 && self.total_bytes > limits.max_bytes;
            let too_old = match front.entries.last() {
                None => true,
                Some(newest) => cutoff.is_some_and(|c| newest.time_ns < c),
            };
            if !too_big && !too_old {
                break;
            }
            let segment = self.segments.pop_front().expect("len > 1");
            let count = segment.entries.len() as u64;
            self.total_bytes -= segment.size;
            self.messages -= count;
            self.removed_by_retention += count;
            removed += count;
            match fs::remove_file(&segment.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(segment = %segment.path.display(), error = %e,
                    "local bus: cannot delete an expired segment; delete it by hand"),
            }
            tracing::debug!(segment = %segment.path.display(), messages = count,
                too_big, too_old, "local bus: retention removed a segment");
        }
        removed
    }
}

impl LocalBus {
    /// Opens the bus in `dir`, creating the directory if needed.
    ///
    /// Existing segments are recovered: sequences continue after the last stored one. A
    /// torn or corrupt record (a crash in the middle of a write, a damaged disk) ends its
    /// segment: the file is truncated there, counted in [`BusStats`] and logged with
    /// `tracing::warn`. Retention is applied before returning.
    pub fn open(dir: &Path, limits: Limits) -> Result<LocalBus, BusError> {
        let limits = limits.effective()?;
        fs::create_dir_all(dir).map_err(|error| BusError::CreateDir {
            dir: dir.to_owned(),
            error,
        })?;
        let lock = lock_dir(dir)?;
        let mut state = recover(dir)?;
        let now = now_ns().max(state.last_time_ns);
        // An old active segment can only expire once it is closed.
        if let Some(cutoff) = limits.age_cutoff(now)
            && state
                .active()
                .entries
                .last()
                .is_some_and(|e| e.time_ns < cutoff)
        {
            state.roll(dir)?;
        }
        state.apply_retention(now, &limits);
        tracing::debug!(dir = %dir.display(), messages = state.messages,
            next_seq = state.next_seq, segments = state.segments.len(), "local bus: opened");
        Ok(LocalBus {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                limits,
                state: Mutex::new(state),
                notify: Arc::new(Notify::new()),
                _lock: lock,
            }),
        })
    }

    /// Appends a message; returns its sequence. Thread-safe; appends are serialised.
    ///
    /// The store time is now (kept non-decreasing). The record is written to the OS, not
    /// fsynced: see [`LocalBus::flush`]. Retention runs after the append.
    pub fn append(
        &self,
        subject: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> Result<u64, BusError> {
        let body_len = record::body_len(subject, headers, payload);
        if body_len > MAX_MESSAGE_BYTES {
            return Err(BusError::MessageTooLarge {
                size: body_len,
                max: MAX_MESSAGE_BYTES,
            });
        }
        let record_len = (HEADER_LEN + body_len) as u64;
        let limits = &self.shared.limits;
        let seq = {
            let mut st = self.shared.lock();
            if st.closed {
                return Err(BusError::Closed);
            }
            let now = now_ns().max(st.last_time_ns);
            let active = st.active();
            let must_roll = st.active_broken
                || active.entries.last().is_some_and(|newest| {
                    active.size + record_len > limits.segment_bytes
                        || limits
                            .age_cutoff(now)
                            .is_some_and(|cutoff| newest.time_ns < cutoff)
                });
            if must_roll {
                st.roll(&self.shared.dir)?;
            }
            let seq = st.next_seq;
            let mut buf = std::mem::take(&mut st.buf);
            record::encode(&mut buf, seq, now, subject, headers, payload);
            let written = st.write_record(&buf, seq, now);
            if buf.capacity() <= KEEP_BUFFER_BYTES {
                st.buf = buf;
            }
            written?;
            st.apply_retention(now, limits);
            seq
        };
        self.shared.notify.notify_waiters();
        Ok(seq)
    }

    /// Sequence of the oldest retained message; `last_seq() + 1` when the bus is empty
    /// (as in JetStream), so `first_seq() > last_seq()` means empty.
    pub fn first_seq(&self) -> u64 {
        self.shared.lock().first_seq()
    }

    /// Sequence of the newest message ever appended, 0 if none ever was. Stays put when
    /// retention removes everything.
    pub fn last_seq(&self) -> u64 {
        self.shared.lock().next_seq - 1
    }

    pub fn stats(&self) -> BusStats {
        let st = self.shared.lock();
        let first = st.segments.iter().find_map(|s| s.entries.first());
        let last = st.segments.iter().rev().find_map(|s| s.entries.last());
        BusStats {
            messages: st.messages,
            bytes: st.total_bytes,
            first_seq: st.first_seq(),
            last_seq: st.next_seq - 1,
            first_time_ns: first.map(|e| e.time_ns),
            last_time_ns: last.map(|e| e.time_ns),
            segments: st.segments.len() as u64,
            removed_by_retention: st.removed_by_retention,
            torn_tails_truncated: st.torn_tails,
            torn_bytes_truncated: st.torn_bytes,
        }
    }

    /// The retained message with this sequence, if any. Reads the file outside the lock.
    pub fn get(&self, seq: u64) -> Result<Option<Message>, BusError> {
        let location = self
            .shared
            .lock()
            .locate(seq)
            .filter(|l| l.entry.seq == seq);
        location.map(|l| read_message(&l)).transpose()
    }

    /// The first sequence stored at or after `time_ns`; `last_seq() + 1` if none is.
    pub fn seq_at_time(&self, time_ns: i64) -> u64 {
        self.shared.lock().seq_at_time(time_ns)
    }

    /// A reader from `start`: it replays what is stored, then follows appends. The start
    /// is resolved now (e.g. [`Start::New`] means after the last message at this call).
    pub fn read(&self, start: Start) -> Reader {
        let next = {
            let st = self.shared.lock();
            match start {
                Start::Seq(n) => n.max(1),
                Start::TimeNs(t) => st.seq_at_time(t),
                Start::First => st.first_seq(),
                Start::New => st.next_seq,
            }
        };
        Reader::new(Arc::clone(&self.shared), next)
    }

    /// Fsyncs the segment being written (earlier segments were fsynced when closed).
    pub fn flush(&self) -> Result<(), BusError> {
        let (writer, path) = {
            let st = self.shared.lock();
            (Arc::clone(&st.writer), Arc::clone(&st.active().path))
        };
        writer
            .sync_data()
            .map_err(io_error("cannot fsync segment", &path))
    }

    /// Applies retention now. Appends already do this; call it periodically (say every
    /// minute) when appends may stop for long, so that old messages still expire by age.
    /// Returns the number of messages removed.
    pub fn enforce_retention(&self) -> Result<u64, BusError> {
        let limits = &self.shared.limits;
        let mut st = self.shared.lock();
        let now = now_ns().max(st.last_time_ns);
        if let Some(cutoff) = limits.age_cutoff(now)
            && st
                .active()
                .entries
                .last()
                .is_some_and(|e| e.time_ns < cutoff)
        {
            st.roll(&self.shared.dir)?;
        }
        Ok(st.apply_retention(now, limits))
    }

    /// Refuses further appends and lets readers end: once a reader has yielded every
    /// stored message it returns `None` instead of waiting. Idempotent.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.notify.notify_waiters();
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The limits in use (after the adjustment described on [`Limits`]).
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBus")
            .field("dir", &self.shared.dir)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn segment_name(base: u64) -> String {
    format!(
        "{base:0width$}{SEGMENT_SUFFIX}",
        width = SEGMENT_NAME_DIGITS
    )
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn lock_dir(dir: &Path) -> Result<File, BusError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_error("cannot open the lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(BusError::Locked {
            dir: dir.to_owned(),
        }),
        Err(fs::TryLockError::Error(error)) => Err(BusError::Io {
            action: "cannot lock",
            path,
            error,
        }),
    }
}

/// Creates (or empties) the segment file for `base`; returns it and its append handle.
fn create_segment(dir: &Path, base: u64) -> Result<(Segment, File), BusError> {
    let path = dir.join(segment_name(base));
    let writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_error("cannot create segment", &path))?;
    // A file of that name can only be left over from a failed attempt: nothing in it
    // is indexed (its name is past every stored sequence).
    writer
        .set_len(0)
        .map_err(io_error("cannot create segment", &path))?;
    let file = File::open(&path).map_err(io_error("cannot open segment", &path))?;
    sync_dir(dir);
    Ok((
        Segment {
            base,
            path: path.into(),
            file: Arc::new(file),
            size: 0,
            entries: Vec::new(),
        },
        writer,
    ))
}

/// Makes a new directory entry durable. Best effort: a failure costs durability of the
/// newest segment's name on a power loss, nothing else.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "local bus: cannot fsync the directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Rebuilds the state from the segment files in `dir`.
fn recover(dir: &Path) -> Result<State, BusError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("cannot list", dir))? {
        let entry = entry.map_err(io_error("cannot list", dir))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_name) {
            names.push((base, entry.path()));
        }
    }
    names.sort_unstable_by_key(|&(base, _)| base);

    let mut segments: VecDeque<Segment> = VecDeque::new();
    let mut prev_seq = 0u64;
    let mut next_seq = 1u64;
    let mut last_time_ns = 0i64;
    let (mut torn_tails, mut torn_bytes) = (0u64, 0u64);
    let count = names.len();
    for (i, (base, path)) in names.into_iter().enumerate() {
        let scan = scan_segment(&path, base, prev_seq)?;
        if let Some(reason) = scan.bad {
            let dropped = scan.file_len - scan.valid_len;
            tracing::warn!(segment = %path.display(), offset = scan.valid_len,
                dropped_bytes = dropped, reason,
                "local bus: truncating a torn or corrupt segment tail (a crash during a \
                 write, or a damaged file); the messages in it are lost");
            truncate_file(&path, scan.valid_len)?;
            torn_tails += 1;
            torn_bytes += dropped;
        }
        next_seq = next_seq.max(base);
        if let Some(last) = scan.entries.last() {
            next_seq = next_seq.max(last.seq.saturating_add(1));
            prev_seq = last.seq;
            last_time_ns = last_time_ns.max(last.time_ns);
        }
        if scan.entries.is_empty() && i + 1 != count {
            // An empty segment that is not the last one carries nothing.
            let _ = fs::remove_file(&path);
            continue;
        }
        let file = File::open(&path).map_err(io_error("cannot open segment", &path))?;
        segments.push_back(Segment {
            base,
            path: path.into(),
            file: Arc::new(file),
            size: scan.valid_len,
            entries: scan.entries,
        });
    }

    // The active segment: the last one if it has messages or is already named after the
    // next sequence, else a new one named after it. An empty segment named `next_seq`
    // is what remembers the sequence when retention has removed every message.
    let reuse = segments
        .back()
        .is_some_and(|s| !s.entries.is_empty() || s.base == next_seq);
    let writer = if reuse {
        let path = Arc::clone(&segments.back().expect("checked by reuse").path);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error("cannot open segment", &path))?
    } else {
        if let Some(stale) = segments.pop_back() {
            let _ = fs::remove_file(&stale.path);
        }
        let (segment, writer) = create_segment(dir, next_seq)?;
        segments.push_back(segment);
        writer
    };

    Ok(State {
        total_bytes: segments.iter().map(|s| s.size).sum(),
        messages: segments.iter().map(|s| s.entries.len() as u64).sum(),
        segments,
        writer: Arc::new(writer),
        active_broken: false,
        next_seq,
        last_time_ns,
        removed_by_retention: 0,
        torn_tails,
        torn_bytes,
        closed: false,
        buf: Vec::new(),
    })
}

struct Scan {
    entries: Vec<Entry>,
    /// Length of the valid prefix.
    valid_len: u64,
    file_len: u64,
    /// Why the scan stopped before the end of the file.
    bad: Option<&'static str>,
}

/// Reads a segment from the start, checking every record, up to the first invalid one.
fn scan_segment(path: &Path, base: u64, mut prev_seq: u64) -> Result<Scan, BusError> {
    let file = File::open(path).map_err(io_error("cannot open segment", path))?;
    let file_len = file
        .metadata()
        .map_err(io_error("cannot read segment", path))?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut header = [0u8; HEADER_LEN];
    let mut body = Vec::new();
    let header_len = HEADER_LEN as u64;
    let bad = loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            break None;
        }
        if remaining < header_len {
            break Some("truncated record header");
        }
        reader
            .read_exact(&mut header)
            .map_err(io_error("cannot read segment", path))?;
        let parsed = match record::parse_header(&header) {
            Ok(parsed) => parsed,
            Err(reason) => break Some(reason),
        };
        let body_len = u64::from(parsed.body_len);
        if remaining - header_len < body_len {
            break Some("truncated record body");
        }
        body.resize(parsed.body_len as usize, 0);
        reader
            .read_exact(&mut body)
            .map_err(io_error("cannot read segment", path))?;
        if !record::crc_ok(&header, &parsed, &body) {
            break Some("checksum mismatch");
        }
        if parsed.seq < base || parsed.seq <= prev_seq {
            break Some("sequence out of order");
        }
        if let Err(reason) = record::validate_body(&body) {
            break Some(reason);
        }
        let len = header_len + body_len;
        entries.push(Entry {
            seq: parsed.seq,
            time_ns: parsed.time_ns,
            offset,
            len: u32::try_from(len).expect("body length checked against MAX_MESSAGE_BYTES"),
        });
        prev_seq = parsed.seq;
        offset += len;
    };
    Ok(Scan {
        entries,
        valid_len: offset,
        file_len,
        bad,
    })
}

fn truncate_file(path: &Path, len: u64) -> Result<(), BusError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("cannot open segment for repair", path))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(io_error("cannot truncate the torn tail of segment", path))
}

/// Reads and checks one record through the shared read handle (no lock held).
pub(crate) fn read_message(location: &Location) -> Result<Message, BusError> {
    let entry = location.entry;
    let path = &location.path;
    let mut buf = vec![0u8; entry.len as usize];
    read_exact_at(&location.file, &mut buf, entry.offset)
        .map_err(io_error("cannot read segment", path))?;
    let corrupt = |reason| BusError::Corrupt {
        path: path.to_path_buf(),
        offset: entry.offset,
        seq: entry.seq,
        reason,
    };
    let header: [u8; HEADER_LEN] = buf
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| corrupt("record shorter than its header"))?;
    let parsed = record::parse_header(&header).map_err(corrupt)?;
    if parsed.seq != entry.seq || parsed.body_len as usize != buf.len() - HEADER_LEN {
        return Err(corrupt("record does not match the index"));
    }
    if !record::crc_ok(&header, &parsed, &buf[HEADER_LEN..]) {
        return Err(corrupt("checksum mismatch"));
    }
    let body = Bytes::from(buf).slice(HEADER_LEN..);
    record::decode_body(parsed.seq, parsed.time_ns, body).map_err(corrupt)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
