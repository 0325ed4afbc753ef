//! A stand-in for the Kubernetes API server, because none can run on the machines these
//! tests run on. It speaks the real wire format at the real paths for the kinds Reef
//! watches, so that kube-rs watchers run unchanged against it:
//!
//! - `GET /api/v1/pods` (and services, nodes, namespaces,
//!   `/apis/discovery.k8s.io/v1/endpointslices`, `/apis/apps/v1/replicasets`,
//!   `/apis/batch/v1/jobs`): a `…List` with `metadata.resourceVersion`. `limit` and
//!   `continue` are ignored: everything comes in one page with no continue token, which is
//!   a valid answer to a paged list.
//! - `?watch=true&resourceVersion=N`: a chunked stream of JSON lines
//!   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{…}}` with every change after
//!   `N`, then live changes; bookmarks every `bookmark_every`; closed after
//!   `timeoutSeconds`. A watch from before the retained history gets the real server's
//!   answer: one ERROR event holding a `Status` with code 410, reason `Expired`.
//!
//! One global, monotonically increasing resourceVersion, as etcd's revision. Tests drive
//! it: [`KubeApi::apply`] / [`KubeApi::delete`] objects, [`KubeApi::compact`] the history
//! (forcing 410s), [`KubeApi::down`] / [`KubeApi::up`] (connections refused meanwhile),
//! [`KubeApi::close_watches`], and count the list and watch requests per kind.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use reef_k8s_watch::kube;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// A kind the server knows: its collection path, kind, list kind and apiVersion.
struct KindSpec {
    path: &'static str,
    kind: &'static str,
    list_kind: &'static str,
    api_version: &'static str,
}

const KINDS: &[KindSpec] = &[
    KindSpec {
        path: "/api/v1/pods",
        kind: "Pod",
        list_kind: "PodList",
        api_version: "v1",
    },
    KindSpec {
        path: "/api/v1/services",
        kind: "Service",
        list_kind: "ServiceList",
        api_version: "v1",
    },
    KindSpec {
        path: "/api/v1/nodes",
        kind: "Node",
        list_kind: "NodeList",
        api_version: "v1",
    },
    KindSpec {
        path: "/api/v1/namespaces",
        kind: "Namespace",
        list_kind: "NamespaceList",
        api_version: "v1",
    },
    KindSpec {
        path: "/apis/discovery.k8s.io/v1/endpointslices",
        kind: "EndpointSlice",
        list_kind: "EndpointSliceList",
        api_version: "discovery.k8s.io/v1",
    },
    KindSpec {
        path: "/apis/apps/v1/replicasets",
        kind: "ReplicaSet",
        list_kind: "ReplicaSetList",
        api_version: "apps/v1",
    },
    KindSpec {
        path: "/apis/batch/v1/jobs",
        kind: "Job",
        list_kind: "JobList",
        api_version: "batch/v1",
    },
];

fn spec_of_kind(kind: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.kind == kind)
}

#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    kind: &'static str,
    typ: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    /// kind → "namespace/name" → object.
    objects: HashMap<&'static str, BTreeMap<String, Value>>,
    history: Vec<Change>,
    /// A watch from a resourceVersion below this has lost events: 410.
    oldest: u64,
    lists: HashMap<&'static str, u64>,
    watches: HashMap<&'static str, u64>,
    /// Watch streams end after this, whatever the client asked.
    max_watch: Option<Duration>,
    uids: u64,
    /// Between `down` and `up`: a request that still arrives on a connection being
    /// closed is refused (503) rather than served, so nothing outlives the outage.
    down: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Every change, sent while holding `state`, so that a watch that subscribes under
    /// the same lock misses nothing and sees nothing twice.
    changes: broadcast::Sender<Change>,
    /// Bumped to end every open watch stream (going down, or `close_watches`).
    epoch: watch::Sender<u64>,
    bookmark_every: Duration,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread poisons nothing worth protecting here.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The stand-in API server. Needs a tokio runtime (multi-threaded or not) while it runs.
pub struct KubeApi {
    inner: Arc<Inner>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

impl KubeApi {
    /// Starts on a free port of 127.0.0.1, with bookmarks every second.
    pub async fn start() -> KubeApi {
        Self::start_with(Duration::from_secs(1)).await
    }

