//! The Lua scripts of the Redis store (`redis.rs`), each one atomic and each one safe to run a
//! second time for the same call: the store retries a call once when its connection dropped,
//! and a dropped connection cannot tell whether Redis ran the command before the reply was lost.
//! How each script stays idempotent is said at the script. Keys carry a hash tag (`{sid}`,
//! `{bc}`), so every key a script touches lives in one Redis Cluster slot.

use std::sync::LazyLock;

use redis::Script;

/// KEYS[1] session key. ARGV: expected sub ('' = any), record_unknown ('1'/'0'), tombstone ttl
/// seconds, now, call id, published (JSON object whose keys are the token and cookie hashes the
/// caller has already published as revoked). Returns {status, sub, clients json, client_sids
/// json, tokens json, cookies json}.
///
/// Revoked before ended: an active session is ended only when each of its live tokens and each
/// of its cookies is among `published`; otherwise nothing changes and the answer is `publish`
/// with the lists, so the caller publishes the marks and calls again. The revocation marks live
/// under another hash tag (`{rv}`, another cluster slot), so the two cannot be one atomic step;
/// in this order a crash between them leaves credentials refused, never an ended session whose
/// credentials pass.
///
/// Idempotent, answer included: ending stores the call id (`ec`), so the same call run again
/// (a retry after a lost reply) answers `ended` (or `recorded`) once more, with the same data,
/// and only another call sees `already` (RPI-25). Without that, a retry would hand out no sealed
/// tokens and the admin DELETE would send no back-channel notices.
pub(super) const END_LUA: &str = r#"
local k = KEYS[1]
local h = redis.call('HMGET', k, 'p', 'sub', 'st', 'cl', 'cs', 'tk', 'ck', 'ec')
if h[1] then return {'alias', h[1]} end
if not h[2] then
  if ARGV[2] == '1' then
    redis.call('HSET', k, 'sub', ARGV[1], 'st', 'e', 'cl', '[]', 'cs', '{}', 'et', ARGV[4], 'ec', 'r' .. ARGV[5])
    redis.call('EXPIRE', k, ARGV[3])
    return {'recorded'}
  end
  return {'unknown'}
end
if ARGV[1] ~= '' and h[2] ~= ARGV[1] then return {'mismatch'} end
if h[3] == 'e' then
  if h[8] == 'r' .. ARGV[5] then return {'recorded'} end
  local st = (h[8] == ARGV[5]) and 'ended' or 'already'
  return {st, h[2], h[4], h[5], h[6] or '[]', h[7] or '[]'}
end
local published = cjson.decode(ARGV[6])
local now = tonumber(ARGV[4])
local unpublished = false
for _, t in ipairs(cjson.decode(h[6] or '[]')) do
  local exp = tonumber(string.match(t, '^%S+ (%d+)')) or 0
  if (exp == 0 or exp > now) and not published[string.match(t, '^(%S+)')] then unpublished = true end
end
for _, c in ipairs(cjson.decode(h[7] or '[]')) do
  if not published[c] then unpublished = true end
end
if unpublished then return {'publish', h[2], h[4], h[5], h[6] or '[]', h[7] or '[]'} end
redis.call('HSET', k, 'st', 'e', 'et', ARGV[4], 'ec', ARGV[5])
redis.call('EXPIRE', k, ARGV[3])
return {'ended', h[2], h[4], h[5], h[6] or '[]', h[7] or '[]'}
"#;

/// KEYS[1] session key. ARGV: sub, clients json array, client_sids json object, session ttl, now,
/// encoded tokens json array, max cookies, cookie hashes json array. Returns {status, clients
/// json, client_sids json}.
///
/// Tokens (`hash expires_at[ sealed]`) are never evicted while valid: only expired ones are
/// dropped, so a logout revokes every token the session received.
///
/// Idempotent: clients, client sids, tokens and cookies are merged as sets (a second run adds
/// nothing), `ct` is set only once, the TTL is set again.
pub(super) const PUT_LUA: &str = r#"
local k = KEYS[1]
local h = redis.call('HMGET', k, 'p', 'sub', 'st', 'cl', 'cs', 'tk', 'ck')
if h[1] then return {'alias', h[1]} end
if h[2] and h[2] ~= ARGV[1] then return {'conflict', 'another subject'} end
if h[3] == 'e' then return {'conflict', 'session ended'} end
local function merge(list, add)
  local seen = {}
  for _, x in ipairs(list) do seen[x] = true end
  for _, x in ipairs(add) do
    if not seen[x] then table.insert(list, x); seen[x] = true end
  end
  return seen
