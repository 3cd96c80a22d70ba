//! The legacy selector: which unattached volumes are legacy volumes (orphans).

use serde::{Deserialize, Serialize};

use super::model::nullable;
use crate::hcloud::selector::Selector;
use crate::hcloud::types::Labels;

/// Which unattached volumes are legacy volumes (orphans PH3-02 deletes): a
/// name matching one of `names` (`*` and `?` wildcards), or labels matching
/// `label_selector` (Hetzner's syntax). Any other unattached volume is left
/// alone. Volumes attached to fleet servers are deleted whatever their names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacySelector {
    pub names: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub label_selector: Option<String>,
}

impl Default for LegacySelector {
    /// The legacy convention the PH3-01 report describes: `vol-*`.
    fn default() -> Self {
        LegacySelector {
            names: vec!["vol-*".into()],
            label_selector: None,
        }
    }
}

impl LegacySelector {
    /// Checks the label selector's syntax; the error says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if let Some(text) = &self.label_selector {
            Selector::parse(text).map_err(|e| format!("legacy label selector '{text}': {e}"))?;
        }
        if self.names.iter().any(String::is_empty) {
            return Err("a legacy name pattern is empty".into());
        }
        Ok(())
    }

    /// True when a volume with this name and these labels is a legacy volume.
    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.names
            .iter()
            .any(|p| glob(p.as_bytes(), name.as_bytes()))
            || self
                .label_selector
                .as_deref()
                .and_then(|t| Selector::parse(t).ok())
                .is_some_and(|s| s.matches(labels))
    }

    /// The selector in words, for reasons and summaries.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.names.iter().map(|n| format!("name {n}")).collect();
        if let Some(l) = &self.label_selector {
            parts.push(format!("labels {l}"));
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(" or ")
        }
    }
}

/// Matches `text` against a pattern where `*` is any run and `?` any one byte.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, _) => text.is_empty(),
        (Some((b'*', rest)), _) => {
            glob(rest, text) || text.split_first().is_some_and(|(_, t)| glob(pattern, t))
        }
        (Some((b'?', rest)), Some((_, t))) => glob(rest, t),
        (Some((p, rest)), Some((c, t))) if p == c => glob(rest, t),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (case, selector, name, labels, legacy?)
    #[test]
    fn the_legacy_selector_by_name_or_labels() {
        let by_name = LegacySelector::default();
        let by_labels = LegacySelector {
            names: vec![],
            label_selector: Some("team=legacy,!keep".into()),
        };
        let both = LegacySelector {
            names: vec!["old-?".into(), "*-tmp".into()],
            label_selector: Some("team=legacy".into()),
        };
        let legacy: Labels = [("team".to_string(), "legacy".to_string())].into();
        let none = Labels::default();
        let cases = [
            ("vol-* by name", &by_name, "vol-redis-01", &none, true),
            ("vol-* needs the prefix", &by_name, "my-vol-1", &none, false),
            ("vol-* ignores labels", &by_name, "scratch", &legacy, false),
            ("labels only", &by_labels, "vol-redis-01", &none, false),
            ("labels match", &by_labels, "scratch", &legacy, true),
            ("? is one character", &both, "old-1", &none, true),
            ("? is not two", &both, "old-12", &none, false),
            ("* in front", &both, "build-tmp", &none, true),
            ("either matches", &both, "scratch", &legacy, true),
        ];
        for (case, sel, name, labels, want) in cases {
            assert_eq!(sel.matches(name, labels), want, "{case}");
        }
        let bad = LegacySelector {
            names: vec![],
            label_selector: Some("a b".into()),
        };
        assert!(bad
            .check()
            .unwrap_err()
            .contains("legacy label selector 'a b'"));
    }
}
