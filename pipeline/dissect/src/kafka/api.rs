//! Kafka APIs: names as in the protocol guide, the first flexible version of each,
//! and what Reef reads of their bodies: the topics (and group) a request names, and
//! the error codes of its response.
//!
//! Versions follow the message definitions of Apache Kafka 4.x
//! (`clients/src/main/resources/common/message/*.json`), including the versions that
//! replaced topic names with topic ids (Fetch 13, Produce 13, OffsetCommit and
//! OffsetFetch 10).

use super::wire::{MAX_ARRAY_WALK, Reader, uuid_text};

/// Topics listed per request (`kafka_topics`); further ones are counted.
pub const MAX_TOPICS: usize = 64;
/// Bytes of a topic or group name kept.
const MAX_NAME: usize = 256;

/// API key names, by key.
const NAMES: &[&str] = &[
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "WriteTxnMarkers",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "AlterReplicaLogDirs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "CreateDelegationToken",
    "RenewDelegationToken",
    "ExpireDelegationToken",
    "DescribeDelegationToken",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
    "DescribeClientQuotas",
    "AlterClientQuotas",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
    "Vote",
    "BeginQuorumEpoch",
    "EndQuorumEpoch",
    "DescribeQuorum",
    "AlterPartition",
    "UpdateFeatures",
    "Envelope",
    "FetchSnapshot",
    "DescribeCluster",
    "DescribeProducers",
    "BrokerRegistration",
    "BrokerHeartbeat",
    "UnregisterBroker",
    "DescribeTransactions",
    "ListTransactions",
    "AllocateProducerIds",
    "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe",
    "ControllerRegistration",
    "GetTelemetrySubscriptions",
    "PushTelemetry",
    "AssignReplicasToDirs",
    "ListClientMetricsResources",
    "DescribeTopicPartitions",
    "ShareGroupHeartbeat",
    "ShareGroupDescribe",
    "ShareFetch",
    "ShareAcknowledge",
    "AddRaftVoter",
    "RemoveRaftVoter",
    "UpdateRaftVoter",
    "InitializeShareGroupState",
    "ReadShareGroupState",
    "WriteShareGroupState",
    "DeleteShareGroupState",
    "ReadShareGroupStateSummary",
    "StreamsGroupHeartbeat",
    "StreamsGroupDescribe",
    "DescribeShareGroupOffsets",
    "AlterShareGroupOffsets",
    "DeleteShareGroupOffsets",
];

/// First flexible version per key below 52 (`u8::MAX`: never flexible); APIs from
/// key 52 on are flexible from version 0, except the two quorum-epoch ones.
const FLEXIBLE_FROM: [u8; 52] = [
    9, 12, 6, 9, 4, 2, 6, 3, 8, 6, 3, 6, 4, 4, 4, 5, 3, 255, 3, 5, 4, 2, 2, 4, 3, 3, 3, 1, 3, 2, 2,
    2, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 0, 0, 255, 1, 1, 0, 0,
];

/// Highest version taken for real when detecting (later ones may come; a version
/// far beyond this is no request).
pub const MAX_PLAUSIBLE_VERSION: i16 = 32;

pub fn name(key: i16) -> Option<&'static str> {
    usize::try_from(key)
        .ok()
        .and_then(|k| NAMES.get(k))
        .copied()
}

/// Does `version` of API `key` use compact encodings and tagged fields?
pub fn flexible(key: i16, version: i16) -> bool {
    match key {
        0..=51 => {
            let from = FLEXIBLE_FROM[key as usize];
            from != u8::MAX && version >= i16::from(from)
        }
        53 | 54 => version >= 1,
        _ => true,
    }
}

/// The request header version: 2 for flexible requests (tagged fields after the
/// client id), 1 otherwise (ControlledShutdown v0 alone has no client id).
pub fn request_header_version(key: i16, version: i16) -> u8 {
    if flexible(key, version) {
        2
    } else if key == 7 && version == 0 {
        0
    } else {
        1
    }
}

