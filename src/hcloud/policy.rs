//! What the client refuses to do with the token: send it in clear text to
//! another machine, send it in a header it would break, or let it show in
//! anything it says.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use regex::Regex;
use reqwest::header::HeaderValue;
use reqwest::Url;

use super::error::Error;

/// An API token. It never shows in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }
    /// The token itself, for the `Authorization` header and the redactor only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The environment variable that allows `http://` to hosts other than this machine.
pub const INSECURE_ENV: &str = "KBV3_ALLOW_INSECURE_HTTP";

/// Checks an endpoint: `https://`, or `http://` to this machine (judged by
/// the host as written: `localhost`, an address in 127.0.0.0/8, or `::1`),
/// or `http://` anywhere when `allow_insecure_http` says so. Nothing is
/// resolved or connected here. Returns the endpoint without a trailing slash.
pub fn check_endpoint(endpoint: &str, allow_insecure_http: bool) -> Result<String, Error> {
    let url = Url::parse(endpoint).map_err(|e| {
        Error::Config(format!(
            "api_endpoint '{endpoint}' is not a valid URL ({e}); expected something like https://api.hetzner.cloud/v1"
        ))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::Config(format!(
                "api_endpoint '{endpoint}' uses http:// to a host that is not this machine: the API token would cross \
                 the network unencrypted. Use https://, or, if you really mean it, set the module option \
                 allow_insecure_http: true (or the environment variable {INSECURE_ENV}=1)"
            )))
        }
        other => {
            return Err(Error::Config(format!(
                "api_endpoint '{endpoint}' uses {other}://; only https:// (and http:// to this machine) is supported"
            )))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "api_endpoint must not carry a user name or password; the token goes in api_token or HCLOUD_TOKEN".into(),
        ));
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

/// True when the URL's host, as written, is this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Checks that a token can be sent as a bearer header (no line break or
/// other control character). The message never contains the token.
pub fn check_token(token: &str) -> Result<(), Error> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map(|_| ())
        .map_err(|_| {
            Error::Config(
                "the API token contains a line break or another character that cannot be sent in an HTTP header; \
                 check api_token or HCLOUD_TOKEN (a copy-paste often adds a newline)"
                    .into(),
            )
        })
}

/// Removes a token, and anything shaped like a bearer credential, from text
/// that came from the network or from a library, before it is stored. Any
/// piece of the token of [`PIECE`] characters or more is masked too, so a
/// prefix, a suffix or a middle part never shows.
#[derive(Clone)]
pub struct Redactor {
    /// Every run of [`PIECE`] bytes of the token (the whole token when shorter).
    pieces: HashSet<Vec<u8>>,
    width: usize,
    bearer: Regex,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(***)")
    }
}

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "***";

/// The shortest piece of the token that is masked wherever it shows.
pub const PIECE: usize = 8;

impl Redactor {
    /// A redactor for this token.
    pub fn new(token: &str) -> Self {
        let bytes = token.as_bytes();
        let width = PIECE.min(bytes.len());
        let pieces = if width == 0 {
            HashSet::new()
        } else {
            bytes.windows(width).map(<[u8]>::to_vec).collect()
        };
        Redactor {
            pieces,
            width,
            bearer: Regex::new(r"(?i)\bbearer\s+[^\s\x22'<>,;]+").expect("valid regex"),
        }
    }

    /// The text without any piece of the token or bearer credentials.
    pub fn scrub(&self, text: &str) -> String {
        let text = self.mask_pieces(text);
        self.bearer
            .replace_all(&text, format!("Bearer {REDACTED}"))
            .into_owned()
    }

    /// Masks every run of the text covered by pieces of the token; a run is
    /// widened to whole characters.
    fn mask_pieces(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        if self.width == 0 || bytes.len() < self.width {
            return text.to_string();
        }
        let mut covered_until = 0;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (at, window) in bytes.windows(self.width).enumerate() {
            if !self.pieces.contains(window) {
                continue;
            }
            let end = at + self.width;
            match runs.last_mut() {
                Some(run) if at <= covered_until => run.1 = end,
                _ => runs.push((at, end)),
            }
            covered_until = end;
        }
        if runs.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut from = 0;
        for (mut start, mut end) in runs {
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            out.push_str(&text[from..start.max(from)]);
            out.push_str(REDACTED);
            from = end;
        }
        out.push_str(&text[from..]);
        out
    }

