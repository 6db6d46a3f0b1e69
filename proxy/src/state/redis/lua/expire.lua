-- Persist expiries that are due (pending past deadline, permits past
-- lifetime), unstage them and wake their held calls; forget listing
-- entries older than the retention, and sessions idle past their lifetime
-- from the recent-sessions index. Idempotent: every gateway may run it.
-- ARGV: base, now, batch limit, retention ms, session idle ms
local base, now = ARGV[1], tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', base .. 'due', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, id in ipairs(ids) do
  local k = base .. 'ap:' .. id
  local f = redis.call('HMGET', k, 'status', 'expires', 'pexp', 'session', 'agent')
  local st = f[1] and effective(f[1], f[2], f[3], now)
  if st == 'expired' and f[1] ~= 'expired' then
    redis.call('HSET', k, 'status', 'expired')
    unstage_both(base, f[4], f[5], id)
    redis.pcall('PUBLISH', base .. 'events', 'expired ' .. id)
    n = n + 1
  end
  if st ~= 'pending' and st ~= 'approved' then redis.call('ZREM', base .. 'due', id) end
end
redis.call('ZREMRANGEBYSCORE', base .. 'aps', '-inf', '(' .. string.format('%d', now - tonumber(ARGV[4])))
redis.call('ZREMRANGEBYSCORE', base .. 'recent', '-inf', '(' .. string.format('%d', now - tonumber(ARGV[5])))
return n
