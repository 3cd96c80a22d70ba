//! Lenient conversions of option values, as `AnsibleModule` does them
//! (`"3"` → 3, `"yes"` → true), and the serde `deserialize_with` helpers
//! built on them. Range checks here give the messages Ansible users know
//! ("must be between 1 and 64, got 0").

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::hcloud::types::Labels;

/// Ansible's booleans: true/false, yes/no, on/off, 1/0 …
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn truthy(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) || n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) || n.as_f64() == Some(0.0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "t" | "on" | "1" => Ok(true),
            "no" | "n" | "false" | "f" | "off" | "0" => Ok(false),
            _ => Err(format!("'{s}' is not a boolean; use true or false")),
        },
        other => Err(format!("{other} is not a boolean; use true or false")),
    }
}

/// A whole number, from a number or a string.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn to_int(v: &Value) -> Result<i64, String> {
    const LIMIT: f64 = 9.2e18; // below i64::MAX, so the conversion below is exact enough
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < LIMIT)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("{n} is not a whole number in range")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("'{s}' is not an integer (or out of range)")),
        other => Err(format!("{other} is not an integer")),
    }
}

/// Text, from a string, a number or a boolean.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn to_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("{other} is not a string")),
    }
}

/// A conversion's message as a serde error.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn custom<T, E: serde::de::Error>(r: Result<T, String>) -> Result<T, E> {
    r.map_err(E::custom)
}

/// `None` for null, otherwise `f` of the value.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn opt<'de, D: Deserializer<'de>, T>(
    d: D,
    f: impl Fn(&Value) -> Result<T, String>,
) -> Result<Option<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => f(&v).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Optional text.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    opt(d, to_text)
}
/// An optional whole number.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    opt(d, to_int)
}
/// An optional boolean.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    opt(d, truthy)
}
/// A whole number in `MIN..=MAX`, as `u64`.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn bounded<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<u64, D::Error> {
    custom(to_int(&Value::deserialize(d)?).and_then(|n| within(n, MIN, MAX)))
}

/// `n` as `u64` when it is in `min..=max`; otherwise the message users know.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn within(n: i64, min: u64, max: u64) -> Result<u64, String> {
    u64::try_from(n)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| format!("must be between {min} and {max}, got {n}"))
}

/// A boolean.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    custom(truthy(&Value::deserialize(d)?))
}

/// One of `choices`, by name.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn choice<T: Copy>(v: &Value, choices: &[(&str, T)]) -> Result<T, String> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let text = to_text(v)?;
    choices
        .iter()
        .find(|(n, _)| *n == text)
        .map(|(_, c)| *c)
        .ok_or_else(|| format!("value must be one of: {}, got: {text}", names.join(", ")))
}
/// A dictionary of labels, every value as text.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Labels>, D::Error> {
    opt(d, |v| {
        let Value::Object(m) = v else {
            return Err(format!("{v} is not a dictionary of labels"));
        };
        m.iter()
            .map(|(k, v)| {
                to_text(v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| format!("label '{k}': {e}"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
    })
}

/// An optional id: a whole number from 1 up.
///
/// # Errors
/// The message for the user when the value does not convert.
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    opt(d, |v| {
        let n = to_int(v)?;
        if n < 1 {
            return Err(format!("must be between 1 and {}, got {n}", i64::MAX));
        }
        Ok(n)
    })
}
