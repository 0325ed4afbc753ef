//! A real `nats-server -js` for tests: its own free loopback port and store directory,
//! never the machine's shared server.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

pub struct NatsServer {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl NatsServer {
    /// Starts a JetStream server on a free port with a fresh store directory.
    pub fn start() -> NatsServer {
        let dir =
            std::env::temp_dir().join(format!("reef-nats-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("store dir");
        let mut s = NatsServer {
            port: free_port(),
            dir,
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every message of `stream` on `subject`, with its headers, read by an ephemeral
/// consumer.
pub fn read_subject(url: &str, stream: &str, subject: &str) -> Vec<async_nats::jetstream::Message> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = async_nats::connect(url).await.expect("connect");
        let js = jetstream::new(client);
        let mut s = js.get_stream(stream).await.expect("stream");
        let total = s.info().await.expect("info").state.messages;
        let c = s
            .create_consumer(consumer::pull::Config {
                filter_subject: subject.to_string(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut out = Vec::new();
        let mut quiet = 0;
        while (out.len() as u64) < total && quiet < 3 {
            let mut batch = c
                .fetch()
                .max_messages(500)
                .expires(Duration::from_millis(300))
                .messages()
                .await
                .expect("fetch");
            let before = out.len();
            while let Some(m) = batch.next().await {
                out.push(m.expect("message"));
            }
            quiet = if out.len() == before { quiet + 1 } else { 0 };
        }
        out
    })
}

/// The rows of every Arrow batch in `messages`, decoded with `f`.
pub fn decode_all<T>(
    messages: &[async_nats::jetstream::Message],
    f: impl Fn(&arrow_array::RecordBatch) -> Vec<T>,
) -> Vec<T> {
    messages
        .iter()
        .flat_map(|m| reef_schema::ipc::decode(&m.payload).expect("Arrow IPC stream bytes"))
        .flat_map(|b| f(&b))
        .collect()
}