    pub async fn start_with(bookmark_every: Duration) -> KubeApi {
        let (changes, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changes,
            epoch: watch::channel(0).0,
            bookmark_every,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let api = KubeApi {
            inner,
            addr,
            running: Mutex::new(None),
        };
        api.serve(listener);
        api
    }

    fn serve(&self, listener: TcpListener) {
        let app = Router::new()
            .fallback(handle)
            .with_state(self.inner.clone());
        let (shutdown, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running { shutdown, task });
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server: no kubeconfig, no TLS, no auth.
    pub fn client(&self) -> kube::Client {
        let uri: Uri = self.url().parse().expect("a URL");
        kube::Client::try_from(kube::Config::new(uri)).expect("a client")
    }

    /// Stops accepting connections and closes every open one (watch streams included),
    /// as an API server that went away. Requests fail with "connection refused" until
    /// [`up`](Self::up).
    pub async fn down(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(r) = running else { return };
        // The flag first, under the lock watches start under: a watch either started
        // before and ends with the epoch bump, or sees the flag.
        self.inner.lock().down = true;
        self.close_watches();
        let _ = r.shutdown.send(());
        let abort = r.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), r.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    /// Listens again on the same address, with the same state.
    pub async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("rebinding {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebinding {}: {e}", self.addr),
            }
        };
        self.inner.lock().down = false;
        self.serve(listener);
    }

    /// Ends every open watch stream (as `timeoutSeconds` does); clients re-watch.
    pub fn close_watches(&self) {
        self.inner.epoch.send_modify(|e| *e += 1);
    }

    /// Watch streams end after `d` from now on (None: as the client asks).
    pub fn set_max_watch(&self, d: Option<Duration>) {
        self.inner.lock().max_watch = d;
    }

    /// Forgets the history of changes: a watch from any resourceVersion older than the
    /// current one gets 410 Gone, as after etcd compaction.
    pub fn compact(&self) {
        let mut s = self.inner.lock();
        s.history.clear();
        s.oldest = s.rv;
    }

    pub fn resource_version(&self) -> u64 {
        self.inner.lock().rv
    }

    /// List requests served for a kind ("Pod", "Service", …).
    pub fn lists(&self, kind: &str) -> u64 {
        self.inner
            .lock()
            .lists
            .iter()
            .find(|(k, _)| **k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// Watch requests served for a kind.
    pub fn watches(&self, kind: &str) -> u64 {
        self.inner
            .lock()
            .watches
            .iter()
            .find(|(k, _)| **k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// Creates or updates an object (by kind, namespace and name), as a server-side apply
    /// would: a new object gets a uid and a creationTimestamp unless it carries them, an
    /// existing one keeps them; every change gets the next resourceVersion. Returns the
    /// stored object.
    pub fn apply(&self, mut obj: Value) -> Value {
        let kind = obj["kind"]
            .as_str()
            .expect("an object with a kind")
            .to_string();
        let spec = spec_of_kind(&kind).unwrap_or_else(|| panic!("unknown kind {kind}"));
        obj["apiVersion"] = json!(spec.api_version);
        let key = key_of(&obj);
        let mut s = self.inner.lock();
        s.rv += 1;
        let rv = s.rv;
        let existing = s.objects.get(spec.kind).and_then(|m| m.get(&key)).cloned();
        let meta = obj["metadata"].as_object_mut().expect("metadata");
        let typ = match existing {
            Some(old) => {
                for f in ["uid", "creationTimestamp"] {
                    if !meta.contains_key(f) {
                        meta.insert(f.into(), old["metadata"][f].clone());
                    }
                }
                "MODIFIED"
            }
            None => {
                if !meta.contains_key("uid") {
                    s.uids += 1;
                    meta.insert("uid".into(), json!(format!("uid-{}", s.uids)));
                }
                if !meta.contains_key("creationTimestamp") {
                    meta.insert("creationTimestamp".into(), json!(rfc3339_now()));
                }
                "ADDED"
            }
        };
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        s.objects
            .entry(spec.kind)
            .or_default()
            .insert(key, obj.clone());
        self.record(&mut s, spec.kind, typ, obj.clone());
        obj
    }

    /// Deletes an object, sending its last state with a new resourceVersion. Returns it,
    /// or None if there was no such object.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let spec = spec_of_kind(kind).unwrap_or_else(|| panic!("unknown kind {kind}"));
        let key = format!("{namespace}/{name}");
        let mut s = self.inner.lock();
        let mut obj = s.objects.get_mut(spec.kind)?.remove(&key)?;
        s.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        self.record(&mut s, spec.kind, "DELETED", obj.clone());
        Some(obj)
    }

    fn record(&self, s: &mut State, kind: &'static str, typ: &'static str, object: Value) {
        let c = Change {
            rv: s.rv,
            kind,
            typ,
            object,
        };
        s.history.push(c.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.inner.changes.send(c);
    }
}

fn key_of(obj: &Value) -> String {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
    let name = obj["metadata"]["name"].as_str().expect("metadata.name");
    format!("{ns}/{name}")
}

fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic
/// Gregorian), the format of Kubernetes timestamps.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    })
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn handle(AxState(inner): AxState<Arc<Inner>>, uri: Uri) -> Response {
    let Some(spec) = KINDS.iter().find(|k| k.path == uri.path()) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    };
    let q = query(&uri);
    if inner.lock().down {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &status(503, "ServiceUnavailable", "the server is going down"),
        );
    }
    if q.get("watch").is_some_and(|v| v == "true" || v == "1") {
        watch_response(inner, spec, &q)
    } else {
        let mut s = inner.lock();
        *s.lists.entry(spec.kind).or_default() += 1;
        let items: Vec<Value> = s
            .objects
            .get(spec.kind)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        let list = json!({
            "kind": spec.list_kind, "apiVersion": spec.api_version,
            "metadata": {"resourceVersion": s.rv.to_string()},
            "items": items,
        });
        drop(s);
        json_response(StatusCode::OK, &list)
    }
}

fn line(typ: &str, object: &Value) -> Bytes {
    let mut v = json!({"type": typ, "object": object}).to_string();
    v.push('\n');
    Bytes::from(v)
}

fn watch_response(
    inner: Arc<Inner>,
    spec: &'static KindSpec,
    q: &HashMap<String, String>,
) -> Response {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    }));
    let response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();

    let mut s = inner.lock();
    if s.down {
        // Went down since the check in `handle`: an empty stream ends at once.
        return response;
    }
    // Subscribed under the lock `down` takes before bumping the epoch: never misses it.
    let epoch = inner.epoch.subscribe();
    *s.watches.entry(spec.kind).or_default() += 1;
    if from < s.oldest {
        let msg = format!("too old resource version: {from} ({})", s.oldest);
        drop(s);
        // The real server answers 200 and puts the 410 in the stream, then closes it.
        let _ = tx.try_send(line("ERROR", &status(410, "Expired", &msg)));
        return response;
    }
    let backlog: Vec<Change> = s
        .history
        .iter()
        .filter(|c| c.kind == spec.kind && c.rv > from)
        .cloned()
        .collect();
    let changes = inner.changes.subscribe();
    let limit = match (timeout, s.max_watch) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    drop(s);
    tokio::spawn(stream_watch(
        inner, spec, from, backlog, changes, epoch, limit, tx,
    ));
    response
}