/// Does the response header carry tagged fields? ApiVersions responses never do (a
/// client must read them before it knows the versions).
pub fn response_header_flexible(key: i16, version: i16) -> bool {
    key != 18 && flexible(key, version)
}

/// What a request names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Topic names, or topic ids (as UUID text) where the version uses ids.
    pub topics: Vec<String>,
    /// Topics beyond [`MAX_TOPICS`].
    pub more_topics: usize,
    /// Topic ids in `topics`, by position, so they can be named once known.
    pub topic_ids: Vec<(usize, [u8; 16])>,
    /// Partitions the request names.
    pub partitions: u64,
    pub group: Option<String>,
    /// Produce: acknowledgments asked for (0: no response comes).
    pub acks: Option<i16>,
    /// Metadata: every topic asked for (a null or, in v0, empty list).
    pub all_topics: bool,
    /// SaslHandshake v0: raw SASL tokens follow, without Kafka headers.
    pub sasl_mechanism: Option<String>,
}

impl Request {
    fn topic(&mut self, name: Option<&[u8]>) {
        if self.topics.len() >= MAX_TOPICS {
            self.more_topics += 1;
            return;
        }
        match name {
            Some(n) => self.topics.push(text(n)),
            None => self.topics.push(String::new()),
        }
    }

    fn topic_id(&mut self, id: [u8; 16]) {
        if self.topics.len() >= MAX_TOPICS {
            self.more_topics += 1;
            return;
        }
        self.topic_ids.push((self.topics.len(), id));
        self.topics.push(uuid_text(&id));
    }
}

fn text(b: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&b[..b.len().min(MAX_NAME)]).into_owned();
    s.retain(|c| !c.is_control());
    s
}

/// Reads what a request body names (`body` starts after the request header). Reads
/// as far as the bytes go: a cut body gives what came before the cut.
pub fn parse_request(key: i16, v: i16, body: &[u8]) -> Request {
    let mut q = Request::default();
    let mut r = Reader::new(body, flexible(key, v));
    let _ = request_body(key, v, &mut r, &mut q);
    q
}

