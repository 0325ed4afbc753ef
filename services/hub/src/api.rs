//! REST handlers, authorization, health and metrics. Bad input gets a 4xx with
//! `{"error": …}` saying what to change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use reef_filter::Filter;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::batch::{Batch, parse_cursor};
use crate::session::{self, From, Out, Session, Spec, now_ns};
use crate::{Hub, servicemap, sql, values};

/// `limit` of `/api/entries` when none is given, and the most it may be.
pub const DEFAULT_ENTRIES_LIMIT: u64 = 100;
pub const MAX_ENTRIES_LIMIT: u64 = 10_000;
/// `since` of `/api/entries` when none is given.
pub const DEFAULT_ENTRIES_SINCE: &str = "-15m";
/// Longest `/api/entries` reads before answering with what it has.
const ENTRIES_TIMEOUT: Duration = Duration::from_secs(30);
/// An API call after an idle time waits this long at most for ingest to fill the window.
const WINDOW_FILL_WAIT: Duration = Duration::from_secs(3);

pub type ApiError = (StatusCode, axum::Json<serde_json::Value>);

pub fn bad(status: StatusCode, msg: impl Into<String>) -> ApiError {
    (
        status,
        axum::Json(serde_json::json!({ "error": msg.into() })),
    )
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    bad(StatusCode::BAD_REQUEST, msg)
}

/// A point in time as clients write it (schemas/hub-api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Now,
    Start,
    Ns(i64),
}

/// `now`, `start`, `-30s` / `-5m` / `-2h` / `-1d`, RFC 3339, or nanoseconds since the epoch.
pub fn parse_time(text: &str, now: i64) -> Result<TimeSpec, String> {
    let t = text.trim();
    match t {
        "now" | "" => return Ok(TimeSpec::Now),
        "start" | "earliest" => return Ok(TimeSpec::Start),
        _ => {}
    }
    if let Some(rel) = t.strip_prefix('-') {
        let (num, unit) =
            rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
        let n: i64 = num.parse().map_err(|_| {
            format!("cannot read the duration in {t:?}: write -30s, -5m, -2h or -1d")
        })?;
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => {
                return Err(format!(
                    "unknown unit in {t:?}: use s, m, h or d (like -5m)"
                ));
            }
        };
        let back = n
            .checked_mul(secs * 1_000_000_000)
            .ok_or_else(|| format!("{t:?} is too far back"))?;
        return Ok(TimeSpec::Ns(now.saturating_sub(back)));
    }
    if let Ok(ns) = t.parse::<i64>() {
        return Ok(TimeSpec::Ns(ns));
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map_err(|e| {
            format!("cannot read the time {t:?} ({e}): use RFC 3339 (2026-11-26T10:00:00Z), -5m, now or start")
        })
        .and_then(|d| {
            d.timestamp_nanos_opt()
                .map(TimeSpec::Ns)
                .ok_or_else(|| format!("{t:?} is out of range"))
        })
}

pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where a subscription starts, from `after` (a cursor) or `since`.
pub async fn resolve_from(
    hub: &Hub,
    after: Option<&str>,
    since: Option<&str>,
) -> Result<(From, Option<i64>), String> {
    if let Some(after) = after.filter(|a| !a.trim().is_empty()) {
        let (seq, row) = parse_cursor(after).ok_or_else(|| {
            format!("{after:?} is not a cursor: send back a `cursor` the hub sent")
        })?;
        return Ok((From::After { seq, row }, None));
    }
    match parse_time(since.unwrap_or("now"), now_ns())? {
        TimeSpec::Now => {
            let last = hub
                .0
                .source
                .last_seq()
                .await
                .map_err(|e| format!("the bus is unavailable: {e:#}"))?;
            Ok((From::Seq(last + 1), Some(now_ns())))
        }
        TimeSpec::Start => Ok((From::First, None)),
        TimeSpec::Ns(ns) => Ok((From::TimeNs(ns), Some(ns))),
    }
}

/// Compiles a filter against the entry schema, with the enum columns' values checked.
pub fn compile_filter(text: &str) -> Result<Filter, reef_filter::FilterError> {
    static DOMAINS: std::sync::OnceLock<reef_filter::Domains> = std::sync::OnceLock::new();
    Filter::compile_with(
        text,
        &reef_schema::entry_schema(),
        DOMAINS.get_or_init(reef_schema::column_domains),
    )
}

fn compile(hub: &Hub, text: &str) -> Result<Arc<Filter>, reef_filter::FilterError> {
    compile_filter(text)
        .map(Arc::new)
        .inspect_err(|_| hub.0.metrics.filter_errors.inc())
}

