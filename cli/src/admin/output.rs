//! How answers are printed: the API's JSON as-is with `--json`, else a table of the
//! columns that matter, or `field: value` lines for one object.

use comfy_table::{Table, presets::NOTHING};
use serde_json::Value;

/// A cell: strings bare, null as `-`, the rest as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Prints a list: JSON array, or a table of `columns`.
pub fn list(items: &[Value], columns: &[&str], json: bool) {
    if json {
        println!("{}", pretty(&Value::Array(items.to_vec())));
        return;
    }
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(columns.iter().map(|c| c.to_uppercase()));
    for item in items {
        t.add_row(columns.iter().map(|c| cell(&item[*c])));
    }
    println!("{t}");
}

/// Prints one object: JSON, or `field: value` lines.
pub fn one(v: &Value, json: bool) {
    if json {
        println!("{}", pretty(v));
        return;
    }
    match v.as_object() {
        Some(map) => {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (k, v) in map {
                println!("{k:width$}  {}", cell(v));
            }
        }
        None => println!("{}", cell(v)),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Prints a key (or token) answer that carries a secret shown once.
pub fn with_secret(v: &Value, secret_field: &str, json: bool) {
    one(v, json);
    if !json && v[secret_field].is_string() {
        eprintln!("\nStore the {secret_field} now: it is shown only this once.");
    }
}
