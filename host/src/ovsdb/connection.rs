//! One connection attempt: a thread that connects, then reads and parses
//! messages and posts them to the owner's event queue. Echo requests from the
//! server are answered right there, so the server's inactivity probe is
//! satisfied even while the main loop is busy.

use super::jsonrpc::Message;
use super::remote::Remote;
use super::stream::{self, Closer, SharedWriter};
use rustls::ClientConfig;
use serde_json::Value;
use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

/// What a connection thread reports. `generation` tells the owner which
/// attempt it comes from, so reports from an abandoned one are ignored.
pub enum ConnEvent {
    /// Connected; requests can be written to `writer`.
    Connected {
        /// The attempt.
        generation: u64,
        /// Where to write.
        writer: SharedWriter,
        /// How to close it.
        closer: Closer,
    },
    /// A message other than an echo request.
    Message {
        /// The attempt.
        generation: u64,
        /// The message.
        message: Message,
    },
    /// The attempt failed or the connection ended.
    Closed {
        /// The attempt.
        generation: u64,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Debug for ConnEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnEvent::Connected { generation, .. } => write!(f, "Connected({generation})"),
            ConnEvent::Message {
                generation,
                message,
            } => {
                write!(f, "Message({generation}, {message:?})")
            }
            ConnEvent::Closed { generation, reason } => write!(f, "Closed({generation}, {reason})"),
        }
    }
}

/// Where a connection thread posts its events.
pub type Post = Arc<dyn Fn(ConnEvent) + Send + Sync>;

/// Counts the bytes read through it into a shared counter.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Serialises `message` and writes it.
pub fn send(writer: &SharedWriter, message: &Message) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(message)?;
    bytes.push(b'\n');
    send_bytes(writer, &bytes)
}

/// Writes one serialised message.
pub fn send_bytes(writer: &SharedWriter, bytes: &[u8]) -> std::io::Result<()> {
    let mut w = writer.lock().unwrap_or_else(PoisonError::into_inner);
    w.write_all(bytes)?;
    w.flush()
}

/// Starts a thread that connects to `remote` and reads from it until the
/// connection ends, adding the bytes it receives to `rx_bytes`.
pub fn spawn(
    remote: Remote,
    tls: Option<Arc<ClientConfig>>,
    connect_timeout: Duration,
    generation: u64,
    post: Post,
    rx_bytes: Arc<AtomicU64>,
) {
    let name = format!("ovsdb {remote}");
    let spawned = std::thread::Builder::new().name(name).spawn({
        let post = post.clone();
        move || run(remote, tls, connect_timeout, generation, post, rx_bytes)
    });
    if let Err(e) = spawned {
        post(ConnEvent::Closed {
            generation,
            reason: format!("cannot start connection thread: {e}"),
        });
    }
}

fn run(
    remote: Remote,
    tls: Option<Arc<ClientConfig>>,
    connect_timeout: Duration,
    generation: u64,
    post: Post,
    rx_bytes: Arc<AtomicU64>,
) {
    let transport = match stream::connect(&remote, tls.as_ref(), connect_timeout) {
        Ok(t) => t,
        Err(e) => {
            post(ConnEvent::Closed {
                generation,
                reason: format!("connecting to {remote}: {e}"),
            });
            return;
        }
    };
    let writer = transport.writer.clone();
    let closer = match &transport.closer {
        Closer::Unix(s) => s.try_clone().map(Closer::Unix),
        Closer::Tcp(s) => s.try_clone().map(Closer::Tcp),
    };
    let closer = match closer {
        Ok(c) => c,
        Err(e) => {
            post(ConnEvent::Closed {
                generation,
                reason: format!("{remote}: {e}"),
            });
            return;
        }
    };
    post(ConnEvent::Connected {
        generation,
        writer: writer.clone(),
        closer,
    });

    let reader = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: transport.reader,
            count: rx_bytes,
        },
    );
    let values = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
    let mut reason = format!("{remote}: connection closed by the server");
    for value in values {
        let message = match value
            .map_err(|e| e.to_string())
            .and_then(Message::from_json)
        {
            Ok(m) => m,
            Err(e) => {
                reason = if e.contains("EOF") {
                    format!("{remote}: connection closed by the server")
                } else {
                    format!("{remote}: protocol error: {e}")
                };
                break;
            }
        };
        match message {
            Message::Request { method, params, id } if method == "echo" => {
                let reply = Message::Reply { result: params, id };
                if let Err(e) = send(&writer, &reply) {
                    reason = format!("{remote}: {e}");
                    break;
                }
                // Still activity: lets the owner's own probe know the link
                // is alive.
                post(ConnEvent::Message {
                    generation,
                    message: Message::Notify {
                        method: "echo".into(),
                        params: Value::Array(vec![]),
                    },
                });
            }
            message => post(ConnEvent::Message {
                generation,
                message,
            }),
        }
    }
    transport.closer.close();
    post(ConnEvent::Closed { generation, reason });
}
