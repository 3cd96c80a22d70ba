//! Query strings: form decoding, pagination, sorting and label selectors.

use std::cmp::Ordering;

use crate::hcloud::selector::Selector;
use crate::hcloud::types::{Meta, Pagination};

use super::SimError;

/// Default page size of the API.
const DEFAULT_PER_PAGE: u64 = 25;
/// Largest page size of the API.
const MAX_PER_PAGE: u64 = 50;

/// A decoded query string; repeated keys keep every value in order.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `a=1&b=x+y` (`+` is a space, as in forms).
    pub fn parse(raw: &str) -> Query {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a key.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `page` and `per_page`, validated; `per_page` above 50 is lowered to 50.
    pub fn page(&self) -> Result<(u64, u64), SimError> {
        let num = |key: &str, default: u64| match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| SimError::invalid_field(key, "must be a positive integer")),
        };
        Ok((
            num("page", 1)?,
            num("per_page", DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE),
        ))
    }

    /// The label selector, parsed, if any.
    pub fn selector(&self) -> Result<Option<Selector>, SimError> {
        self.get("label_selector")
            .map(|text| {
                Selector::parse(text).map_err(|e| SimError::invalid_field("label_selector", e))
            })
            .transpose()
    }

    /// The `sort` keys, each checked against `allowed`: `(field, descending)`.
    pub fn sort(&self, allowed: &[&str]) -> Result<Vec<(String, bool)>, SimError> {
        self.all("sort")
            .into_iter()
            .map(|s| {
                let (field, dir) = s.split_once(':').unwrap_or((s, "asc"));
                if !allowed.contains(&field) || !matches!(dir, "asc" | "desc") {
                    return Err(SimError::invalid_field(
                        "sort",
                        format!(
                            "'{s}' is not one of {} with an optional :asc or :desc",
                            allowed.join(", ")
                        ),
                    ));
                }
                Ok((field.to_string(), dir == "desc"))
            })
            .collect()
    }
}

/// Sorts `items` by the given keys; `key` maps a field name to a comparable value.
pub fn sort_by<T>(items: &mut [T], keys: &[(String, bool)], key: impl Fn(&T, &str) -> SortKey) {
    items.sort_by(|a, b| {
        keys.iter()
            .map(|(field, desc)| {
                let o = key(a, field).cmp(&key(b, field));
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
}

/// A value to sort on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    Int(i64),
    Text(String),
}

/// Cuts one page out of `items` and builds the six-key pagination meta.
pub fn paginate<T>(items: Vec<T>, page: u64, per_page: u64) -> (Vec<T>, Meta) {
    let total = items.len() as u64;
    let last = total.div_ceil(per_page).max(1);
    let start = ((page - 1) * per_page).min(total) as usize;
    let slice: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(per_page as usize)
        .collect();
    let meta = Meta {
        pagination: Pagination {
            page,
            per_page,
            previous_page: (page > 1).then(|| (page - 1).min(last)),
            next_page: (page < last).then_some(page + 1),
            last_page: Some(last),
            total_entries: Some(total),
        },
    };
    (slice, meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_decodes_to_space() {
        let q = Query::parse("label_selector=env+in+%28prod%2Cstage%29&page=2");
        assert_eq!(q.get("label_selector"), Some("env in (prod,stage)"));
        assert_eq!(q.page().unwrap(), (2, 25));
    }

    #[test]
    fn pagination_meta() {
        let (items, meta) = paginate((1..=7).collect(), 2, 3);
        assert_eq!(items, vec![4, 5, 6]);
        let p = meta.pagination;
        assert_eq!(
            (p.previous_page, p.next_page, p.last_page, p.total_entries),
            (Some(1), Some(3), Some(3), Some(7))
        );
        let (items, meta) = paginate(Vec::<i32>::new(), 1, 25);
        assert!(items.is_empty());
        assert_eq!(
            (meta.pagination.last_page, meta.pagination.next_page),
            (Some(1), None)
        );
    }

    #[test]
    fn sort_keys_are_checked() {
        let q = Query::parse("sort=name:desc&sort=id");
        assert_eq!(
            q.sort(&["id", "name"]).unwrap(),
            vec![("name".into(), true), ("id".into(), false)]
        );
        assert!(Query::parse("sort=size").sort(&["id"]).is_err());
    }
}
