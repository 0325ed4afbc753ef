//! RESP2 and RESP3 read incrementally, one direction at a time.
//!
//! Values are never buffered whole: lines (type byte, length, simple values) are, up to
//! [`MAX_LINE_BYTES`], but bulk payloads stream through, keeping only what an entry
//! shows (the top-level value's start, the first elements of an aggregate). So a reply
//! of many megabytes spread over hundreds of segments costs a few kilobytes, and a
//! value is one message however the stream was cut (tshark 4.0 reads each segment on
//! its own).
//!
//! Commands are arrays of bulk strings or inline lines (`PING\r\n`); replies are any
//! RESP value, RESP3 attributes (`|`) being read and skipped before the value they
//! annotate, streamed strings (`$?`) and aggregates (`*?` ... `.`) included.

use reef_schema::Flags;

use crate::body::{BodyBudget, BodyCollector};

/// Longest line kept (a simple string, an error, an inline command): Redis itself
/// refuses inline commands longer than 64 KiB.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Nesting of aggregates followed; deeper is taken for garbage.
pub const MAX_DEPTH: usize = 64;
/// Elements an aggregate may announce (Redis caps a command at 1 Mi arguments; replies
/// may be larger, but not this large).
pub const MAX_AGGREGATE_LEN: i64 = 1 << 28;
/// Longest bulk string announced (Redis's `proto-max-bulk-len` can be raised to 4 GiB).
pub const MAX_BULK_LEN: i64 = 1 << 32;
/// Elements of the top-level aggregate kept (command arguments, reply elements).
pub const MAX_ITEMS: usize = 64;
/// Bytes kept of each kept element.
pub const MAX_ITEM_BYTES: usize = 1024;
/// Bytes kept of a top-level scalar (simple string, error, bulk string) for the summary.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Which side of the conversation a reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client: arrays of bulk strings, or inline commands.
    Command,
    /// The server: any RESP value.
    Reply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Simple,
    Error,
    Integer,
    Bulk,
    BulkError,
    Verbatim,
    Null,
    Boolean,
    Double,
    BigNumber,
    Array,
    Map,
    Set,
    Push,
    /// A command sent as a plain line.
    Inline,
}

impl Kind {
    fn is_aggregate(self) -> bool {
        matches!(self, Kind::Array | Kind::Map | Kind::Set | Kind::Push)
    }
}

/// An element of a top-level aggregate.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: Kind,
    /// A scalar's value, or an aggregate's first element when that is a scalar (the
    /// first key of an invalidation), cut at [`MAX_ITEM_BYTES`].
    pub text: Vec<u8>,
    /// A bulk string's length or an aggregate's element count; `None` for null or
    /// streamed values.
    pub len: Option<i64>,
    pub cut: bool,
    /// Elements of an aggregate begun so far.
    children: u64,
}

/// One top-level value (a command or a reply) with where it was on the wire.
#[derive(Debug)]
pub struct Value {
    pub kind: Kind,
    /// A bulk string's length or an aggregate's element count (pairs for a map).
    pub len: Option<i64>,
    /// A scalar's value, cut at [`MAX_TEXT_BYTES`].
    pub text: Vec<u8>,
    pub text_cut: bool,
    /// The first elements of an aggregate (or an inline command's words).
    pub items: Vec<Item>,
    /// Elements of the top-level aggregate, kept or not.
    pub item_count: u64,
    /// Error elements of the top-level aggregate (the failed commands of an EXEC).
    pub errors_inside: u32,
    /// A top-level bulk string's bytes, cut at the body limit.
    pub body: BodyCollector,
    /// Attributes (RESP3 `|`) came before the value.
    pub attributes: bool,
    pub start_offset: u64,
    pub end_offset: u64,
    pub start_ts: i64,
    pub end_ts: i64,
    /// The acknowledgment carried by the segment with the first byte.
    pub peer_ack: Option<u64>,
    pub flags: Flags,
    /// Whether the kind was set (a value started), as opposed to only bytes read.
    started: bool,
}

