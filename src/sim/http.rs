//! The simulator's HTTP/1.1 layer: a thread per connection, so a held or
//! stalled answer keeps only its own connection waiting and a new
//! connection is read as soon as it is accepted, however many keep-alive
//! connections are open. (tiny_http, used before, hands connections to a
//! thread pool that can lose a wake-up: a new connection then waited until
//! some other connection closed, a minute when a client's timeout closed it.)
//!
//! It reads what API clients send: a request line, headers, and a body of
//! `Content-Length` bytes (`Expect: 100-continue` answered); keep-alive
//! unless the client says `Connection: close` or speaks HTTP/1.0. Sizes are
//! bounded, and a malformed request is answered 400 and its connection
//! closed.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The longest request line or header line.
const MAX_LINE: u64 = 16 * 1024;
/// The most header lines.
const MAX_HEADERS: usize = 100;
/// The largest body.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long a keep-alive connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(600);

/// A request as read off the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection ends after this request (`Connection: close`, or
    /// HTTP/1.0 without `keep-alive`).
    pub close: bool,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What answers requests.
pub type Handler = dyn Fn(Request) -> Response + Send + Sync;

/// Accepts connections until `stop` is set (then [`wake`] the listener),
/// each served on a thread of its own.
pub fn serve(listener: &TcpListener, stop: &AtomicBool, handler: &Arc<Handler>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors, say: let connections close first.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let handler = Arc::clone(handler);
        thread::spawn(move || {
            // The connection ends on the first error: nothing to tell anyone.
            let _ = connection(stream, &*handler);
        });
    }
}

/// Unblocks [`serve`]'s accept after `stop` was set.
pub fn wake(listener: &TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    }
}

/// Serves one connection's requests, one after the other.
fn connection(stream: TcpStream, handler: &Handler) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        reader.get_ref().set_read_timeout(Some(IDLE))?;
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(Malformed(status, why)) => {
                let answer = Response {
                    status,
                    headers: vec![("Content-Type", "text/plain".into())],
                    body: why.into_bytes(),
                };
                return write_response(&mut writer, &answer, true);
            }
        };
        let close = request.close;
        let head = request.method == "HEAD";
        let mut answer = handler(request);
        if head {
            answer.body.clear();
        }
        write_response(&mut writer, &answer, close)?;
        if close {
            return Ok(());
        }
    }
}

/// A request that cannot be read: the status to answer and why.
#[derive(Debug, PartialEq, Eq)]
struct Malformed(u16, String);

impl From<io::Error> for Malformed {
    fn from(e: io::Error) -> Self {
        Malformed(400, e.to_string())
    }
}

/// Reads the next request; `None` when the client closed the connection
/// (or left it idle too long) between requests.
fn read_request(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
) -> Result<Option<Request>, Malformed> {
    let line = match read_line(reader) {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(None),
        Err(e) if is_idle(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed(400, format!("malformed request line {line:?}")));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") || method.is_empty() {
        return Err(Malformed(400, format!("unsupported request line {line:?}")));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let Some(line) = read_line(reader)? else {
            return Err(Malformed(400, "the headers end early".into()));
        };
        if line.is_empty() {
            break;
        }
        if headers.len() > MAX_HEADERS {
            return Err(Malformed(431, "too many headers".into()));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Malformed(400, format!("malformed header {line:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
        close: false,
    };
    request.close = wants_close(&request, version);
    if request
        .header("Transfer-Encoding")
        .is_some_and(|t| !t.eq_ignore_ascii_case("identity"))
    {
        return Err(Malformed(411, "send the body with a Content-Length".into()));
    }
    let length = match request.header("Content-Length") {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Malformed(400, format!("bad Content-Length {n:?}")))?,
    };
    if length > MAX_BODY {
        return Err(Malformed(
            413,
            format!("a body of {length} bytes is too large"),
        ));
    }
    if length > 0
        && request
            .header("Expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }
    request.body = vec![0; length];
    reader.read_exact(&mut request.body)?;
    Ok(Some(request))
}

/// True for the read timeout of an idle connection.
fn is_idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One line without its CRLF; `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    reader.take(MAX_LINE + 2).read_until(b'\n', &mut bytes)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if !bytes.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a line is too long or the connection ended in it",
        ));
    }
    bytes.pop();
    if bytes.ends_with(b"\r") {
        bytes.pop();
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a line is not UTF-8"))
}

/// True when the connection ends after this request.
fn wants_close(r: &Request, version: &str) -> bool {
    let connection = r.header("Connection").map(str::to_ascii_lowercase);
    if version == "HTTP/1.0" {
        !connection.is_some_and(|c| c.contains("keep-alive"))
    } else {
        connection.is_some_and(|c| c.contains("close"))
    }
}

fn write_response(w: &mut impl Write, r: &Response, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    if r.status != 204 && r.status >= 200 {
        let _ = write!(head, "Content-Length: {}\r\n", r.body.len());
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&r.body);
    w.write_all(&bytes)?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        422 => "Unprocessable Entity",
        423 => "Locked",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> (Result<Option<Request>, Malformed>, String) {
        let mut written = Vec::new();
        let r = read_request(&mut raw.as_bytes(), &mut written);
        (r, String::from_utf8(written).unwrap())
    }

    #[test]
    fn requests_are_read_as_clients_send_them() {
        let (r, written) = read("POST /v1/volumes?x=1 HTTP/1.1\r\nHost: h\r\nauthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{}GET");
        let r = r.unwrap().unwrap();
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/v1/volumes?x=1")
        );
        assert_eq!(
            (r.header("Authorization"), r.body.as_slice()),
            (Some("Bearer t"), &b"{}"[..])
        );
        assert!(!r.close && written.is_empty());
        let (r, written) =
            read("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
        assert_eq!(r.unwrap().unwrap().body, b"x");
        assert_eq!(written, "HTTP/1.1 100 Continue\r\n\r\n");
        let (r, _) = read("GET / HTTP/1.0\r\n\r\n");
        assert!(r.unwrap().unwrap().close);
        let (r, _) = read("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(!r.unwrap().unwrap().close);
        let (r, _) = read("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(r.unwrap().unwrap().close);
        assert_eq!(read("").0, Ok(None));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let cases = [
            ("GET /\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: h\r\n", 400),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
                413,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                411,
            ),
            ("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 400),
        ];
        for (raw, status) in cases {
            let got = read(raw).0.map(|_| ()).unwrap_err().0;
            assert_eq!(got, status, "{raw:?}");
        }
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
        assert_eq!(read(&long).0.unwrap_err().0, 400);
        let many: String = (0..120).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(
            read(&format!("GET / HTTP/1.1\r\n{many}\r\n"))
                .0
                .unwrap_err()
                .0,
            431
        );
    }

    #[test]
    fn answers_have_a_length_and_say_when_the_connection_closes() {
        let mut out = Vec::new();
        let answer = Response {
            status: 201,
            headers: vec![("Content-Type", "application/json".into())],
            body: b"{}".to_vec(),
        };
        write_response(&mut out, &answer, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        let mut out = Vec::new();
        let empty = Response {
            status: 204,
            headers: vec![],
            body: vec![],
        };
        write_response(&mut out, &empty, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        );
    }
}
