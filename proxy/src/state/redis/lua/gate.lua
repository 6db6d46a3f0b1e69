-- One approval step of a stage, atomically (decision/approvals.rs and
-- state/approvals.rs approval_gate): a presented permit is spent first,
-- then (next_call) the binding's approved approval, else the binding's
-- approval is found or opened. A permit is spent exactly once: the
-- approved -> used transition happens inside this script only.
-- ARGV: base, now, release, permit sha256 ('' = none), fingerprint,
--       request id, new id, template JSON, session, agent, created,
--       expires, retention ms
local base, now = ARGV[1], tonumber(ARGV[2])
local release, psha, fp, rid = ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local function view(id) return redis.call('HGETALL', base .. 'ap:' .. id) end

local function consume(id)
  local k = base .. 'ap:' .. id
  local f = redis.call('HMGET', k, 'status', 'expires', 'pexp', 'fp')
  if not f[1] then return 'unknown' end
  local st = effective(f[1], f[2], f[3], now)
  if st == 'pending' then return 'not_approved' end
  if st ~= 'approved' then return st end
  if f[4] ~= fp then return 'mismatch' end
  redis.call('HSET', k, 'status', 'used', 'used_ms', now, 'used_by', rid)
  redis.call('ZREM', base .. 'due', id)
  redis.pcall('PUBLISH', base .. 'events', 'used ' .. id)
  return 'ok'
end

local rejected = ''
if psha ~= '' then
  local id = redis.call('GET', base .. 'permit:' .. psha)
  if not id then
    rejected = 'unknown'
  else
    local r = consume(id)
    if r == 'ok' then return {'released', '1', '', view(id)} end
    rejected = r
  end
end
local slot = base .. 'slot:' .. fp
if release == 'next_call' then
  local id = redis.call('GET', slot)
  if id and consume(id) == 'ok' then return {'released', '0', '', view(id)} end
end
local id = redis.call('GET', slot)
if id then
  local f = redis.call('HMGET', base .. 'ap:' .. id, 'status', 'expires', 'pexp', 'created', 'resolved')
  if f[1] then
    local st = effective(f[1], f[2], f[3], now)
    if st == 'pending' or st == 'approved' then return {st, '', rejected, view(id)} end
    -- A denial sticks for as long as the approval could have waited.
    if st == 'denied' and num(f[5], 0) + (num(f[2], 0) - num(f[4], 0)) > now then
      return {'denied', '', rejected, view(id)}
    end
  end
end
local new_id = ARGV[7]
local k = base .. 'ap:' .. new_id
local expires = tonumber(ARGV[12])
redis.call('HSET', k, 'v', '1', 'id', new_id, 'body', ARGV[8], 'status', 'pending', 'fp', fp,
  'session', ARGV[9], 'agent', ARGV[10], 'created', ARGV[11], 'expires', ARGV[12])
local ttl = math.max(expires - now, 1000) + tonumber(ARGV[13])
redis.call('PEXPIRE', k, ttl)
redis.call('SET', slot, new_id, 'PX', ttl)
redis.call('ZADD', base .. 'aps', tonumber(ARGV[11]), new_id)
redis.call('ZADD', base .. 'due', expires, new_id)
return {'created', '', rejected, view(new_id)}
