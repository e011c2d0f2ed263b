//! An HTTP/1.1 response body decoded as its bytes come, whatever the reads cut: by
//! Content-Length, chunked (RFC 9112 §7.1: size lines with extensions, trailers), or
//! until the connection closes. The one decoder of both a one-shot answer (read whole)
//! and the event stream (cut into lines as they come, for as long as the daemon runs).

use anyhow::{bail, Result};

/// How the body's end is known.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    /// Content-Length: this many bytes of `total` still to come.
    Length {
        left: u64,
        total: u64,
    },
    Chunked(Chunk),
    /// Neither: the body ends when the connection does.
    ToEof,
}

/// Where the chunked decoder is.
#[derive(Debug, PartialEq, Eq)]
enum Chunk {
    /// Before a size line.
    Size,
    /// Inside a chunk, with this many bytes of it to come.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last (empty) chunk: trailer lines up to an empty one. The data is whole.
    Trailer,
    /// The empty line after the trailers came.
    Done,
}

/// A size line (hex digits and extensions) longer than this is no size line.
const MAX_SIZE_LINE: usize = 1024;

/// The body, decoded as it comes.
#[derive(Debug)]
pub struct Body {
    framing: Framing,
    /// Received, not decoded yet (a size line or a trailer cut in two).
    raw: Vec<u8>,
    /// Decoded, not taken yet.
    data: Vec<u8>,
    /// Bytes held at most (`raw` and `data`): bounds a misbehaving peer.
    limit: usize,
}

impl Body {
    /// The decoder for a response whose head says `transfer_encoding` and `content_length`.
    pub fn new(transfer_encoding: Option<&str>, content_length: Option<&str>, limit: usize) -> Result<Body> {
        let chunked = transfer_encoding.is_some_and(|te| te.trim().to_ascii_lowercase().ends_with("chunked"));
        let framing = match content_length {
            _ if chunked => Framing::Chunked(Chunk::Size),
            Some(len) => {
                let Ok(total) = len.trim().parse::<u64>() else { bail!("bad Content-Length {len:?}") };
                Framing::Length { left: total, total }
            }
            None => Framing::ToEof,
        };
        Ok(Body { framing, raw: Vec::new(), data: Vec::new(), limit })
    }

