//! Byte streams to a database: Unix sockets, TCP, and TLS (rustls), split
//! into a reading half for the connection's reader thread and a writing half
//! shared with whoever sends requests.

use super::remote::Remote;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    InconsistentKeys, SignatureScheme,
};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The key, certificate and CA certificate for `ssl:` remotes.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM private key (`--private-key`).
    pub private_key: PathBuf,
    /// PEM certificate chain presented to the server (`--certificate`).
    pub certificate: PathBuf,
    /// PEM CA certificate(s) the server's certificate must chain to
    /// (`--ca-cert`).
    pub ca_cert: PathBuf,
}

impl TlsFiles {
    /// Loads the files into a client configuration.
    pub fn load(&self) -> Result<Arc<ClientConfig>, String> {
        let read_err = |what: &str, p: &PathBuf, e: &dyn std::fmt::Display| {
            format!("reading {what} {}: {e}", p.display())
        };
        let [key, certificate, ca] =
            [&self.private_key, &self.certificate, &self.ca_cert].map(|p| read_small_file(p));
        let ca = ca.map_err(|e| read_err("CA certificate", &self.ca_cert, &e))?;
        let certificate =
            certificate.map_err(|e| read_err("certificate", &self.certificate, &e))?;
        let key = key.map_err(|e| read_err("private key", &self.private_key, &e))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            let cert = cert.map_err(|e| read_err("CA certificate", &self.ca_cert, &e))?;
            roots
                .add(cert)
                .map_err(|e| read_err("CA certificate", &self.ca_cert, &e))?;
        }
        if roots.is_empty() {
            return Err(format!(
                "{}: no CA certificate found",
                self.ca_cert.display()
            ));
        }
        let chain = CertificateDer::pem_slice_iter(&certificate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_err("certificate", &self.certificate, &e))?;
        if chain.is_empty() {
            return Err(format!(
                "{}: no certificate found",
                self.certificate.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| read_err("private key", &self.private_key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| read_err("private key", &self.private_key, &e))?;
        let ours = CertifiedKey::new(chain, key);
        match ours.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(format!(
                    "the certificate {} does not go with the private key {} \
                     (their public keys differ): were both replaced?",
                    self.certificate.display(),
                    self.private_key.display()
                ))
            }
            // A certificate webpki cannot parse, such as an X.509 version 1
            // one from a hand-made PKI: OVS's OpenSSL presents it and the
            // server judges it, so we present it too, unchecked.
            Err(_) => {}
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("CA certificate {}: {e}", self.ca_cert.display()))?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier(webpki)))
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(ours)));
        // No session resumption: ovsdb-server (OpenSSL, with client
        // certificates required and no session id context) refuses a
        // resumed session with "session id context uninitialized", which
        // would fail every reconnection to the same server once.
        let mut config = config;
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(config))
    }
}

/// The largest key, certificate or CA file read.
const MAX_PEM_FILE: u64 = 1 << 20;

/// Reads a PEM file that must be a regular file of at most
/// [`MAX_PEM_FILE`] bytes: a FIFO or a device named by mistake would
/// otherwise block the connection (or the agent's start) forever.
fn read_small_file(path: &std::path::Path) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("larger than {MAX_PEM_FILE} bytes"),
        ));
    }
    Ok(bytes)
}

/// The TLS files and the configuration last loaded from them, re-read when
/// a file changes, as OVS's `lib/stream-ssl.c` does: certificates rotated
/// under a running agent take effect at its next connection, with no
/// restart. Connections already up keep the session they have.
///
/// The files are compared by content, not by modification time, so a
/// rotation within the same second (or one that preserves times, like
/// `cp -p`) is not missed; they are small, and read only when connecting.
#[derive(Debug)]
pub struct TlsSource {
    files: TlsFiles,
    loaded: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    /// The bytes of the key, certificate and CA files the config came from.
    contents: [Vec<u8>; 3],
    config: Arc<ClientConfig>,
    /// The contents whose loading failed and was already reported.
    reported: Option<[Vec<u8>; 3]>,
}

impl TlsSource {
    /// Loads the files; fails as [`TlsFiles::load`] does, so a mistake is
    /// reported at start rather than at the first connection.
    pub fn new(files: TlsFiles) -> Result<TlsSource, String> {
        let contents = files.contents();
        let config = files.load()?;
        Ok(TlsSource {
            files,
            loaded: Mutex::new(Loaded {
                contents,
                config,
                reported: None,
            }),
        })
    }

