//! One connection attempt: a thread that connects, then reads and parses
//! messages and posts them to the owner's event queue, and a second thread
//! that writes what the owner queues in its [`Outbox`]. Echo requests from
//! the server are answered by the reader right there, so the server's
//! inactivity probe is satisfied even while the main loop is busy.
//!
//! Writing from a thread of its own is what keeps the owner's event loop
//! from ever blocking on a socket: a server that stops reading (SIGSTOP, a
//! full buffer under a large transaction) only makes the queue grow, while
//! the loop goes on answering signals, timers and the other database.

use super::json::Json;
use super::jsonrpc::Message;
use super::remote::Remote;
use super::stream::{self, Closer, TlsSource, Writer};
use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// What a connection thread reports. `generation` tells the owner which
/// attempt it comes from, so reports from an abandoned one are ignored.
pub enum ConnEvent {
    /// Connected; requests can be written to `writer`.
    Connected {
        /// The attempt.
        generation: u64,
        /// Where to write.
        writer: Outbox,
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

/// The queue of a connection's writer thread. Cloned freely; sending never
/// blocks. The bytes queued and not yet written are counted, so a stalled
/// server shows in the logs rather than only in memory.
#[derive(Clone)]
pub struct Outbox {
    tx: Sender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// Queues one serialised message (ending in a newline). Fails only when
    /// the writer thread has ended, i.e. the connection is gone; the reader
    /// then reports why.
    pub fn send_bytes(&self, bytes: Vec<u8>) -> std::io::Result<()> {
        let n = bytes.len();
        self.queued.fetch_add(n, Ordering::Relaxed);
        self.tx.send(bytes).map_err(|_| {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed")
        })
    }

    /// Serialises `message` and queues it.
    pub fn send(&self, message: &Message) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(message)?;
        bytes.push(b'\n');
        self.send_bytes(bytes)
    }

    /// Bytes queued and not yet handed to the socket.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Starts the writer thread for `writer`. When a write fails, the socket is
/// shut down through `closer`, which ends the reader too, and the reader
/// reports the connection closed.
fn spawn_writer(mut writer: Writer, closer: Closer, label: String) -> std::io::Result<Outbox> {
    let (tx, rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        tx,
        queued: queued.clone(),
    };
    std::thread::Builder::new()
        .name(format!("{label} writer"))
        .spawn(move || {
            for bytes in rx {
                let n = bytes.len();
                let done = writer.write_all(&bytes).and_then(|()| writer.flush());
                queued.fetch_sub(n, Ordering::Relaxed);
                if let Err(e) = done {
                    log::debug!("{label}: write failed: {e}");
                    closer.close();
                    return;
                }
            }
            // Every sender is gone: the owner dropped the connection.
        })?;
    Ok(outbox)
}

/// Starts a thread that connects to `remote` and reads from it until the
/// connection ends, adding the bytes it receives to `rx_bytes`.
pub fn spawn(
    remote: Remote,
    tls: Option<Arc<TlsSource>>,
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
    tls: Option<Arc<TlsSource>>,
    connect_timeout: Duration,
    generation: u64,
    post: Post,
    rx_bytes: Arc<AtomicU64>,
) {
    let transport = match stream::connect(&remote, tls.as_deref(), connect_timeout) {
        Ok(t) => t,
        Err(e) => {
            post(ConnEvent::Closed {
                generation,
                reason: format!("connecting to {remote}: {e}"),
            });
            return;
        }
    };
    let clone_closer = |c: &Closer| match c {
        Closer::Unix(s) => s.try_clone().map(Closer::Unix),
        Closer::Tcp(s) => s.try_clone().map(Closer::Tcp),
    };
    let started = clone_closer(&transport.closer).and_then(|for_owner| {
        let for_writer = clone_closer(&transport.closer)?;
        let outbox = spawn_writer(transport.writer, for_writer, format!("ovsdb {remote}"))?;
        Ok((for_owner, outbox))
    });
    let (closer, writer) = match started {
        Ok(c) => c,
        Err(e) => {
            transport.closer.close();
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
    let mut reason = format!("{remote}: connection closed by the server");
    for message in Message::stream(reader) {
        let message = match message {
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
                if let Err(e) = writer.send(&reply) {
                    reason = format!("{remote}: {e}");
                    break;
                }
                // Still activity: lets the owner's own probe know the link
                // is alive.
                post(ConnEvent::Message {
                    generation,
                    message: Message::Notify {
                        method: "echo".into(),
                        params: Json::null(),
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
