//! An in-process HTTP/1.1 proxy that injects scripted faults between a
//! client under test and an upstream server (Azurite).
//!
//! [`FaultProxy::start`] listens on `127.0.0.1` on a port of its own, on a
//! thread of its own with a current-thread tokio runtime, so it works from
//! any test (async or not); it stops when dropped. It forwards every request
//! unchanged but for the hop-by-hop headers and `Host` (each request goes to
//! the upstream on a fresh connection), keeps client connections alive, and
//! relays `Content-Length`, chunked and read-until-close bodies.
//!
//! A [`Rule`] (a [`Match`] on the method and a substring of the
//! path-and-query, a [`Fault`], and how many times) changes what happens to
//! the requests it matches: rules apply in the order pushed, each as many
//! times as it was given; requests that match no rule left are forwarded.
//! Every request is recorded ([`FaultProxy::requests`]) with its headers and
//! [`Outcome`].
//!
//! ```no_run
//! use eventhub_checkpoints_test_support::{Azurite, Transport};
//! use eventhub_checkpoints_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};
//!
//! let azurite = Azurite::shared(Transport::Http);
//! let proxy = FaultProxy::start(azurite.blob_endpoint());
//! let endpoint = format!("{}/devstoreaccount1", proxy.url());
//! proxy.push(Rule::new(
//!     Match::method("PUT").path_contains("comp=metadata"),
//!     Fault::status(503).header("Retry-After", "1"),
//! ));
//! proxy.push(Rule::new(Match::method("PUT"), Fault::ForwardThenReset).times(2));
//! // ... run the client against `endpoint` ...
//! for request in proxy.requests() {
//!     println!("{} {} -> {}", request.method, request.path_and_query, request.outcome);
//! }
//! # let _ = endpoint;
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Most headers in one head.
const MAX_HEADERS: usize = 128;

/// Which requests a [`Rule`] applies to, or which [`FaultProxy::requests_matching`]
/// returns: a method (any if not given) and a substring of the
/// path-and-query (e.g. `comp=metadata`; anything if not given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    method: Option<String>,
    path_contains: Option<String>,
}

impl Match {
    /// Requests of any method and path.
    pub fn any() -> Self {
        Self::default()
    }

    /// Requests whose method is `method` (compared case-insensitively).
    pub fn method(method: &str) -> Self {
        Self {
            method: Some(method.to_owned()),
            path_contains: None,
        }
    }

    /// Narrows to requests whose path-and-query (as sent, percent-encoded)
    /// contains `substring`.
    pub fn path_contains(mut self, substring: &str) -> Self {
        self.path_contains = Some(substring.to_owned());
        self
    }

    /// Whether a request with this method and path-and-query matches.
    pub fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|s| path_and_query.contains(s))
    }
}

/// What the proxy does to a request a [`Rule`] matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers with this response without forwarding; the connection is
    /// kept alive. A `Content-Length` is added unless given.
    Respond {
        /// The status code.
        status: u16,
        /// Response headers, in order.
        headers: Vec<(String, String)>,
        /// The response body.
        body: String,
    },
    /// Reads the request, then resets the client connection (`SO_LINGER`
    /// 0) without forwarding: the request was never applied.
    ResetBeforeForwarding,
    /// Forwards the request (so the upstream applies it) and reads the
    /// whole answer, then resets the client connection without answering:
    /// the response was lost.
    ForwardThenReset,
    /// Waits this long, then forwards the request and relays the answer as
    /// usual: a slow server. The request is forwarded even if the client has
    /// given up waiting meanwhile.
    Delay(Duration),
}

