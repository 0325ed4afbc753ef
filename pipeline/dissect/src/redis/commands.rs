//! What Redis commands mean for an entry: their name (with the subcommand of container
//! commands such as `CONFIG GET`), their first key, pub/sub channels, and which
//! arguments are secrets.

/// Where a command's first key is, following Redis's own key specs for the commands
/// clients use most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAt {
    /// A command without keys (or not known to have any).
    None,
    /// The argument at this index (the command name is 0).
    At(usize),
    /// `numkeys` at this index, the first key right after it.
    AfterNumkeys(usize),
    /// The argument after the `STREAMS` keyword (XREAD, XREADGROUP).
    AfterStreams,
}

/// Commands whose first key is their first argument.
const KEY_FIRST: &[&str] = &[
    "APPEND",
    "BITCOUNT",
    "BITFIELD",
    "BITFIELD_RO",
    "BITPOS",
    "BLMOVE",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BZPOPMAX",
    "BZPOPMIN",
    "COPY",
    "DECR",
    "DECRBY",
    "DEL",
    "DUMP",
    "EXISTS",
    "EXPIRE",
    "EXPIREAT",
    "EXPIRETIME",
    "GEOADD",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUS",
    "GEORADIUSBYMEMBER",
    "GEORADIUSBYMEMBER_RO",
    "GEORADIUS_RO",
    "GEOSEARCH",
    "GEOSEARCHSTORE",
    "GET",
    "GETBIT",
    "GETDEL",
    "GETEX",
    "GETRANGE",
    "GETSET",
    "HDEL",
    "HEXISTS",
    "HEXPIRE",
    "HEXPIREAT",
    "HEXPIRETIME",
    "HGET",
    "HGETALL",
    "HGETDEL",
    "HGETEX",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HPERSIST",
    "HPEXPIRE",
    "HPEXPIREAT",
    "HPEXPIRETIME",
    "HPTTL",
    "HRANDFIELD",
    "HSCAN",
    "HSET",
    "HSETEX",
    "HSETNX",
    "HSTRLEN",
    "HTTL",
    "HVALS",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "LCS",
    "LINDEX",
    "LINSERT",
    "LLEN",
    "LMOVE",
    "LPOP",
    "LPOS",
    "LPUSH",
    "LPUSHX",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "MGET",
    "MOVE",
    "MSET",
    "MSETNX",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PEXPIRETIME",
    "PFADD",
    "PFCOUNT",
    "PFDEBUG",
    "PFMERGE",
    "PSETEX",
    "PTTL",
    "RENAME",
    "RENAMENX",
    "RESTORE",
    "RESTORE-ASKING",
    "RPOP",
    "RPOPLPUSH",
    "RPUSH",
    "RPUSHX",
    "SADD",
    "SCARD",
    "SDIFF",
    "SDIFFSTORE",
    "SET",
    "SETBIT",
    "SETEX",
    "SETNX",
    "SETRANGE",
    "SINTER",
    "SINTERSTORE",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SMOVE",
    "SORT",
    "SORT_RO",
    "SPOP",
    "SPUBLISH",
    "SRANDMEMBER",
    "SREM",
    "SSCAN",
    "STRLEN",
    "SUBSTR",
    "SUNION",
    "SUNIONSTORE",
    "TOUCH",
    "TTL",
    "TYPE",
    "UNLINK",
    "WATCH",
    "XACK",
    "XADD",
    "XAUTOCLAIM",
    "XCLAIM",
    "XDEL",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREVRANGE",
    "XSETID",
    "XTRIM",
    "ZADD",
    "ZCARD",
    "ZCOUNT",
    "ZDIFFSTORE",
    "ZINCRBY",
    "ZINTERSTORE",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZPOPMAX",
    "ZPOPMIN",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANGESTORE",
    "ZRANK",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNIONSTORE",
];

