"""The Lua scripts of the Redis backend: each runs atomically inside Redis, so every gateway
host sees a write, a charge or an admission whole or not at all.

Layout under the prefix P (default `shin:`):

  P dataset           id of this data set (missing: Redis lost our data, or never had it)
  P version           INCR'd by every settings write: the change token
  P e:<kind>          HASH ident -> JSON of the record's settings (keys.db's row, spend aside)
  P alias             HASH key_alias -> key_hash (unique aliases)
  P spend / P reset   HASH "<kind>:<ident>" -> spend / budget_reset_at (epoch seconds)
  P gdur              the gateway budget's budget_duration
  P applied:<id>      a spend batch already added (a retried batch is never added twice)
  P rl:<kind>:<ident>:r|t|s|p   rate limits: requests (ZSET), tokens (ZSET "<id>:<n>"),
                      token sum, parallel requests per host (HASH host -> count)
  P host:<id>         a live host's heartbeat (its parallel-request slots count while it lives)

Channels: P changes (version), P spend (JSON totals), P cooldowns (JSON).
Numbers cross as strings: Lua's numbers are doubles printed with 14 digits, which would round
spend; times are epoch seconds (spend) or milliseconds (rate windows).
"""

from __future__ import annotations

# ARGV: prefix, JSON {"d": [[kind, ident]], "u": [[kind, ident, json, reset|"", alias|""]],
#                     "i": [[kind, ident, json, spend, reset|"", alias|""]]}
# Returns {"ok", version} or {"missing"|"exists"|"alias", detail}. Checks everything before
# writing anything, deletes first (a regenerated key is deleted and inserted with its alias).
APPLY = """
local p = ARGV[1]
local ops = cjson.decode(ARGV[2])
local gone, claimed = {}, {}
local function alias_of(kind, ident)
  if kind ~= 'key' then return nil end
  local raw = redis.call('HGET', p .. 'e:key', ident)
  if not raw then return nil end
  local a = cjson.decode(raw)['key_alias']
  if type(a) == 'string' and a ~= '' then return a end
  return nil
end
local function alias_taken(alias, ident)
  if alias == '' then return false end
  if claimed[alias] and claimed[alias] ~= ident then return true end
  local owner = redis.call('HGET', p .. 'alias', alias)
  return owner and owner ~= ident and not gone['key:' .. owner]
end
for _, d in ipairs(ops['d']) do
  if redis.call('HEXISTS', p .. 'e:' .. d[1], d[2]) == 1 then gone[d[1] .. ':' .. d[2]] = true end
end
for _, u in ipairs(ops['u']) do
  if gone[u[1] .. ':' .. u[2]] or redis.call('HEXISTS', p .. 'e:' .. u[1], u[2]) == 0 then
    return {'missing', u[1] .. ' ' .. u[2]}
  end
  if alias_taken(u[5], u[2]) then return {'alias', u[5]} end
  if u[5] ~= '' then claimed[u[5]] = u[2] end
end
for _, i in ipairs(ops['i']) do
  if claimed['!' .. i[1] .. ':' .. i[2]] or
     (not gone[i[1] .. ':' .. i[2]] and redis.call('HEXISTS', p .. 'e:' .. i[1], i[2]) == 1) then
    return {'exists', i[1] .. ' ' .. i[2]}
  end
  if alias_taken(i[6], i[2]) then return {'alias', i[6]} end
  if i[6] ~= '' then claimed[i[6]] = i[2] end
  claimed['!' .. i[1] .. ':' .. i[2]] = true
end
for _, d in ipairs(ops['d']) do
  local f = d[1] .. ':' .. d[2]
  if gone[f] then
    local a = alias_of(d[1], d[2])
    if a and redis.call('HGET', p .. 'alias', a) == d[2] then redis.call('HDEL', p .. 'alias', a) end
    redis.call('HDEL', p .. 'e:' .. d[1], d[2])
    redis.call('HDEL', p .. 'spend', f)
    redis.call('HDEL', p .. 'reset', f)
  end
end
local function set_reset(f, reset)
  if reset == '' then redis.call('HDEL', p .. 'reset', f) else redis.call('HSET', p .. 'reset', f, reset) end
end
for _, u in ipairs(ops['u']) do
  local old = alias_of(u[1], u[2])
  if old and old ~= u[5] and redis.call('HGET', p .. 'alias', old) == u[2] then
    redis.call('HDEL', p .. 'alias', old)
  end
  if u[5] ~= '' then redis.call('HSET', p .. 'alias', u[5], u[2]) end
  redis.call('HSET', p .. 'e:' .. u[1], u[2], u[3])
  set_reset(u[1] .. ':' .. u[2], u[4])
end
for _, i in ipairs(ops['i']) do
  local f = i[1] .. ':' .. i[2]
  redis.call('HSET', p .. 'e:' .. i[1], i[2], i[3])
  if i[4] ~= '' then redis.call('HSET', p .. 'spend', f, i[4]) end
  set_reset(f, i[5])
  if i[6] ~= '' then redis.call('HSET', p .. 'alias', i[6], i[2]) end
end
local v = redis.call('INCR', p .. 'version')
redis.call('PUBLISH', p .. 'changes', v)
return {'ok', tostring(v)}
"""

