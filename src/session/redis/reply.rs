//! Reading Redis replies into the store's model: session hashes, the END script's reply, and
//! stream entries of the back-channel queue. Pure functions, no I/O.

use std::collections::BTreeMap;

use crate::session::{Claimed, Notice, SessionView, Status};

pub(super) fn view_of(sid: &str, h: &BTreeMap<String, String>) -> Option<SessionView> {
    let sub = h.get("sub")?;
    Some(SessionView {
        sid: sid.to_string(),
        sub: sub.clone(),
        clients: h.get("cl").and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        client_sids: h.get("cs").and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        status: if h.get("st").map(String::as_str) == Some("e") { Status::Ended } else { Status::Active },
        sealed: Vec::new(),
    })
}

pub(super) fn view_from_reply(sid: &str, r: &[String]) -> SessionView {
    SessionView {
        sid: sid.to_string(),
        sub: r.get(1).cloned().unwrap_or_default(),
        clients: r.get(2).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        client_sids: r.get(3).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        status: Status::Ended,
        sealed: Vec::new(),
    }
}

/// Entries of an XREADGROUP / XAUTOCLAIM reply: `[[id, [field, value, ...]], ...]`.
pub(super) fn stream_entries(v: &redis::Value) -> Vec<Claimed> {
    let mut out = Vec::new();
    let redis::Value::Array(items) = v else { return out };
    for item in items {
        let redis::Value::Array(pair) = item else { continue };
        let (Some(id), Some(redis::Value::Array(fields))) = (pair.first(), pair.get(1)) else { continue };
        let Ok(id) = redis::from_redis_value::<String>(id.clone()) else { continue };
        let json = fields.chunks(2).find_map(|kv| {
            let k: String = redis::from_redis_value(kv.first()?.clone()).ok()?;
            (k == "n").then(|| redis::from_redis_value::<String>(kv.get(1)?.clone()).ok()).flatten()
        });
        match json.and_then(|j| serde_json::from_str::<Notice>(&j).ok()) {
            Some(notice) => out.push(Claimed { id, notice }),
            // Unreadable entry: hand it out with an empty notice so the worker drops it.
            None => out.push(Claimed { id, notice: Notice::default() }),
        }
    }
    out
}
