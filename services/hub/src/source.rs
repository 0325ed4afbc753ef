//! Where the hub reads enriched batches from: JetStream's REEF_ENRICHED in a cluster, the
//! embedded local bus in `reef local`. Both number messages with one sequence per
//! stream, so positions (cursors) mean the same on every hub.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

/// One stored message: an Arrow IPC entry batch and where it sits in the stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    /// When the bus stored it (ns since the Unix epoch).
    pub time_ns: i64,
    pub payload: Bytes,
    /// Messages after this one at the time it was read, when the bus says.
    pub pending: Option<u64>,
}

/// What a read yields.
#[derive(Debug, Clone)]
pub enum Item {
    Batch(Stored),
    /// Messages the reader asked for that retention has removed.
    Lost {
        from_seq: u64,
        to_seq: u64,
    },
}

/// Where a read begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The first message with this sequence or a later one.
    Seq(u64),
    /// The first message stored at or after this time (ns since the epoch).
    TimeNs(i64),
    /// The oldest retained message.
    First,
    /// Only messages stored from now on.
    New,
}

pub type Items = BoxStream<'static, anyhow::Result<Item>>;

/// A stream of enriched batches that can be read from any position, as often as needed.
pub trait Source: Send + Sync + 'static {
    /// Reads from `start`, then follows new messages until dropped.
    fn read(&self, start: Start) -> BoxFuture<'_, anyhow::Result<Items>>;
    /// One message by sequence; None when it is not (or no longer) stored.
    fn get(&self, seq: u64) -> BoxFuture<'_, anyhow::Result<Option<Stored>>>;
    /// The newest stored sequence (0 when none): `since=now` starts after it.
    fn last_seq(&self) -> BoxFuture<'_, anyhow::Result<u64>>;
    /// Ok when the bus answers and the stream exists; else why not.
    fn ready(&self) -> BoxFuture<'_, Result<(), String>>;
    /// For logs and /readyz.
    fn describe(&self) -> String;
}

pub type SharedSource = Arc<dyn Source>;

/// REEF_ENRICHED on NATS JetStream, read with ordered consumers (one per reader: they
/// are cheap, ephemeral and recreated by the client after a disconnect from the last
/// sequence seen, so a read has no gap).
pub struct JetStreamSource {
    js: async_nats::jetstream::Context,
    stream_name: String,
    filter_subject: String,
}

impl JetStreamSource {
    pub fn new(client: async_nats::Client) -> JetStreamSource {
        JetStreamSource {
            js: async_nats::jetstream::new(client),
            stream_name: reef_schema::subjects::ENRICHED_STREAM.to_string(),
            filter_subject: reef_schema::subjects::ENRICHED_SUBJECTS.to_string(),
        }
    }
}

fn to_ns(t: &async_nats::jetstream::message::Info<'_>) -> i64 {
    t.published.unix_timestamp_nanos() as i64
}

impl Source for JetStreamSource {
    fn read(&self, start: Start) -> BoxFuture<'_, anyhow::Result<Items>> {
        Box::pin(async move {
            use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
            let stream = self.js.get_stream(&self.stream_name).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot open stream {}: {e} (is a correlator running against this NATS?)",
                    self.stream_name
                )
            })?;
            let deliver_policy = match start {
                Start::Seq(seq) => DeliverPolicy::ByStartSequence {
                    start_sequence: seq.max(1),
                },
                Start::TimeNs(ns) => DeliverPolicy::ByStartTime {
                    start_time: async_nats::datetime::from_nanos(i128::from(ns))
                        .map_err(|e| anyhow::anyhow!("start time {ns}: {e}"))?,
                },
                Start::First => DeliverPolicy::All,
                Start::New => DeliverPolicy::New,
            };
            let consumer = stream
                .create_consumer(OrderedConfig {
                    filter_subject: self.filter_subject.clone(),
                    deliver_policy,
                    ..Default::default()
                })
                .await
                .map_err(|e| anyhow::anyhow!("cannot create a consumer: {e}"))?;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| anyhow::anyhow!("cannot consume: {e}"))?;
            let wanted = match start {
                Start::Seq(seq) => Some(seq.max(1)),
                _ => None,
            };
            let items = JsItems {
                inner: Box::pin(messages.map(|m| {
                    let m = m.map_err(|e| anyhow::anyhow!("reading {}: {e}", "REEF_ENRICHED"))?;
                    let info = m
                        .info()
                        .map_err(|e| anyhow::anyhow!("a message without JetStream info: {e}"))?;
                    Ok(Stored {
                        seq: info.stream_sequence,
                        time_ns: to_ns(&info),
                        pending: Some(info.pending),
                        payload: m.payload.clone(),
                    })
                })),
                wanted,
                queued: None,
            };
            Ok(Box::pin(items) as Items)
        })
    }

    fn get(&self, seq: u64) -> BoxFuture<'_, anyhow::Result<Option<Stored>>> {
        Box::pin(async move {
            use async_nats::jetstream::stream::RawMessageErrorKind;
            let stream = self
                .js
                .get_stream(&self.stream_name)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open stream {}: {e}", self.stream_name))?;
            match stream.get_raw_message(seq).await {
                Ok(m) => Ok(Some(Stored {
                    seq: m.sequence,
                    time_ns: m.time.unix_timestamp_nanos() as i64,
                    payload: m.payload,
                    pending: None,
                })),
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(anyhow::anyhow!("getting message {seq}: {e}")),
            }
        })
    }

    fn last_seq(&self) -> BoxFuture<'_, anyhow::Result<u64>> {
        Box::pin(async move {
            use async_nats::jetstream::context::GetStreamErrorKind;
            let mut stream = match self.js.get_stream(&self.stream_name).await {
                Ok(s) => s,
                // No correlator has created it yet: nothing is stored.
                Err(e)
                    if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                        if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND) =>
                {
                    return Ok(0);
                }
                Err(e) => anyhow::bail!("cannot open stream {}: {e}", self.stream_name),
            };
            let info = stream
                .info()
                .await
                .map_err(|e| anyhow::anyhow!("stream {} info: {e}", self.stream_name))?;
            Ok(info.state.last_sequence)
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.js
                .get_stream(&self.stream_name)
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "stream {} is not available: {e} (start a correlator, or check --nats)",
                        self.stream_name
                    )
                })
        })
    }

    fn describe(&self) -> String {
        format!("NATS JetStream stream {}", self.stream_name)
    }
}

