//! Model allow-lists: exact names and `*` patterns, intersected at compile time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest model name or pattern accepted, in characters.
pub const MAX_MODEL_LEN: usize = 256;

/// A model name or a pattern where `*` matches any run of characters (`gpt-4o*`, `*`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelPattern(String);

/// Why a model pattern is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty string.
    #[error("model name must not be empty")]
    Empty,
    /// Longer than [`MAX_MODEL_LEN`].
    #[error("model name is longer than {MAX_MODEL_LEN} characters")]
    TooLong,
    /// Contains whitespace or a control character.
    #[error("model name {0:?} contains whitespace or control characters")]
    BadChar(String),
}

impl ModelPattern {
    /// The pattern that matches every model.
    pub fn any() -> Self {
        ModelPattern("*".into())
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an exact name (no `*`).
    pub fn is_exact(&self) -> bool {
        !self.0.contains('*')
    }

    /// Whether `model` matches this pattern.
    pub fn matches(&self, model: &str) -> bool {
        glob_match(self.0.as_bytes(), model.as_bytes())
    }

    /// `Some(prefix)` when the pattern is `prefix*` with no other wildcard.
    fn as_prefix(&self) -> Option<&str> {
        let p = self.0.strip_suffix('*')?;
        (!p.contains('*')).then_some(p)
    }
}

impl FromStr for ModelPattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelPattern::try_from(s.to_string())
    }
}

impl TryFrom<String> for ModelPattern {
    type Error = PatternError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.is_empty() {
            return Err(PatternError::Empty);
        }
        if s.chars().count() > MAX_MODEL_LEN {
            return Err(PatternError::TooLong);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(PatternError::BadChar(s));
        }
        Ok(ModelPattern(s))
    }
}

impl From<ModelPattern> for String {
    fn from(p: ModelPattern) -> String {
        p.0
    }
}

impl fmt::Debug for ModelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ModelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Wildcard match with `*` only; linear backtracking on the last star.
fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pat.len() && pat[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A set of callable models: the union of exact names and pattern grants, where a
/// grant is a conjunction of patterns (what is left of intersecting two patterns).
///
/// The empty set allows nothing: a key with no grants can call no model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSet {
    /// Exact model names, sorted and unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exact: Vec<String>,
    /// Pattern grants; a model is in the set when it matches every pattern of a grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<Vec<ModelPattern>>,
}

impl ModelSet {
    /// The set of every model.
    pub fn all() -> Self {
        ModelSet {
            exact: Vec::new(),
            patterns: vec![vec![ModelPattern::any()]],
        }
    }

    /// Builds a set from a list of names and patterns (a plain allow-list).
    pub fn from_patterns<I: IntoIterator<Item = ModelPattern>>(items: I) -> Self {
        let mut set = ModelSet::default();
        for p in items {
            if p.is_exact() {
                set.exact.push(p.0);
            } else {
                set.patterns.push(vec![p]);
            }
        }
        set.normalize();
        set
    }

    /// Whether `model` is in the set.
    pub fn permits(&self, model: &str) -> bool {
        self.exact
            .binary_search_by(|e| e.as_str().cmp(model))
            .is_ok()
            || self
                .patterns
                .iter()
                .any(|grant| grant.iter().all(|p| p.matches(model)))
    }

    /// Whether the set allows nothing.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }

    /// The set of models in both `self` and `other`.
    pub fn intersect(&self, other: &ModelSet) -> ModelSet {
        let mut out = ModelSet::default();
        out.exact.extend(
            self.exact
                .iter()
                .filter(|m| other.permits(m))
                .chain(other.exact.iter().filter(|m| self.permits(m)))
                .cloned(),
        );
        for a in &self.patterns {
            for b in &other.patterns {
                if let Some(grant) = conjoin(a, b) {
                    out.patterns.push(grant);
                }
            }
        }
        out.normalize();
        out
    }

    /// The names to list for this set: its exact names plus every catalog name it permits.
    pub fn listed<'a>(&'a self, catalog: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let mut names: Vec<&str> = self.exact.iter().map(String::as_str).collect();
        names.extend(catalog.into_iter().filter(|m| self.permits(m)));
        names.sort_unstable();
        names.dedup();
        names
    }

    fn normalize(&mut self) {
        self.exact.sort();
        self.exact.dedup();
        for grant in &mut self.patterns {
            grant.sort();
            grant.dedup();
        }
        self.patterns.sort();
        self.patterns.dedup();
        // An unrestricted grant makes every other grant redundant.
        if self
            .patterns
            .iter()
            .any(|g| g.len() == 1 && g[0].as_str() == "*")
        {
            self.patterns = vec![vec![ModelPattern::any()]];
        }
    }
}