    /// Every string of a JSON value, scrubbed.
    pub fn scrub_json(&self, v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(self.scrub(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| self.scrub_json(x)).collect()),
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, x)| (self.scrub(&k), self.scrub_json(x)))
                    .collect(),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_by_scheme_and_host_as_written() {
        let ok = [
            "https://api.hetzner.cloud/v1/",
            "http://127.0.0.1:8080/v1",
            "http://127.9.9.9/v1",
            "http://localhost:1/v1",
            "http://LOCALHOST/v1",
            "http://[::1]:9/v1",
        ];
        for e in ok {
            assert!(check_endpoint(e, false).is_ok(), "{e}");
        }
        assert_eq!(
            check_endpoint("https://api.hetzner.cloud/v1/", false).unwrap(),
            "https://api.hetzner.cloud/v1"
        );
        let refused = [
            (
                "http://api.example.com/v1",
                "uses http:// to a host that is not this machine",
            ),
            (
                "http://localhost.example.com/v1",
                "uses http:// to a host that is not this machine",
            ),
            (
                "http://10.0.0.1/v1",
                "uses http:// to a host that is not this machine",
            ),
            (
                "http://[::ffff:7f00:1]/v1",
                "uses http:// to a host that is not this machine",
            ),
            ("ftp://127.0.0.1/v1", "uses ftp://; only https://"),
            ("not a url", "is not a valid URL"),
            (
                "https://user:pw@api.hetzner.cloud/v1",
                "must not carry a user name or password",
            ),
        ];
        for (e, want) in refused {
            let msg = check_endpoint(e, false).unwrap_err().to_string();
            assert!(msg.contains(want), "{e}: {msg}");
        }
        assert!(check_endpoint("http://api.example.com/v1", true).is_ok());
        assert!(check_endpoint("ftp://x/v1", true).is_err());
    }

    #[test]
    fn tokens_that_break_headers_are_refused_without_being_shown() {
        assert!(check_token("abc-DEF_123").is_ok());
        let msg = check_token("sec\nret").unwrap_err().to_string();
        assert!(msg.contains("line break") && !msg.contains("sec"), "{msg}");
    }

    #[test]
    fn pieces_of_the_token_are_masked_wherever_they_show() {
        let token = "AbCdEfGh-0123456789-IjKlMnOp";
        let r = Redactor::new(token);
        // (case, text, what must remain)
        let cases = [
            ("whole", format!("vol-{token}"), "vol-***".to_string()),
            ("prefix", format!("{}…", &token[..8]), "***…".to_string()),
            (
                "suffix",
                format!("name={}", &token[token.len() - 9..]),
                "name=***".to_string(),
            ),
            (
                "middle",
                format!("x{}y", &token[5..20]),
                "x***y".to_string(),
            ),
            (
                "seven characters stay",
                token[..7].to_string(),
                token[..7].to_string(),
            ),
            (
                "twice",
                format!("{0} {0}", &token[..10]),
                "*** ***".to_string(),
            ),
            (
                "next to multibyte text",
                format!("é{}é", &token[..12]),
                "é***é".to_string(),
            ),
        ];
        for (case, text, want) in cases {
            assert_eq!(r.scrub(&text), want, "{case}");
        }
        assert_eq!(Redactor::new("").scrub("plain"), "plain");
        assert_eq!(Redactor::new("abc").scrub("xabcx"), "x***x");
    }

    #[test]
    fn scrubbing_removes_the_token_and_bearer_credentials() {
        let r = Redactor::new("s3cr3t");
        assert_eq!(
            r.scrub("<p>Authorization: Bearer s3cr3t</p> and s3cr3t again; bearer other-token, x"),
            "<p>Authorization: Bearer ***</p> and *** again; Bearer ***, x"
        );
        let v = r.scrub_json(serde_json::json!({"echo": ["Bearer abc"], "s3cr3t": 1}));
        assert_eq!(v, serde_json::json!({"echo": ["Bearer ***"], "***": 1}));
    }
}
