//! The connection guard of `koogate serve`: timeouts and request-framing checks that hyper does
//! not do by itself, applied to the byte stream under it.
//!
//! [`Guarded`] wraps a connection's I/O (plain TCP, or the decrypted side of TLS). It follows the
//! HTTP/1.1 framing of the requests that pass through it — head, then a `Content-Length` or
//! chunked body, then the next head — with the same parser hyper uses (`httparse`), and from that
//! it knows, at any time, what the connection is waiting for:
//!
//! * a fresh connection must deliver a complete request head within the *header timeout* of
//!   being accepted (nothing sent at all counts: idle sockets opened to use up connections are
//!   closed like slow-loris ones);
//! * a head, once its first byte has arrived on a kept-alive connection, must be complete within
//!   the header timeout;
//! * a body must be complete within the *body timeout* of the end of its head;
//! * between requests, a kept-alive connection may stay silent for the *idle timeout* after the
//!   last answer;
//! * an answer the client does not read is abandoned after the idle timeout too.
//!
//! When a deadline passes, reads (or writes) fail with [`std::io::ErrorKind::TimedOut`]: hyper
//! ends the connection, and a request whose body was cut off sees a body error, so it never
//! reaches the pipeline. While a request is being processed (between its complete body and its
//! answer) no deadline applies: the pipeline's own budget bounds that.
//!
//! The framing check ([`Verdict`]): hyper accepts, as RFC 9112 allows, a request with both
//! `Content-Length` and `Transfer-Encoding` (it uses the chunked framing and closes afterwards)
//! and repeated identical `Content-Length` headers, and it removes the evidence before the
//! service sees the request. Those are the shapes of request smuggling through a proxy that
//! frames differently, and the marketplace never sends them, so koogate refuses them: every head
//! is checked here and the service answers a refused one `400` and closes the connection without
//! reading its body. Malformed heads (obs-fold, bad `Content-Length`, a `Transfer-Encoding` other
//! than `chunked`) are refused by hyper itself with `400`.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The largest request head inspected (hyper is configured with the same limit and refuses a
/// longer one).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most header lines a request may have (hyper's default, and what the check parses).
const MAX_HEADERS: usize = 100;

/// The timeouts a connection is held to (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

/// What the framing check says about one request head, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Answer `400` and close; the reason is logged and sent.
    Refuse(&'static str),
}

/// The state a connection's service shares with its [`Guarded`] I/O.
#[derive(Debug)]
pub struct ConnShared {
    state: Mutex<SharedState>,
}

#[derive(Debug)]
struct SharedState {
    verdicts: VecDeque<Verdict>,
    /// Requests handed to the service and not answered yet.
    in_flight: usize,
    /// When the connection was accepted, or its last request was answered.
    idle_since: Instant,
}

