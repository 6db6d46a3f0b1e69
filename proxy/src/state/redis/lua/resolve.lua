-- An operator approves (with the SHA-256 of a fresh permit) or denies a
-- pending approval, atomically; the decision is published to every
-- gateway's held calls.
-- ARGV: base, id, now, approve ('1'/'0'), permit sha256, permit ttl ms,
--       resolver, credential name, note, retention ms
local base, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local k = base .. 'ap:' .. id
local f = redis.call('HMGET', k, 'status', 'expires', 'pexp', 'session', 'agent', 'fp')
if not f[1] then return {'missing'} end
local st = effective(f[1], f[2], f[3], now)
if st ~= 'pending' then return {'not_pending', st} end
local keep = tonumber(ARGV[10])
local status = 'denied'
if ARGV[4] == '1' then
  status = 'approved'
  local pexp = now + tonumber(ARGV[6])
  redis.call('HSET', k, 'status', status, 'resolved', now, 'resolver', ARGV[7], 'cred', ARGV[8],
    'note', ARGV[9], 'psha', ARGV[5], 'pexp', pexp)
  local ttl = pexp - now + keep
  redis.call('SET', base .. 'permit:' .. ARGV[5], id, 'PX', ttl)
  if redis.call('PTTL', k) < ttl then
    redis.call('PEXPIRE', k, ttl)
    local slot = base .. 'slot:' .. f[6]
    if redis.call('GET', slot) == id then redis.call('PEXPIRE', slot, ttl) end
  end
  redis.call('ZADD', base .. 'due', pexp, id)
else
  redis.call('HSET', k, 'status', status, 'resolved', now, 'resolver', ARGV[7], 'cred', ARGV[8],
    'note', ARGV[9])
  redis.call('ZREM', base .. 'due', id)
end
unstage_both(base, f[4], f[5], id)
redis.pcall('PUBLISH', base .. 'events', status .. ' ' .. id)
return {'ok', redis.call('HGETALL', k)}