impl Value {
    fn new(offset: u64, ts: i64, peer_ack: Option<u64>, budget: &BodyBudget) -> Value {
        Value {
            kind: Kind::Null,
            len: None,
            text: Vec::new(),
            text_cut: false,
            items: Vec::new(),
            item_count: 0,
            errors_inside: 0,
            body: BodyCollector::with_budget(budget.clone()),
            attributes: false,
            start_offset: offset,
            end_offset: offset,
            start_ts: ts,
            end_ts: ts,
            peer_ack,
            flags: Flags::empty(),
            started: false,
        }
    }

    pub fn wire_len(&self) -> u64 {
        self.end_offset - self.start_offset
    }

    /// The `i`th element's text, if kept.
    pub fn item(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|it| it.text.as_slice())
    }
}

/// What a reader found.
#[derive(Debug)]
pub enum Event {
    Value(Value),
    /// Bytes were lost between values (or took the rest of a damaged value with
    /// them): values may be missing here. `last_data_ts` is when this direction last
    /// carried data before the loss.
    Lost {
        last_data_ts: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line: a value's header or a simple value.
    Line,
    /// Inside a bulk payload; `remaining` counts its closing CRLF.
    Bulk { remaining: u64 },
    /// Looking for the next plausible value start after lost or invalid bytes.
    Resync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Aggregate,
    Attribute,
    /// A streamed string (`$?`): chunks `;n` until `;0`.
    StreamedString,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: FrameKind,
    /// Elements still to come; `None` for a streamed aggregate (ends with `.`).
    remaining: Option<u64>,
}

/// Where the bytes of the bulk payload being read go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    Top,
    Item(usize),
}

/// One direction's RESP reader.
#[derive(Debug)]
pub struct Reader {
    role: Role,
    state: State,
    line: Vec<u8>,
    line_cut: bool,
    stack: Vec<Frame>,
    cur: Option<Value>,
    target: Target,
    /// The previous byte seen while resynchronising was a line feed.
    after_newline: bool,
    /// Start of the next value may be right here (after a gap).
    fresh: bool,
    budget: BodyBudget,
    last_data_ts: Option<i64>,
    /// The latest acknowledgment this direction carried.
    last_ack: Option<u64>,
    /// The acknowledgment when reading replies lost their framing: they resume only
    /// in a segment acknowledging more.
    resync_ack: Option<u64>,
    /// Values found damaged or invalid.
    pub malformed: u64,
}

fn plausible_start(role: Role, b: u8) -> bool {
    match role {
        Role::Command => b == b'*' || b.is_ascii_alphabetic(),
        Role::Reply => matches!(
            b,
            b'+' | b'-'
                | b':'
                | b'$'
                | b'*'
                | b'%'
                | b'~'
                | b'>'
                | b'_'
                | b'#'
                | b','
                | b'('
                | b'!'
                | b'='
                | b'|'
        ),
    }
}

fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) -> bool {
    let room = cap.saturating_sub(buf.len());
    let take = data.len().min(room);
    buf.extend_from_slice(&data[..take]);
    take < data.len()
}

impl Reader {
    pub fn new(role: Role, midstream: bool, budget: BodyBudget) -> Reader {
        Reader {
            role,
            state: if midstream {
                State::Resync
            } else {
                State::Line
            },
            line: Vec::new(),
            line_cut: false,
            stack: Vec::new(),
            cur: None,
            target: Target::None,
            // A capture that starts mid-way may start at a value boundary.
            after_newline: midstream,
            fresh: false,
            budget,
            last_data_ts: None,
            last_ack: None,
            resync_ack: None,
            malformed: 0,
        }
    }

    /// A value is being read.
    pub fn in_value(&self) -> bool {
        self.cur.is_some()
    }