impl ConnShared {
    pub fn new() -> Arc<ConnShared> {
        Arc::new(ConnShared {
            state: Mutex::new(SharedState {
                verdicts: VecDeque::new(),
                in_flight: 0,
                idle_since: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request reached the service: its verdict, and a guard that marks it answered when
    /// dropped (also when the connection is dropped mid-request). A request the check did not
    /// see (it lost track of the framing, which only happens on input hyper refuses too) is
    /// refused.
    pub fn begin(self: &Arc<Self>) -> (Verdict, InFlight) {
        let mut st = self.lock();
        st.in_flight += 1;
        let verdict = st
            .verdicts
            .pop_front()
            .unwrap_or(Verdict::Refuse("the request framing could not be checked"));
        (
            verdict,
            InFlight {
                shared: Arc::clone(self),
            },
        )
    }
}

/// One request in the service; dropping it marks the request answered.
#[derive(Debug)]
pub struct InFlight {
    shared: Arc<ConnShared>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.in_flight = st.in_flight.saturating_sub(1);
        st.idle_since = Instant::now();
    }
}

/// Where the byte stream is in the current request.
#[derive(Debug)]
enum Framing {
    /// Reading a head (`buf` holds what arrived of it; empty: waiting for the next request).
    Head {
        buf: Vec<u8>,
    },
    /// A `Content-Length` body with this many bytes left.
    Length(u64),
    Chunked(Chunk),
    /// A refused or unparseable head: nothing more is inspected (the connection is closed after
    /// the refusal, or hyper refuses the head itself).
    Lost,
}

/// The chunked-body state machine (RFC 9112 §7.1), permissive where hyper is.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// Reading hex digits of a chunk size (`digits` read so far).
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size: whitespace or an extension, up to CR.
    SizeRest {
        size: u64,
    },
    /// CR read after the size line; LF expected.
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (after the last chunk).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    TrailerLf,
    /// CR of the final empty line read; LF expected.
    EndLf,
}

/// An I/O stream held to [`Timeouts`] and checked for request framing.
pub struct Guarded<T> {
    io: T,
    shared: Arc<ConnShared>,
    timeouts: Timeouts,
    framing: Framing,
    /// When the first byte of the current head arrived.
    head_started: Option<Instant>,
    /// The current body's deadline.
    body_deadline: Option<Instant>,
    /// A head has been completed on this connection (later waits are keep-alive waits).
    served_any: bool,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl<T> Guarded<T> {
    /// Wraps a connection accepted (or handshaken) now.
    pub fn new(io: T, shared: Arc<ConnShared>, timeouts: Timeouts) -> Guarded<T> {
        Guarded {
            io,
            shared,
            timeouts,
            framing: Framing::Head { buf: Vec::new() },
            head_started: None,
            body_deadline: None,
            served_any: false,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
        }
    }

    /// The deadline of whatever the connection waits for from the client, if any.
    fn read_deadline(&self) -> Option<Instant> {
        match &self.framing {
            Framing::Length(_) | Framing::Chunked(_) => self.body_deadline,
            Framing::Head { buf } => {
                let st = self.shared.lock();
                if st.in_flight > 0 {
                    None
                } else if !buf.is_empty() {
                    let from = self.head_started.unwrap_or(st.idle_since);
                    Some(from.max(st.idle_since) + self.timeouts.header)
                } else if !self.served_any {
                    Some(st.idle_since + self.timeouts.header)
                } else {
                    Some(st.idle_since + self.timeouts.idle)
                }
            }
            Framing::Lost => {
                let st = self.shared.lock();
                (st.in_flight == 0).then(|| st.idle_since + self.timeouts.header)
            }
        }
    }

    /// The deadline of an answer the client does not read.
    fn write_deadline(&self) -> Option<Instant> {
        let st = self.shared.lock();
        (st.in_flight == 0).then(|| st.idle_since + self.timeouts.idle)
    }

    /// Whether `deadline` has passed; otherwise arms the timer to wake the task at it.
    /// A write-side operation that is not ready: still pending, or failed with "`what` timed
    /// out" once the write deadline has passed.
    fn write_pending<R>(&mut self, cx: &mut Context<'_>, what: &str) -> Poll<io::Result<R>> {
        let deadline = self.write_deadline();
        if self.expired(cx, deadline) {
            Poll::Ready(Err(timed_out(what)))
        } else {
            Poll::Pending
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            return false;
        };
        if Instant::now() >= deadline {
            return true;
        }
        if self.armed != Some(deadline) {
            self.sleep.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        self.sleep.as_mut().poll(cx).is_ready()
    }

    /// Follows the framing over bytes just read.
    fn inspect(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.framing {
                Framing::Lost => return,
                Framing::Head { buf } => {
                    if buf.is_empty() {
                        self.head_started = Some(Instant::now());
                    }
                    let scan_from = buf.len().saturating_sub(3);
                    let room = MAX_HEAD_BYTES + 1 - buf.len().min(MAX_HEAD_BYTES);
                    let take = bytes.len().min(room);
                    buf.extend_from_slice(bytes.get(..take).unwrap_or_default());
                    let ends = buf
                        .get(scan_from..)
                        .map(|tail| {
                            tail.windows(2).any(|w| w == b"\n\n")
                                || tail.windows(3).any(|w| w == b"\n\r\n")
                        })
                        .unwrap_or(false);
                    if !ends {
                        if buf.len() > MAX_HEAD_BYTES {
                            self.framing = Framing::Lost;
                        }
                        return;
                    }
                    match check_head(buf) {
                        HeadCheck::Partial => {
                            if buf.len() > MAX_HEAD_BYTES {
                                self.framing = Framing::Lost;
                            }
                            return;
                        }
                        HeadCheck::Invalid => {
                            self.framing = Framing::Lost;
                            return;
                        }
                        HeadCheck::Complete { len, verdict, next } => {
                            // What followed the head in `buf` is not part of it: give it back.
                            let extra = buf.len() - len;
                            let consumed = take - extra;
                            bytes = bytes.get(consumed..).unwrap_or_default();
                            self.served_any = true;
                            self.head_started = None;
                            let refused = verdict != Verdict::Accept;
                            self.shared.lock().verdicts.push_back(verdict);
                            self.framing = if refused { Framing::Lost } else { next };
                            if matches!(self.framing, Framing::Length(_) | Framing::Chunked(_)) {
                                self.body_deadline = Some(Instant::now() + self.timeouts.body);
                            }
                        }
                    }
                }
                Framing::Length(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = bytes.get(n as usize..).unwrap_or_default();
                    if *left == 0 {
                        self.end_body();
                    }
                }
                Framing::Chunked(state) => {
                    let (used, outcome) = step_chunked(state, bytes);
                    bytes = bytes.get(used..).unwrap_or_default();
                    match outcome {
                        ChunkOutcome::More => {}
                        ChunkOutcome::Done => self.end_body(),
                        ChunkOutcome::Invalid => self.framing = Framing::Lost,
                    }
                }
            }
        }
    }

    fn end_body(&mut self) {
        self.framing = Framing::Head { buf: Vec::new() };
        self.body_deadline = None;
    }
}

enum HeadCheck {
    Partial,
    Invalid,
    Complete {
        len: usize,
        verdict: Verdict,
        next: Framing,
    },
}

/// Parses a head and decides its framing and verdict.
fn check_head(buf: &[u8]) -> HeadCheck {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return HeadCheck::Partial,
        Err(_) => return HeadCheck::Invalid,
    };
    let mut lengths = Vec::new();
    let mut encodings = Vec::new();
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            lengths.push(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encodings.push(h.value);
        }
    }
    let refuse = |why| HeadCheck::Complete {
        len,
        verdict: Verdict::Refuse(why),
        next: Framing::Lost,
    };
    if !lengths.is_empty() && !encodings.is_empty() {
        return refuse("a request with both Content-Length and Transfer-Encoding is refused");
    }
    if lengths.len() > 1 {
        return refuse("a request with more than one Content-Length is refused");
    }
    if encodings.len() > 1 {
        return refuse("a request with more than one Transfer-Encoding is refused");
    }
    let next = if let Some(te) = encodings.first() {
        let te = std::str::from_utf8(te).unwrap_or("").trim();
        if !te.eq_ignore_ascii_case("chunked") {
            return refuse("Transfer-Encoding must be chunked");
        }
        Framing::Chunked(Chunk::Size { size: 0, digits: 0 })
    } else if let Some(cl) = lengths.first() {
        let digits = std::str::from_utf8(cl).unwrap_or("").trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return refuse("Content-Length is not a number");
        }
        match digits.parse::<u64>() {
            Ok(0) => Framing::Head { buf: Vec::new() },
            Ok(n) => Framing::Length(n),
            Err(_) => return refuse("Content-Length is not a number"),
        }
    } else {
        Framing::Head { buf: Vec::new() }
    };
    HeadCheck::Complete {
        len,
        verdict: Verdict::Accept,
        next,
    }
}

enum ChunkOutcome {
    More,
    Done,
    Invalid,
}

/// Advances the chunked state over `bytes`; returns how many were used (all, unless the body
/// ended or was invalid) and the outcome.
fn step_chunked(state: &mut Chunk, bytes: &[u8]) -> (usize, ChunkOutcome) {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        *state = match *state {
            Chunk::Size { size, digits } => match (b as char).to_digit(16) {
                Some(d) if digits < 16 => Chunk::Size {
                    size: size * 16 + u64::from(d),
                    digits: digits + 1,
                },
                Some(_) => return (i, ChunkOutcome::Invalid),
                None if digits == 0 => return (i, ChunkOutcome::Invalid),
                None if b == b'\r' => Chunk::SizeLf { size },
                None if b == b';' || b == b' ' || b == b'\t' => Chunk::SizeRest { size },
                None => return (i, ChunkOutcome::Invalid),
            },
            Chunk::SizeRest { size } => match b {
                b'\r' => Chunk::SizeLf { size },
                b'\n' => return (i, ChunkOutcome::Invalid),
                _ => Chunk::SizeRest { size },
            },
            Chunk::SizeLf { size } => match b {
                b'\n' if size == 0 => Chunk::TrailerStart,
                b'\n' => Chunk::Data(size),
                _ => return (i, ChunkOutcome::Invalid),
            },
            Chunk::Data(left) => {
                let n = left.min((bytes.len() - i) as u64);
                i += n as usize;
                *state = if left == n {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - n)
                };
                continue;
            }
            Chunk::DataCr => match b {
                b'\r' => Chunk::DataLf,
                _ => return (i, ChunkOutcome::Invalid),
            },
            Chunk::DataLf => match b {
                b'\n' => Chunk::Size { size: 0, digits: 0 },
                _ => return (i, ChunkOutcome::Invalid),
            },
            Chunk::TrailerStart => match b {
                b'\r' => Chunk::EndLf,
                b'\n' => return (i, ChunkOutcome::Invalid),
                _ => Chunk::Trailer,
            },
            Chunk::Trailer => match b {
                b'\r' => Chunk::TrailerLf,
                _ => Chunk::Trailer,
            },
            Chunk::TrailerLf => match b {
                b'\n' => Chunk::TrailerStart,
                _ => return (i, ChunkOutcome::Invalid),
            },
            Chunk::EndLf => match b {
                b'\n' => return (i + 1, ChunkOutcome::Done),
                _ => return (i, ChunkOutcome::Invalid),
            },
        };
        i += 1;
    }
    (i, ChunkOutcome::More)
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = buf.filled().get(before..).unwrap_or_default();
                if !fresh.is_empty() {
                    let fresh = fresh.to_vec();
                    this.inspect(&fresh);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let deadline = this.read_deadline();
                if this.expired(cx, deadline) {
                    let what = match this.framing {
                        Framing::Length(_) | Framing::Chunked(_) => "reading the request body",
                        _ => "waiting for a request head",
                    };
                    Poll::Ready(Err(timed_out(what)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Pending => this.write_pending(cx, "writing the answer"),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.write_pending(cx, "writing the answer"),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.write_pending(cx, "writing the answer"),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.write_pending(cx, "closing the connection"),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guarded<tokio::io::Empty> {
        let t = Duration::from_secs(1);
        Guarded::new(
            tokio::io::empty(),
            ConnShared::new(),
            Timeouts {
                header: t,
                body: t,
                idle: t,
            },
        )
    }

    fn verdicts(g: &Guarded<tokio::io::Empty>) -> Vec<Verdict> {
        g.shared.lock().verdicts.iter().cloned().collect()
    }

    #[tokio::test]
    async fn follows_pipelined_requests_byte_by_byte_and_at_once() {
        let stream = b"POST /saas HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n\
POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
GET /y HTTP/1.1\r\n\r\n";
        let mut all = guard();
        all.inspect(stream);
        assert_eq!(verdicts(&all), vec![Verdict::Accept; 4]);
        assert!(matches!(&all.framing, Framing::Head { buf } if buf.is_empty()));
        let mut one = guard();
        for b in stream.iter() {
            one.inspect(std::slice::from_ref(b));
        }
        assert_eq!(verdicts(&one), vec![Verdict::Accept; 4]);
    }

    #[test]
    fn refuses_smuggling_shapes() {
        for head in [
            &b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
        ] {
            let HeadCheck::Complete { verdict, .. } = check_head(head) else {
                panic!("not complete: {}", String::from_utf8_lossy(head));
            };
            assert!(matches!(verdict, Verdict::Refuse(_)));
        }
        assert!(matches!(
            check_head(b"POST / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n"),
            HeadCheck::Invalid
        ));
    }

    #[tokio::test]
    async fn a_body_in_progress_has_the_body_deadline() {
        let mut g = guard();
        g.inspect(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
        assert!(matches!(g.framing, Framing::Length(7)));
        assert_eq!(g.read_deadline(), g.body_deadline);
        g.inspect(b"defghij");
        assert!(matches!(&g.framing, Framing::Head { buf } if buf.is_empty()));
        let (_, in_flight) = g.shared.begin();
        assert_eq!(
            g.read_deadline(),
            None,
            "no deadline while the request is processed"
        );
        drop(in_flight);
        assert!(g.read_deadline().is_some());
    }
}
