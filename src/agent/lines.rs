//! Reading a client's request lines without leaving copies of what they carry (a PIN, a
//! passphrase, a typed MFA code, a seed being added) in freed memory.
//!
//! tokio's `BufReader` keeps the bytes in its buffer until they are overwritten, and
//! `read_until` grows the line by reallocation, freeing the old copy unwiped. Here the
//! buffer is wiped as it is consumed and on drop, and a line grows by copy-then-wipe.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, ReadBuf};
use zeroize::{Zeroize, Zeroizing};

use crate::protocol::MAX_LINE;

const BUFFER: usize = 8 * 1024;
/// Enough for every request but a seed import: most lines never reallocate.
const LINE_START: usize = 512;

/// A buffered reader whose buffer is wiped as it is consumed, and when dropped.
pub(super) struct WipingReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
}

impl<R> WipingReader<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            filled: 0,
        }
    }
}

impl<R> Drop for WipingReader<R> {
    fn drop(&mut self) {
        self.buf[..self.filled].zeroize();
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for WipingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> AsyncBufRead for WipingReader<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.pos >= this.filled {
            let mut read = ReadBuf::new(&mut this.buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            this.filled = read.filled().len();
            this.pos = 0;
        }
        Poll::Ready(Ok(&this.buf[this.pos..this.filled]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let end = (this.pos + amt).min(this.filled);
        this.buf[this.pos..end].zeroize();
        this.pos = end;
    }
}

/// One line from a client.
pub(super) enum Line {
    /// The line with its newline, wiped when dropped.
    Complete(Zeroizing<Vec<u8>>),
    /// Longer than `MAX_LINE`: not buffered whole.
    TooLong,
    /// End of stream (or a last line without its newline).
    Closed,
}

/// Reads one line of at most `MAX_LINE` bytes. A longer one is not buffered whole: reading
/// stops past the limit.
pub(super) async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Line> {
    let mut line = Zeroizing::new(Vec::with_capacity(LINE_START));
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Closed);
        }
        let (take, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > MAX_LINE + 1 {
            return Ok(Line::TooLong);
        }
        grow_wiping(&mut line, take);
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if complete {
            return Ok(Line::Complete(line));
        }
    }
}

/// Makes room for `more` bytes by moving the line to a bigger allocation and wiping the old.
fn grow_wiping(line: &mut Zeroizing<Vec<u8>>, more: usize) {
    if line.capacity() - line.len() >= more {
        return;
    }
    let mut bigger = Vec::with_capacity((line.len() + more).max(2 * line.capacity()));
    bigger.extend_from_slice(line);
    let mut old = std::mem::replace(&mut **line, bigger);
    old.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, &'static str>> {
        let mut reader = WipingReader::new(input);
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader).await.unwrap() {
                Line::Complete(line) => out.push(Ok(line.to_vec())),
                Line::TooLong => {
                    out.push(Err("too long"));
                    return out;
                }
                Line::Closed => return out,
            }
        }
    }

    #[tokio::test]
    async fn lines_split_where_a_request_ends_whatever_the_reads() {
        let long = vec![b'x'; 3 * BUFFER];
        let mut input = b"{\"type\":\"hello\"}\n{\"pin\":\"123456\"}\n".to_vec();
        input.extend_from_slice(&long);
        input.push(b'\n');
        input.extend_from_slice(b"no newline");
        let got = lines(&input).await;
        assert_eq!(
            got.len(),
            3,
            "a last line without its newline is not a request"
        );
        assert_eq!(got[0].as_ref().unwrap(), b"{\"type\":\"hello\"}\n");
        assert_eq!(got[1].as_ref().unwrap(), b"{\"pin\":\"123456\"}\n");
        assert_eq!(got[2].as_ref().unwrap().len(), long.len() + 1);

        let mut over = vec![b'y'; MAX_LINE + 10];
        over.push(b'\n');
        assert_eq!(lines(&over).await, [Err("too long")]);
    }

    #[tokio::test]
    async fn what_was_read_is_wiped_from_the_buffer() {
        let mut reader = WipingReader::new(&b"{\"answer\":\"123456\"}\nnext"[..]);
        let Line::Complete(line) = read_line(&mut reader).await.unwrap() else {
            panic!("a line");
        };
        assert!(line.ends_with(b"\"123456\"}\n"));
        // The consumed part of the buffer holds zeros; only the unread "next" is left.
        let consumed = line.len();
        assert!(reader.buf[..consumed].iter().all(|&b| b == 0));
        assert_eq!(&reader.buf[consumed..reader.filled], b"next");
    }
}