# ARGV: prefix, batch id, seconds to remember it, JSON [{k, i, d, now, nr?, bra?, bd?}].
# Same rules as keys.db's CHARGE: roll a period that ended (first host wins), store a period
# this host started when none is stored, add the delta; a deleted record is skipped. Returns
# [field, spend, reset|""]* and publishes them; a batch seen before only returns the totals.
CHARGE = """
local p = ARGV[1]
local fresh = redis.call('SET', p .. 'applied:' .. ARGV[2], '1', 'NX', 'EX', ARGV[3])
local out, published = {}, {}
for _, c in ipairs(cjson.decode(ARGV[4])) do
  local f = c.k .. ':' .. c.i
  local global = c.k == 'global'
  if global or redis.call('HEXISTS', p .. 'e:' .. c.k, c.i) == 1 then
    if fresh then
      local reset = redis.call('HGET', p .. 'reset', f)
      if c.nr and reset and tonumber(reset) <= tonumber(c.now) then
        redis.call('HSET', p .. 'spend', f, '0')
        redis.call('HSET', p .. 'reset', f, c.nr)
        reset = c.nr
      end
      if global then
        if redis.call('HEXISTS', p .. 'spend', f) == 0 then
          redis.call('HSET', p .. 'spend', f, '0')
          if c.bd then redis.call('SET', p .. 'gdur', c.bd) else redis.call('DEL', p .. 'gdur') end
          if c.bra then redis.call('HSET', p .. 'reset', f, c.bra) end
        end
      elseif not reset or not c.bra then
        if c.bra then redis.call('HSET', p .. 'reset', f, c.bra) else redis.call('HDEL', p .. 'reset', f) end
      end
      redis.call('HINCRBYFLOAT', p .. 'spend', f, c.d)
    end
    local spend = redis.call('HGET', p .. 'spend', f) or '0'
    local reset = redis.call('HGET', p .. 'reset', f) or ''
    table.insert(out, f); table.insert(out, spend); table.insert(out, reset)
    published[f] = {spend, reset}
  end
end
if #out > 0 then redis.call('PUBLISH', p .. 'spend', cjson.encode(published)) end
return out
"""

# ARGV: prefix, spend, duration|"", reset|"". The gateway budget's period at start-up: written
# only when the stored period differs (a config change, or a period that ended), so a host
# starting never overwrites what the others added meanwhile.
SAVE_GLOBAL = """
local p = ARGV[1]
local f = 'global:global'
local dur = redis.call('GET', p .. 'gdur') or ''
local reset = redis.call('HGET', p .. 'reset', f) or ''
if redis.call('HEXISTS', p .. 'spend', f) == 1 and dur == ARGV[3] and reset == ARGV[4] then
  return 0
end
redis.call('HSET', p .. 'spend', f, ARGV[2])
if ARGV[3] == '' then redis.call('DEL', p .. 'gdur') else redis.call('SET', p .. 'gdur', ARGV[3]) end
if ARGV[4] == '' then redis.call('HDEL', p .. 'reset', f) else redis.call('HSET', p .. 'reset', f, ARGV[4]) end
return 1
"""

# ARGV: prefix, dataset id, mode, JSON {"e": {kind: {ident: json}}, "s": {field: spend},
# "r": {field: reset}, "a": {alias: hash}, "g": duration|""}. Modes: "seed" writes only into a
# Redis without a data set (returns {-1, 0} when one exists: another host seeded first);
# "merge" adds the records Redis lacks and keeps the others; "replace" drops what is there.
# Returns {records written, records kept}.
SEED = """
local p, mode = ARGV[1], ARGV[3]
local data = cjson.decode(ARGV[4])
if redis.call('SET', p .. 'dataset', ARGV[2], 'NX') == false and mode == 'seed' then
  return {-1, 0}
end
if mode == 'replace' then
  for _, kind in ipairs({'key', 'user', 'team', 'member', 'end_user', 'budget', 'model'}) do
    redis.call('DEL', p .. 'e:' .. kind)
  end
  redis.call('DEL', p .. 'spend', p .. 'reset', p .. 'alias', p .. 'gdur')
end
local written, kept = 0, 0
for kind, records in pairs(data['e']) do
  for ident, raw in pairs(records) do
    if redis.call('HSETNX', p .. 'e:' .. kind, ident, raw) == 1 then
      written = written + 1
      local f = kind .. ':' .. ident
      if data['s'][f] then redis.call('HSET', p .. 'spend', f, data['s'][f]) end
      if data['r'][f] then redis.call('HSET', p .. 'reset', f, data['r'][f]) end
    else
      kept = kept + 1
    end
  end
end
for alias, hash in pairs(data['a']) do
  if redis.call('HEXISTS', p .. 'e:key', hash) == 1 then redis.call('HSETNX', p .. 'alias', alias, hash) end
end
local g = 'global:global'
if data['s'][g] and redis.call('HEXISTS', p .. 'spend', g) == 0 then
  redis.call('HSET', p .. 'spend', g, data['s'][g])
  if data['r'][g] then redis.call('HSET', p .. 'reset', g, data['r'][g]) end
  if data['g'] ~= '' then redis.call('SET', p .. 'gdur', data['g']) end
end
local v = redis.call('INCR', p .. 'version')
redis.call('PUBLISH', p .. 'changes', v)
return {written, kept}
"""