    /// Bytes from the connection; what they complete is decoded at once.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.framing {
            Framing::ToEof => self.data.extend_from_slice(bytes),
            Framing::Length { left, .. } => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len());
                self.data.extend_from_slice(&bytes[..take]);
                *left -= take as u64;
            }
            Framing::Chunked(_) => {
                self.raw.extend_from_slice(bytes);
                self.dechunk()?;
            }
        }
        if self.raw.len() + self.data.len() > self.limit {
            bail!("an answer over {} bytes", self.limit);
        }
        Ok(())
    }

    fn dechunk(&mut self) -> Result<()> {
        let Framing::Chunked(state) = &mut self.framing else { return Ok(()) };
        let mut at = 0;
        loop {
            let rest = &self.raw[at..];
            match state {
                Chunk::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        at += used;
                        *state = if size == 0 { Chunk::Trailer } else { Chunk::Data(size) };
                    }
                    Ok(httparse::Status::Partial) if rest.len() < MAX_SIZE_LINE => break,
                    _ => bail!("bad chunk size line in a chunked body"),
                },
                Chunk::Data(left) => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(rest.len());
                    self.data.extend_from_slice(&rest[..take]);
                    at += take;
                    *left -= take as u64;
                    if *left == 0 {
                        *state = Chunk::DataEnd;
                    }
                }
                Chunk::DataEnd => {
                    if rest.len() < 2 {
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        bail!("a chunk without its CRLF in a chunked body");
                    }
                    at += 2;
                    *state = Chunk::Size;
                }
                // Trailer fields (RFC 9112 §7.1.2) say nothing the daemon's answer needs.
                Chunk::Trailer => {
                    let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else { break };
                    at += end + 2;
                    if end == 0 {
                        *state = Chunk::Done;
                    }
                }
                Chunk::Done => {
                    // Nothing belongs after the body: the connection closes.
                    at = self.raw.len();
                    break;
                }
            }
        }
        self.raw.drain(..at);
        Ok(())
    }

    /// The whole body came: nothing more is to be read.
    pub fn ended(&self) -> bool {
        matches!(self.framing, Framing::Length { left: 0, .. } | Framing::Chunked(Chunk::Done))
    }

    /// The body at the connection's end: all of it, or why it is cut short. A chunked
    /// body whose last chunk came is whole, its trailers ended or not.
    pub fn finish(self) -> Result<Vec<u8>> {
        match self.framing {
            Framing::Length { left, total } if left > 0 => {
                bail!("body cut short: {} of {total} bytes", total - left)
            }
            Framing::Chunked(Chunk::Size | Chunk::Data(_) | Chunk::DataEnd) => {
                bail!("chunked body cut short")
            }
            _ => Ok(self.data),
        }
    }

    /// The next whole line decoded, without its newline; blank lines are skipped.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        while let Some(end) = self.data.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.data.drain(..=end).take(end).collect();
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some(line);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    fn chunked() -> Body {
        Body::new(Some("chunked"), None, LIMIT).unwrap()
    }

    fn lines(body: &mut Body) -> Vec<String> {
        std::iter::from_fn(|| body.next_line()).map(|l| String::from_utf8(l).unwrap()).collect()
    }

    /// `wire` fed whole, then in every two pieces, then one byte at a time: the same body.
    fn decoded(wire: &[u8]) -> Vec<u8> {
        let mut whole = chunked();
        whole.feed(wire).unwrap();
        assert!(whole.ended());
        let want = whole.finish().unwrap();
        for cut in 0..=wire.len() {
            let mut body = chunked();
            body.feed(&wire[..cut]).unwrap();
            body.feed(&wire[cut..]).unwrap();
            assert!(body.ended(), "cut at {cut}");
            assert_eq!(body.finish().unwrap(), want, "cut at {cut}");
        }
        let mut bytes = chunked();
        for b in wire {
            bytes.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(bytes.ended());
        assert_eq!(bytes.finish().unwrap(), want);
        want
    }

    #[test]
    fn chunks_split_across_reads_give_the_same_body() {
        let wire = b"4\r\n{\"a\"\r\na\r\n:[1,2,3]}\n\r\n0\r\n\r\n";
        assert_eq!(decoded(wire), b"{\"a\":[1,2,3]}\n");
    }

    #[test]
    fn chunk_extensions_are_skipped() {
        let wire = b"4;name=value\r\n{\"a\"\r\na;x;y=\"q\"\r\n:[1,2,3]}\n\r\n0;last\r\n\r\n";
        assert_eq!(decoded(wire), b"{\"a\":[1,2,3]}\n");
    }

    #[test]
    fn trailers_are_skipped_and_end_the_body() {
        let wire = b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Digest: 1\r\n\r\n";
        assert_eq!(decoded(wire), b"abc");
        // Data whole, trailers not: the connection's end leaves the body whole.
        let mut body = chunked();
        body.feed(b"3\r\nabc\r\n0\r\nExpires: ne").unwrap();
        assert!(!body.ended());
        assert_eq!(body.finish().unwrap(), b"abc");
    }

    #[test]
    fn lines_come_whole_whatever_the_chunks_cut() {
        let text = "{\"Action\":\"start\"}\n\n{\"Action\":\"die\"}\n";
        let (a, b) = text.split_at(7);
        let wire = format!("{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
        let mut body = chunked();
        let mut got = Vec::new();
        for b in wire.as_bytes() {
            body.feed(std::slice::from_ref(b)).unwrap();
            got.extend(lines(&mut body));
        }
        assert_eq!(got, ["{\"Action\":\"start\"}", "{\"Action\":\"die\"}"]);
        assert!(body.ended());
    }

    #[test]
    fn a_body_cut_short_is_an_error() {
        let mut body = chunked();
        body.feed(b"10\r\nabc").unwrap();
        assert_eq!(body.finish().unwrap_err().to_string(), "chunked body cut short");
        let mut body = Body::new(None, Some("50"), LIMIT).unwrap();
        body.feed(b"{}").unwrap();
        assert!(!body.ended());
        assert_eq!(body.finish().unwrap_err().to_string(), "body cut short: 2 of 50 bytes");
    }

    #[test]
    fn content_length_stops_at_its_length_and_no_framing_runs_to_eof() {
        let mut body = Body::new(None, Some("9"), LIMIT).unwrap();
        body.feed(b"{\"a\":1}\n\nextra").unwrap();
        assert!(body.ended());
        assert_eq!(body.finish().unwrap(), b"{\"a\":1}\n\n");
        let mut body = Body::new(None, None, LIMIT).unwrap();
        body.feed(b"{\"a\":1}\n").unwrap();
        assert!(!body.ended());
        assert_eq!(body.finish().unwrap(), b"{\"a\":1}\n");
        // Chunked wins over a length (RFC 9112 §6.3).
        let mut body = Body::new(Some("gzip, Chunked"), Some("3"), LIMIT).unwrap();
        body.feed(b"1\r\nx\r\n0\r\n\r\n").unwrap();
        assert_eq!(body.finish().unwrap(), b"x");
        assert_eq!(Body::new(None, Some("x1"), LIMIT).unwrap_err().to_string(), "bad Content-Length \"x1\"");
    }

    #[test]
    fn bad_chunking_is_an_error() {
        assert!(chunked().feed(b"zz\r\nabc").is_err());
        let e = chunked().feed(b"3\r\nabcXY").unwrap_err();
        assert_eq!(e.to_string(), "a chunk without its CRLF in a chunked body");
        assert!(chunked().feed(&[b'1'; 2048]).is_err(), "a size line that never ends");
        let mut small = Body::new(Some("chunked"), None, 8).unwrap();
        assert_eq!(small.feed(b"9\r\n123456789").unwrap_err().to_string(), "an answer over 8 bytes");
    }
}