fn request_body(key: i16, v: i16, r: &mut Reader<'_>, q: &mut Request) -> Option<()> {
    match key {
        0 => {
            if v >= 3 {
                r.string()?;
            }
            q.acks = Some(r.i16()?);
            r.i32()?;
            topics(r, q, |r, q| {
                if v >= 13 {
                    q.topic_id(r.uuid()?);
                } else {
                    q.topic(r.string()?);
                }
                each(r, |r| {
                    q.partitions += 1;
                    r.i32()?;
                    r.skip_bytes()?;
                    r.tagged()
                })
            })
        }
        1 => {
            if v <= 14 {
                r.i32()?;
            }
            r.i32()?;
            r.i32()?;
            if v >= 3 {
                r.i32()?;
            }
            if v >= 4 {
                r.i8()?;
            }
            if v >= 7 {
                r.i32()?;
                r.i32()?;
            }
            topics(r, q, |r, q| {
                if v >= 13 {
                    q.topic_id(r.uuid()?);
                } else {
                    q.topic(r.string()?);
                }
                each(r, |r| {
                    q.partitions += 1;
                    let fixed = 4
                        + if v >= 9 { 4 } else { 0 }
                        + 8
                        + if v >= 12 { 4 } else { 0 }
                        + if v >= 5 { 8 } else { 0 }
                        + 4;
                    r.skip(fixed)?;
                    r.tagged()
                })
            })
        }
        2 => {
            r.i32()?;
            if v >= 2 {
                r.i8()?;
            }
            topics(r, q, |r, q| {
                q.topic(r.string()?);
                each(r, |r| {
                    q.partitions += 1;
                    let fixed = 4 + if v >= 4 { 4 } else { 0 } + 8 + if v == 0 { 4 } else { 0 };
                    r.skip(fixed)?;
                    r.tagged()
                })
            })
        }
        3 => {
            let n: i64 = if r.flexible {
                r.uvarint()? as i64 - 1
            } else {
                i64::from(r.i32()?)
            };
            if n < 0 || (n == 0 && v == 0) {
                q.all_topics = true;
                return Some(());
            }
            for _ in 0..(n as usize).min(MAX_ARRAY_WALK) {
                if v >= 10 {
                    let id = r.uuid()?;
                    match r.string()? {
                        Some(name) => q.topic(Some(name)),
                        None => q.topic_id(id),
                    }
                } else {
                    q.topic(r.string()?);
                }
                r.tagged()?;
            }
            Some(())
        }
        8 => {
            q.group = r.string()?.map(text);
            if v >= 1 {
                r.i32()?;
                r.string()?;
            }
            if v >= 7 {
                r.string()?;
            }
            if (2..=4).contains(&v) {
                r.i64()?;
            }
            topics(r, q, |r, q| {
                if v >= 10 {
                    q.topic_id(r.uuid()?);
                } else {
                    q.topic(r.string()?);
                }
                each(r, |r| {
                    q.partitions += 1;
                    let fixed = 4 + 8 + if v >= 6 { 4 } else { 0 } + if v == 1 { 8 } else { 0 };
                    r.skip(fixed)?;
                    r.string()?;
                    r.tagged()
                })
            })
        }
        9 => {
            let fetch_topics = |r: &mut Reader<'_>, q: &mut Request| {
                topics(r, q, |r, q| {
                    if v >= 10 {
                        q.topic_id(r.uuid()?);
                    } else {
                        q.topic(r.string()?);
                    }
                    each(r, |r| {
                        q.partitions += 1;
                        r.i32().map(|_| ())
                    })
                })
            };
            if v <= 7 {
                q.group = r.string()?.map(text);
                fetch_topics(r, q)
            } else {
                each(r, |r| {
                    let g = r.string()?.map(text);
                    if q.group.is_none() {
                        q.group = g;
                    }
                    if v >= 9 {
                        r.string()?;
                        r.i32()?;
                    }
                    fetch_topics(r, q)?;
                    r.tagged()
                })
            }
        }
        10 if v <= 3 => {
            q.group = r.string()?.map(text);
            Some(())
        }
        11 | 12 | 13 | 14 | 68 => {
            q.group = r.string()?.map(text);
            Some(())
        }
        15 | 42 => each(r, |r| {
            let g = r.string()?;
            if q.group.is_none() {
                q.group = g.map(text);
            }
            Some(())
        }),
        17 => {
            q.sasl_mechanism = r.string()?.map(text);
            Some(())
        }
        19 => topics(r, q, |r, q| {
            q.topic(r.string()?);
            r.i32()?;
            r.i16()?;
            each(r, |r| {
                r.i32()?;
                each(r, |r| r.i32().map(|_| ()))?;
                r.tagged()
            })?;
            each(r, |r| {
                r.string()?;
                r.string()?;
                r.tagged()
            })
        }),
        20 => {
            if v >= 6 {
                topics(r, q, |r, q| {
                    let name = r.string()?;
                    let id = r.uuid()?;
                    match name {
                        Some(n) => q.topic(Some(n)),
                        None => q.topic_id(id),
                    }
                    Some(())
                })
            } else {
                each(r, |r| {
                    q.topic(r.string()?);
                    Some(())
                })
            }
        }
        21 | 23 => {
            if key == 23 && v >= 3 {
                r.i32()?;
            }
            topics(r, q, |r, q| {
                q.topic(r.string()?);
                each(r, |r| {
                    q.partitions += 1;
                    r.skip(if key == 21 {
                        12
                    } else {
                        4 + if v >= 2 { 4 } else { 0 } + 4
                    })?;
                    r.tagged()
                })
            })
        }
        28 => {
            r.string()?;
            q.group = r.string()?.map(text);
            r.i64()?;
            r.i16()?;
            if v >= 3 {
                r.i32()?;
                r.string()?;
                r.string()?;
            }
            topics(r, q, |r, q| {
                q.topic(r.string()?);
                each(r, |r| {
                    q.partitions += 1;
                    r.skip(4 + 8 + if v >= 2 { 4 } else { 0 })?;
                    r.string()?;
                    r.tagged()
                })
            })
        }
        75 => topics(r, q, |r, q| {
            q.topic(r.string()?);
            Some(())
        }),
        _ => Some(()),
    }
}

