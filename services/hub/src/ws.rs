//! `/ws`: subscriptions over a WebSocket (schemas/hub-api.md).
//!
//! One task reads the client's messages, one writes the session's output; the session
//! itself runs in a third and is replaced by the next `subscribe`.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::Hub;
use crate::api::{TimeSpec, parse_time, resolve_from, rfc3339};
use crate::session::{Out, Session, Spec, now_ns};

/// Largest message a client may send (a subscribe with a filter fits easily).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 << 10;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientMsg {
    Subscribe {
        #[serde(default)]
        filter: Option<String>,
        #[serde(default)]
        since: Option<String>,
        #[serde(default)]
        until: Option<String>,
        #[serde(default)]
        limit: Option<u64>,
        #[serde(default)]
        after: Option<String>,
    },
    Pause,
    Resume,
}

pub async fn handler(State(hub): State<Hub>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection(hub, socket))
}

struct Current {
    task: JoinHandle<()>,
    pause: watch::Sender<bool>,
}

async fn connection(hub: Hub, socket: WebSocket) {
    let _client = hub.0.activity.enter();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Out>(hub.0.config.client_queue.max(2));
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            if sink.send(Message::Text(render(out).into())).await.is_err() {
                break;
            }
        }
    });
    let mut current: Option<Current> = None;
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Binary(_)) => {
                reply(&tx, error_json("send JSON text messages, not binary", None)).await;
                continue;
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        match serde_json::from_str::<ClientMsg>(&text) {
            Err(e) => {
                hub.0.metrics.api_rejected.inc();
                reply(
                    &tx,
                    error_json(
                        &format!(
                            "cannot read this message ({e}): send {{\"type\":\"subscribe\",\"filter\":\"…\"}}, {{\"type\":\"pause\"}} or {{\"type\":\"resume\"}}"
                        ),
                        None,
                    ),
                )
                .await;
            }
            Ok(ClientMsg::Pause) | Ok(ClientMsg::Resume) if current.is_none() => {
                reply(
                    &tx,
                    error_json("nothing to pause or resume: subscribe first", None),
                )
                .await;
            }
            Ok(ClientMsg::Pause) => {
                if let Some(c) = &current {
                    c.pause.send_replace(true);
                }
            }
            Ok(ClientMsg::Resume) => {
                if let Some(c) = &current {
                    c.pause.send_replace(false);
                }
            }
            Ok(ClientMsg::Subscribe {
                filter,
                since,
                until,
                limit,
                after,
            }) => {
                if let Some(c) = current.take() {
                    c.task.abort();
                }
                match subscribe(&hub, filter, since, until, limit, after).await {
                    Err((message, position)) => {
                        hub.0.metrics.api_rejected.inc();
                        reply(&tx, error_json(&message, position)).await;
                    }
                    Ok((spec, subscribed)) => {
                        hub.0.metrics.subscriptions.inc();
                        reply(&tx, subscribed).await;
                        let (pause, paused) = watch::channel(false);
                        let s = Session::new(
                            spec,
                            Arc::clone(&hub.0.source),
                            Arc::clone(&hub.0.window),
                            tx.clone(),
                            paused,
                            hub.0.metrics.clone(),
                        );
                        current = Some(Current {
                            task: tokio::spawn(s.run()),
                            pause,
                        });
                    }
                }
            }
        }
    }
    if let Some(c) = current.take() {
        c.task.abort();
    }
    drop(tx);
    writer.abort();
}

async fn reply(tx: &mpsc::Sender<Out>, text: String) {
    let _ = tx.send(Out::Text(text)).await;
}

fn error_json(message: &str, position: Option<(usize, usize)>) -> String {
    json!({
        "type": "error",
        "message": message,
        "position": position.map(|(line, column)| json!({"line": line, "column": column})),
    })
    .to_string()
}

type Refusal = (String, Option<(usize, usize)>);

async fn subscribe(
    hub: &Hub,
    filter: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u64>,
    after: Option<String>,
) -> Result<(Spec, String), Refusal> {
    let text = filter.unwrap_or_default();
    let compiled = crate::api::compile_filter(&text).map_err(|e| {
        hub.0.metrics.filter_errors.inc();
        (e.message, e.position)
    })?;
    if limit == Some(0) {
        return Err((
            "limit must be at least 1 (leave it out for no limit)".into(),
            None,
        ));
    }
    let now = now_ns();
    let until_ns = match until.as_deref() {
        None => None,
        Some(u) => match parse_time(u, now).map_err(|e| (format!("until: {e}"), None))? {
            TimeSpec::Ns(ns) => Some(ns),
            TimeSpec::Now => Some(now),
            TimeSpec::Start => return Err(("until=start selects nothing".into(), None)),
        },
    };
    let (from, since_ns) = resolve_from(hub, after.as_deref(), since.as_deref())
        .await
        .map_err(|e| (e, None))?;
    let sub = hub.next_sub();
    let subscribed = json!({
        "type": "subscribed",
        "sub": sub,
        "filter": text,
        "since": since_ns.map(rfc3339),
        "until": until_ns.map(rfc3339),
        "limit": limit,
        "after": after,
    })
    .to_string();
    Ok((
        Spec {
            sub,
            filter: Arc::new(compiled),
            from,
            until_ns,
            limit,
            drop_when_slow: true,
        },
        subscribed,
    ))
}

/// The JSON text of a session's message.
pub fn render(out: Out) -> String {
    match out {
        Out::Entries { sub, batch, rows } => match batch.summaries() {
            Ok(summaries) => {
                let mut s = String::with_capacity(64 + rows.len() * 512);
                s.push_str("{\"type\":\"entries\",\"sub\":");
                s.push_str(&sub.to_string());
                s.push_str(",\"entries\":[");
                for (i, &r) in rows.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&summaries[r as usize]);
                }
                s.push_str("],\"cursor\":\"");
                s.push_str(&batch.cursor(rows.last().map_or(0, |&r| r as usize)));
                s.push_str("\"}");
                s
            }
            Err(e) => error_json(&format!("cannot render batch {}: {e}", batch.seq), None),
        },
        Out::Lost { sub, count, reason } => {
            json!({"type": "lost", "sub": sub, "count": count, "reason": reason}).to_string()
        }
        Out::Stats {
            sub,
            seen,
            matched,
            lag_ms,
            paused,
        } => json!({"type": "stats", "sub": sub, "seen": seen, "matched": matched, "lag_ms": lag_ms, "paused": paused})
            .to_string(),
        Out::Complete { sub, reason } => {
            json!({"type": "complete", "sub": sub, "reason": reason}).to_string()
        }
        Out::Error { message } => error_json(&message, None),
        Out::Text(t) => t,
    }
}