impl Fault {
    /// [`Fault::Respond`] with `status`, no headers and an empty body.
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// [`Fault::Respond`] with `status` and a Blob Storage error: the
    /// `x-ms-error-code` header and an XML `<Error>` body with `code` and
    /// `message`.
    pub fn storage_error(status: u16, code: &str, message: &str) -> Self {
        Self::status(status)
            .header("x-ms-error-code", code)
            .header("Content-Type", "application/xml")
            .body(format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code>\
                 <Message>{message}</Message></Error>"
            ))
    }

    /// Adds a response header to a [`Fault::Respond`].
    ///
    /// # Panics
    ///
    /// If this is not a [`Fault::Respond`].
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match &mut self {
            Self::Respond { headers, .. } => headers.push((name.to_owned(), value.to_owned())),
            other => panic!("only Fault::Respond has headers, not {other:?}"),
        }
        self
    }

    /// Sets the body of a [`Fault::Respond`].
    ///
    /// # Panics
    ///
    /// If this is not a [`Fault::Respond`].
    pub fn body(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Self::Respond { body, .. } => *body = text.into(),
            other => panic!("only Fault::Respond has a body, not {other:?}"),
        }
        self
    }
}

/// A scripted fault: what to do ([`Fault`]) to the next `times` requests
/// that a [`Match`] selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    matcher: Match,
    fault: Fault,
    times: usize,
}

impl Rule {
    /// Applies `fault` to the next request `matcher` selects (once; see
    /// [`times`](Self::times)).
    pub fn new(matcher: Match, fault: Fault) -> Self {
        Self {
            matcher,
            fault,
            times: 1,
        }
    }

    /// Applies the fault to the next `times` matching requests instead of
    /// one.
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }
}

/// What became of a request the proxy received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still being handled (delayed, or waiting for the upstream).
    Pending,
    /// The client was sent (or, if it had gone, would have been sent) a
    /// response with this status.
    Status(u16),
    /// The client connection was reset without an answer.
    Reset,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pending => f.write_str("pending"),
            Outcome::Status(status) => write!(f, "{status}"),
            Outcome::Reset => f.write_str("reset"),
        }
    }
}

/// One request the proxy received, in order of arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRequest {
    /// The method, e.g. `PUT`.
    pub method: String,
    /// The request target as sent: path and query, percent-encoded.
    pub path_and_query: String,
    /// The request headers as received, in order (values decoded lossily
    /// as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The fault applied, if a rule matched.
    pub fault: Option<Fault>,
    /// The status the upstream answered, if the request was forwarded and
    /// answered.
    pub upstream_status: Option<u16>,
    /// What the client got.
    pub outcome: Outcome,
}

impl ObservedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The fault-injecting proxy; see the [module documentation](self).
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    in_flight: watch::Receiver<usize>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

struct Shared {
    /// `host:port` of the upstream.
    upstream: String,
    state: Mutex<State>,
    in_flight: watch::Sender<usize>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<ObservedRequest>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new request, takes the fault of the first rule that
    /// matches it and has uses left, and returns its log index.
    fn arrive(&self, request: &Request) -> (usize, Option<Fault>) {
        let mut state = self.lock();
        let fault = state
            .rules
            .iter_mut()
            .find(|rule| rule.times > 0 && rule.matcher.matches(&request.method, &request.target))
            .map(|rule| {
                rule.times -= 1;
                rule.fault.clone()
            });
        state.log.push(ObservedRequest {
            method: request.method.clone(),
            path_and_query: request.target.clone(),
            headers: request
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            fault: fault.clone(),
            upstream_status: None,
            outcome: Outcome::Pending,
        });
        (state.log.len() - 1, fault)
    }

    fn set_upstream_status(&self, index: usize, status: u16) {
        self.lock().log[index].upstream_status = Some(status);
    }