    /// The file names.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The configuration for a new connection: reloaded first if a file
    /// changed. When the new files do not load (a rotation caught half
    /// way, a key that does not match its certificate), the last good
    /// configuration is kept and the error is logged once per content.
    pub fn current(&self) -> Arc<ClientConfig> {
        let contents = self.files.contents();
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if contents == loaded.contents {
            // Back to the files in use: a later breakage is news again.
            loaded.reported = None;
            return loaded.config.clone();
        }
        if loaded.reported.as_ref() == Some(&contents) {
            return loaded.config.clone();
        }
        match self.files.load() {
            Ok(config) => {
                log::info!(
                    "TLS: {} changed: using the new files from this connection on",
                    self.files.changed(&loaded.contents, &contents).join(", ")
                );
                loaded.config = config;
                loaded.contents = contents;
                loaded.reported = None;
            }
            Err(e) => {
                log::error!(
                    "TLS: the changed files do not load ({e}): still using the ones loaded before"
                );
                loaded.reported = Some(contents);
            }
        }
        loaded.config.clone()
    }
}

impl TlsFiles {
    /// The files' bytes (empty for a file that cannot be read: the load
    /// then says why).
    fn contents(&self) -> [Vec<u8>; 3] {
        [&self.private_key, &self.certificate, &self.ca_cert]
            .map(|p| read_small_file(p).unwrap_or_default())
    }

    /// The names of the files whose contents differ.
    fn changed(&self, before: &[Vec<u8>; 3], after: &[Vec<u8>; 3]) -> Vec<String> {
        [&self.private_key, &self.certificate, &self.ca_cert]
            .iter()
            .zip(before.iter().zip(after))
            .filter(|(_, (b, a))| b != a)
            .map(|(p, _)| p.display().to_string())
            .collect()
    }
}

/// Verifies the server's certificate chain against the CA, but not its name:
/// OVS's PKI (ovs-pki) issues certificates without subject alternative
/// names, and OVS itself authenticates peers by CA alone. Signatures and
/// validity periods are still checked.
#[derive(Debug)]
struct ChainOnlyVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last, so a name error
        // means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The writing half, owned by the connection's writer thread.
pub type Writer = Box<dyn Write + Send>;

/// A connected stream, split.
pub struct Transport {
    /// Read by the connection thread only.
    pub reader: Box<dyn Read + Send>,
    /// Written by the connection's writer thread only.
    pub writer: Writer,
    /// Shuts the socket down, which also wakes a blocked reader.
    pub closer: Closer,
}

/// Shuts down the underlying socket.
#[derive(Debug)]
pub enum Closer {
    /// A Unix socket.
    Unix(UnixStream),
    /// A TCP socket (plain or TLS).
    Tcp(TcpStream),
}

impl Closer {
    /// Closes both directions; errors (already closed) are ignored.
    pub fn close(&self) {
        let _ = match self {
            Closer::Unix(s) => s.shutdown(Shutdown::Both),
            Closer::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

fn tcp_connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to `remote` (blocking, up to `timeout` per address). `tls` is
/// required for `ssl:` remotes; its files are re-read here if they changed.
pub fn connect(
    remote: &Remote,
    tls: Option<&TlsSource>,
    timeout: Duration,
) -> io::Result<Transport> {
    match remote {
        Remote::Unix(path) => {
            let s = UnixStream::connect(path)?;
            Ok(Transport {
                reader: Box::new(s.try_clone()?),
                writer: Box::new(s.try_clone()?),
                closer: Closer::Unix(s),
            })
        }
        Remote::Tcp { host, port } => {
            let s = tcp_connect(host, *port, timeout)?;
            Ok(Transport {
                reader: Box::new(s.try_clone()?),
                writer: Box::new(s.try_clone()?),
                closer: Closer::Tcp(s),
            })
        }
        Remote::Ssl { host, port } => {
            let config = tls.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "ssl: remotes need --private-key, --certificate and --ca-cert",
                )
            })?;
            let mut sock = tcp_connect(host, *port, timeout)?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let mut conn =
                ClientConnection::new(config.current(), name).map_err(io::Error::other)?;
            // One deadline for the whole handshake, not per read: a server
            // that trickles a byte at a time must not hold us forever.
            let deadline = Instant::now() + timeout;
            while conn.is_handshaking() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "TLS handshake failed: not complete within {} ms",
                            timeout.as_millis()
                        ),
                    ));
                }
                sock.set_read_timeout(Some(left))?;
                sock.set_write_timeout(Some(left))?;
                conn.complete_io(&mut sock).map_err(handshake_error)?;
            }
            sock.set_read_timeout(None)?;
            sock.set_write_timeout(None)?;
            let shared = Arc::new(TlsShared {
                conn: Mutex::new(conn),
                write_order: Mutex::new(()),
                sock: sock.try_clone()?,
            });
            Ok(Transport {
                reader: Box::new(TlsReader {
                    shared: shared.clone(),
                    sock: sock.try_clone()?,
                    pending: Vec::new(),
                }),
                writer: Box::new(TlsWriter { shared }),
                closer: Closer::Tcp(sock),
            })
        }
    }
}

