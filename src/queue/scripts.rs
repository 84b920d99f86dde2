//! Lua scripts behind every queue state change. Each script touches only keys of one
//! tenant (they share the `{t:<tenant>}` hash tag), so each runs atomically on one
//! Redis node, also on Redis Cluster. `KEYS[1]` is the tenant's key base; the scripts
//! derive the rest from it, which stays inside the same hash slot. Open-source Redis
//! Cluster runs such scripts (the keys they touch hash to the declared key's slot);
//! managed proxies that demand every key in `KEYS` are not supported.

use std::sync::LazyLock;

use redis::Script;

/// ARGV: id, dedupe key ('' for none), payload, now ms, dedupe ttl s, not-before ms, tenant,
/// mark key under the base ('' for none), mark value, mark ttl s, due ms.
/// Returns `{job id, "1" if created else "0"}`: with a known dedupe key, the existing id.
/// A created job raises the mark (a per-tenant counter) to at least its value.
/// On a single Redis the global indexes come along as `KEYS[2]` (tenants set) and
/// `KEYS[3]` (active zset), so an enqueue is one round trip; on a cluster they live
/// in other slots and the caller updates them (see `Queue::enqueue_marked`).
pub static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
local id, dkey, payload, now, ttl, nb, tenant =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if KEYS[2] then redis.call('SADD', KEYS[2], tenant) end
if dkey ~= '' then
  local existing = redis.call('SET', base .. 'dedupe:' .. dkey, id, 'NX', 'GET', 'EX', ttl)
  if existing then return {existing, '0'} end
end
local jk = base .. 'job:' .. id
redis.call('SET', base .. 'payload:' .. id, payload)
redis.call('HSET', jk, 'id', id, 'tenant', tenant, 'state', 'queued',
  'attempts', 0, 'created_at', now, 'updated_at', now, 'dedupe_key', dkey)
if nb > now then
  redis.call('HSET', jk, 'state', 'delayed', 'next_at', nb)
  redis.call('ZADD', base .. 'delayed', nb, id)
else
  redis.call('RPUSH', base .. 'ready', id)
end
if ARGV[8] ~= '' then
  local mk = base .. ARGV[8]
  local cur = tonumber(redis.call('GET', mk) or '-1') or -1
  if tonumber(ARGV[9]) > cur then redis.call('SET', mk, ARGV[9], 'EX', ARGV[10]) end
end
if KEYS[3] then redis.call('ZADD', KEYS[3], 'LT', ARGV[11], tenant) end
return {id, '1'}
"#,
    )
});

/// ARGV: now ms, lease ms, per-tenant cap, lease token.
/// Promotes due delayed jobs, hands expired leases back (front of the line, with a
/// history entry), then leases the next ready job unless the tenant is at its cap.
/// Returns `{'job', id, payload, attempts, created_at, reclaimed}`,
/// `{'busy', next ms, reclaimed}` or `{'none', next ms or -1, reclaimed}`.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
local now, lease, cap, token = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local due = redis.call('ZRANGEBYSCORE', base .. 'delayed', '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', base .. 'delayed', id)
  redis.call('RPUSH', base .. 'ready', id)
  redis.call('HSET', base .. 'job:' .. id, 'state', 'queued', 'updated_at', now)
  redis.call('HDEL', base .. 'job:' .. id, 'next_at')
end
local expired = redis.call('ZRANGEBYSCORE', base .. 'running', '-inf', now, 'LIMIT', 0, 100)
local reclaimed = 0
for _, id in ipairs(expired) do
  redis.call('ZREM', base .. 'running', id)
  local jk = base .. 'job:' .. id
  if redis.call('EXISTS', jk) == 1 then
    reclaimed = reclaimed + 1
    redis.call('LPUSH', base .. 'ready', id)
    local attempt = tonumber(redis.call('HGET', jk, 'attempts')) or 0
    redis.call('HSET', jk, 'state', 'queued', 'updated_at', now, 'lease', '')
    redis.call('RPUSH', base .. 'hist:' .. id, cjson.encode({
      attempt = attempt, started_at = tonumber(redis.call('HGET', jk, 'started_at')) or now,
      duration_ms = 0, outcome = 'lease_expired',
      error = 'worker did not finish within the visibility timeout; handed out again'}))
  end