/// The conjunction of two grants, simplified; `None` when provably empty.
fn conjoin(a: &[ModelPattern], b: &[ModelPattern]) -> Option<Vec<ModelPattern>> {
    let mut grant: Vec<ModelPattern> = Vec::with_capacity(a.len() + b.len());
    for p in a.iter().chain(b) {
        if p.as_str() == "*" {
            continue;
        }
        // Two prefix patterns: one contains the other, or they are disjoint.
        if let Some(new) = p.as_prefix() {
            let mut subsumed = false;
            for q in grant.iter_mut() {
                if let Some(old) = q.as_prefix() {
                    if new.starts_with(old) {
                        *q = p.clone();
                        subsumed = true;
                    } else if old.starts_with(new) {
                        subsumed = true;
                    } else {
                        return None;
                    }
                }
            }
            if subsumed {
                continue;
            }
        }
        grant.push(p.clone());
    }
    if grant.is_empty() {
        grant.push(ModelPattern::any());
    }
    Some(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(items: &[&str]) -> ModelSet {
        ModelSet::from_patterns(items.iter().map(|s| s.parse().unwrap()))
    }

    #[test]
    fn glob_basics() {
        let p: ModelPattern = "gpt-4o*".parse().unwrap();
        assert!(p.matches("gpt-4o") && p.matches("gpt-4o-mini"));
        assert!(!p.matches("gpt-4") && !p.matches("xgpt-4o"));
        let mid: ModelPattern = "claude-*-sonnet*".parse().unwrap();
        assert!(mid.matches("claude-3-5-sonnet-latest"));
        assert!(!mid.matches("claude-3-opus"));
        assert!(ModelPattern::any().matches(""));
    }

    #[test]
    fn rejects_bad_patterns() {
        assert_eq!("".parse::<ModelPattern>(), Err(PatternError::Empty));
        assert!(matches!(
            "gpt 4".parse::<ModelPattern>(),
            Err(PatternError::BadChar(_))
        ));
        assert_eq!(
            "a".repeat(257).parse::<ModelPattern>(),
            Err(PatternError::TooLong)
        );
        assert!(serde_json::from_str::<ModelSet>(r#"{"exact":[],"patterns":[[""]]}"#).is_err());
    }

    #[test]
    fn empty_set_allows_nothing() {
        assert!(!ModelSet::default().permits("gpt-4o"));
        assert!(ModelSet::all().permits("anything"));
    }

    #[test]
    fn intersection_narrows() {
        let org = set(&["gpt-*", "claude-3-opus"]);
        let key = set(&["gpt-4o", "gpt-4o-mini", "claude-*", "o1"]);
        let eff = org.intersect(&key);
        assert!(eff.permits("gpt-4o") && eff.permits("gpt-4o-mini"));
        assert!(eff.permits("claude-3-opus"));
        assert!(!eff.permits("claude-3-haiku") && !eff.permits("o1") && !eff.permits("gpt-5"));
        // Prefix patterns collapse to the narrower one.
        let narrowed = set(&["gpt-*"]).intersect(&set(&["gpt-4*"]));
        assert_eq!(narrowed.patterns, vec![vec!["gpt-4*".parse().unwrap()]]);
        assert!(set(&["gpt-*"]).intersect(&set(&["claude-*"])).is_empty());
        assert_eq!(ModelSet::all().intersect(&key), key);
    }

    #[test]
    fn listed_includes_catalog_matches() {
        let s = set(&["gpt-4o", "claude-*"]);
        assert_eq!(
            s.listed(["claude-3-opus", "gpt-4o", "o1"]),
            vec!["claude-3-opus", "gpt-4o"]
        );
    }

    fn naive(pat: &str, text: &str) -> bool {
        // Reference: recursive definition of `*` matching.
        match pat.split_once('*') {
            None => pat == text,
            Some((head, tail)) => {
                text.starts_with(head) && (head.len()..=text.len()).any(|i| naive(tail, &text[i..]))
            }
        }
    }

    fn pattern() -> impl Strategy<Value = String> {
        "[ab*-]{1,6}"
    }

    proptest! {
        #[test]
        fn glob_agrees_with_reference(p in pattern(), t in "[ab-]{0,8}") {
            let pat: ModelPattern = p.parse().unwrap();
            prop_assert_eq!(pat.matches(&t), naive(&p, &t));
        }

        #[test]
        fn intersection_is_conjunction(
            a in proptest::collection::vec(pattern(), 0..4),
            b in proptest::collection::vec(pattern(), 0..4),
            t in "[ab-]{0,8}",
        ) {
            let sa = set(&a.iter().map(String::as_str).collect::<Vec<_>>());
            let sb = set(&b.iter().map(String::as_str).collect::<Vec<_>>());
            let both = sa.intersect(&sb);
            prop_assert_eq!(both.permits(&t), sa.permits(&t) && sb.permits(&t));
        }
    }
}