/// A failed TLS handshake, with a hint at the likely misconfiguration.
fn handshake_error(e: io::Error) -> io::Error {
    if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        return io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake failed: the server stopped answering",
        );
    }
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return io::Error::new(e.kind(), format!("TLS handshake failed: {e}"));
    };
    let text = match tls {
        rustls::Error::InvalidCertificate(c) => format!(
            "the server's certificate was refused: {}",
            certificate_problem(c)
        ),
        rustls::Error::AlertReceived(a) => refused_by_the_server(*a),
        other => other.to_string(),
    };
    io::Error::new(e.kind(), format!("TLS handshake failed: {text}"))
}

/// An alert from the server, in an operator's terms. With TLS 1.3 the
/// server judges our certificate after our side of the handshake is done,
/// so its refusal arrives at the first read: both paths say it the same
/// way.
fn refused_by_the_server(alert: AlertDescription) -> String {
    use AlertDescription as A;
    match alert {
        A::UnknownCA
        | A::BadCertificate
        | A::CertificateExpired
        | A::CertificateRevoked
        | A::CertificateUnknown
        | A::CertificateRequired
        | A::UnsupportedCertificate
        | A::DecryptError
        | A::AccessDenied => format!(
            "the server refused our certificate ({alert:?}): does it trust the CA that \
             signed --certificate, is that certificate still valid, and does it go with \
             --private-key?"
        ),
        other => format!("the server ended the session with the alert {other:?}"),
    }
}

/// An error of an established session: a server's alert is explained as
/// in [`handshake_error`], anything else passed through.
fn session_error(e: rustls::Error) -> io::Error {
    match e {
        rustls::Error::AlertReceived(a) => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("TLS: {}", refused_by_the_server(a)),
        ),
        other => io::Error::other(other),
    }
}

/// What an invalid server certificate most likely means, in an operator's
/// terms.
fn certificate_problem(c: &CertificateError) -> String {
    match c {
        // webpki's own error, passed through as `Other`.
        CertificateError::Other(e) if format!("{e:?}").contains("UnsupportedCertVersion") => {
            "it is an X.509 version 1 certificate, and only version 3 is accepted: \
             issue it again with extensions (ovs-pki does; with openssl, pass -extfile)"
                .into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired (or this host's clock is ahead)".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (or this host's clock is behind)".into()
        }
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            format!("{c:?} (is it signed by the CA given with --ca-cert?)")
        }
        other => format!("{other:?}"),
    }
}

/// One TLS session used from two threads. `conn` is locked only while
/// rustls itself runs, never across socket I/O, so the reader can decrypt
/// while a large write is blocked on the socket. `write_order` serialises
/// taking ciphertext out of rustls and writing it, so records reach the
/// socket in sequence.
struct TlsShared {
    conn: Mutex<ClientConnection>,
    write_order: Mutex<()>,
    sock: TcpStream,
}

impl TlsShared {
    fn conn(&self) -> std::sync::MutexGuard<'_, ClientConnection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `plaintext` (may be empty) and whatever rustls has to send.
    fn send(&self, plaintext: &[u8]) -> io::Result<usize> {
        let _order = self
            .write_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (n, ciphertext) = {
            let mut conn = self.conn();
            let n = if plaintext.is_empty() {
                0
            } else {
                conn.writer().write(plaintext)?
            };
            let mut out = Vec::new();
            while conn.wants_write() {
                conn.write_tls(&mut out)?;
            }
            (n, out)
        };
        (&self.sock).write_all(&ciphertext)?;
        Ok(n)
    }
}

struct TlsReader {
    shared: Arc<TlsShared>,
    sock: TcpStream,
    /// Ciphertext read from the socket and not yet given to rustls.
    pending: Vec<u8>,
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let (fed, must_send) = {
                let mut conn = self.shared.conn();
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.pending.is_empty() {
                    (false, false)
                } else {
                    let mut slice = &self.pending[..];
                    conn.read_tls(&mut slice)?;
                    let used = self.pending.len() - slice.len();
                    self.pending.drain(..used);
                    conn.process_new_packets().map_err(session_error)?;
                    (true, conn.wants_write())
                }
            };
            if must_send {
                // Alerts, key updates: sent outside the session lock.
                self.shared.send(&[])?;
            }
            if fed {
                // What was fed may have produced plaintext: look again
                // before blocking on the socket.
                continue;
            }
            let mut tmp = [0u8; 16 * 1024];
            let n = self.sock.read(&mut tmp)?;
            if n == 0 {
                return Ok(0);
            }
            self.pending.extend_from_slice(&tmp[..n]);
        }
    }
}

struct TlsWriter {
    shared: Arc<TlsShared>,
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.shared.conn().writer().flush()?;
        self.shared.send(&[]).map(|_| ())
    }
}