# KEYS: per subject 4 keys (requests, tokens, token sum, parallel). ARGV: prefix, now (ms),
# request id, host id, then per subject rpm, tpm, parallel (-1: none). All or none: checks
# every subject, then takes a slot in each. Returns {0} or {subject number, what, wait ms}.
ACQUIRE = """
local p, now, id, host = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local horizon = now - 60000
local n = #KEYS / 4
for s = 0, n - 1 do
  local rk, tk, sk, pk = KEYS[s * 4 + 1], KEYS[s * 4 + 2], KEYS[s * 4 + 3], KEYS[s * 4 + 4]
  local rpm, tpm, par = tonumber(ARGV[5 + s * 3]), tonumber(ARGV[6 + s * 3]), tonumber(ARGV[7 + s * 3])
  if rpm >= 0 then
    redis.call('ZREMRANGEBYSCORE', rk, '-inf', horizon)
    if redis.call('ZCARD', rk) >= rpm then
      local first = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
      local wait = 60000
      if first[2] then wait = tonumber(first[2]) + 60000 - now end
      return {s + 1, 'rpm', tostring(wait)}
    end
  end
  if tpm >= 0 then
    local old = redis.call('ZRANGEBYSCORE', tk, '-inf', horizon)
    if #old > 0 then
      local expired = 0
      for _, m in ipairs(old) do expired = expired + tonumber(string.match(m, ':(%d+)$')) end
      redis.call('ZREMRANGEBYSCORE', tk, '-inf', horizon)
      redis.call('DECRBY', sk, expired)
    end
    local sum = tonumber(redis.call('GET', sk) or '0')
    if sum >= tpm then
      local wait = 60000
      local entries = redis.call('ZRANGE', tk, 0, -1, 'WITHSCORES')
      local left = sum
      for j = 1, #entries, 2 do
        left = left - tonumber(string.match(entries[j], ':(%d+)$'))
        if left < tpm then wait = tonumber(entries[j + 1]) + 60000 - now; break end
      end
      return {s + 1, 'tpm', tostring(wait)}
    end
  end
  if par >= 0 then
    local counts = redis.call('HGETALL', pk)
    local total = 0
    for j = 1, #counts, 2 do
      if redis.call('EXISTS', p .. 'host:' .. counts[j]) == 1 then
        local c = tonumber(counts[j + 1])
        if c > 0 then total = total + c end
      else
        redis.call('HDEL', pk, counts[j])
      end
    end
    if total >= par then return {s + 1, 'parallel', '1000'} end
  end
end
for s = 0, n - 1 do
  local rpm, par = tonumber(ARGV[5 + s * 3]), tonumber(ARGV[7 + s * 3])
  if rpm >= 0 then
    redis.call('ZADD', KEYS[s * 4 + 1], now, id)
    redis.call('PEXPIRE', KEYS[s * 4 + 1], 61000)
  end
  if par >= 0 then redis.call('HINCRBY', KEYS[s * 4 + 4], host, 1) end
end
return {0}
"""

# KEYS: parallel hashes. ARGV: host. One slot back in each (never below zero).
RELEASE = """
for _, k in ipairs(KEYS) do
  if redis.call('HINCRBY', k, ARGV[1], -1) <= 0 then redis.call('HDEL', k, ARGV[1]) end
end
return 0
"""

# KEYS: token ZSET, token sum (pairs). ARGV: now (ms), member id, tokens.
ADD_TOKENS = """
for j = 1, #KEYS, 2 do
  redis.call('ZADD', KEYS[j], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
  redis.call('INCRBY', KEYS[j + 1], ARGV[3])
  redis.call('PEXPIRE', KEYS[j], 61000)
  redis.call('PEXPIRE', KEYS[j + 1], 61000)
end
return 0
"""