end
local cl = h[4] and cjson.decode(h[4]) or {}
local seen = merge(cl, cjson.decode(ARGV[2]))
local cs = h[5] and cjson.decode(h[5]) or {}
for c, s in pairs(cjson.decode(ARGV[3])) do
  cs[c] = s
  if not seen[c] then table.insert(cl, c); seen[c] = true end
end
local tk = h[6] and cjson.decode(h[6]) or {}
merge(tk, cjson.decode(ARGV[6]))
local now = tonumber(ARGV[5])
local live = {}
for _, t in ipairs(tk) do
  local exp = tonumber(string.match(t, '^%S+ (%d+)')) or 0
  if exp == 0 or exp > now then table.insert(live, t) end
end
tk = live
local tk_json = (#tk == 0) and '[]' or cjson.encode(tk)
local ck = h[7] and cjson.decode(h[7]) or {}
merge(ck, cjson.decode(ARGV[8]))
while #ck > tonumber(ARGV[7]) do table.remove(ck, 1) end
local ck_json = (#ck == 0) and '[]' or cjson.encode(ck)
local cl_json = (#cl == 0) and '[]' or cjson.encode(cl)
local cs_json = (next(cs) == nil) and '{}' or cjson.encode(cs)
redis.call('HSET', k, 'sub', ARGV[1], 'st', 'a', 'cl', cl_json, 'cs', cs_json, 'tk', tk_json, 'ck', ck_json)
redis.call('HSETNX', k, 'ct', ARGV[5])
redis.call('EXPIRE', k, ARGV[4])
return {'ok', cl_json, cs_json}
"#;

/// KEYS[1] cookie key. ARGV: sid, sub, ttl. Binds an OP cookie to a session unless it is bound
/// to a session of another subject: a cookie never moves between subjects (a planted or steered
/// cookie cannot take a victim's cookie into the attacker's session). The value is
/// `<length of sid>:<sid><sub>`. Returns 1 when bound, 0 when left where it was.
/// Idempotent: a second run finds its own subject and sets the same value again.
pub(super) const CLAIM_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  local n, rest = string.match(v, '^(%d+):(.*)$')
  if not n or string.sub(rest, tonumber(n) + 1) ~= ARGV[2] then return 0 end
end
redis.call('SET', KEYS[1], string.len(ARGV[1]) .. ':' .. ARGV[1] .. ARGV[2], 'EX', ARGV[3])
return 1
"#;

/// KEYS[1] session key. ARGV: max cookies, cookie hashes json array. Adds claimed cookies to a
/// session's list (a set; the oldest dropped past the max). Returns 'ok', or 'ended' when the
/// session ended meanwhile (the caller then revokes the cookies), or 'gone'.
/// Idempotent: merged as a set.
pub(super) const ADD_COOKIES_LUA: &str = r#"
local h = redis.call('HMGET', KEYS[1], 'st', 'ck')
if not h[1] then return 'gone' end
if h[1] == 'e' then return 'ended' end
local ck = h[2] and cjson.decode(h[2]) or {}
local seen = {}
for _, x in ipairs(ck) do seen[x] = true end
for _, x in ipairs(cjson.decode(ARGV[2])) do
  if not seen[x] then table.insert(ck, x); seen[x] = true end
end
while #ck > tonumber(ARGV[1]) do table.remove(ck, 1) end
redis.call('HSET', KEYS[1], 'ck', (#ck == 0) and '[]' or cjson.encode(ck))
return 'ok'
"#;

/// KEYS[1] learned clients hash. ARGV: client id, metadata json, max clients, expiry cut-off
/// (now minus the lifetime). Keeps the client unless `max` are kept and it is new: then entries
/// learned at or before the cut-off are dropped first, and 0 is answered if it is still full.
/// Idempotent: HSET of the same value.
pub(super) const LEARN_CLIENT_LUA: &str = r#"
local k = KEYS[1]
if redis.call('HEXISTS', k, ARGV[1]) == 0 and redis.call('HLEN', k) >= tonumber(ARGV[3]) then
  local all = redis.call('HGETALL', k)
  for i = 1, #all, 2 do
    local ok, m = pcall(cjson.decode, all[i + 1])
    local at = ok and type(m) == 'table' and tonumber(m.learned_at) or 0
    if at <= tonumber(ARGV[4]) then redis.call('HDEL', k, all[i]) end
  end
  if redis.call('HLEN', k) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', k, ARGV[1], ARGV[2])
return 1
"#;

/// KEYS[1] alias key. ARGV: primary sid, ttl. Creates the alias, or keeps an alias to the same
/// primary alive as long as its session; never turns an existing session into an alias.
/// Idempotent: a second run finds the alias it made and only sets the TTL again.
pub(super) const ALIAS_LUA: &str = "local p = redis.call('HGET', KEYS[1], 'p') \
if p == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) \
elseif redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], 'p', ARGV[1]); redis.call('EXPIRE', KEYS[1], ARGV[2]) end";

/// KEYS[1] keys hash. ARGV: kid, created, candidate json, rotate_after seconds, now.
/// Installs the candidate unless a key younger than rotate_after exists; keeps the newest two.
/// Idempotent: a second run finds the key it installed young and changes nothing.
pub(super) const KEYS_LUA: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
local newest = 0
local list = {}
for i = 1, #all, 2 do
  local created = tonumber(cjson.decode(all[i + 1]).created) or 0
  table.insert(list, {all[i], created})
  if created > newest then newest = created end
end
if #list == 0 or newest + tonumber(ARGV[4]) <= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  table.insert(list, {ARGV[1], tonumber(ARGV[2])})
  table.sort(list, function(a, b) return a[2] > b[2] end)
  for i = 3, #list do redis.call('HDEL', KEYS[1], list[i][1]) end
end
return redis.call('HVALS', KEYS[1])
"#;

/// KEYS[1] retry zset, KEYS[2] stream. ARGV: now ms. Moves due retries into the stream.
/// Idempotent in effect: each moved entry leaves the zset in the same script, so a second run
/// moves only what became due meanwhile (its count answer may differ; nobody relies on it).
pub(super) const PROMOTE_LUA: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, n in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'n', n)
  redis.call('ZREM', KEYS[1], n)
end
return #due
"#;

/// KEYS[1] a single-use key, KEYS[2] its receipt. ARGV: call id, receipt ttl ms. Takes the
/// value (GET and DEL), or nil.
///
/// Idempotent, answer included, while staying single use: taking leaves a short-lived receipt
/// with the call id and the value, so the same call run again gets the same value, and any other
/// call gets nil. (A bare GETDEL retried after a lost reply would answer nil: a confirmation
/// the user gave would be refused.)
pub(super) const TAKE_LUA: &str = r#"
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. v, 'PX', ARGV[2])
  return v
end
local r = redis.call('GET', KEYS[2])
local p = ARGV[1] .. ' '
if r and string.sub(r, 1, #p) == p then return string.sub(r, #p + 1) end
return false
"#;

/// KEYS[1] a session's receipt (hash). ARGV: ttl seconds, first_only ("1": HSETNX), a field to
/// add 1 to (or ""), then field, value pairs. Answers 1 or 0 per pair (written or kept).
pub(super) const RECEIPT_LUA: &str = r#"
local out = {}
for i = 4, #ARGV, 2 do
  if ARGV[2] == '1' then
    out[#out + 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    out[#out + 1] = 1
  end
end
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[3], 1) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return out
"#;

pub(super) static ADD_COOKIES: LazyLock<Script> = LazyLock::new(|| Script::new(ADD_COOKIES_LUA));
pub(super) static END: LazyLock<Script> = LazyLock::new(|| Script::new(END_LUA));
pub(super) static KEYS: LazyLock<Script> = LazyLock::new(|| Script::new(KEYS_LUA));
pub(super) static PROMOTE: LazyLock<Script> = LazyLock::new(|| Script::new(PROMOTE_LUA));
pub(super) static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(PUT_LUA));
pub(super) static RECEIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RECEIPT_LUA));
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_LUA));

