//! Keeping every instance's revocation set current from Redis (see `session::revoked`).
//!
//! Writers ([`publish`], inside the MULTI of every revocation write) add each mark to
//! `lgw:{rv}:z` (sorted set: member = 64-bit key in hex, score = expiry in unix seconds; expired
//! members are removed by the same write) and one entry to the stream `lgw:{rv}:log` (field `m`:
//! `key:expiry key:expiry ...`, trimmed to about [`FEED_LEN`] entries).
//!
//! The [`Follower`] (one background task per instance, on a connection of its own because it
//! blocks):
//! 1. on its first connection, or when the stream no longer reaches back to the last entry it
//!    saw (trimmed while it was away), notes the stream's newest id, then loads the whole
//!    sorted set (ZSCAN) and continues the stream from that id: a mark written meanwhile is in
//!    both, which only repeats an insert;
//! 2. reads the stream with `XREAD BLOCK` ([`BLOCK`]), inserting what arrives, and after each
//!    answer marks the set synced as of the moment that read was sent;
//! 3. on any error waits briefly and reconnects, continuing from the last id. While it is away
//!    the set grows stale after `max_lag` and the edge asks Redis instead (fail closed).
//!
//! A logout at one instance reaches every other instance's set within one stream read: the
//! blocked `XREAD` returns as soon as the entry is added (milliseconds on a LAN).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use redis::{AsyncConnectionConfig, Value};

use super::link::Link;
use crate::config::{RedisConfig, RedisTarget};
use crate::session::revoked::{hex_of_key, key_of_hex, unix_ms, Key, RevokedSet};

/// How long one stream read blocks waiting for new entries.
pub(super) const BLOCK: Duration = Duration::from_millis(1000);

/// About how many feed entries the stream keeps; a follower away for longer reloads the snapshot.
pub(super) const FEED_LEN: u64 = 100_000;

/// Snapshot entries asked for per ZSCAN call.
const SCAN_COUNT: u64 = 5_000;

/// How old the last sync may be before the set counts as stale: one blocking read, its reply
/// time, and a margin for a busy runtime.
pub(super) fn max_lag(config: &RedisConfig) -> Duration {
    BLOCK + config.response_timeout * 2 + Duration::from_millis(500)
}

pub(super) fn snapshot_key(prefix: &str) -> String {
    format!("{prefix}{{rv}}:z")
}

fn feed_key(prefix: &str) -> String {
    format!("{prefix}{{rv}}:log")
}

/// Add the writes that publish `marks` (key, expiry) to every instance to a (MULTI) pipeline.
pub(super) fn publish(pipe: &mut redis::Pipeline, prefix: &str, marks: &[(Key, u64)], now: u64) {
    if marks.is_empty() {
        return;
    }
    let z = snapshot_key(prefix);
    let zadd = pipe.cmd("ZADD").arg(&z).arg("GT");
    for (k, exp) in marks {
        zadd.arg(*exp).arg(hex_of_key(*k));
    }
    zadd.ignore();
    pipe.cmd("ZREMRANGEBYSCORE").arg(&z).arg("-inf").arg(now).ignore();
    let entry: Vec<String> = marks.iter().map(|(k, exp)| format!("{}:{exp}", hex_of_key(*k))).collect();
    pipe.cmd("XADD")
        .arg(feed_key(prefix))
        .arg("MAXLEN")
        .arg("~")
        .arg(FEED_LEN)
        .arg("*")
        .arg("m")
        .arg(entry.join(" "))
        .ignore();
}

/// `key:expiry ...` as marks; malformed parts are skipped.
fn parse_entry(m: &str) -> impl Iterator<Item = (Key, u64)> + '_ {
    m.split(' ').filter_map(|part| {
        let (k, exp) = part.split_once(':')?;
        Some((key_of_hex(k)?, exp.parse().ok()?))
    })
}

/// A stream id as (ms, seq), for ordering.
fn id_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Stream entries `[[id, [field, value, ...]], ...]` as (id, marks of field `m`).
fn entries(v: &Value) -> Vec<(String, Vec<(Key, u64)>)> {
    let Value::Array(list) = v else { return Vec::new() };
    list.iter()
        .filter_map(|e| {
            let Value::Array(parts) = e else { return None };
            let id = text(parts.first()?)?;
            let mut marks = Vec::new();
            if let Some(Value::Array(fv)) = parts.get(1) {
                for pair in fv.chunks(2) {
                    if pair.len() == 2 && text(&pair[0]).as_deref() == Some("m") {
                        marks.extend(parse_entry(&text(&pair[1]).unwrap_or_default()));
                    }
                }
            }
            Some((id, marks))
        })
        .collect()
}

/// The background task that keeps one instance's set current.
pub(crate) struct Follower {
    config: RedisConfig,
    prefix: String,
    set: Arc<RevokedSet>,
    switches: Arc<super::switch::Switches>,
}

impl Follower {
    pub(crate) fn new(
        config: RedisConfig,
        prefix: String,
        set: Arc<RevokedSet>,
        switches: Arc<super::switch::Switches>,
    ) -> Self {
        Follower { config, prefix, set, switches }
    }

    /// With Sentinel: watch for `+switch-master` (see `switch`); otherwise nothing, forever.
    async fn watch_switches(&self) {
        match &self.config.target {
            RedisTarget::Sentinel(s) => super::switch::watch(s, self.config.connect_timeout, &self.switches).await,
            _ => std::future::pending().await,
        }
    }