/// An array of structures each ending with tagged fields.
fn topics(
    r: &mut Reader<'_>,
    q: &mut Request,
    mut f: impl FnMut(&mut Reader<'_>, &mut Request) -> Option<()>,
) -> Option<()> {
    let n = r.array_len()?;
    for _ in 0..n.min(MAX_ARRAY_WALK) {
        f(r, q)?;
        r.tagged()?;
    }
    Some(())
}

/// An array whose elements `f` reads whole.
fn each(r: &mut Reader<'_>, mut f: impl FnMut(&mut Reader<'_>) -> Option<()>) -> Option<()> {
    let n = r.array_len()?;
    for _ in 0..n.min(MAX_ARRAY_WALK) {
        f(r)?;
    }
    Some(())
}

/// What a response says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The response's own error code, when its API has one.
    pub error: Option<i16>,
    /// The first non-zero error code of a topic or partition.
    pub nested_error: Option<i16>,
    /// Topics or partitions in error.
    pub errors: u64,
    /// Topic ids and names a Metadata response (v10+) pairs.
    pub topic_names: Vec<([u8; 16], String)>,
    /// The body was cut or malformed before its end.
    pub incomplete: bool,
}

impl Response {
    fn nested(&mut self, code: i16) {
        if code != 0 {
            self.errors += 1;
            self.nested_error.get_or_insert(code);
        }
    }

    /// The entry's status: the response's own error if any, else the first error
    /// of a topic or partition, else 0.
    pub fn status(&self) -> i16 {
        match self.error {
            Some(e) if e != 0 => e,
            _ => self.nested_error.unwrap_or(0),
        }
    }
}

/// Reads a response body (after the response header).
pub fn parse_response(key: i16, v: i16, body: &[u8]) -> Response {
    let mut p = Response::default();
    let mut r = Reader::new(body, flexible(key, v));
    if response_body(key, v, &mut r, &mut p).is_none() {
        p.incomplete = true;
    }
    p
}

/// Where the response's own error code is: `Some(true)` after the throttle time,
/// `Some(false)` first, `None` when it has none (or it depends on the version).
fn top_error(key: i16, v: i16) -> Option<bool> {
    Some(match key {
        4 | 5 | 6 | 7 | 17 | 18 | 36 | 38 | 39 | 40 | 41 | 47 | 52 | 53 | 54 | 55 => false,
        10 if v <= 3 => v >= 1,
        11 => v >= 2,
        12 | 13 | 14 | 16 => v >= 1,
        22 | 25 | 26 | 29 | 45 | 46 | 48 | 50 | 56 | 57 | 59 | 60 | 62 | 63 | 64 | 66 | 67 => true,
        68 | 70 | 71 | 72 | 73 | 74 | 76 | 78 | 79 | 80 | 81 | 82 | 88 => true,
        24 if v >= 4 => true,
        35 if v >= 3 => true,
        43 if v >= 1 => true,
        _ => return None,
    })
}