/// Commands without keys: known, so that they read as commands when detecting.
const NO_KEYS: &[&str] = &[
    "ACL",
    "ASKING",
    "AUTH",
    "BGREWRITEAOF",
    "BGSAVE",
    "CLIENT",
    "CLUSTER",
    "COMMAND",
    "CONFIG",
    "DBSIZE",
    "DEBUG",
    "DISCARD",
    "ECHO",
    "EXEC",
    "FAILOVER",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "HELLO",
    "INFO",
    "KEYS",
    "LASTSAVE",
    "LATENCY",
    "LOLWUT",
    "MEMORY",
    "MODULE",
    "MONITOR",
    "MULTI",
    "OBJECT",
    "PING",
    "PSUBSCRIBE",
    "PSYNC",
    "PUBLISH",
    "PUBSUB",
    "PUNSUBSCRIBE",
    "QUIT",
    "RANDOMKEY",
    "READONLY",
    "READWRITE",
    "REPLCONF",
    "REPLICAOF",
    "RESET",
    "ROLE",
    "SAVE",
    "SCAN",
    "SCRIPT",
    "SELECT",
    "SHUTDOWN",
    "SLAVEOF",
    "SLOWLOG",
    "SSUBSCRIBE",
    "SUBSCRIBE",
    "SUNSUBSCRIBE",
    "SWAPDB",
    "SYNC",
    "TIME",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
    "WAITAOF",
    "XGROUP",
    "XINFO",
    "MIGRATE",
    "EVAL",
    "EVALSHA",
    "EVAL_RO",
    "EVALSHA_RO",
    "FCALL",
    "FCALL_RO",
    "BLMPOP",
    "BZMPOP",
    "LMPOP",
    "ZMPOP",
    "ZDIFF",
    "ZINTER",
    "ZUNION",
    "ZINTERCARD",
    "SINTERCARD",
    "BITOP",
    "XREAD",
    "XREADGROUP",
];

/// Commands whose second word names a subcommand (`CONFIG GET`, `CLIENT SETNAME`).
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
    "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
];

fn key_at(cmd: &str, sub: Option<&str>) -> KeyAt {
    match cmd {
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" | "BLMPOP"
        | "BZMPOP" => KeyAt::AfterNumkeys(2),
        "LMPOP" | "ZMPOP" | "ZDIFF" | "ZINTER" | "ZUNION" | "ZINTERCARD" | "SINTERCARD" => {
            KeyAt::AfterNumkeys(1)
        }
        "BITOP" => KeyAt::At(2),
        "XREAD" | "XREADGROUP" => KeyAt::AfterStreams,
        "OBJECT" => match sub {
            Some("ENCODING" | "FREQ" | "IDLETIME" | "REFCOUNT") => KeyAt::At(2),
            _ => KeyAt::None,
        },
        "MEMORY" if sub == Some("USAGE") => KeyAt::At(2),
        "XINFO" => match sub {
            Some("STREAM" | "GROUPS" | "CONSUMERS") => KeyAt::At(2),
            _ => KeyAt::None,
        },
        "XGROUP" => match sub {
            Some("CREATE" | "DESTROY" | "CREATECONSUMER" | "DELCONSUMER" | "SETID") => KeyAt::At(2),
            _ => KeyAt::None,
        },
        "MIGRATE" => KeyAt::At(3),
        _ if KEY_FIRST.binary_search(&cmd).is_ok() => KeyAt::At(1),
        _ => KeyAt::None,
    }
}

/// Is this the name of a Redis command (as clients send it, any case)?
pub fn is_known(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > 24 {
        return false;
    }
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    let up = s.to_ascii_uppercase();
    KEY_FIRST.binary_search(&up.as_str()).is_ok() || NO_KEYS.contains(&up.as_str())
}

/// Pub/sub commands whose arguments are channels (or patterns), and how many replies
/// they get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSub {
    /// SUBSCRIBE and its pattern and shard variants: one confirmation per channel.
    Subscribe,
    /// UNSUBSCRIBE and variants: one confirmation per channel named, or, with none
    /// named, one per subscription until the count reaches zero.
    Unsubscribe,
    /// PUBLISH, SPUBLISH: a channel and a message, one integer reply.
    Publish,
}

pub fn pubsub(cmd: &str) -> Option<PubSub> {
    match cmd {
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => Some(PubSub::Subscribe),
        "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => Some(PubSub::Unsubscribe),
        "PUBLISH" | "SPUBLISH" => Some(PubSub::Publish),
        _ => None,
    }
}

/// A command as an entry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The command name, upper case (`CONFIG`).
    pub name: String,
    /// With the subcommand of a container command (`CONFIG GET`).
    pub full: String,
    /// The first key.
    pub key: Option<String>,
    /// The first channel of a pub/sub command.
    pub channel: Option<String>,
}

/// Bytes of a key or channel kept (an entry's `path` is for filtering, not storage).
pub const MAX_KEY_BYTES: usize = 256;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_KEY_BYTES)]).into_owned()
}

