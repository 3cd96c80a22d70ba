//! The API's error codes as one type, shared by the client, its retry
//! predicate, the module and the simulator, so that no code is a string
//! literal that can drift between them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! api_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// An error code of the Hetzner Cloud API (`error.code`), or one the
        /// API documents for actions. Codes this crate does not know are kept
        /// as [`ApiCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ApiCode {
            $($(#[$doc])* $variant,)*
            /// A code this crate does not know.
            Other(String),
        }

        impl ApiCode {
            /// The code as the API writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ApiCode::$variant => $text,)*
                    ApiCode::Other(s) => s,
                }
            }

            /// The code of a string from an answer.
            pub fn parse(s: &str) -> ApiCode {
                match s {
                    $($text => ApiCode::$variant,)*
                    other => ApiCode::Other(other.to_string()),
                }
            }
        }
    };
}

api_codes! {
    /// 409: the resource changed during the request; retry.
    Conflict = "conflict",
    /// 429: the project's request budget is spent.
    RateLimitExceeded = "rate_limit_exceeded",
    /// 423: an action is running on the resource.
    Locked = "locked",
    /// 404.
    NotFound = "not_found",
    /// 409: the name is taken.
    UniquenessError = "uniqueness_error",
    /// 422: a field is invalid.
    InvalidInput = "invalid_input",
    /// 400: the body is not JSON.
    JsonError = "json_error",
    /// 401: the token is wrong.
    Unauthorized = "unauthorized",
    /// 403: the token may not do this.
    Forbidden = "forbidden",
    /// 403: delete protection is on.
    Protected = "protected",
    /// 503.
    Unavailable = "unavailable",
    /// 504.
    Timeout = "timeout",
    /// 502.
    BadGateway = "bad_gateway",
    /// 500.
    ServiceError = "service_error",
    /// 403: a quota or limit is reached.
    LimitExceededError = "limit_exceeded_error",
    /// 422: the volume is already attached.
    VolumeAlreadyAttached = "volume_already_attached",
    /// 410: the endpoint is gone.
    DeprecatedApiEndpoint = "deprecated_api_endpoint",
    /// An action that ended in error.
    ActionFailed = "action_failed",
    /// 405: the route has no such method.
    MethodNotAllowed = "method_not_allowed",
}

impl fmt::Display for ApiCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ApiCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ApiCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ApiCode::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept() {
        for code in [
            ApiCode::Conflict,
            ApiCode::RateLimitExceeded,
            ApiCode::Locked,
        ] {
            assert_eq!(ApiCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ApiCode::parse("brand_new"),
            ApiCode::Other("brand_new".into())
        );
        assert_eq!(
            serde_json::to_string(&ApiCode::NotFound).unwrap(),
            "\"not_found\""
        );
    }
}
