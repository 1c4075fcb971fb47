//! Redis backend in Spin's Redis layout: one Redis database per store, plain keys
//! and values, counters as Redis integers moved with `INCRBY`. Any number of edge
//! nodes (and a Spin deployment, and the admin service's Redis sink) share it, so
//! rate limits and budgets are exact across nodes.
//!
//! One multiplexed connection per serving thread (opened on that thread, so the
//! task driving it runs beside the requests that use it) and one for everything
//! else, each reconnected in the background ([`ConnectionManager`]); a command
//! that cannot get an answer in time fails, and the component then denies the
//! request (fail closed).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Value};
use tokio::sync::OnceCell;

use super::{COUNTER_TTL, KvBackend, KvError, KvFuture, is_counter};

/// Longest a command waits for Redis: a request denied fast beats one hanging.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a (re)connection attempt takes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Keys asked for per `SCAN` round trip.
const SCAN_COUNT: usize = 1000;

/// Sets `KEYS[1]` to `ARGV[3]` only if it holds `ARGV[2]` (`ARGV[1]` = "1") or
/// is absent (`ARGV[1]` = "0"); atomic because Redis runs scripts alone, and
/// unlike `WATCH` it is safe on a shared multiplexed connection.
const CAS_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

/// `update` in one round trip, all or nothing (Redis runs a script alone; a counter
/// that fails puts back the ones moved before it). KEYS: the counters, then the
/// keys to set. ARGV[1]: how many counters; ARGV[2]: counter TTL in seconds; then
/// per counter its delta, the delta's inverse and whether it expires ("1"); then
/// the values. Returns each counter's new value as text (Lua numbers are doubles,
/// which would round values past 2^53).
const UPDATE_SCRIPT: &str = r#"
local n = tonumber(ARGV[1])
local function is_i64(v)
  local neg, digits = string.match(v, '^(%-?)(%d+)$')
  if not digits then return false end
  if #digits ~= 19 then return #digits < 19 end
  return digits <= (neg == '-' and '9223372036854775808' or '9223372036854775807')
end
local created, out = {}, {}
local function fail(i, err)
  for j = i - 1, 1, -1 do
    if created[j] then
      redis.call('DEL', KEYS[j])
    elseif ARGV[3 * j] ~= '0' then
      redis.call('INCRBY', KEYS[j], ARGV[3 * j + 1])
    end
  end
  return redis.error_reply(KEYS[i] .. ': ' .. err)
end
for i = 1, n do
  local key, delta = KEYS[i], ARGV[3 * i]
  if delta == '0' then
    local v = redis.pcall('GET', key)
    if type(v) == 'table' then return fail(i, v.err) end
    if v and not is_i64(v) then return fail(i, 'value is not an integer') end
    out[i] = v or '0'
  else
    created[i] = redis.call('EXISTS', key) == 0
    local r = redis.pcall('INCRBY', key, delta)
    if type(r) == 'table' then
      created[i] = false
      return fail(i, r.err)
    end
    if created[i] and ARGV[3 * i + 2] == '1' then redis.call('EXPIRE', key, ARGV[2]) end
    out[i] = redis.call('GET', key)
  end
end
for j = n + 1, #KEYS do
  redis.call('SET', KEYS[j], ARGV[2 * n + 2 + j])
end
return out
"#;

/// Serving threads that get a connection of their own; any beyond share the
/// process's.
const THREAD_CONNECTIONS: usize = 64;

/// A Redis-backed key-value store.
#[derive(Clone)]
pub struct RedisKv {
    client: Client,
    config: ConnectionManagerConfig,
    /// The connection of callers off the serving threads.
    conn: ConnectionManager,
    /// Each serving thread's connection, opened on its first command.
    per_thread: Arc<[OnceCell<ConnectionManager>]>,
    /// [`UPDATE_SCRIPT`], sent by hash once Redis has it.
    update: Arc<redis::Script>,
}

/// Checks a `redis://` URL without connecting.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    Client::open(url)
        .map(drop)
        .map_err(|e| format!("invalid Redis URL: {e}"))
}

impl From<RedisError> for KvError {
    fn from(e: RedisError) -> Self {
        KvError::Backend(format!("redis: {e}"))
    }
}

impl RedisKv {
    /// Connects to `url` (`redis://host:port[/db]`); fails if Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<RedisKv, KvError> {
        let client = Client::open(url).map_err(|e| KvError::Backend(format!("redis: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            // Reconnects happen in the background; a command meanwhile fails fast.
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
        Ok(RedisKv {
            client,
            config,
            conn,
            per_thread: (0..THREAD_CONNECTIONS).map(|_| OnceCell::new()).collect(),
            update: Arc::new(redis::Script::new(UPDATE_SCRIPT)),
        })
    }

    /// The caller's connection: its serving thread's, else the shared one. A
    /// cheap handle onto one multiplexed connection.
    async fn conn(&self) -> Result<ConnectionManager, KvError> {
        let Some(cell) = crate::serving::current_thread().and_then(|i| self.per_thread.get(i))
        else {
            return Ok(self.conn.clone());
        };
        let conn = cell
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(self.client.clone(), self.config.clone())
            })
            .await?;
        Ok(conn.clone())
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, KvError> {
        let mut conn = self.conn().await?;
        Ok(cmd.query_async(&mut conn).await?)
    }
}

/// Maps Redis's answer to a non-integer or overflowing `INCRBY`.
fn counter_error(key: &str, e: RedisError) -> KvError {
    let text = e.to_string();
    if text.contains("overflow") {
        KvError::Overflow {
            key: key.to_string(),
        }
    } else if text.contains("not an integer") || text.contains("WRONGTYPE") {
        KvError::NotACounter {
            key: key.to_string(),
        }
    } else {
        e.into()
    }
}

/// Parses a counter as Redis stores it (decimal text).
fn parse_counter(key: &str, value: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| KvError::NotACounter {
            key: key.to_string(),
        })
}