/// Names a command from its arguments (the command name first).
pub fn name(args: &[&[u8]]) -> Named {
    let name = args
        .first()
        .map(|a| text(a).to_ascii_uppercase())
        .unwrap_or_default();
    let sub = if CONTAINERS.contains(&name.as_str()) {
        args.get(1).map(|a| text(a).to_ascii_uppercase())
    } else {
        None
    };
    let full = match &sub {
        Some(s) => format!("{name} {s}"),
        None => name.clone(),
    };
    let key = match key_at(&name, sub.as_deref()) {
        KeyAt::None => None,
        KeyAt::At(i) => args.get(i).map(|a| text(a)),
        KeyAt::AfterNumkeys(i) => {
            let n = args
                .get(i)
                .and_then(|a| std::str::from_utf8(a).ok())
                .and_then(|s| s.parse::<u64>().ok());
            match n {
                Some(n) if n > 0 => args.get(i + 1).map(|a| text(a)),
                _ => None,
            }
        }
        KeyAt::AfterStreams => args
            .iter()
            .position(|a| a.eq_ignore_ascii_case(b"STREAMS"))
            .and_then(|p| args.get(p + 1))
            .map(|a| text(a)),
    };
    let key = key.filter(|k| !(name == "MIGRATE" && k.is_empty()));
    let channel = pubsub(&name).and_then(|_| args.get(1)).map(|a| text(a));
    Named {
        name,
        full,
        key,
        channel,
    }
}

/// Which arguments are secrets, shown as `(redacted)`.
pub fn secret(name: &str, args: &[&[u8]], i: usize) -> bool {
    match name {
        // AUTH password, or AUTH username password.
        "AUTH" => i == args.len() - 1 || i >= 2,
        // HELLO protover AUTH username password.
        "HELLO" => args
            .iter()
            .position(|a| a.eq_ignore_ascii_case(b"AUTH"))
            .is_some_and(|p| i == p + 2),
        // MIGRATE ... AUTH password / AUTH2 username password.
        "MIGRATE" => args.iter().enumerate().any(|(p, a)| {
            (a.eq_ignore_ascii_case(b"AUTH") && i == p + 1)
                || (a.eq_ignore_ascii_case(b"AUTH2") && i == p + 2)
        }),
        // ACL SETUSER name >password ...
        "ACL" => args.get(i).is_some_and(|a| a.first() == Some(&b'>')),
        // CONFIG SET requirepass / masterauth value.
        "CONFIG" => {
            i >= 3
                && args.get(i - 1).is_some_and(|k| {
                    k.eq_ignore_ascii_case(b"requirepass") || k.eq_ignore_ascii_case(b"masterauth")
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(args: &[&str]) -> Named {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        name(&a)
    }

    #[test]
    fn key_table_is_sorted() {
        assert!(KEY_FIRST.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn first_keys() {
        assert_eq!(named(&["set", "k", "v"]).key.as_deref(), Some("k"));
        assert_eq!(named(&["GET"]).key, None);
        assert_eq!(named(&["PING"]).key, None);
        assert_eq!(
            named(&["EVAL", "return 1", "1", "a", "b"]).key.as_deref(),
            Some("a")
        );
        assert_eq!(named(&["EVAL", "return 1", "0"]).key, None);
        assert_eq!(
            named(&["ZUNION", "2", "z1", "z2"]).key.as_deref(),
            Some("z1")
        );
        assert_eq!(
            named(&["XREAD", "COUNT", "2", "STREAMS", "s1", "0"])
                .key
                .as_deref(),
            Some("s1")
        );
        assert_eq!(
            named(&["BITOP", "AND", "dest", "a"]).key.as_deref(),
            Some("dest")
        );
        let o = named(&["object", "encoding", "k"]);
        assert_eq!(
            (o.full.as_str(), o.key.as_deref()),
            ("OBJECT ENCODING", Some("k"))
        );
        let c = named(&["CONFIG", "get", "maxmemory"]);
        assert_eq!(
            (c.name.as_str(), c.full.as_str(), c.key),
            ("CONFIG", "CONFIG GET", None)
        );
        assert_eq!(
            named(&["MIGRATE", "h", "1", "", "0", "5", "KEYS", "a"]).key,
            None
        );
        let p = named(&["PUBLISH", "news", "hi"]);
        assert_eq!((p.key, p.channel.as_deref()), (None, Some("news")));
    }

    #[test]
    fn secrets() {
        let a: Vec<&[u8]> = vec![b"AUTH", b"user", b"pw"];
        assert!(!secret("AUTH", &a, 1) && secret("AUTH", &a, 2));
        let a: Vec<&[u8]> = vec![b"AUTH", b"pw"];
        assert!(secret("AUTH", &a, 1));
        let a: Vec<&[u8]> = vec![b"HELLO", b"3", b"AUTH", b"u", b"p"];
        assert!(!secret("HELLO", &a, 3) && secret("HELLO", &a, 4));
    }

    #[test]
    fn known_names() {
        assert!(is_known(b"ping") && is_known(b"LRANGE") && is_known(b"Client"));
        assert!(!is_known(b"HTTP") && !is_known(b""));
    }
}
