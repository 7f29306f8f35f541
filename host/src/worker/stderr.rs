//! What a worker writes to its standard error itself (the C library's
//! "double free detected", a sanitizer's report, the Rust runtime's last
//! words): logged by the agent or `check`, one line each, saying whose it
//! is. A line is kept to [`MAX_LINE`] bytes, so a provider that writes
//! without newlines cannot make the agent hold it all.

use super::process::WORKER_TARGET;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// Longest part of one line that is logged; the rest is counted.
pub const MAX_LINE: usize = 8192;

/// A relay thread; [`Relay::wait`] lets the owner wait for the last line.
pub(crate) struct Relay {
    done: Receiver<()>,
}

impl Relay {
    /// Starts relaying `stderr`, naming the lines after `who`.
    pub(crate) fn start(stderr: impl Read + Send + 'static, who: String) -> Relay {
        let (tx, done) = channel();
        let _ = std::thread::Builder::new()
            .name("worker-stderr".into())
            .spawn(move || {
                relay(stderr, |line, dropped| log_line(&who, line, dropped));
                let _ = tx.send(());
            });
        Relay { done }
    }

    /// Waits up to `within` for the stream's end (the worker, and whatever
    /// it forked, closed it), so that its last words are logged before
    /// its fate is reported.
    /// True once the stream has ended (it can be asked again).
    pub(crate) fn wait(&self, within: Duration) -> bool {
        use std::sync::mpsc::RecvTimeoutError;
        !matches!(
            self.done.recv_timeout(within),
            Err(RecvTimeoutError::Timeout)
        )
    }
}

fn log_line(who: &str, line: &[u8], dropped: usize) {
    let text = crate::text::escape_bytes(line);
    let more = if dropped > 0 {
        format!("... ({dropped} more bytes not logged)")
    } else {
        String::new()
    };
    log::warn!(
        target: WORKER_TARGET,
        "{who} wrote: {}{more}",
        crate::provider::one_line(text.trim_end())
    );
}

/// Calls `emit(line, bytes dropped from it)` for each line read, without
/// its newline, keeping at most [`MAX_LINE`] bytes of a line.
fn relay(stream: impl Read, mut emit: impl FnMut(&[u8], usize)) {
    let mut r = BufReader::new(stream);
    let mut line = Vec::new();
    let mut dropped = 0usize;
    loop {
        let buf = match r.fill_buf() {
            Ok([]) => break,
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let newline = buf.iter().position(|b| *b == b'\n');
        let part = &buf[..newline.unwrap_or(buf.len())];
        let room = MAX_LINE.saturating_sub(line.len()).min(part.len());
        line.extend_from_slice(&part[..room]);
        dropped += part.len() - room;
        let used = newline.map_or(buf.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            emit(&line, dropped);
            line.clear();
            dropped = 0;
        }
    }
    if !line.is_empty() || dropped > 0 {
        emit(&line, dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        relay(input, |l, d| out.push((l.to_vec(), d)));
        out
    }

    #[test]
    fn lines_are_split_and_long_ones_cut_with_a_count() {
        assert_eq!(
            lines(b"one\ntwo\nlast"),
            [
                (b"one".to_vec(), 0),
                (b"two".to_vec(), 0),
                (b"last".to_vec(), 0)
            ]
        );
        let long = vec![b'x'; MAX_LINE * 3 + 5];
        let got = lines(&[&long[..], b"\nafter\n"].concat());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.len(), MAX_LINE);
        assert_eq!(got[0].1, MAX_LINE * 2 + 5);
        assert_eq!(got[1], (b"after".to_vec(), 0));
        assert!(lines(b"").is_empty());
    }
}
