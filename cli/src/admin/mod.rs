//! Admin commands: `tollgate orgs|keys|members|agents …`, built on the admin API.

pub mod agents;
pub mod client;
pub mod keys;
pub mod members;
pub mod orgs;
pub mod output;

use clap::Args;
use serde_json::{Map, Value};

use client::{Api, CliError};

/// Where the admin API is and who calls it; shared by every admin command.
#[derive(Args, Debug)]
pub struct Conn {
    /// The admin API root (with or without `/api`).
    #[arg(
        long,
        global = true,
        env = "TOLLGATE_BASE_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub api_url: String,
    /// A platform-admin or user token of the admin API.
    #[arg(long, global = true, env = "TOLLGATE_API_KEY", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON as-is (lists: every page as one array).
    #[arg(long, global = true)]
    pub json: bool,
}

impl Conn {
    /// The API client; a missing token is a usage error.
    pub fn api(&self) -> Result<Api, CliError> {
        let token = self
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                CliError::Usage("no token: pass --token or set TOLLGATE_API_KEY".into())
            })?;
        Ok(Api::new(&self.api_url, token))
    }
}

/// A JSON object of the fields given (`None` left out).
pub fn fields<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Value {
    let map: Map<String, Value> = pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    Value::Object(map)
}

/// `"a,b"` as a JSON array of strings; `""` as an empty one.
pub fn csv(s: &str) -> Value {
    Value::Array(
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Value::String(p.to_string()))
            .collect(),
    )
}

/// A value that `none` (or `null`) clears, for `update` commands.
pub fn clearable(s: &str) -> Value {
    if s == "none" || s == "null" {
        Value::Null
    } else {
        serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_number)
            .unwrap_or_else(|| Value::String(s.to_string()))
    }
}

/// An id as one path segment: escaped, so no id can reach another path.
pub fn seg(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}