    /// A connection of its own (its reads block). With Sentinel: the master named now (each
    /// reconnect asks again); in a cluster: the nodes of the `{rv}` slot.
    async fn connect(&self) -> redis::RedisResult<Link> {
        let (connect, response) = (self.config.connect_timeout, BLOCK + self.config.response_timeout);
        if let RedisTarget::Cluster(c) = &self.config.target {
            return Ok(Link::Cluster(super::target::cluster(c, connect, response).await?));
        }
        let (_, client) = super::target::client(&self.config).await?;
        let cfg =
            AsyncConnectionConfig::new().set_connection_timeout(Some(connect)).set_response_timeout(Some(response));
        Ok(Link::Plain(client.get_multiplexed_async_connection_with_config(&cfg).await?))
    }

    /// The stream's newest id ("0-0" when empty) and whether it still holds `after` (or the
    /// next entry after it): false when it was trimmed past `after` while we were away.
    async fn feed_bounds(&self, c: &mut Link, after: &str) -> redis::RedisResult<(String, bool)> {
        let key = feed_key(&self.prefix);
        let newest: Value =
            redis::cmd("XREVRANGE").arg(&key).arg("+").arg("-").arg("COUNT").arg(1).query_async(c).await?;
        let oldest: Value = redis::cmd("XRANGE").arg(&key).arg("-").arg("+").arg("COUNT").arg(1).query_async(c).await?;
        let newest = entries(&newest).into_iter().next().map_or_else(|| "0-0".to_string(), |(id, _)| id);
        let reaches = match entries(&oldest).into_iter().next() {
            Some((first, _)) => id_order(&first) <= id_order(after),
            None => true,
        };
        Ok((newest, reaches))
    }

    /// Load every live mark of the snapshot.
    async fn load_snapshot(&self, c: &mut Link) -> redis::RedisResult<usize> {
        let key = snapshot_key(&self.prefix);
        let mut cursor = "0".to_string();
        let mut loaded = 0;
        loop {
            let reply: Value =
                redis::cmd("ZSCAN").arg(&key).arg(&cursor).arg("COUNT").arg(SCAN_COUNT).query_async(c).await?;
            let Value::Array(parts) = reply else { break };
            cursor = parts.first().and_then(text).unwrap_or_else(|| "0".to_string());
            if let Some(Value::Array(flat)) = parts.get(1) {
                let marks: Vec<(Key, u64)> = flat
                    .chunks(2)
                    .filter_map(|p| {
                        let k = key_of_hex(&text(p.first()?)?)?;
                        let exp = text(p.get(1)?)?.parse::<f64>().ok()? as u64;
                        Some((k, exp))
                    })
                    .collect();
                loaded += marks.len();
                self.set.insert(marks);
            }
            if cursor == "0" {
                break;
            }
        }
        Ok(loaded)
    }

    /// One connection's life: catch up, then follow until an error. `last` survives reconnects.
    async fn follow(&self, last: &mut Option<String>) -> redis::RedisResult<()> {
        let mut c = self.connect().await?;
        let sent = unix_ms();
        let (newest, reaches) = self.feed_bounds(&mut c, last.as_deref().unwrap_or("0-0")).await?;
        if last.is_none() || !reaches {
            let n = self.load_snapshot(&mut c).await?;
            tracing::info!(entries = n, "revocation set loaded from redis");
            *last = Some(newest);
            self.set.mark_synced(sent);
        }
        loop {
            let from = last.clone().unwrap_or_else(|| "0-0".to_string());
            let sent = unix_ms();
            let reply: Value = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(feed_key(&self.prefix))
                .arg(&from)
                .query_async(&mut c)
                .await?;
            if let Value::Array(streams) = &reply {
                for st in streams {
                    if let Value::Array(kv) = st {
                        for (id, marks) in kv.get(1).map(entries).unwrap_or_default() {
                            self.set.insert(marks);
                            *last = Some(id);
                        }
                    }
                }
            }
            self.set.mark_synced(sent);
        }
    }
}

impl Follower {
    /// Follow, reconnecting after each error (backing off) or announced master switch.
    async fn follow_forever(&self) {
        let mut last: Option<String> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let t = std::time::Instant::now();
            // A switch announced: leave the old master's stream and reconnect.
            let r = tokio::select! {
                r = self.follow(&mut last) => r,
                _ = self.switches.next() => Ok(()),
            };
            if t.elapsed() > Duration::from_secs(5) {
                backoff = Duration::from_millis(100);
            }
            if let Err(e) = r {
                tracing::warn!(error = %super::detail(&e), retry_in = ?backoff, "revocation feed interrupted; the edge asks redis until it catches up");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

#[async_trait]
impl BackgroundService for Follower {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let stop = async {
            loop {
                match shutdown.changed().await {
                    Ok(()) if *shutdown.borrow() => return,
                    Ok(()) => continue,
                    Err(_) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = stop => {}
            _ = self.watch_switches() => {}
            _ = self.follow_forever() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_entries_parse_back_to_marks() {
        let marks = [(0x0123_4567_89ab_cdefu64, 1_900_000_000u64), (7, 1_900_000_001)];
        let entry: Vec<String> = marks.iter().map(|(k, e)| format!("{}:{e}", hex_of_key(*k))).collect();
        assert_eq!(parse_entry(&entry.join(" ")).collect::<Vec<_>>(), marks);
        assert_eq!(parse_entry("zz:1 1:x :").count(), 0);
    }

    #[test]
    fn stream_ids_order_numerically() {
        assert!(id_order("10-0") > id_order("9-5"));
        assert!(id_order("10-2") > id_order("10-1"));
    }
}
