-- GCRA (state/seam/gcra.rs step): one theoretical arrival time per key.
-- The server's clock, so gateways with skewed clocks share one limit.
-- KEYS[1]: the counter; ARGV: per minute, burst. Returns {allowed, retry ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local emission = 60000 / math.max(tonumber(ARGV[1]), 1)
local tolerance = emission * (math.max(tonumber(ARGV[2]), 1) - 1)
local tat = num(redis.call('GET', KEYS[1]), now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return {0, math.ceil(allow_at - now)} end
local new = tat + emission
redis.call('SET', KEYS[1], string.format('%.17g', new), 'PX', math.ceil(new - now) + 1000)
return {1, 0}