    fn set_outcome(&self, index: usize, outcome: Outcome) {
        self.lock().log[index].outcome = outcome;
    }
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` (a free port) that forwards to
    /// `upstream`, an `http://host:port` URL; a path, if any (such as
    /// Azurite's `/devstoreaccount1`), is ignored: requests keep theirs.
    ///
    /// # Panics
    ///
    /// If `upstream` is not an `http://` URL with a host, or the proxy
    /// cannot listen.
    pub fn start(upstream: &str) -> FaultProxy {
        let authority = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the fault proxy forwards to http:// URLs only, not {upstream:?}"))
            .split(['/', '?', '#'])
            .next()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| panic!("no host in upstream URL {upstream:?}"));
        let upstream = if authority.starts_with('[') || authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap_or_else(|e| panic!("the fault proxy cannot listen on 127.0.0.1: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("cannot make the fault proxy's listener non-blocking: {e}"));
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (in_flight_tx, in_flight) = watch::channel(0);
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State::default()),
            in_flight: in_flight_tx,
        });
        let (shutdown, stop) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the fault proxy's runtime starts");
                runtime.block_on(async move {
                    let listener =
                        TcpListener::from_std(listener).expect("the listener joins the proxy's runtime");
                    tokio::select! {
                        _ = stop => {}
                        () = accept_loop(listener, thread_shared) => {}
                    }
                });
                // Dropping the runtime here cancels every connection task and
                // closes their sockets.
            })
            .expect("the fault proxy's thread starts");
        FaultProxy {
            addr,
            shared,
            in_flight,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The proxy's base URL, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a rule, after those pushed before.
    pub fn push(&self, rule: Rule) {
        self.shared.lock().rules.push(rule);
    }

    /// How many fault applications the rules have left in all.
    pub fn faults_left(&self) -> usize {
        self.shared.lock().rules.iter().map(|r| r.times).sum()
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<ObservedRequest> {
        self.shared.lock().log.clone()
    }

    /// The requests received so far that `matcher` selects, in order.
    pub fn requests_matching(&self, matcher: &Match) -> Vec<ObservedRequest> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| matcher.matches(&r.method, &r.path_and_query))
            .cloned()
            .collect()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Waits until no request is being handled (for example until a
    /// [`Fault::Delay`]ed request has reached the upstream and been
    /// answered). Works from any runtime.
    pub async fn settled(&self) {
        let mut in_flight = self.in_flight.clone();
        // The sender lives in `self.shared`, so this cannot fail.
        let _ = in_flight.wait_for(|n| *n == 0).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_client(Conn::new(stream), Arc::clone(&shared)));
            }
            // Out of file descriptors or similar: try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Counts a request as in flight until dropped (also when the runtime is
/// shut down mid-request).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.in_flight.send_modify(|n| *n += 1);
        Self(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|n| *n -= 1);
    }
}

/// Serves one client connection, request after request, until it closes,
/// asks to close, or a fault resets it.
async fn serve_client(mut client: Conn, shared: Arc<Shared>) {
    loop {
        let request = match client.read_request().await {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        let _in_flight = InFlight::new(&shared);
        let (index, fault) = shared.arrive(&request);
        let keep_alive = request.keep_alive();
        match fault {
            Some(Fault::Respond {
                status,
                headers,
                body,
            }) => {
                let response = canned_response(status, &headers, &body, keep_alive);
                shared.set_outcome(index, Outcome::Status(status));
                if client.stream.write_all(&response).await.is_err() || !keep_alive {
                    return;
                }
            }
            Some(Fault::ResetBeforeForwarding) => {
                shared.set_outcome(index, Outcome::Reset);
                reset(client.stream);
                return;
            }
            Some(Fault::ForwardThenReset) => {
                if let Ok(response) = forward(&shared.upstream, &request).await {
                    shared.set_upstream_status(index, response.status);
                }
                shared.set_outcome(index, Outcome::Reset);
                reset(client.stream);
                return;
            }
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                if !relay(&mut client, &shared, index, &request, keep_alive).await {
                    return;
                }
            }
            None => {
                if !relay(&mut client, &shared, index, &request, keep_alive).await {
                    return;
                }
            }
        }
    }
}

/// Forwards `request` and relays the answer (a 502 if the upstream fails);
/// whether the client connection stays open.
async fn relay(
    client: &mut Conn,
    shared: &Shared,
    index: usize,
    request: &Request,
    keep_alive: bool,
) -> bool {
    match forward(&shared.upstream, request).await {
        Ok(response) => {
            shared.set_upstream_status(index, response.status);
            shared.set_outcome(index, Outcome::Status(response.status));
            let keep_alive = keep_alive && !matches!(response.framing, Framing::UntilClose);
            let head = response.head_for_client(keep_alive);
            let written = async {
                client.stream.write_all(&head).await?;
                client.stream.write_all(&response.body).await
            };
            written.await.is_ok() && keep_alive
        }
        Err(error) => {
            shared.set_outcome(index, Outcome::Status(502));
            let body = format!("fault proxy: upstream {} failed: {error}", shared.upstream);
            let response = canned_response(502, &[], &body, false);
            let _ = client.stream.write_all(&response).await;
            false
        }
    }
}