/// Checks the bearer token on /ws and /api when the hub has one.
pub async fn authorize(State(hub): State<Hub>, req: Request, next: Next) -> Response {
    hub.0.metrics.api_requests.inc();
    let Some(token) = hub.0.config.token.as_deref() else {
        return next.run(req).await;
    };
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_string())
    });
    let ok = [from_header, from_query]
        .iter()
        .flatten()
        .any(|given| constant_time_eq(given.as_bytes(), token.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        hub.0.metrics.api_rejected.inc();
        bad(
            StatusCode::UNAUTHORIZED,
            "this hub needs a token: send `Authorization: Bearer <token>` or add ?token=<token>",
        )
        .into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /api/entries?filter=&since=&until=&after=&limit=`: JSON lines, oldest first.
pub async fn entries(
    State(hub): State<Hub>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    for k in q.keys() {
        if !matches!(
            k.as_str(),
            "filter" | "since" | "until" | "after" | "limit" | "token"
        ) {
            return Err(bad_request(format!(
                "unknown parameter {k:?}: use filter, since, until, after, limit"
            )));
        }
    }
    let filter = compile(&hub, q.get("filter").map_or("", String::as_str))
        .map_err(|e| bad_request(e.message))?;
    let limit = match q.get("limit") {
        None => DEFAULT_ENTRIES_LIMIT,
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|l| (1..=MAX_ENTRIES_LIMIT).contains(l))
            .ok_or_else(|| bad_request(format!("limit must be 1 to {MAX_ENTRIES_LIMIT}")))?,
    };
    let now = now_ns();
    let until = match q.get("until") {
        None => now,
        Some(u) => match parse_time(u, now).map_err(bad_request)? {
            TimeSpec::Ns(ns) => ns,
            TimeSpec::Now => now,
            TimeSpec::Start => return Err(bad_request("until=start selects nothing")),
        },
    };
    let since = q.get("since").map_or(DEFAULT_ENTRIES_SINCE, String::as_str);
    let (from, _) = resolve_from(&hub, q.get("after").map(String::as_str), Some(since))
        .await
        .map_err(|e| {
            if e.starts_with("the bus") {
                bad(StatusCode::SERVICE_UNAVAILABLE, e)
            } else {
                bad_request(e)
            }
        })?;
    hub.0.activity.touch_and_wait(WINDOW_FILL_WAIT).await;
    let spec = Spec {
        sub: 0,
        filter,
        from,
        until_ns: Some(until),
        limit: Some(limit),
        drop_when_slow: false,
    };
    let (tx, mut rx) = mpsc::channel(session::CLIENT_QUEUE_MESSAGES);
    let (_pause_tx, pause_rx) = watch::channel(false);
    let s = Session::new(
        spec,
        Arc::clone(&hub.0.source),
        Arc::clone(&hub.0.window),
        tx,
        pause_rx,
        hub.0.metrics.clone(),
    );
    let task = tokio::spawn(s.run());
    let mut body = String::new();
    let deadline = tokio::time::Instant::now() + ENTRIES_TIMEOUT;
    loop {
        let msg = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(m)) => m,
        };
        match msg {
            Out::Entries { batch, rows, .. } => {
                let summaries = batch
                    .summaries()
                    .map_err(|e| bad(StatusCode::INTERNAL_SERVER_ERROR, e))?;
                for r in rows {
                    body.push_str(&summaries[r as usize]);
                    body.push('\n');
                }
            }
            Out::Complete { .. } => break,
            Out::Error { message } => {
                task.abort();
                return Err(bad(StatusCode::SERVICE_UNAVAILABLE, message));
            }
            Out::Lost { .. } | Out::Stats { .. } | Out::Text(_) => {}
        }
    }
    task.abort();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        body,
    )
        .into_response())
}

/// `GET /api/entries/{id}?cursor=`: the whole entry.
pub async fn entry(
    State(hub): State<Hub>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let found: Option<(Arc<Batch>, usize)> = match q.get("cursor") {
        Some(c) => {
            let (seq, row) = parse_cursor(c)
                .ok_or_else(|| bad_request(format!("{c:?} is not a cursor the hub sent")))?;
            let batch = match hub.0.window.get(seq) {
                Some(b) => Some(b),
                None => match hub.0.source.get(seq).await {
                    Ok(Some(stored)) => Batch::decode(&stored, &reef_schema::entry_schema()).ok(),
                    Ok(None) => None,
                    Err(e) => return Err(bad(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"))),
                },
            };
            batch.and_then(|b| match b.find_id(&id) {
                Some(r) if r == row || b.rows() > row => Some((b, r)),
                _ => None,
            })
        }
        None => {
            hub.0.activity.touch_and_wait(WINDOW_FILL_WAIT).await;
            hub.0
                .window
                .all()
                .into_iter()
                .rev()
                .find_map(|b| b.find_id(&id).map(|r| (b, r)))
        }
    };
    let Some((batch, row)) = found else {
        return Err(bad(
            StatusCode::NOT_FOUND,
            format!(
                "no entry {id:?}{}: it may have left retention",
                if q.contains_key("cursor") {
                    " at that cursor"
                } else {
                    " in this hub's window (pass the cursor the hub sent to look in the stream)"
                }
            ),
        ));
    };
    let one = batch.data.slice(row, 1);
    let entries = reef_schema::entries_from_batch(&one)
        .map_err(|e| bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut out = Vec::new();
    for e in &entries {
        reef_schema::write_json_line(&mut out, e)
            .map_err(|e| bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        out,
    )
        .into_response())
}

pub async fn schema(State(hub): State<Hub>) -> Response {
    hub.0.activity.touch_and_wait(WINDOW_FILL_WAIT).await;
    let window = hub.0.window.all();
    let s = tokio::task::spawn_blocking(move || values::schema(&window)).await;
    match s {
        Ok(s) => axum::Json(s).into_response(),
        Err(e) => bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct FilterBody {
    filter: String,
}

/// Parses a JSON body, with errors that say what to send.
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes, example: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the body must be JSON like {example}: {e}")))
}

/// `POST /api/validate {"filter": …}`.
pub async fn validate(State(hub): State<Hub>, body: Bytes) -> Result<Response, ApiError> {
    let b: FilterBody = json_body(&body, r#"{"filter": "status_code >= 500"}"#)?;
    Ok(axum::Json(match compile(&hub, &b.filter) {
        Ok(_) => serde_json::json!({ "ok": true }),
        Err(e) => serde_json::json!({
            "ok": false,
            "message": e.message,
            "position": e.position.map(|(line, column)| serde_json::json!({"line": line, "column": column})),
        }),
    })
    .into_response())
}

#[derive(Deserialize)]
struct SqlBody {
    sql: String,
}

/// `POST /api/sql {"sql": …}`: read-only SQL over the window.
pub async fn sql(State(hub): State<Hub>, body: Bytes) -> Result<Response, ApiError> {
    let b: SqlBody = json_body(&body, r#"{"sql": "SELECT count(*) FROM entries"}"#)?;
    hub.0.activity.touch_and_wait(WINDOW_FILL_WAIT).await;
    let window = hub.0.window.all();
    // Its own task: a panic inside DataFusion becomes a 400 here, not a dead hub.
    let r = tokio::spawn(async move { sql::run(&b.sql, window).await }).await;
    match r {
        Ok(Ok(result)) => Ok(axum::Json(result).into_response()),
        Ok(Err(e)) => Err(bad_request(e)),
        Err(e) => Err(bad_request(format!("the query failed: {e}"))),
    }
}

/// The store-time range `since`..`until` of a query (either may be absent: the whole
/// window on that side).
fn store_time_range(q: &HashMap<String, String>) -> Result<(i64, i64), ApiError> {
    let now = now_ns();
    let since = match q.get("since").map(|s| parse_time(s, now)).transpose() {
        Err(e) => return Err(bad_request(e)),
        Ok(None | Some(TimeSpec::Start)) => i64::MIN,
        Ok(Some(TimeSpec::Now)) => now,
        Ok(Some(TimeSpec::Ns(ns))) => ns,
    };
    let until = match q.get("until").map(|s| parse_time(s, now)).transpose() {
        Err(e) => return Err(bad_request(e)),
        Ok(None | Some(TimeSpec::Now)) => i64::MAX,
        Ok(Some(TimeSpec::Start)) => return Err(bad_request("until=start selects nothing")),
        Ok(Some(TimeSpec::Ns(ns))) => ns,
    };
    if since > until {
        return Err(bad_request("since is after until"));
    }
    Ok((since, until))
}

/// `GET /api/servicemap?filter=&since=&until=` (since/until by store time, as `/ws`).
pub async fn servicemap(
    State(hub): State<Hub>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let filter = compile(&hub, q.get("filter").map_or("", String::as_str))
        .map_err(|e| bad_request(e.message))?;
    let (since, until) = store_time_range(&q)?;
    hub.0.activity.touch_and_wait(WINDOW_FILL_WAIT).await;
    let window = hub.0.window.all();
    let map = tokio::task::spawn_blocking(move || {
        let mut b = servicemap::Builder::default();
        for batch in window
            .iter()
            .filter(|b| (since..=until).contains(&b.time_ns))
        {
            if filter.matches_all() {
                b.add(&batch.data, None);
                continue;
            }
            let mask = filter.evaluate(&batch.data).map_err(|e| e.message)?;
            let rows: Vec<u32> = (0..mask.len() as u32)
                .filter(|&i| mask.value(i as usize))
                .collect();
            b.add(&batch.data, Some(&rows));
        }
        Ok::<_, String>(b.finish())
    })
    .await
    .map_err(|e| bad_request(e.to_string()))?
    .map_err(bad_request)?;
    Ok(axum::Json(map).into_response())
}

/// `GET /api/stats`.
pub async fn stats(State(hub): State<Hub>) -> Response {
    hub.0.activity.touch();
    let window = hub.0.window.all();
    let mut protocols: HashMap<String, u64> = HashMap::new();
    let mut nodes: HashMap<String, (u64, u64, i64)> = HashMap::new();
    for b in &window {
        let c = b.counts();
        for (p, n) in &c.protocols {
            *protocols.entry(p.clone()).or_default() += n;
        }
        for (node, n) in &c.nodes {
            let e = nodes.entry(node.clone()).or_default();
            e.0 += n;
            e.1 += 1;
            e.2 = e.2.max(b.time_ns);
        }
    }
    let reports = hub
        .0
        .workers
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut names: Vec<String> = nodes.keys().chain(reports.keys()).cloned().collect();
    names.sort();
    names.dedup();
    let workers: Vec<serde_json::Value> = names
        .iter()
        .map(|n| {
            let seen = nodes.get(n).copied().unwrap_or_default();
            let r = reports.get(n);
            serde_json::json!({
                "node": n,
                "entries": seen.0,
                "batches": seen.1,
                "kernel_drops": r.map(|r| r.kernel_drops),
                "dropped": r.map(|r| r.dropped),
                "packets": r.map(|r| r.packets),
                "last_seen": match (r.map(|r| r.time_ns), seen.2) {
                    (Some(t), s) => Some(rfc3339(t.max(s))),
                    (None, 0) => None,
                    (None, s) => Some(rfc3339(s)),
                },
            })
        })
        .collect();
    let w = hub.0.window.stats();
    axum::Json(serde_json::json!({
        "entries_per_s": hub.0.rate.per_second(),
        "protocols": protocols,
        "workers": workers,
        "window": {
            "entries": w.entries,
            "bytes": w.bytes,
            "max_bytes": w.max_bytes,
            "oldest": w.oldest_ns.map(rfc3339),
            "newest": w.newest_ns.map(rfc3339),
        },
        "clients": hub.0.activity.clients(),
        "ingesting": hub.0.activity.ingesting.load(std::sync::atomic::Ordering::Relaxed),
        "source": hub.0.source.describe(),
    }))
    .into_response()
}

pub async fn metrics(State(hub): State<Hub>) -> Response {
    let text = hub.0.metrics.render(
        hub.0.activity.clients(),
        hub.0.window.stats(),
        hub.0
            .activity
            .ingesting
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    (headers, text).into_response()
}

pub async fn readyz(State(hub): State<Hub>) -> Response {
    match hub.0.source.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_parse() {
        let now = 1_000_000_000_000_000_000;
        assert_eq!(parse_time("now", now), Ok(TimeSpec::Now));
        assert_eq!(parse_time("start", now), Ok(TimeSpec::Start));
        assert_eq!(
            parse_time("-5m", now),
            Ok(TimeSpec::Ns(now - 300_000_000_000))
        );
        assert_eq!(
            parse_time("-2h", now),
            Ok(TimeSpec::Ns(now - 7_200_000_000_000))
        );
        assert_eq!(
            parse_time("2026-11-26T10:00:00Z", now),
            Ok(TimeSpec::Ns(1_795_687_200_000_000_000))
        );
        assert_eq!(parse_time("42", now), Ok(TimeSpec::Ns(42)));
        assert!(parse_time("-5x", now).unwrap_err().contains("unit"));
        assert!(
            parse_time("yesterday", now)
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(parse_time("-99999999999999d", now).is_err());
        assert_eq!(
            rfc3339(1_795_687_200_000_000_000),
            "2026-11-26T10:00:00.000Z"
        );
    }
}
