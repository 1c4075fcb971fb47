//! Posted form fields, turned into API request bodies: blank means absent, numbers
//! stay numbers, anything else goes to the API as typed so it names the bad field.

use std::collections::HashMap;

use serde_json::Value;

/// The fields of one posted form.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Fields(pub HashMap<String, String>);

impl Fields {
    /// A field's trimmed text; `None` when blank or missing.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A field as a JSON string (`null` when blank).
    pub fn string(&self, name: &str) -> Value {
        self.text(name).map_or(Value::Null, Value::from)
    }

    /// A count: a JSON number when it is one, the text otherwise (the API rejects it
    /// naming the field), `null` when blank.
    pub fn count(&self, name: &str) -> Value {
        match self.text(name) {
            None => Value::Null,
            Some(t) => t
                .parse::<u64>()
                .map_or_else(|_| Value::from(t), Value::from),
        }
    }

    /// A comma- or newline-separated list; `None` when blank.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.text(name).map(|t| {
            t.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }

    /// The CSRF token the form carried.
    pub fn csrf(&self) -> Option<&str> {
        self.0.get("csrf").map(String::as_str)
    }
}

/// `body` without its `null` members (fields the form left blank).
pub fn without_nulls(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    body
}