    /// Reads the bytes at stream offset `offset`.
    pub fn feed(
        &mut self,
        offset: u64,
        data: &[u8],
        ts: i64,
        peer_ack: Option<u64>,
        max_body: usize,
        out: &mut Vec<Event>,
    ) {
        let resync_ack = self.resync_ack;
        if peer_ack.is_some() {
            self.last_ack = peer_ack;
        }
        let mut pos = 0;
        while pos < data.len() {
            match self.state {
                State::Resync if self.role == Role::Reply => {
                    // Inside a lost reply any line may look like a value (the elements
                    // of an array do): replies resume only at a segment that starts
                    // after the client sent something new, as the server's answer to it.
                    let acked_more = match (peer_ack, resync_ack) {
                        (Some(a), Some(b)) => a > b,
                        _ => true,
                    };
                    if pos == 0 && acked_more && plausible_start(self.role, data[0]) {
                        self.fresh = false;
                        self.after_newline = false;
                        self.state = State::Line;
                        continue;
                    }
                    pos = data.len();
                }
                State::Resync => {
                    if self.fresh || self.after_newline {
                        self.fresh = false;
                        self.after_newline = false;
                        if plausible_start(self.role, data[pos]) {
                            self.state = State::Line;
                            continue;
                        }
                    }
                    match memchr::memchr(b'\n', &data[pos..]) {
                        Some(i) => {
                            pos += i + 1;
                            self.after_newline = true;
                        }
                        None => pos = data.len(),
                    }
                }
                State::Line => {
                    if self.cur.is_none() {
                        if self.line.is_empty() && matches!(data[pos], b'\r' | b'\n') {
                            // Blank lines between commands are ignored (Redis does too).
                            pos += 1;
                            continue;
                        }
                        self.cur =
                            Some(Value::new(offset + pos as u64, ts, peer_ack, &self.budget));
                    }
                    match memchr::memchr(b'\n', &data[pos..]) {
                        Some(i) => {
                            let part = &data[pos..pos + i];
                            self.line_cut |= push_capped(&mut self.line, part, MAX_LINE_BYTES);
                            pos += i + 1;
                            self.set_end(offset + pos as u64, ts);
                            if self.line.last() == Some(&b'\r') {
                                self.line.pop();
                            }
                            let line = std::mem::take(&mut self.line);
                            let cut = std::mem::replace(&mut self.line_cut, false);
                            self.on_line(&line, cut, out);
                            self.line = line;
                            self.line.clear();
                        }
                        None => {
                            let part = &data[pos..];
                            self.line_cut |= push_capped(&mut self.line, part, MAX_LINE_BYTES);
                            pos = data.len();
                            self.set_end(offset + pos as u64, ts);
                        }
                    }
                }
                State::Bulk { remaining } => {
                    let n = (remaining.min((data.len() - pos) as u64)) as usize;
                    // The last two bytes of `remaining` are the closing CRLF.
                    let payload_left = remaining.saturating_sub(2);
                    let p = n.min(payload_left as usize);
                    self.bulk_bytes(&data[pos..pos + p], max_body);
                    pos += n;
                    self.set_end(offset + pos as u64, ts);
                    let left = remaining - n as u64;
                    if left == 0 {
                        self.state = State::Line;
                        self.end_bulk(out);
                    } else {
                        self.state = State::Bulk { remaining: left };
                    }
                }
            }
        }
        self.last_data_ts = Some(ts);
    }

    /// `len` bytes of the stream were lost.
    pub fn gap(&mut self, len: u64, gap_flag: Flags, out: &mut Vec<Event>) {
        if let State::Bulk { remaining } = self.state
            && len + 2 <= remaining
        {
            // The hole is inside a bulk payload: framing survives.
            self.state = State::Bulk {
                remaining: remaining - len,
            };
            if let Some(v) = self.cur.as_mut() {
                v.flags |= gap_flag;
                v.end_offset += len;
                match self.target {
                    Target::Top => v.body.gap(len),
                    Target::Item(i) => {
                        if let Some(it) = v.items.get_mut(i) {
                            it.cut = true;
                        }
                    }
                    Target::None => {}
                }
            }
            return;
        }
        if let Some(mut v) = self.cur.take()
            && (v.started || !self.line.is_empty() || !self.stack.is_empty())
        {
            v.flags |= gap_flag;
            v.end_offset += len;
            if !v.started {
                v.flags |= Flags::MALFORMED;
            }
            out.push(Event::Value(v));
        }
        self.reset();
        self.state = State::Resync;
        self.fresh = true;
        self.resync_ack = self.last_ack;
        out.push(Event::Lost {
            last_data_ts: self.last_data_ts,
        });
    }