/// Closes `stream` with a TCP reset rather than an orderly shutdown.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Sends `request` to `upstream` on a fresh connection and reads the whole
/// answer.
async fn forward(upstream: &str, request: &Request) -> io::Result<Response> {
    let stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target).into_bytes();
    for (name, value) in &request.headers {
        if is_hop_by_hop(name) || name.eq_ignore_ascii_case("host") {
            continue;
        }
        push_header(&mut head, name, value);
    }
    push_header(&mut head, "Host", upstream.as_bytes());
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    conn.stream.write_all(&head).await?;
    conn.stream.write_all(&request.body).await?;
    conn.read_response(&request.method).await
}

fn push_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

fn is_hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "proxy-connection"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

fn canned_response(status: u16, headers: &[(String, String)], body: &str, keep_alive: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        push_header(&mut out, name, value.as_bytes());
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        push_header(&mut out, "Content-Length", body.len().to_string().as_bytes());
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected Fault",
    }
}

/// How a message's body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    /// A response without length: the body ends when the connection closes.
    UntilClose,
}

fn framing_of(headers: &[(String, Vec<u8>)]) -> io::Result<Option<Framing>> {
    let value = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    };
    let chunked = value("transfer-encoding").iter().any(|v| {
        v.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    });
    if chunked {
        return Ok(Some(Framing::Chunked));
    }
    match value("content-length").first() {
        Some(length) => length
            .trim()
            .parse()
            .map(|n| Some(Framing::Length(n)))
            .map_err(|_| invalid(format!("bad Content-Length {length:?}"))),
        None => Ok(None),
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// A request as read from the client; the body keeps its framing.
struct Request {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    fn keep_alive(&self) -> bool {
        let connection = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",");
        let has = |token: &str| connection.split(',').any(|t| t.trim() == token);
        if self.http10 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// An upstream answer read whole; the body keeps its framing.
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, Vec<u8>)>,
    framing: Framing,
    body: Vec<u8>,
}

impl Response {
    fn head_for_client(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).into_bytes();
        for (name, value) in &self.headers {
            if !is_hop_by_hop(name) {
                push_header(&mut head, name, value);
            }
        }
        if !keep_alive {
            head.extend_from_slice(b"Connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    }
}

/// A connection and the bytes read from it but not consumed yet.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; `false` at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next head, through its empty line; `None` on a clean end of
    /// stream before it.
    async fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(Some(self.buf.drain(..end + 4).collect()));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("head too large"));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    async fn take_exact(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        out.extend(self.buf.drain(..n));
        Ok(())
    }