/// The scripts on a real redis-server (on a free loopback port): what a retry of the same call
/// answers, and what another call answers.
#[cfg(test)]
mod tests {

    use super::*;

    fn redis() -> (crate::session::testing::Server, redis::Connection) {
        let server = crate::session::testing::redis_server();
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/0", server.1)).unwrap().get_connection().unwrap();
        (server, c)
    }

    fn end(c: &mut redis::Connection, key: &str, record: bool, call: &str) -> Vec<String> {
        end_after(c, key, record, call, r#"{"t":1}"#)
    }

    fn end_after(c: &mut redis::Connection, key: &str, record: bool, call: &str, published: &str) -> Vec<String> {
        let record = if record { "1" } else { "0" };
        END.key(key).arg("U1").arg(record).arg(60).arg(1).arg(call).arg(published).invoke(c).unwrap()
    }

    #[test]
    fn end_refuses_to_end_before_every_live_credential_is_published() {
        let (_s, mut c) = redis();
        let tokens = r#"["live 9","expired 1","bare"]"#;
        let session = [("sub", "U1"), ("st", "a"), ("cl", "[]"), ("cs", "{}"), ("tk", tokens), ("ck", r#"["ck1"]"#)];
        let _: i64 = redis::cmd("HSET").arg("s").arg(&session[..]).query(&mut c).unwrap();
        for published in ["{}", r#"{"live":1,"bare":1}"#, r#"{"live":1,"ck1":1}"#, r#"{"bare":1,"ck1":1}"#] {
            let r = end_after(&mut c, "s", false, "A", published);
            assert_eq!((r[0].as_str(), r[4].as_str(), r[5].as_str()), ("publish", tokens, r#"["ck1"]"#), "{published}");
            let st: String = redis::cmd("HGET").arg("s").arg("st").query(&mut c).unwrap();
            assert_eq!(st, "a", "not ended while {published} is all that was published");
        }
        // The expired token (expiry 1, now 1) needs no mark.
        let r = end_after(&mut c, "s", false, "A", r#"{"live":1,"bare":1,"ck1":1}"#);
        assert_eq!(r[0], "ended");
    }

    #[test]
    fn end_answers_a_retry_of_its_call_as_the_first_run_and_others_already() {
        let (_s, mut c) = redis();
        let session = [("sub", "U1"), ("st", "a"), ("cl", "[\"rp-c\"]"), ("cs", "{}"), ("tk", "[\"t 9\"]")];
        let _: i64 = redis::cmd("HSET").arg("s").arg(&session[..]).query(&mut c).unwrap();
        let first = end(&mut c, "s", false, "A");
        assert_eq!(first[0], "ended");
        assert_eq!(end(&mut c, "s", false, "A"), first, "a retry of call A answers as its first run");
        assert_eq!(end(&mut c, "s", false, "B")[0], "already", "another call sees a tombstone (RPI-25)");
        assert_eq!(end(&mut c, "u", true, "C"), vec!["recorded"]);
        assert_eq!(end(&mut c, "u", true, "C"), vec!["recorded"], "a retry of a recording call");
        assert_eq!(end(&mut c, "u", true, "D")[0], "already");
    }

    #[test]
    fn take_is_single_use_across_calls_and_repeatable_within_one() {
        let (_s, mut c) = redis();
        let _: String = redis::cmd("SET").arg("k").arg("v w").query(&mut c).unwrap();
        let take = |c: &mut redis::Connection, call: &str| -> Option<String> {
            TAKE.key("k").key("k:r").arg(call).arg(5000).invoke(c).unwrap()
        };
        assert_eq!(take(&mut c, "A").as_deref(), Some("v w"));
        assert_eq!(take(&mut c, "A").as_deref(), Some("v w"), "a retry of call A gets the value again");
        assert_eq!(take(&mut c, "B"), None, "any other call finds it used");
        assert_eq!(take(&mut c, "A "), None, "the call id is matched whole");
        let exists: u64 = redis::cmd("EXISTS").arg("k").query(&mut c).unwrap();
        assert_eq!(exists, 0);
    }

    #[test]
    fn put_run_twice_leaves_what_one_run_leaves() {
        let (_s, mut c) = redis();
        let put = |c: &mut redis::Connection| -> Vec<String> {
            PUT.key("s")
                .arg("U1")
                .arg("[\"rp-a\"]")
                .arg("{\"rp-b\":\"s2\"}")
                .arg(60)
                .arg(1)
                .arg("[\"t1 9\",\"t2 9\"]")
                .arg(64)
                .arg("[\"c1\"]")
                .invoke(c)
                .unwrap()
        };
        let once = put(&mut c);
        let fields = |c: &mut redis::Connection| -> Vec<Option<String>> {
            redis::cmd("HMGET").arg("s").arg("cl").arg("cs").arg("tk").arg("ck").query(c).unwrap()
        };
        let after_one = fields(&mut c);
        assert_eq!(put(&mut c), once);
        assert_eq!(fields(&mut c), after_one);
        assert_eq!(after_one[2].as_deref(), Some("[\"t1 9\",\"t2 9\"]"));
    }
}