// Everything one stream needs, taken under the lock by `watch_response`.
#[allow(clippy::too_many_arguments)]
async fn stream_watch(
    inner: Arc<Inner>,
    spec: &'static KindSpec,
    from: u64,
    backlog: Vec<Change>,
    mut changes: broadcast::Receiver<Change>,
    mut epoch: watch::Receiver<u64>,
    limit: Option<Duration>,
    tx: mpsc::Sender<Bytes>,
) {
    let deadline = tokio::time::sleep(limit.unwrap_or(Duration::from_secs(86_400)));
    tokio::pin!(deadline);
    let mut bookmarks = tokio::time::interval(inner.bookmark_every);
    bookmarks.tick().await;
    let mut last = from;
    for c in backlog {
        last = c.rv;
        if tx.send(line(c.typ, &c.object)).await.is_err() {
            return;
        }
    }
    loop {
        let out: Vec<Bytes> = tokio::select! {
            _ = &mut deadline => return,
            _ = epoch.changed() => return,
            c = changes.recv() => match c {
                Ok(c) if c.kind == spec.kind && c.rv > last => {
                    last = c.rv;
                    vec![line(c.typ, &c.object)]
                }
                Ok(_) => continue,
                // Too slow a reader: end the stream, the client resumes from its last rv.
                Err(_) => return,
            },
            _ = bookmarks.tick() => {
                // Under the lock every change up to `rv` is already queued here: drain
                // them first so that the bookmark never precedes an older event.
                let s = inner.lock();
                let rv = s.rv;
                let mut out = Vec::new();
                loop {
                    match changes.try_recv() {
                        Ok(c) if c.kind == spec.kind && c.rv > last => {
                            last = c.rv;
                            out.push(line(c.typ, &c.object));
                        }
                        Ok(_) => {}
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(_) => return,
                    }
                }
                drop(s);
                last = last.max(rv);
                out.push(line("BOOKMARK", &json!({
                    "kind": spec.kind, "apiVersion": spec.api_version,
                    "metadata": {"resourceVersion": rv.to_string()},
                })));
                out
            }
        };
        for b in out {
            if tx.send(b).await.is_err() {
                return;
            }
        }
    }
}