    /// One line through its CRLF, appended to `out`; returns the line
    /// without the CRLF.
    async fn take_line(&mut self, out: &mut Vec<u8>) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                out.extend_from_slice(&line);
                return Ok(line[..end].to_vec());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// The body as framed, framing included (chunk sizes and trailers).
    async fn read_body(&mut self, framing: Framing) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        match framing {
            Framing::Empty => {}
            Framing::Length(n) => self.take_exact(n, &mut body).await?,
            Framing::Chunked => loop {
                let line = self.take_line(&mut body).await?;
                let line = String::from_utf8_lossy(&line);
                let size = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| invalid(format!("bad chunk size {size:?}")))?;
                if size == 0 {
                    // Trailers, through the empty line.
                    while !self.take_line(&mut body).await?.is_empty() {}
                    break;
                }
                self.take_exact(size + 2, &mut body).await?;
            },
            Framing::UntilClose => {
                while self.fill().await? {}
                body.append(&mut self.buf);
            }
        }
        Ok(body)
    }

    async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let Some(head) = self.read_head().await? else {
            return Ok(None);
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(invalid("incomplete request head")),
            Err(e) => return Err(invalid(format!("bad request head: {e}"))),
        }
        let method = parsed.method.unwrap_or_default().to_owned();
        let target = parsed.path.unwrap_or_default().to_owned();
        let http10 = parsed.version == Some(0);
        let headers = owned_headers(parsed.headers);
        let framing = framing_of(&headers)?.unwrap_or(Framing::Empty);
        let body = self.read_body(framing).await?;
        Ok(Some(Request {
            method,
            target,
            http10,
            headers,
            body,
        }))
    }

    async fn read_response(&mut self, method: &str) -> io::Result<Response> {
        loop {
            let head = self
                .read_head()
                .await?
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&head) {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => return Err(invalid("incomplete response head")),
                Err(e) => return Err(invalid(format!("bad response head: {e}"))),
            }
            let status = parsed.code.unwrap_or_default();
            // Interim answers (100 Continue) are not relayed.
            if (100..200).contains(&status) {
                continue;
            }
            let reason = parsed.reason.unwrap_or_default().to_owned();
            let headers = owned_headers(parsed.headers);
            let framing = if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
                Framing::Empty
            } else {
                framing_of(&headers)?.unwrap_or(Framing::UntilClose)
            };
            let body = self.read_body(framing).await?;
            return Ok(Response {
                status,
                reason,
                headers,
                framing,
                body,
            });
        }
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny upstream: answers each request on a connection with a body
    /// naming the request, alternately with `Content-Length` and chunked,
    /// and counts the requests it got.
    async fn upstream() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let mut conn = Conn::new(stream);
                while let Ok(Some(request)) = conn.read_request().await {
                    n += 1;
                    let host = request
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    let line = format!(
                        "{} {} body={} host={host}",
                        request.method,
                        request.target,
                        String::from_utf8_lossy(&request.body)
                    );
                    log.lock().unwrap().push(line.clone());
                    let response = if n.is_multiple_of(2) {
                        let (a, b) = line.split_at(line.len() / 2);
                        format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                            a.len(),
                            b.len()
                        )
                    } else {
                        format!(
                            "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n{line}",
                            line.len()
                        )
                    };
                    conn.stream.write_all(response.as_bytes()).await.unwrap();
                }
            }
        });
        (url, seen)
    }

    /// Sends one request on `conn` and reads the answer whole.
    async fn exchange(conn: &mut Conn, method: &str, target: &str, body: &str) -> io::Result<(u16, String)> {
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: proxy\r\nx-test: 1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.stream.write_all(request.as_bytes()).await?;
        let response = conn.read_response(method).await?;
        let body = match response.framing {
            Framing::Chunked => dechunk(&response.body),
            _ => String::from_utf8_lossy(&response.body).into_owned(),
        };
        Ok((response.status, body))
    }

    fn dechunk(raw: &[u8]) -> String {
        let text = String::from_utf8_lossy(raw);
        let mut out = String::new();
        let mut rest = text.as_ref();
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let size = usize::from_str_radix(size, 16).unwrap();
            if size == 0 {
                return out;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
    }

    async fn connect(proxy: &FaultProxy) -> Conn {
        Conn::new(TcpStream::connect(proxy.addr()).await.unwrap())
    }

    #[tokio::test]
    async fn forwards_on_a_kept_alive_connection_with_both_framings() {
        let (upstream_url, seen) = upstream().await;
        let proxy = FaultProxy::start(&format!("{upstream_url}/devstoreaccount1"));
        assert!(proxy.url().starts_with("http://127.0.0.1:"));
        let mut conn = connect(&proxy).await;
        let upstream_authority = upstream_url.trim_start_matches("http://");
        let (status, body) = exchange(&mut conn, "PUT", "/a/b?comp=metadata", "xyz")
            .await
            .unwrap();
        assert_eq!(status, 201);
        assert_eq!(
            body,
            format!("PUT /a/b?comp=metadata body=xyz host={upstream_authority}")
        );
        let (status, body) = exchange(&mut conn, "GET", "/a?comp=list", "").await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, format!("GET /a?comp=list body= host={upstream_authority}"));
        assert_eq!(seen.lock().unwrap().len(), 2);
        let requests = proxy.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].method, "PUT");
        assert_eq!(requests[0].path_and_query, "/a/b?comp=metadata");
        assert_eq!(requests[0].outcome, Outcome::Status(201));
        assert_eq!(requests[0].upstream_status, Some(201));
        assert_eq!(requests[0].header("X-TEST"), Some("1"));
        assert_eq!(requests[1].outcome.to_string(), "200");
    }

    #[tokio::test]
    async fn applies_rules_in_order_and_as_many_times_as_given() {
        let (upstream_url, seen) = upstream().await;
        let proxy = FaultProxy::start(&upstream_url);
        proxy.push(Rule::new(
            Match::method("put").path_contains("comp=metadata"),
            Fault::storage_error(503, "ServerBusy", "busy").header("Retry-After", "1"),
        ));
        proxy.push(Rule::new(Match::any(), Fault::status(500)).times(2));
        assert_eq!(proxy.faults_left(), 3);
        let mut conn = connect(&proxy).await;
        let (status, body) = exchange(&mut conn, "PUT", "/x?comp=metadata", "").await.unwrap();
        assert_eq!(status, 503);
        assert!(body.contains("<Code>ServerBusy</Code>"), "{body}");
        for _ in 0..2 {
            assert_eq!(exchange(&mut conn, "GET", "/y", "").await.unwrap().0, 500);
        }
        assert_eq!(
            exchange(&mut conn, "PUT", "/x?comp=metadata", "")
                .await
                .unwrap()
                .0,
            201
        );
        assert_eq!(proxy.faults_left(), 0);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "only the last request was forwarded"
        );
        let outcomes: Vec<String> = proxy.requests().iter().map(|r| r.outcome.to_string()).collect();
        assert_eq!(outcomes, ["503", "500", "500", "201"]);
        assert_eq!(proxy.requests_matching(&Match::method("GET")).len(), 2);
    }

    #[tokio::test]
    async fn resets_before_or_after_forwarding() {
        let (upstream_url, seen) = upstream().await;
        let proxy = FaultProxy::start(&upstream_url);
        proxy.push(Rule::new(Match::method("PUT"), Fault::ResetBeforeForwarding));
        proxy.push(Rule::new(Match::method("PUT"), Fault::ForwardThenReset));
        let mut conn = connect(&proxy).await;
        assert!(exchange(&mut conn, "PUT", "/one", "").await.is_err());
        assert!(seen.lock().unwrap().is_empty());
        let mut conn = connect(&proxy).await;
        assert!(exchange(&mut conn, "PUT", "/two", "").await.is_err());
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the second PUT reached the upstream"
        );
        let requests = proxy.requests();
        assert_eq!(requests[0].outcome, Outcome::Reset);
        assert_eq!(requests[0].upstream_status, None);
        assert_eq!(requests[1].outcome, Outcome::Reset);
        assert_eq!(requests[1].upstream_status, Some(201));
    }

    #[tokio::test]
    async fn delays_then_forwards_even_if_the_client_left() {
        let (upstream_url, seen) = upstream().await;
        let proxy = FaultProxy::start(&upstream_url);
        proxy.push(Rule::new(Match::any(), Fault::Delay(Duration::from_millis(200))));
        let mut conn = connect(&proxy).await;
        let request = "PUT /slow HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n";
        conn.stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(proxy.requests()[0].outcome, Outcome::Pending);
        drop(conn);
        proxy.settled().await;
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(proxy.requests()[0].upstream_status, Some(201));
    }

    #[tokio::test]
    async fn answers_502_when_the_upstream_is_down_and_stops_when_dropped() {
        let closed = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let dead = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let proxy = FaultProxy::start(&dead);
        let mut conn = connect(&proxy).await;
        assert_eq!(exchange(&mut conn, "GET", "/", "").await.unwrap().0, 502);
        let addr = proxy.addr();
        drop(proxy);
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
