//! Framing of the messages between the agent and a provider worker on
//! their socketpair: a 4-byte big-endian length, then that many bytes of
//! JSON. Both ends are this program, so the format serves only to keep a
//! message whole and to bound what a confused or dying worker can make the
//! agent read.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};

/// The largest message either side accepts, in bytes: far above a batch of
/// thousands of ports (a few hundred bytes each), far below what would
/// hurt the agent's memory.
pub const MAX_FRAME: usize = 64 << 20;

/// Writes `msg` as one frame.
///
/// # Errors
/// The writer's error, or `InvalidInput` for a message larger than
/// [`MAX_FRAME`] (nothing is written then).
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {} bytes exceeds {MAX_FRAME}", body.len()),
        ));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    w.write_all(&out)?;
    w.flush()
}

/// Reads one frame. `Ok(None)` when the peer closed the stream between
/// frames (a clean end).
///
/// # Errors
/// `UnexpectedEof` for a stream cut inside a frame (the peer died while
/// writing), `InvalidData` for a length above [`MAX_FRAME`] or a body
/// that is not the expected message, or the reader's own error.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame's length",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Frames arriving in pieces: bytes are pushed as they are read (with a
/// timeout, so no partial read is ever lost) and whole frames taken out.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    /// Where the unread bytes start.
    start: usize,
}

impl FrameBuffer {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True when bytes of an incomplete frame are waiting.
    pub fn has_partial(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The next whole frame, if one has arrived.
    ///
    /// # Errors
    /// `InvalidData` for a length above [`MAX_FRAME`] or a body that is not
    /// the expected message.
    pub fn take<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        let unread = &self.buf[self.start..];
        let Some(len) = unread.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(len.try_into().expect("four bytes")) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes exceeds {MAX_FRAME}"),
            ));
        }
        let Some(body) = unread.get(4..4 + len) else {
            return Ok(None);
        };
        let msg = serde_json::from_slice(body)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.start += 4 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (1 << 20) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Msg {
        Run,
        Prepare(Vec<(u64, String)>),
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Msg::Run).unwrap();
        write_frame(&mut buf, &Msg::Prepare(vec![(7, "lsp1".into())])).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), Some(Msg::Run));
        assert_eq!(
            read_frame::<_, Msg>(&mut r).unwrap(),
            Some(Msg::Prepare(vec![(7, "lsp1".into())]))
        );
        assert_eq!(read_frame::<_, Msg>(&mut r).unwrap(), None);
    }

    #[test]
    fn a_stream_cut_or_garbled_is_an_error_not_a_message() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Msg::Prepare(vec![(1, "x".into())])).unwrap();
        // Cut inside the length, and inside the body.
        for cut in [2, buf.len() - 1] {
            let e = read_frame::<_, Msg>(&mut &buf[..cut]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
        // A length beyond the bound is refused before anything is read.
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let e = read_frame::<_, Msg>(&mut &huge[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A whole frame whose body is not a message.
        let mut bad = 3u32.to_be_bytes().to_vec();
        bad.extend_from_slice(b"{x}");
        let e = read_frame::<_, Msg>(&mut &bad[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn frames_pushed_a_byte_at_a_time_come_out_whole() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &Msg::Run).unwrap();
        write_frame(&mut bytes, &Msg::Prepare(vec![(7, "lsp1".into())])).unwrap();
        let mut fb = FrameBuffer::default();
        let mut got = Vec::new();
        for b in &bytes {
            fb.push(std::slice::from_ref(b));
            while let Some(m) = fb.take::<Msg>().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, [Msg::Run, Msg::Prepare(vec![(7, "lsp1".into())])]);
        assert!(!fb.has_partial());
        fb.push(&((MAX_FRAME + 1) as u32).to_be_bytes());
        assert_eq!(
            fb.take::<Msg>().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