fn response_body(key: i16, v: i16, r: &mut Reader<'_>, p: &mut Response) -> Option<()> {
    if let Some(throttle_first) = top_error(key, v) {
        if throttle_first {
            r.i32()?;
        }
        p.error = Some(r.i16()?);
        return Some(());
    }
    match key {
        0 => each(r, |r| {
            if v >= 13 {
                r.uuid()?;
            } else {
                r.string()?;
            }
            each(r, |r| {
                r.i32()?;
                p.nested(r.i16()?);
                r.i64()?;
                if v >= 2 {
                    r.i64()?;
                }
                if v >= 5 {
                    r.i64()?;
                }
                if v >= 8 {
                    each(r, |r| {
                        r.i32()?;
                        r.string()?;
                        r.tagged()
                    })?;
                    r.string()?;
                }
                r.tagged()
            })?;
            r.tagged()
        }),
        1 => {
            if v >= 1 {
                r.i32()?;
            }
            if v >= 7 {
                p.error = Some(r.i16()?);
                r.i32()?;
            }
            each(r, |r| {
                if v >= 13 {
                    r.uuid()?;
                } else {
                    r.string()?;
                }
                each(r, |r| {
                    r.i32()?;
                    p.nested(r.i16()?);
                    r.i64()?;
                    if v >= 4 {
                        r.i64()?;
                    }
                    if v >= 5 {
                        r.i64()?;
                    }
                    if v >= 4 {
                        each(r, |r| {
                            r.skip(16)?;
                            r.tagged()
                        })?;
                    }
                    if v >= 11 {
                        r.i32()?;
                    }
                    r.skip_bytes()?;
                    r.tagged()
                })?;
                r.tagged()
            })
        }
        2 => {
            if v >= 2 {
                r.i32()?;
            }
            each(r, |r| {
                r.string()?;
                each(r, |r| {
                    r.i32()?;
                    p.nested(r.i16()?);
                    if v == 0 {
                        each(r, |r| r.i64().map(|_| ()))?;
                    } else {
                        r.skip(16 + if v >= 4 { 4 } else { 0 })?;
                    }
                    r.tagged()
                })?;
                r.tagged()
            })
        }
        3 => {
            if v >= 3 {
                r.i32()?;
            }
            each(r, |r| {
                r.i32()?;
                r.string()?;
                r.i32()?;
                if v >= 1 {
                    r.string()?;
                }
                r.tagged()
            })?;
            if v >= 2 {
                r.string()?;
            }
            if v >= 1 {
                r.i32()?;
            }
            each(r, |r| {
                p.nested(r.i16()?);
                let name = r.string()?;
                if v >= 10 {
                    let id = r.uuid()?;
                    if let Some(n) = name
                        && p.topic_names.len() < super::MAX_TOPIC_IDS
                    {
                        p.topic_names.push((id, text(n)));
                    }
                }
                if v >= 1 {
                    r.i8()?;
                }
                each(r, |r| {
                    p.nested(r.i16()?);
                    r.i32()?;
                    r.i32()?;
                    if v >= 7 {
                        r.i32()?;
                    }
                    each(r, |r| r.i32().map(|_| ()))?;
                    each(r, |r| r.i32().map(|_| ()))?;
                    if v >= 5 {
                        each(r, |r| r.i32().map(|_| ()))?;
                    }
                    r.tagged()
                })?;
                if v >= 8 {
                    r.i32()?;
                }
                r.tagged()
            })?;
            if (8..=10).contains(&v) {
                r.i32()?;
            }
            if v >= 13 {
                p.error = Some(r.i16()?);
            }
            Some(())
        }
        8 => {
            if v >= 3 {
                r.i32()?;
            }
            each(r, |r| {
                if v >= 10 {
                    r.uuid()?;
                } else {
                    r.string()?;
                }
                each(r, |r| {
                    r.i32()?;
                    p.nested(r.i16()?);
                    r.tagged()
                })?;
                r.tagged()
            })
        }
        9 => {
            if v >= 3 {
                r.i32()?;
            }
            let offsets = |r: &mut Reader<'_>, p: &mut Response, ids: bool| {
                each(r, |r| {
                    if ids {
                        r.uuid()?;
                    } else {
                        r.string()?;
                    }
                    each(r, |r| {
                        r.i32()?;
                        r.i64()?;
                        if v >= 5 {
                            r.i32()?;
                        }
                        r.string()?;
                        p.nested(r.i16()?);
                        r.tagged()
                    })?;
                    r.tagged()
                })
            };
            if v <= 7 {
                offsets(r, p, false)?;
                if v >= 2 {
                    p.error = Some(r.i16()?);
                }
                Some(())
            } else {
                each(r, |r| {
                    r.string()?;
                    offsets(r, p, v >= 10)?;
                    let e = r.i16()?;
                    if e != 0 && p.error.is_none_or(|x| x == 0) {
                        p.error = Some(e);
                    } else if p.error.is_none() {
                        p.error = Some(0);
                    }
                    r.tagged()
                })
            }
        }
        19 | 20 => {
            if v >= if key == 19 { 2 } else { 1 } {
                r.i32()?;
            }
            // The first topic's error only: the rest of each element differs by
            // version more than it is worth walking.
            if r.array_len()? > 0 {
                r.string()?;
                if (key == 20 && v >= 6) || (key == 19 && v >= 7) {
                    r.uuid()?;
                }
                p.nested(r.i16()?);
            }
            Some(())
        }
        _ => Some(()),
    }
}

