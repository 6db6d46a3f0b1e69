-- What one stage adds to its session and agent (decision/session.rs
-- remember, remember_session, remember_agent), applied server-side so
-- concurrent gateways never lose each other's contribution, plus the
-- console tail entry. Queued by the gateway, never awaited by a request.
-- ARGV: 1 base, 2 session, 3 session as JSON, 4 owner, 5 agent, 6 now,
--   7 half-life s, 8 window ms, 9 max history, 10 idle ms, 11 score,
--   12 new request (0/1), 13 decision as JSON ('' = none),
--   14 tail entry JSON ('' = none), 15 tail max, 16 gateway,
--   17..21 counts of: steps, staged, released ids, markers, memory paths;
--   22.. those lists in that order.
local base, sid, sid_json, owner, agent = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, hl, window = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local maxh, idle = tonumber(ARGV[9]), tonumber(ARGV[10])
local score, newreq, decision = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local lists, at = {}, 22
for i = 1, 5 do
  local l = {}
  for j = 1, tonumber(ARGV[16 + i]) do l[j] = ARGV[at]; at = at + 1 end
  lists[i] = l
end
local steps_new, staged_new, released, markers, memory = lists[1], lists[2], lists[3], lists[4], lists[5]

local function decayed(cum, asof)
  if hl == 0 or cum <= 0 then return math.max(cum, 0) end
  return cum * (0.5 ^ ((math.max(now - asof, 0) / 1000) / hl))
end
local function in_window(l) return now - tonumber(string.match(l, '^(%-?%d+) ')) < window end
local function keep_last(t, n)
  if #t <= n then return t end
  local out = {}
  for i = #t - n + 1, #t do out[#out + 1] = t[i] end
  return out
end
local function contains(t, x)
  for _, y in ipairs(t) do if y == x then return true end end
  return false
end

local function remember(key)
  local f = redis.call('HMGET', key, 'cum', 'asof', 'steps', 'staged')
  local cum = decayed(num(f[1], 0), num(f[2], now)) + math.max(score, 0)
  local kept = {}
  for _, l in ipairs(lines(f[3])) do if in_window(l) then kept[#kept + 1] = l end end
  for _, l in ipairs(steps_new) do if in_window(l) then kept[#kept + 1] = l end end
  kept = keep_last(kept, maxh)
  local staged = {}
  for _, l in ipairs(lines(f[4])) do
    if in_window(l) and not contains(released, staged_id(l)) then staged[#staged + 1] = l end
  end
  for _, l in ipairs(staged_new) do
    local id, dup = staged_id(l), false
    for _, x in ipairs(staged) do if staged_id(x) == id then dup = true end end
    if not dup then staged[#staged + 1] = l end
  end
  staged = keep_last(staged, maxh)
  redis.call('HSET', key, 'cum', string.format('%.17g', cum), 'asof', now, 'updated', now,
    'steps', join(kept), 'staged', join(staged))
  redis.call('HINCRBY', key, 'req', newreq)
end

-- Append to a list field; `unique`: only new items, only below the cap
-- (markers); else keep the newest `cap` (decisions, sessions).
local function push(key, field, items, cap, unique)
  if #items == 0 then return end
  local t = lines(redis.call('HGET', key, field))
  for _, x in ipairs(items) do
    if not unique then t[#t + 1] = x
    elseif #t < cap and not contains(t, x) then t[#t + 1] = x end
  end
  redis.call('HSET', key, field, join(keep_last(t, cap)))
end

if sid ~= '' then
  local sk = base .. 's:' .. sid
  local cur = redis.call('HGET', sk, 'owner')
  if not cur then
    redis.call('HSET', sk, 'v', '1', 'id', sid, 'owner', owner, 'created', now, 'updated', now,
      'req', 0, 'cum', '0', 'asof', now)
    cur = owner
  end
  -- A session used by another agent is never changed by it.
  if cur == '' or cur == owner then
    remember(sk)
    if decision ~= '' then push(sk, 'decisions', {decision}, 64, false) end
    push(sk, 'markers', markers, 64, true)
    push(sk, 'memory', memory, 64, true)
    redis.call('ZADD', base .. 'recent', now, sid)
    redis.call('ZREMRANGEBYSCORE', base .. 'recent', '-inf', '(' .. string.format('%d', now - idle))
    redis.call('PEXPIRE', sk, idle)
  end
end

if agent ~= '' then
  local ak = base .. 'a:' .. agent
  if redis.call('EXISTS', ak) == 0 then
    redis.call('HSET', ak, 'v', '1', 'id', agent, 'created', now, 'updated', now, 'req', 0,
      'cum', '0', 'asof', now)
  end
  remember(ak)
  if sid ~= '' then
    local t = {}
    for _, l in ipairs(lines(redis.call('HGET', ak, 'sessions'))) do
      if l ~= sid_json then t[#t + 1] = l end
    end
    t[#t + 1] = sid_json
    redis.call('HSET', ak, 'sessions', join(keep_last(t, 32)))
  end
  redis.call('PEXPIRE', ak, idle)
end

local tail = ARGV[14]
if tail ~= '' then
  local tk, ck = base .. 'tail', base .. 'tailseq'
  local seq = redis.call('INCR', ck)
  local r = redis.pcall('XADD', tk, 'MAXLEN', '~', ARGV[15], seq .. '-0', 'g', ARGV[16], 'e', tail)
  if type(r) == 'table' and r.err then
    -- The counter fell behind the stream (it was deleted): move past it.
    local info = redis.call('XINFO', 'STREAM', tk)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        seq = tonumber(string.match(info[i + 1], '^(%d+)')) + 1
      end
    end
    redis.call('SET', ck, seq)
    redis.call('XADD', tk, 'MAXLEN', '~', ARGV[15], seq .. '-0', 'g', ARGV[16], 'e', tail)
  end
end
return 1
