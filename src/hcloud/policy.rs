//! What the client refuses to do with the token: send it in clear text to
//! another machine, send it in a header it would break, or let it show in
//! anything it says.

use std::net::IpAddr;

use regex::Regex;
use reqwest::header::HeaderValue;
use reqwest::Url;

use super::error::Error;

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
/// that came from the network or from a library, before it is stored.
#[derive(Clone)]
pub struct Redactor {
    token: String,
    bearer: Regex,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(***)")
    }
}

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "***";

impl Redactor {
    /// A redactor for this token.
    pub fn new(token: &str) -> Self {
        Redactor {
            token: token.to_string(),
            bearer: Regex::new(r"(?i)\bbearer\s+[^\s\x22'<>,;]+").expect("valid regex"),
        }
    }

    /// The text without the token or bearer credentials.
    pub fn scrub(&self, text: &str) -> String {
        let text = if self.token.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.token, REDACTED)
        };
        self.bearer
            .replace_all(&text, format!("Bearer {REDACTED}"))
            .into_owned()
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