/// Kafka error codes by name (the protocol guide's table).
pub fn error_name(code: i16) -> &'static str {
    const NAMES: &[&str] = &[
        "NONE",
        "OFFSET_OUT_OF_RANGE",
        "CORRUPT_MESSAGE",
        "UNKNOWN_TOPIC_OR_PARTITION",
        "INVALID_FETCH_SIZE",
        "LEADER_NOT_AVAILABLE",
        "NOT_LEADER_OR_FOLLOWER",
        "REQUEST_TIMED_OUT",
        "BROKER_NOT_AVAILABLE",
        "REPLICA_NOT_AVAILABLE",
        "MESSAGE_TOO_LARGE",
        "STALE_CONTROLLER_EPOCH",
        "OFFSET_METADATA_TOO_LARGE",
        "NETWORK_EXCEPTION",
        "COORDINATOR_LOAD_IN_PROGRESS",
        "COORDINATOR_NOT_AVAILABLE",
        "NOT_COORDINATOR",
        "INVALID_TOPIC_EXCEPTION",
        "RECORD_LIST_TOO_LARGE",
        "NOT_ENOUGH_REPLICAS",
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "INVALID_REQUIRED_ACKS",
        "ILLEGAL_GENERATION",
        "INCONSISTENT_GROUP_PROTOCOL",
        "INVALID_GROUP_ID",
        "UNKNOWN_MEMBER_ID",
        "INVALID_SESSION_TIMEOUT",
        "REBALANCE_IN_PROGRESS",
        "INVALID_COMMIT_OFFSET_SIZE",
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "INVALID_TIMESTAMP",
        "UNSUPPORTED_SASL_MECHANISM",
        "ILLEGAL_SASL_STATE",
        "UNSUPPORTED_VERSION",
        "TOPIC_ALREADY_EXISTS",
        "INVALID_PARTITIONS",
        "INVALID_REPLICATION_FACTOR",
        "INVALID_REPLICA_ASSIGNMENT",
        "INVALID_CONFIG",
        "NOT_CONTROLLER",
        "INVALID_REQUEST",
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        "POLICY_VIOLATION",
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        "DUPLICATE_SEQUENCE_NUMBER",
        "INVALID_PRODUCER_EPOCH",
        "INVALID_TXN_STATE",
        "INVALID_PRODUCER_ID_MAPPING",
        "INVALID_TRANSACTION_TIMEOUT",
        "CONCURRENT_TRANSACTIONS",
        "TRANSACTION_COORDINATOR_FENCED",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        "SECURITY_DISABLED",
        "OPERATION_NOT_ATTEMPTED",
        "KAFKA_STORAGE_ERROR",
        "LOG_DIR_NOT_FOUND",
        "SASL_AUTHENTICATION_FAILED",
        "UNKNOWN_PRODUCER_ID",
        "REASSIGNMENT_IN_PROGRESS",
        "DELEGATION_TOKEN_AUTH_DISABLED",
        "DELEGATION_TOKEN_NOT_FOUND",
        "DELEGATION_TOKEN_OWNER_MISMATCH",
        "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
        "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        "DELEGATION_TOKEN_EXPIRED",
        "INVALID_PRINCIPAL_TYPE",
        "NON_EMPTY_GROUP",
        "GROUP_ID_NOT_FOUND",
        "FETCH_SESSION_ID_NOT_FOUND",
        "INVALID_FETCH_SESSION_EPOCH",
        "LISTENER_NOT_FOUND",
        "TOPIC_DELETION_DISABLED",
        "FENCED_LEADER_EPOCH",
        "UNKNOWN_LEADER_EPOCH",
        "UNSUPPORTED_COMPRESSION_TYPE",
        "STALE_BROKER_EPOCH",
        "OFFSET_NOT_AVAILABLE",
        "MEMBER_ID_REQUIRED",
        "PREFERRED_LEADER_NOT_AVAILABLE",
        "GROUP_MAX_SIZE_REACHED",
        "FENCED_INSTANCE_ID",
        "ELIGIBLE_LEADERS_NOT_AVAILABLE",
        "ELECTION_NOT_NEEDED",
        "NO_REASSIGNMENT_IN_PROGRESS",
        "GROUP_SUBSCRIBED_TO_TOPIC",
        "INVALID_RECORD",
        "UNSTABLE_OFFSET_COMMIT",
        "THROTTLING_QUOTA_EXCEEDED",
        "PRODUCER_FENCED",
        "RESOURCE_NOT_FOUND",
        "DUPLICATE_RESOURCE",
        "UNACCEPTABLE_CREDENTIAL",
        "INCONSISTENT_VOTER_SET",
        "INVALID_UPDATE_VERSION",
        "FEATURE_UPDATE_FAILED",
        "PRINCIPAL_DESERIALIZATION_FAILURE",
        "SNAPSHOT_NOT_FOUND",
        "POSITION_OUT_OF_RANGE",
        "UNKNOWN_TOPIC_ID",
        "DUPLICATE_BROKER_REGISTRATION",
        "BROKER_ID_NOT_REGISTERED",
        "INCONSISTENT_TOPIC_ID",
        "INCONSISTENT_CLUSTER_ID",
        "TRANSACTIONAL_ID_NOT_FOUND",
        "FETCH_SESSION_TOPIC_ID_ERROR",
        "INELIGIBLE_REPLICA",
        "NEW_LEADER_ELECTED",
        "OFFSET_MOVED_TO_TIERED_STORAGE",
        "FENCED_MEMBER_EPOCH",
        "UNRELEASED_INSTANCE_ID",
        "UNSUPPORTED_ASSIGNOR",
        "STALE_MEMBER_EPOCH",
        "MISMATCHED_ENDPOINT_TYPE",
        "UNSUPPORTED_ENDPOINT_TYPE",
        "UNKNOWN_CONTROLLER_ID",
        "UNKNOWN_SUBSCRIPTION_ID",
        "TELEMETRY_TOO_LARGE",
        "INVALID_REGISTRATION",
        "TRANSACTION_ABORTABLE",
        "INVALID_RECORD_STATE",
        "SHARE_SESSION_NOT_FOUND",
        "INVALID_SHARE_SESSION_EPOCH",
        "FENCED_STATE_EPOCH",
        "INVALID_VOTER_KEY",
        "DUPLICATE_VOTER",
        "VOTER_NOT_FOUND",
        "INVALID_REGULAR_EXPRESSION",
        "REBOOTSTRAP_REQUIRED",
        "STREAMS_INVALID_TOPOLOGY",
        "STREAMS_INVALID_TOPOLOGY_EPOCH",
        "STREAMS_TOPOLOGY_FENCED",
        "SHARE_SESSION_LIMIT_REACHED",
    ];
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        c => usize::try_from(c)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("UNKNOWN"),
    }
}