end
local running = redis.call('ZRANGE', base .. 'running', 0, 0, 'WITHSCORES')
if redis.call('ZCARD', base .. 'running') >= cap then
  return {'busy', tostring(running[2]), tostring(reclaimed)}
end
local id = redis.call('LPOP', base .. 'ready')
while id and redis.call('EXISTS', base .. 'job:' .. id) == 0 do
  id = redis.call('LPOP', base .. 'ready')
end
if not id then
  local nxt = -1
  local d = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
  if d[2] then nxt = tonumber(d[2]) end
  if running[2] and (nxt < 0 or tonumber(running[2]) < nxt) then nxt = tonumber(running[2]) end
  return {'none', tostring(nxt), tostring(reclaimed)}
end
local jk = base .. 'job:' .. id
local attempts = redis.call('HINCRBY', jk, 'attempts', 1)
redis.call('HSET', jk, 'state', 'running', 'lease', token, 'started_at', now, 'updated_at', now)
redis.call('HDEL', jk, 'next_at')
redis.call('ZADD', base .. 'running', now + lease, id)
local payload = redis.call('GET', base .. 'payload:' .. id) or redis.call('HGET', jk, 'payload') or ''
return {'job', id, payload, tostring(attempts),
  redis.call('HGET', jk, 'created_at'), tostring(reclaimed)}
"#,
    )
});

/// ARGV: now ms, per-tenant cap. Returns when the tenant may next have work: now if
/// a job is ready and a slot is free, else the earliest delayed job or lease deadline,
/// else -1.
pub static PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
local now, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('LLEN', base .. 'ready') > 0 and redis.call('ZCARD', base .. 'running') < cap then
  return tostring(now)
end
local nxt = -1
local d = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
if d[2] then nxt = tonumber(d[2]) end
local r = redis.call('ZRANGE', base .. 'running', 0, 0, 'WITHSCORES')
if r[2] and (nxt < 0 or tonumber(r[2]) < nxt) then nxt = tonumber(r[2]) end
return tostring(nxt)
"#,
    )
});

/// ARGV: id, lease token, now ms, outcome ('done' | 'delayed' | 'dead'), history entry
/// JSON, result JSON or error text, next attempt ms, uncount ('1': the attempt does
/// not count, e.g. a paused tenant), retention s, payload retention s, event summary
/// JSON ('' for none).
/// A done job keeps its summary, history and result for the retention; its raw
/// payload only for the payload retention (bounded memory). Dead jobs keep everything.
/// Returns 1, or 0 when the lease is no longer this worker's (it expired and the job
/// was handed to another worker, whose result wins).
pub static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
local id, token, now, outcome, entry, text, nxt, uncount, retention, pretention, summary =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8],
  tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
local jk = base .. 'job:' .. id
if redis.call('HGET', jk, 'lease') ~= token then return 0 end
redis.call('ZREM', base .. 'running', id)
redis.call('HSET', jk, 'lease', '', 'updated_at', now)
local hk = base .. 'hist:' .. id
redis.call('RPUSH', hk, entry)
redis.call('LTRIM', hk, -50, -1)
if uncount == '1' then redis.call('HINCRBY', jk, 'attempts', -1) end
if outcome == 'done' then
  redis.call('HSET', jk, 'state', 'done', 'result', text, 'finished_at', now)
  if summary ~= '' then redis.call('HSET', jk, 'summary', summary) end
  local pk = base .. 'payload:' .. id
  -- A job stored before payloads had their own key carries it in the hash.
  local inline = redis.call('HGET', jk, 'payload')
  if inline then
    redis.call('SET', pk, inline)
    redis.call('HDEL', jk, 'payload')
  end
  if pretention < retention and pretention > 0 then
    redis.call('EXPIRE', pk, pretention)
  elseif pretention <= 0 then
    redis.call('DEL', pk)
  else
    redis.call('EXPIRE', pk, retention)
  end
  redis.call('ZADD', base .. 'done', now, id)
  redis.call('EXPIRE', jk, retention)
  redis.call('EXPIRE', hk, retention)
  redis.call('ZREMRANGEBYSCORE', base .. 'done', '-inf', now - retention * 1000)