/// Turns the first message of a read by sequence into `Lost` + message when the
/// sequences it wanted were removed by retention.
struct JsItems {
    inner: Pin<Box<dyn Stream<Item = anyhow::Result<Stored>> + Send>>,
    wanted: Option<u64>,
    queued: Option<Stored>,
}

impl Stream for JsItems {
    type Item = anyhow::Result<Item>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if let Some(s) = self.queued.take() {
            return Poll::Ready(Some(Ok(Item::Batch(s))));
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(s))) => {
                if let Some(wanted) = self.wanted.take()
                    && s.seq > wanted
                {
                    let lost = Item::Lost {
                        from_seq: wanted,
                        to_seq: s.seq - 1,
                    };
                    self.queued = Some(s);
                    return Poll::Ready(Some(Ok(lost)));
                }
                self.wanted = None;
                Poll::Ready(Some(Ok(Item::Batch(s))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The embedded bus of `reef local`: enriched batches under `reef.v1.enriched.…`
/// subjects in a local segment log (other subjects are skipped).
pub struct LocalSource {
    bus: reef_local_bus::LocalBus,
}

impl LocalSource {
    pub fn new(bus: reef_local_bus::LocalBus) -> LocalSource {
        LocalSource { bus }
    }
}

const ENRICHED_PREFIX: &str = "reef.v1.enriched.";

impl Source for LocalSource {
    fn read(&self, start: Start) -> BoxFuture<'_, anyhow::Result<Items>> {
        use reef_local_bus::{BusError, Start as BusStart};
        let start = match start {
            Start::Seq(s) => BusStart::Seq(s),
            Start::TimeNs(t) => BusStart::TimeNs(t),
            Start::First => BusStart::First,
            Start::New => BusStart::New,
        };
        let bus = self.bus.clone();
        let reader = self.bus.read(start);
        Box::pin(async move {
            let items = reader.filter_map(move |m| {
                let item = match m {
                    Ok(m) if m.subject.starts_with(ENRICHED_PREFIX) => {
                        Some(Ok(Item::Batch(Stored {
                            pending: Some(bus.last_seq().saturating_sub(m.seq)),
                            seq: m.seq,
                            time_ns: m.time_ns,
                            payload: m.payload,
                        })))
                    }
                    Ok(_) => None,
                    Err(BusError::Lost { from_seq, to_seq }) => {
                        Some(Ok(Item::Lost { from_seq, to_seq }))
                    }
                    // One damaged message: the reader skips it and goes on.
                    Err(e @ (BusError::Corrupt { .. } | BusError::Io { .. })) => {
                        tracing::warn!(error = %e, "local bus: skipped a message");
                        None
                    }
                    Err(e) => Some(Err(anyhow::anyhow!("local bus: {e}"))),
                };
                std::future::ready(item)
            });
            Ok(Box::pin(items) as Items)
        })
    }

    fn get(&self, seq: u64) -> BoxFuture<'_, anyhow::Result<Option<Stored>>> {
        Box::pin(async move {
            Ok(self
                .bus
                .get(seq)
                .map_err(|e| anyhow::anyhow!("local bus: {e}"))?
                .filter(|m| m.subject.starts_with(ENRICHED_PREFIX))
                .map(|m| Stored {
                    seq: m.seq,
                    time_ns: m.time_ns,
                    payload: m.payload,
                    pending: None,
                }))
        })
    }

    fn last_seq(&self) -> BoxFuture<'_, anyhow::Result<u64>> {
        Box::pin(async move { Ok(self.bus.last_seq()) })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { Ok(()) })
    }

    fn describe(&self) -> String {
        format!("local bus in {}", self.bus.dir().display())
    }
}
