//! Problem documents for the answers hyper writes by itself.
//!
//! hyper answers an HTTP/1 request it cannot parse before any service sees it: a URI over
//! 65,534 bytes gets `414`, a head larger than its read buffer `431`, and a malformed request
//! line or header (a control character in a header value, a space in a header name, a
//! `Content-Length` that is not a number) `400`. It writes a bare head with
//! `content-length: 0`, closes the connection, and offers no hook to change that answer: the
//! request never reaches axum, so no middleware can. [`ProblemListener`] wraps each accepted
//! connection so that such a head is replaced, on its way out, by the same status with an
//! RFC 9457 body. HTTP/2 has no such answers: hyper resets the stream instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::problem::{PROBLEM_JSON, Problem};

/// A TCP listener whose connections answer hyper's parse errors with problem documents.
#[derive(Debug)]
pub struct ProblemListener(pub TcpListener);

impl axum::serve::Listener for ProblemListener {
    type Io = ProblemIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop: it logs and retries on errors such as too many open files.
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (ProblemIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that rewrites hyper's bare error heads; every other byte passes unchanged.
#[derive(Debug)]
pub struct ProblemIo<T> {
    inner: T,
    /// A replacement answer still to be written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes what is left of a replacement answer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let rest = &self.pending[self.written..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes `head` in place of hyper's answer when it is a bare error head: the whole head
    /// counts as written, so hyper does not retry part of it, and the replacement goes out
    /// now or on the next write, flush or shutdown.
    fn replace(&mut self, cx: &mut Context<'_>, head: &[u8]) -> Option<io::Result<usize>> {
        self.pending = replacement(head)?;
        if let Poll::Ready(Err(err)) = self.poll_drain(cx) {
            return Some(Err(err));
        }
        Some(Ok(head.len()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if let Some(result) = this.replace(cx, buf) {
            return Poll::Ready(result);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        // hyper keeps a head in a buffer of its own, so it is a whole slice.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(result) = this.replace(cx, first)
        {
            return Poll::Ready(result);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The answer to send instead of `head`, if `head` is one of hyper's bare error heads.
///
/// Such a head is a whole write that is nothing but a head: status 400, 414 or 431,
/// `content-length: 0` and no `content-type`. The server's own answers with these statuses
/// are problem documents, which have both a body and a type, so they never match.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let fields = text.strip_suffix("\r\n\r\n")?;
    if fields.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = fields.split("\r\n");
    let status_line = lines.next()?;
    let status = bare_error_status(status_line)?;
    let mut empty = false;
    let mut kept = Vec::new();
    for line in lines {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        match name.as_str() {
            "content-type" => return None,
            "content-length" => empty = line[name.len() + 1..].trim() == "0",
            _ => kept.push(line),
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::to_vec(&problem(status)).ok()?;
    let mut answer = format!("{status_line}\r\ncontent-type: {PROBLEM_JSON}\r\n");
    for line in kept {
        answer.push_str(line);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

/// The status of an `HTTP/1.x` status line, if it is one hyper answers parse errors with.
fn bare_error_status(status_line: &str) -> Option<StatusCode> {
    let rest = status_line.strip_prefix("HTTP/1.")?;
    let code = rest.get(2..5)?;
    match code {
        "400" => Some(StatusCode::BAD_REQUEST),
        "414" => Some(StatusCode::URI_TOO_LONG),
        "431" => Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        _ => None,
    }
}

/// The problem document for a request hyper could not parse.
fn problem(status: StatusCode) -> Problem {
    match status {
        StatusCode::URI_TOO_LONG => Problem::new(
            status,
            "uri-too-long",
            "URI too long",
            "the request URI is longer than 65534 bytes",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Problem::new(
            status,
            "headers-too-large",
            "Request header fields too large",
            "the request head is larger than the server reads",
        ),
        _ => Problem::bad_request(
            "malformed-request",
            "the request line or a header could not be parsed (such as a control character \
             in a header value or a space in a header name)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE_414: &str = "HTTP/1.1 414 URI Too Long\r\nconnection: close\r\n\
                            content-length: 0\r\ndate: Sat, 28 Nov 2026 14:32:12 GMT\r\n\r\n";

    #[test]
    fn a_bare_414_gets_a_problem_body_and_keeps_its_other_fields() {
        let answer = String::from_utf8(replacement(BARE_414.as_bytes()).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(head.contains("date: Sat"), "{head}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["type"], "urn:durable:problem:uri-too-long");
        assert_eq!(body["status"], 414);
    }

    #[test]
    fn the_servers_own_answers_pass_unchanged() {
        let typed = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n\
                     content-length: 0\r\n\r\n";
        let sized = "HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n";
        let with_body = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}";
        let other = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        for head in [typed, sized, with_body, other, "HTTP/1.1 400 Bad"] {
            assert!(replacement(head.as_bytes()).is_none(), "{head}");
        }
    }
}