elseif outcome == 'delayed' then
  redis.call('HSET', jk, 'state', 'delayed', 'next_at', nxt, 'last_error', text, 'waiting', uncount)
  redis.call('ZADD', base .. 'delayed', nxt, id)
else
  redis.call('HSET', jk, 'state', 'dead', 'last_error', text, 'finished_at', now)
  redis.call('ZADD', base .. 'dead', now, id)
end
return 1
"#,
    )
});

/// ARGV: id, lease token, new deadline ms. Keeps a long job's lease alive.
pub static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
if redis.call('HGET', base .. 'job:' .. ARGV[1], 'lease') ~= ARGV[2] then return 0 end
redis.call('ZADD', base .. 'running', 'XX', tonumber(ARGV[3]), ARGV[1])
return 1
"#,
    )
});

/// ARGV: id, now ms, history entry JSON. Puts a dead or delayed job back in line with
/// a fresh attempt budget. Returns the previous state, or '' if the job is unknown.
pub static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
local id, now = ARGV[1], tonumber(ARGV[2])
local jk = base .. 'job:' .. id
local state = redis.call('HGET', jk, 'state')
if not state then return '' end
if state ~= 'dead' and state ~= 'delayed' then return state end
redis.call('ZREM', base .. 'dead', id)
redis.call('ZREM', base .. 'delayed', id)
redis.call('HSET', jk, 'state', 'queued', 'attempts', 0, 'updated_at', now)
redis.call('HDEL', jk, 'next_at', 'finished_at', 'waiting')
redis.call('PERSIST', jk)
redis.call('RPUSH', base .. 'hist:' .. id, ARGV[3])
redis.call('RPUSH', base .. 'ready', id)
return state
"#,
    )
});

/// ARGV: now ms. Moves every delayed job that is waiting (a delay that did not count
/// as an attempt: blocked credentials, a pause, a spent budget, an open circuit) to
/// the ready line now, keeping their order. Returns how many.
pub static WAKE_WAITING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', base .. 'delayed', 0, -1)
local n = 0
for _, id in ipairs(ids) do
  local jk = base .. 'job:' .. id
  if redis.call('HGET', jk, 'waiting') == '1' then
    redis.call('ZREM', base .. 'delayed', id)
    redis.call('RPUSH', base .. 'ready', id)
    redis.call('HSET', jk, 'state', 'queued', 'updated_at', now, 'waiting', '0')
    redis.call('HDEL', jk, 'next_at')
    n = n + 1
  elseif redis.call('EXISTS', jk) == 0 then
    redis.call('ZREM', base .. 'delayed', id)
  end
end
return n
"#,
    )
});

/// ARGV: id. Removes a job that is not running. Returns its state, or '' if unknown.
pub static DISCARD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local base = KEYS[1]
local id = ARGV[1]
local jk = base .. 'job:' .. id
local state = redis.call('HGET', jk, 'state')
if not state then return '' end
if state == 'running' then return state end
redis.call('LREM', base .. 'ready', 0, id)
redis.call('ZREM', base .. 'delayed', id)
redis.call('ZREM', base .. 'dead', id)
redis.call('ZREM', base .. 'done', id)
redis.call('DEL', jk, base .. 'hist:' .. id, base .. 'payload:' .. id)
return state
"#,
    )
});