impl KvBackend for RedisKv {
    fn get<'a>(&'a self, _store: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { self.query(redis::cmd("GET").arg(key)).await })
    }

    fn set<'a>(&'a self, _store: &'a str, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        Box::pin(async move { self.query(redis::cmd("SET").arg(key).arg(value)).await })
    }

    fn delete<'a>(&'a self, _store: &'a str, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move { self.query(redis::cmd("DEL").arg(key)).await })
    }

    fn exists<'a>(&'a self, _store: &'a str, key: &'a str) -> KvFuture<'a, bool> {
        Box::pin(async move { self.query(redis::cmd("EXISTS").arg(key)).await })
    }

    fn list_keys<'a>(&'a self, _store: &'a str) -> KvFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, page): (u64, Vec<String>) = self
                    .query(redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(SCAN_COUNT))
                    .await?;
                keys.extend(page);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            // SCAN may return a key twice while the keyspace is rehashed.
            keys.sort_unstable();
            keys.dedup();
            Ok(keys)
        })
    }

    fn increment<'a>(&'a self, _store: &'a str, key: &'a str, delta: i64) -> KvFuture<'a, i64> {
        Box::pin(async move {
            if delta == 0 {
                // A read that creates nothing (INCRBY 0 would create the key).
                let value: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(key)).await?;
                return value.map_or(Ok(0), |v| parse_counter(key, &v));
            }
            let mut conn = self.conn().await?;
            let new: i64 = redis::cmd("INCRBY")
                .arg(key)
                .arg(delta)
                .query_async(&mut conn)
                .await
                .map_err(|e| counter_error(key, e))?;
            // The first increment of a window created the key: give it an expiry.
            if new == delta && delta > 0 && is_counter(key) {
                let _: Value = redis::cmd("EXPIRE")
                    .arg(key)
                    .arg(COUNTER_TTL.as_secs())
                    .query_async(&mut conn)
                    .await?;
            }
            Ok(new)
        })
    }

    fn update<'a>(
        &'a self,
        _store: &'a str,
        deltas: &'a [(String, i64)],
        values: &'a [(String, Vec<u8>)],
    ) -> KvFuture<'a, Vec<i64>> {
        Box::pin(async move {
            let mut script = self.update.prepare_invoke();
            for key in deltas
                .iter()
                .map(|(k, _)| k)
                .chain(values.iter().map(|(k, _)| k))
            {
                script.key(key);
            }
            script.arg(deltas.len()).arg(COUNTER_TTL.as_secs());
            for (key, delta) in deltas {
                let expires = if is_counter(key) { "1" } else { "0" };
                script.arg(*delta).arg(delta.saturating_neg()).arg(expires);
            }
            for (_, value) in values {
                script.arg(value.as_slice());
            }
            let mut conn = self.conn().await?;
            let moved: Vec<Vec<u8>> = script.invoke_async(&mut conn).await?;
            deltas
                .iter()
                .zip(moved)
                .map(|((key, _), value)| parse_counter(key, &value))
                .collect()
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        _store: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: &'a [u8],
    ) -> KvFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(CAS_SCRIPT).arg(1).arg(key);
            match expected {
                Some(v) => cmd.arg("1").arg(v),
                None => cmd.arg("0").arg(""),
            };
            cmd.arg(new);
            let swapped: i64 = self.query(&cmd).await?;
            Ok(swapped == 1)
        })
    }

    fn get_many<'a>(
        &'a self,
        _store: &'a str,
        keys: &'a [String],
    ) -> KvFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            // One round trip, one consistent read (MGET is atomic).
            self.query(redis::cmd("MGET").arg(keys)).await
        })
    }

    fn set_many<'a>(
        &'a self,
        _store: &'a str,
        entries: &'a [(String, Vec<u8>)],
    ) -> KvFuture<'a, ()> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            // MSET is atomic: a records file never lands half-loaded.
            let mut cmd = redis::cmd("MSET");
            for (k, v) in entries {
                cmd.arg(k).arg(v);
            }
            self.query(&cmd).await
        })
    }

    fn delete_many<'a>(&'a self, _store: &'a str, keys: &'a [String]) -> KvFuture<'a, ()> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            self.query(redis::cmd("DEL").arg(keys)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_counter_text() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("redis://127.0.0.1:notaport").is_err());
        assert_eq!(parse_counter("k", b"-42").unwrap(), -42);
        assert!(matches!(
            parse_counter("k", b"{}"),
            Err(KvError::NotACounter { .. })
        ));
    }
}
