//! One request on the wire: sent with the token, its answer read up to a
//! size limit, redirects refused, and every failure classified (what a
//! retry can change, what it cannot) with no piece of the token in it.

use std::io::Read;

use reqwest::blocking::Response;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::pacing::{Headers, Pacing, RateHint};
use super::Client;
use crate::hcloud::code::ApiCode;
use crate::hcloud::error::{ApiError, Error, TransportKind};

/// One answer: status, correlation id and JSON body (`Null` for 204).
pub(super) struct Answer {
    pub(super) body: Value,
}

/// A failed attempt, and what the rate limit said about the next one.
pub(super) struct SendError {
    pub(super) error: Error,
    pub(super) wait_hint: Option<RateHint>,
}

impl SendError {
    pub(super) fn boxed(error: Error) -> Box<Self> {
        Box::new(SendError {
            error,
            wait_hint: None,
        })
    }
}

impl Client {
    pub(super) fn send_once(
        &self,
        method: Method,
        request_line: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Box<SendError>> {
        let remaining = self.remaining();
        if remaining.is_zero() {
            return Err(SendError::boxed(
                self.deadline_error(format!("sending {request_line}"), None),
            ));
        }
        let pause = self.reserve_slot();
        if !pause.is_zero() {
            self.cfg.clock.sleep(pause.min(remaining));
        }
        *self
            .stats
            .lock()
            .expect("stats lock")
            .requests
            .entry(method.to_string())
            .or_default() += 1;
        let mut req = self
            .http
            .request(method, format!("{}{}", self.cfg.endpoint, path))
            .bearer_auth(self.cfg.token.expose())
            .header("Accept", "application/json")
            .timeout(self.cfg.request_timeout.min(remaining));
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .map_err(|e| SendError::boxed(self.transport_error(request_line, &e)))?;
        let pacing = self.rate_limit(&resp);
        if let Some(p) = &pacing {
            self.record_budget(p);
        }
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            return Err(SendError::boxed(Error::Redirect {
                request: request_line.to_string(),
                status,
                location: header(&resp, "location").map(|l| excerpt(&self.redactor.scrub(&l))),
            }));
        }
        let correlation_id =
            header(&resp, "x-correlation-id").map(|c| excerpt(&self.redactor.scrub(&c)));
        let is_json =
            header(&resp, "content-type").is_some_and(|c| c.starts_with("application/json"));
        let text = self.read_body(request_line, resp)?;
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Ok(Answer { body: Value::Null });
            }
            // Every string of the answer is scrubbed before anything keeps it.
            return serde_json::from_str(&text)
                .map(|body| Answer {
                    body: self.redactor.scrub_json(body),
                })
                .map_err(|_| {
                    SendError::boxed(Error::UnexpectedResponse {
                        request: request_line.to_string(),
                        status,
                        excerpt: excerpt(&self.redactor.scrub(&text)),
                    })
                });
        }
        #[derive(Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: String,
            message: String,
            #[serde(default)]
            details: Option<Value>,
        }
        let error = match serde_json::from_str::<Envelope>(&text) {
            Ok(env) if is_json => Error::Api(ApiError {
                status,
                code: ApiCode::parse(&env.error.code),
                message: excerpt(&self.redactor.scrub(&env.error.message)),
                details: env.error.details.map(|d| self.redactor.scrub_json(d)),
                correlation_id,
            }),
            _ => Error::UnexpectedResponse {
                request: request_line.to_string(),
                status,
                excerpt: excerpt(&self.redactor.scrub(&text)),
            },
        };
        Err(Box::new(SendError {
            error,
            wait_hint: pacing.and_then(|p| p.limited),
        }))
    }

    /// Reads an answer's body, refusing one larger than the limit.
    fn read_body(&self, request_line: &str, resp: Response) -> Result<String, Box<SendError>> {
        let limit = self.cfg.max_body_bytes;
        let too_large = || {
            SendError::boxed(Error::TooLarge {
                request: request_line.to_string(),
                limit,
            })
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        resp.take(limit + 1).read_to_end(&mut bytes).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::TimedOut {
                TransportKind::Timeout
            } else {
                TransportKind::Connection
            };
            SendError::boxed(Error::Transport {
                request: request_line.to_string(),
                reason: self
                    .redactor
                    .scrub(&format!("reading the answer failed: {}", chain(&e))),
                kind,
            })
        })?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The pacing an answer's `RateLimit-*` headers ask for.
    fn rate_limit(&self, resp: &Response) -> Option<Pacing> {
        let num = |name: &str| header(resp, name).and_then(|v| v.trim().parse::<u64>().ok());
        let headers = Headers {
            limit: num("ratelimit-limit")?,
            remaining: num("ratelimit-remaining")?,
            reset: num("ratelimit-reset"),
        };
        let now_s = self.cfg.clock.wall_ms() / 1000;
        Some(Pacing::from_headers(
            headers,
            now_s,
            resp.status().as_u16() == 429,
        ))
    }

    /// A transport failure, classified: what a retry can change, and what it cannot.
    fn transport_error(&self, request: &str, e: &reqwest::Error) -> Error {
        let (kind, reason) = if e.is_connect() && !is_tls(e) {
            (
                TransportKind::Connect,
                format!("cannot connect: {}", chain(e)),
            )
        } else if e.is_timeout() {
            (
                TransportKind::Timeout,
                "no answer within the request timeout".to_string(),
            )
        } else if is_tls(e) {
            (
                TransportKind::Permanent,
                format!(
                    "TLS failed, not retried (is the certificate valid for this host?): {}",
                    chain(e)
                ),
            )
        } else if e.is_builder() || e.is_redirect() {
            (
                TransportKind::Permanent,
                format!("the request cannot be sent, not retried: {}", chain(e)),
            )
        } else {
            (
                TransportKind::Connection,
                format!("request failed: {}", chain(e)),
            )
        };
        Error::Transport {
            request: request.to_string(),
            reason: self.redactor.scrub(&reason),
            kind,
        }
    }
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// True when a TLS problem is behind the error (a certificate, a handshake):
/// a rustls error somewhere in its sources, or, where a layer in between
/// kept only its text, rustls' words for one.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let text = chain(e).to_ascii_lowercase();
    if [
        "invalid peer certificate",
        "tls handshake",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
    ]
    .iter()
    .any(|w| text.contains(w))
    {
        return true;
    }
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// An error and its sources on one line, without the URL.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// The start of a text, for error messages: at most 120 characters.
pub(super) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(120).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}