    /// The direction ended: a value still being read is emitted, cut.
    pub fn end(&mut self, out: &mut Vec<Event>) {
        if let Some(mut v) = self.cur.take()
            && (v.started || !self.line.is_empty())
        {
            if !v.started && self.role == Role::Command {
                // An inline command without its line end.
                let line = std::mem::take(&mut self.line);
                self.inline(&mut v, &line);
            }
            v.flags |= Flags::TRUNCATED;
            out.push(Event::Value(v));
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.stack.clear();
        self.line.clear();
        self.line_cut = false;
        self.cur = None;
        self.target = Target::None;
    }

    fn set_end(&mut self, offset: u64, ts: i64) {
        if let Some(v) = self.cur.as_mut() {
            v.end_offset = offset;
            v.end_ts = ts;
        }
    }

    fn invalid(&mut self, out: &mut Vec<Event>) {
        self.malformed += 1;
        if let Some(mut v) = self.cur.take()
            && v.started
        {
            v.flags |= Flags::MALFORMED;
            out.push(Event::Value(v));
        }
        self.reset();
        self.state = State::Resync;
        self.after_newline = true;
        self.resync_ack = self.last_ack;
    }

    /// Inside an attribute, values annotate and are not kept.
    fn in_attribute(&self) -> bool {
        self.stack.iter().any(|f| f.kind == FrameKind::Attribute)
    }

    fn on_line(&mut self, line: &[u8], cut: bool, out: &mut Vec<Event>) {
        let top = self.stack.is_empty();
        if top && self.role == Role::Command && line.first() != Some(&b'*') {
            let Some(mut v) = self.cur.take() else {
                return;
            };
            if line.is_empty() {
                return;
            }
            self.inline(&mut v, line);
            if cut {
                v.flags |= Flags::HEAD_TOO_LARGE;
            }
            out.push(Event::Value(v));
            return;
        }
        let Some(&t) = line.first() else {
            return self.invalid(out);
        };
        let rest = &line[1..];
        if let Some(f) = self.stack.last()
            && f.kind == FrameKind::StreamedString
        {
            if t != b';' {
                return self.invalid(out);
            }
            return match parse_int(rest) {
                Some(0) => {
                    self.stack.pop();
                    self.complete(out);
                }
                Some(n) if (1..=MAX_BULK_LEN).contains(&n) => {
                    self.state = State::Bulk {
                        remaining: n as u64 + 2,
                    };
                }
                _ => self.invalid(out),
            };
        }
        if cut && !matches!(t, b'+' | b'-') {
            return self.invalid(out);
        }
        match t {
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
                let kind = match t {
                    b'+' => Kind::Simple,
                    b'-' => Kind::Error,
                    b':' => Kind::Integer,
                    b'_' => Kind::Null,
                    b'#' => Kind::Boolean,
                    b',' => Kind::Double,
                    _ => Kind::BigNumber,
                };
                let ok = match kind {
                    Kind::Integer => parse_int(rest).is_some(),
                    Kind::Null => rest.is_empty(),
                    Kind::Boolean => rest == b"t" || rest == b"f",
                    Kind::Double | Kind::BigNumber => {
                        !rest.is_empty() && rest.len() <= 512 && !rest.contains(&b' ')
                    }
                    _ => true,
                };
                if !ok {
                    return self.invalid(out);
                }
                self.begin(kind, None, rest, cut);
                self.complete(out);
            }
            b'$' | b'!' | b'=' => {
                let kind = match t {
                    b'$' => Kind::Bulk,
                    b'!' => Kind::BulkError,
                    _ => Kind::Verbatim,
                };
                if rest == b"?" && t == b'$' {
                    if self.stack.len() >= MAX_DEPTH {
                        return self.invalid(out);
                    }
                    self.begin(kind, None, b"", false);
                    self.stack.push(Frame {
                        kind: FrameKind::StreamedString,
                        remaining: None,
                    });
                    return;
                }
                match parse_int(rest) {
                    Some(-1) if t == b'$' => {
                        self.begin(Kind::Null, None, b"", false);
                        self.complete(out);
                    }
                    Some(n) if (0..=MAX_BULK_LEN).contains(&n) => {
                        self.begin(kind, Some(n), b"", false);
                        self.state = State::Bulk {
                            remaining: n as u64 + 2,
                        };
                    }
                    _ => self.invalid(out),
                }
            }
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let kind = match t {
                    b'*' => Kind::Array,
                    b'%' | b'|' => Kind::Map,
                    b'~' => Kind::Set,
                    _ => Kind::Push,
                };
                if self.stack.len() >= MAX_DEPTH {
                    return self.invalid(out);
                }
                let attr = t == b'|';
                let per = if matches!(t, b'%' | b'|') { 2 } else { 1 };
                if rest == b"?" && !attr {
                    self.begin(kind, None, b"", false);
                    self.stack.push(Frame {
                        kind: FrameKind::Aggregate,
                        remaining: None,
                    });
                    return;
                }
                match parse_int(rest) {
                    Some(-1) if t == b'*' => {
                        self.begin(Kind::Null, None, b"", false);
                        self.complete(out);
                    }
                    Some(n) if (0..=MAX_AGGREGATE_LEN).contains(&n) => {
                        if attr {
                            if n == 0 {
                                return;
                            }
                            if self.stack.is_empty()
                                && let Some(v) = self.cur.as_mut()
                            {
                                v.attributes = true;
                            }
                            self.stack.push(Frame {
                                kind: FrameKind::Attribute,
                                remaining: Some(n as u64 * 2),
                            });
                            return;
                        }
                        self.begin(kind, Some(n), b"", false);
                        if n == 0 {
                            self.complete(out);
                        } else {
                            self.stack.push(Frame {
                                kind: FrameKind::Aggregate,
                                remaining: Some(n as u64 * per),
                            });
                        }
                    }
                    _ => self.invalid(out),
                }
            }
            b'.' if rest.is_empty()
                && self
                    .stack
                    .last()
                    .is_some_and(|f| f.kind == FrameKind::Aggregate && f.remaining.is_none()) =>
            {
                self.stack.pop();
                self.complete(out);
            }
            _ => self.invalid(out),
        }
        if self.role == Role::Command
            && top
            && self
                .cur
                .as_ref()
                .is_some_and(|v| v.started && v.kind != Kind::Array)
        {
            // A command is an array; anything else was read leniently.
            if let Some(v) = self.cur.as_mut() {
                v.flags |= Flags::MALFORMED;
            }
        }
    }

    /// A value begins at the current depth: keep what the entry will show of it.
    fn begin(&mut self, kind: Kind, len: Option<i64>, text: &[u8], cut: bool) {
        self.target = Target::None;
        if self.in_attribute() {
            return;
        }
        let depth = self.stack.len();
        let Some(v) = self.cur.as_mut() else {
            return;
        };
        if depth == 0 {
            v.started = true;
            v.kind = kind;
            v.len = if kind.is_aggregate()
                || matches!(kind, Kind::Bulk | Kind::BulkError | Kind::Verbatim)
            {
                len
            } else {
                None
            };
            v.text_cut = push_capped(&mut v.text, text, MAX_TEXT_BYTES) || cut;
            self.target = Target::Top;
        } else if depth == 1 {
            v.item_count += 1;
            if matches!(kind, Kind::Error | Kind::BulkError) {
                v.errors_inside += 1;
            }
            if v.items.len() < MAX_ITEMS {
                let mut it = Item {
                    kind,
                    text: Vec::new(),
                    len,
                    cut,
                    children: 0,
                };
                it.cut |= push_capped(&mut it.text, text, MAX_ITEM_BYTES);
                v.items.push(it);
                self.target = Target::Item(v.items.len() - 1);
            }
        } else if depth == 2 && v.item_count == v.items.len() as u64 {
            let idx = v.items.len() - 1;
            if let Some(it) = v.items.last_mut()
                && it.kind.is_aggregate()
            {
                it.children += 1;
                if it.children == 1 && !kind.is_aggregate() {
                    it.cut |= push_capped(&mut it.text, text, MAX_ITEM_BYTES);
                    self.target = Target::Item(idx);
                }
            }
        }
    }

    fn bulk_bytes(&mut self, bytes: &[u8], max_body: usize) {
        if bytes.is_empty() {
            return;
        }
        let Some(v) = self.cur.as_mut() else {
            return;
        };
        match self.target {
            Target::Top => {
                v.text_cut |= push_capped(&mut v.text, bytes, MAX_TEXT_BYTES);
                v.body.push(bytes, max_body);
            }
            Target::Item(i) => {
                if let Some(it) = v.items.get_mut(i) {
                    it.cut |= push_capped(&mut it.text, bytes, MAX_ITEM_BYTES);
                }
            }
            Target::None => {}
        }
    }

    fn end_bulk(&mut self, out: &mut Vec<Event>) {
        if self
            .stack
            .last()
            .is_some_and(|f| f.kind == FrameKind::StreamedString)
        {
            // One chunk of a streamed string; more follow until `;0`.
            return;
        }
        self.complete(out);
    }

    /// A value ended at the current depth: count it in its parent, which may end too.
    fn complete(&mut self, out: &mut Vec<Event>) {
        self.target = Target::None;
        loop {
            let Some(f) = self.stack.last_mut() else {
                if let Some(v) = self.cur.take() {
                    out.push(Event::Value(v));
                }
                return;
            };
            let Some(r) = f.remaining else {
                // A streamed aggregate ends with `.`, a streamed string with `;0`.
                return;
            };
            let r = r.saturating_sub(1);
            f.remaining = Some(r);
            if r > 0 {
                return;
            }
            let done = self.stack.pop();
            if done.is_some_and(|f| f.kind == FrameKind::Attribute) {
                // An attribute annotates the value that follows; it is not one.
                return;
            }
        }
    }

    fn inline(&mut self, v: &mut Value, line: &[u8]) {
        v.started = true;
        v.kind = Kind::Inline;
        v.text_cut = push_capped(&mut v.text, line, MAX_TEXT_BYTES);
        let words = split_inline(line);
        v.item_count = words.len() as u64;
        for w in words.into_iter().take(MAX_ITEMS) {
            let mut text = Vec::new();
            let cut = push_capped(&mut text, &w, MAX_ITEM_BYTES);
            v.items.push(Item {
                kind: Kind::Bulk,
                len: Some(w.len() as i64),
                text,
                cut,
                children: 0,
            });
        }
    }
}

