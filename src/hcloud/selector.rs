//! Hetzner's label selectors (`env=prod,role in (db,cache),!temp`): parsed
//! once, matched against a volume's labels. The simulator filters lists
//! with them; PH3-01 uses one to say which unattached volumes are legacy.

use crate::hcloud::types::Labels;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses `k==v`, `k=v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
    /// joined by commas outside parentheses.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let bad = |part: &str| format!("cannot parse '{part}'");
        let mut reqs = Vec::new();
        for part in split_outside_parens(text) {
            let part = part.trim();
            if part.is_empty() {
                return Err(bad(text));
            }
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(key(k).ok_or_else(|| bad(part))?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key(k).ok_or_else(|| bad(part))?, v.trim().to_string())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::Absent(key(k).ok_or_else(|| bad(part))?)
            } else if let Some((k, set)) = set_expr(part, " notin ") {
                Requirement::NotIn(
                    key(k).ok_or_else(|| bad(part))?,
                    set.ok_or_else(|| bad(part))?,
                )
            } else if let Some((k, set)) = set_expr(part, " in ") {
                Requirement::In(
                    key(k).ok_or_else(|| bad(part))?,
                    set.ok_or_else(|| bad(part))?,
                )
            } else {
                Requirement::Exists(key(part).ok_or_else(|| bad(part))?)
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    /// True when every requirement holds for these labels.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

fn key(k: &str) -> Option<String> {
    let k = k.trim();
    (!k.is_empty() && !k.contains(|c: char| c.is_whitespace() || "!=(),".contains(c)))
        .then(|| k.to_string())
}

fn set_expr<'a>(part: &'a str, op: &str) -> Option<(&'a str, Option<Vec<String>>)> {
    let (k, rest) = part.split_once(op)?;
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'));
    Some((
        k,
        inner.map(|i| i.split(',').map(|v| v.trim().to_string()).collect()),
    ))
}

fn split_outside_parens(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_table() {
        let prod = labels(&[("env", "prod"), ("role", "db")]);
        let stage = labels(&[("env", "stage")]);
        let none = labels(&[]);
        let cases = [
            ("env=prod", [true, false, false]),
            ("env==prod", [true, false, false]),
            ("env!=prod", [false, true, true]),
            ("role", [true, false, false]),
            ("!role", [false, true, true]),
            ("env in (prod,stage)", [true, true, false]),
            ("env notin (prod, qa)", [false, true, true]),
            ("env=prod,role=db", [true, false, false]),
            ("env in (prod,stage),!role", [false, true, false]),
        ];
        for (text, want) in cases {
            let s = Selector::parse(text).unwrap();
            let got = [s.matches(&prod), s.matches(&stage), s.matches(&none)];
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn bad_selectors_are_refused() {
        for text in ["", "env=prod,", "a b", "env in prod", "=x"] {
            let err = Selector::parse(text).unwrap_err();
            assert!(err.starts_with("cannot parse '"), "{text}: {err}");
        }
    }
}