/// Splits an inline command into words the way Redis does (`sdssplitargs`): spaces
/// separate, double quotes allow escapes (`\n`, `\xHH`...), single quotes only `\'`.
pub fn split_inline(line: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return words;
        }
        let mut w = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                while i < n && line[i] != b'"' {
                    if line[i] == b'\\' && i + 1 < n {
                        i += 1;
                        let c = line[i];
                        let hex = |b: u8| (b as char).to_digit(16);
                        if c == b'x'
                            && i + 2 < n
                            && let (Some(h), Some(l)) = (hex(line[i + 1]), hex(line[i + 2]))
                        {
                            w.push((h * 16 + l) as u8);
                            i += 3;
                            continue;
                        }
                        w.push(match c {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    } else {
                        w.push(line[i]);
                    }
                    i += 1;
                }
                i += 1;
            }
            b'\'' => {
                i += 1;
                while i < n && line[i] != b'\'' {
                    if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                        i += 1;
                    }
                    w.push(line[i]);
                    i += 1;
                }
                i += 1;
            }
            _ => {
                while i < n && !line[i].is_ascii_whitespace() {
                    w.push(line[i]);
                    i += 1;
                }
            }
        }
        words.push(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(role: Role, chunks: &[&[u8]]) -> Vec<Event> {
        let mut r = Reader::new(role, false, BodyBudget::new(1 << 20));
        let mut out = Vec::new();
        let mut off = 0;
        for c in chunks {
            r.feed(off, c, 1, None, 1024, &mut out);
            off += c.len() as u64;
        }
        out
    }

    fn values(ev: Vec<Event>) -> Vec<Value> {
        ev.into_iter()
            .filter_map(|e| match e {
                Event::Value(v) => Some(v),
                Event::Lost { .. } => None,
            })
            .collect()
    }

    fn words(v: &Value) -> Vec<String> {
        v.items
            .iter()
            .map(|i| String::from_utf8_lossy(&i.text).into_owned())
            .collect()
    }

    #[test]
    fn command_array_in_one_piece_and_byte_by_byte() {
        let cmd = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        let whole = values(read(Role::Command, &[cmd]));
        assert_eq!(whole.len(), 1);
        assert_eq!(words(&whole[0]), ["SET", "key", "value"]);
        assert_eq!(whole[0].wire_len(), cmd.len() as u64);
        assert_eq!(whole[0].kind, Kind::Array);
        let bytes: Vec<&[u8]> = cmd.chunks(1).collect();
        let split = values(read(Role::Command, &bytes));
        assert_eq!(split.len(), 1);
        assert_eq!(words(&split[0]), ["SET", "key", "value"]);
        assert!(split[0].flags.is_empty());
    }

    #[test]
    fn inline_commands_with_quotes() {
        let v = values(read(
            Role::Command,
            &[b"PING\r\nset k \"a b\\x41\" 'it\\'s'\n"],
        ));
        assert_eq!(v.len(), 2);
        assert_eq!(words(&v[0]), ["PING"]);
        assert_eq!(v[0].kind, Kind::Inline);
        assert_eq!(words(&v[1]), ["set", "k", "a bA", "it's"]);
    }

    #[test]
    fn resp3_types() {
        let data: &[u8] = b"%2\r\n+server\r\n$5\r\nredis\r\n+proto\r\n:3\r\n\
            _\r\n#t\r\n,3.14\r\n(12345678901234567890\r\n=15\r\ntxt:Some string\r\n\
            !21\r\nSYNTAX invalid syntax\r\n~2\r\n+a\r\n+b\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";
        let v = values(read(Role::Reply, &[data]));
        let kinds: Vec<_> = v.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Map,
                Kind::Null,
                Kind::Boolean,
                Kind::Double,
                Kind::BigNumber,
                Kind::Verbatim,
                Kind::BulkError,
                Kind::Set,
                Kind::Push
            ]
        );
        assert_eq!(words(&v[0]), ["server", "redis", "proto", "3"]);
        assert_eq!(v[0].len, Some(2));
        assert_eq!(v[5].text, b"txt:Some string");
        assert_eq!(words(&v[8]), ["message", "ch", "hi"]);
        assert!(v.iter().all(|v| v.flags.is_empty()));
    }

    #[test]
    fn attributes_are_skipped_and_streamed_values_read() {
        let data: &[u8] = b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:1\r\n:2\r\n\
            $?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n\
            *?\r\n:1\r\n*1\r\n+x\r\n.\r\n+after\r\n";
        let v = values(read(Role::Reply, &[data]));
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].kind, Kind::Array);
        assert!(v[0].attributes);
        assert_eq!(words(&v[0]), ["1", "2"]);
        assert_eq!(v[1].kind, Kind::Bulk);
        assert_eq!(v[1].text, b"Hello world");
        assert_eq!(v[2].kind, Kind::Array);
        assert_eq!(v[2].item_count, 2);
        assert_eq!(v[3].text, b"after");
    }

    #[test]
    fn nulls_and_nested_arrays() {
        let data: &[u8] = b"$-1\r\n*-1\r\n*2\r\n*2\r\n:1\r\n:2\r\n-ERR x\r\n";
        let v = values(read(Role::Reply, &[data]));
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].kind, Kind::Null);
        assert_eq!(v[1].kind, Kind::Null);
        assert_eq!(v[2].item_count, 2);
        assert_eq!(v[2].errors_inside, 1);
        assert_eq!(v[2].items[0].kind, Kind::Array);
    }

    #[test]
    fn a_large_bulk_streams_without_being_kept() {
        let n = 3_000_000usize;
        let mut data = format!("${n}\r\n").into_bytes();
        data.extend(std::iter::repeat_n(b'x', n));
        data.extend_from_slice(b"\r\n+OK\r\n");
        let chunks: Vec<&[u8]> = data.chunks(1448).collect();
        let v = values(read(Role::Reply, &chunks));
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].len, Some(n as i64));
        assert_eq!(v[0].body.size, n as u64);
        assert_eq!(v[0].body.kept().len(), 1024);
        assert_eq!(v[0].text.len(), MAX_TEXT_BYTES);
        assert_eq!(v[0].wire_len(), data.len() as u64 - 5);
    }

    #[test]
    fn gap_inside_a_bulk_keeps_framing() {
        let mut r = Reader::new(Role::Reply, false, BodyBudget::new(1 << 20));
        let mut out = Vec::new();
        r.feed(0, b"$10\r\nabc", 1, None, 1024, &mut out);
        r.gap(4, Flags::RESPONSE_GAP, &mut out);
        r.feed(12, b"hij\r\n+OK\r\n", 2, None, 1024, &mut out);
        let v = values(out);
        assert_eq!(v.len(), 2);
        assert!(v[0].flags.contains(Flags::RESPONSE_GAP));
        assert_eq!(v[0].wire_len(), 17);
        assert_eq!(v[1].text, b"OK");
    }

    #[test]
    fn gap_across_values_resyncs() {
        let mut r = Reader::new(Role::Command, false, BodyBudget::new(1 << 20));
        let mut out = Vec::new();
        r.feed(0, b"*2\r\n$3\r\nGET\r\n$1", 1, None, 1024, &mut out);
        r.gap(100, Flags::REQUEST_GAP, &mut out);
        r.feed(200, b"1\r\n*1\r\n$4\r\nPING\r\n", 2, None, 1024, &mut out);
        assert!(matches!(out[1], Event::Lost { .. }));
        let v = values(out);
        assert_eq!(v.len(), 2);
        assert!(v[0].flags.contains(Flags::REQUEST_GAP));
        assert_eq!(words(&v[0]), ["GET"]);
        assert_eq!(words(&v[1]), ["PING"]);
    }

    #[test]
    fn garbage_is_flagged_and_skipped() {
        let mut r = Reader::new(Role::Reply, false, BodyBudget::new(1 << 20));
        let mut out = Vec::new();
        // After garbage, replies resume at a segment acknowledging a new command.
        let segs: [(&[u8], u64); 4] = [
            (b"?what\r\n+XX\r\n", 10),
            (b"+OK\r\n:12x\r\n", 20),
            (b":0\r\n", 20),
            (b":5\r\n*2\r\n:1\r\n?\r\n", 30),
        ];
        let mut off = 0;
        for (seg, ack) in segs {
            r.feed(off, seg, 1, Some(ack), 1024, &mut out);
            off += seg.len() as u64;
        }
        let v = values(out);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].text, b"OK");
        assert_eq!(v[1].text, b"5");
        assert!(v[0].flags.is_empty() && v[1].flags.is_empty());
        assert!(v[2].flags.contains(Flags::MALFORMED));
        assert_eq!(r.malformed, 3);
    }
}
