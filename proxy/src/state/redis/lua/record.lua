-- What one stage adds to its session and agent (decision/session.rs
-- remember, remember_session, remember_agent), applied server-side so
-- concurrent gateways never lose each other's contribution, plus the
-- console tail entry. Queued by the gateway, never awaited by a request.
--
-- Lists are Redis lists edited with list commands, so no long string is
-- ever copied into Lua (a few KB per string cost tens of µs there).
-- Entries are appended in time order, so leaving the window and the
-- history cap both cut from the front; an entry that arrived out of order
-- (gateway clocks a few ms apart) leaves late, and readers filter by the
-- window anyway.
-- ARGV: 1 base, 2 session, 3 owner, 4 agent, 5 now, 6 half-life s,
--   7 window ms, 8 max history, 9 idle ms, 10 score, 11 new request (0/1),
--   12 decision ('' = none), 13 tail entry JSON ('' = none), 14 tail max,
--   15 gateway, 16..20 counts of: steps, staged, released ids, markers,
--   memory paths; 21.. those lists in that order.
local base, sid, owner, agent = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, hl, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local maxh, idle = tonumber(ARGV[8]), tonumber(ARGV[9])
local score, newreq, decision = tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[12]
local lists, at = {}, 21
for i = 1, 5 do
  local l = {}
  for j = 1, tonumber(ARGV[15 + i]) do l[j] = ARGV[at]; at = at + 1 end
  lists[i] = l
end
local steps_new, staged_new, released, markers, memory = lists[1], lists[2], lists[3], lists[4], lists[5]

local function decayed(cum, asof)
  if hl == 0 or cum <= 0 then return math.max(cum, 0) end
  return cum * (0.5 ^ ((math.max(now - asof, 0) / 1000) / hl))
end

-- RPUSH; a list it creates gets the idle lifetime at once (the others
-- are refreshed with their scope, see `expire`).
local function rpush(list, ...)
  local n = redis.call('RPUSH', list, ...)
  if n == select('#', ...) then redis.call('PEXPIRE', list, idle) end
end

local function drop_old(list)
  while true do
    local head = redis.call('LINDEX', list, 0)
    if not head then return end
    local t = tonumber(string.match(head, '^(%-?%d+) '))
    if t and now - t < window then return end
    redis.call('LPOP', list)
  end
end

-- `f`: the scope's HMGET of cum, asof (and more, unused here).
local function remember(key, f, steps, staged)
  local cum = decayed(num(f[1], 0), num(f[2], now)) + math.max(score, 0)
  drop_old(steps)
  if #steps_new > 0 then
    rpush(steps, unpack(steps_new))
    redis.call('LTRIM', steps, -maxh, -1)
  end
  drop_old(staged)
  if #released > 0 or #staged_new > 0 then
    local ids = {}
    for _, l in ipairs(redis.call('LRANGE', staged, 0, -1)) do
      local id, gone = staged_id(l), false
      for _, r in ipairs(released) do if r == id then gone = true end end
      if gone then redis.call('LREM', staged, 0, l) else ids[id] = true end
    end
    for _, l in ipairs(staged_new) do
      local id = staged_id(l)
      if not ids[id] then
        rpush(staged, l)
        ids[id] = true
      end
    end
    redis.call('LTRIM', staged, -maxh, -1)
  end
  redis.call('HSET', key, 'cum', string.format('%.17g', cum), 'asof', now, 'updated', now)
  redis.call('HINCRBY', key, 'req', newreq)
end

-- Markers: only new items, only below the cap.
local function push_unique(list, items, cap)
  if #items == 0 then return end
  local n = redis.call('LLEN', list)
  for _, x in ipairs(items) do
    if n < cap and not redis.call('LPOS', list, x) then
      rpush(list, x)
      n = n + 1
    end
  end
end

-- Every key of a scope gets the idle lifetime together, refreshed when a
-- tenth of it has passed (not on every record: that is most of the calls).
local function expire(keys, ttl_at)
  if now - num(ttl_at, 0) < idle / 10 then return end
  for _, k in ipairs(keys) do redis.call('PEXPIRE', k, idle) end
  redis.call('HSET', keys[1], 'ttl_at', now)
end

if sid ~= '' then
  local sk = base .. 's:' .. sid
  local f = redis.call('HMGET', sk, 'cum', 'asof', 'owner', 'ttl_at')
  local cur = f[3]
  if not cur then
    redis.call('HSET', sk, 'v', '1', 'id', sid, 'owner', owner, 'created', now, 'updated', now,
      'req', 0, 'cum', '0', 'asof', now)
    cur = owner
  end
  -- A session used by another agent is never changed by it.
  if cur == '' or cur == owner then
    local ss, sq, sd = base .. 'ss:' .. sid, base .. 'sq:' .. sid, base .. 'sd:' .. sid
    local sm, sy = base .. 'sm:' .. sid, base .. 'sy:' .. sid
    remember(sk, f, ss, sq)
    if decision ~= '' then
      rpush(sd, decision)
      redis.call('LTRIM', sd, -64, -1)
    end
    push_unique(sm, markers, 64)
    push_unique(sy, memory, 64)
    redis.call('ZADD', base .. 'recent', now, sid)
    expire({sk, ss, sq, sd, sm, sy}, f[4])
  end
end

if agent ~= '' then
  local ak, as, aq, an = base .. 'a:' .. agent, base .. 'as:' .. agent, base .. 'aq:' .. agent,
    base .. 'an:' .. agent
  local f = redis.call('HMGET', ak, 'cum', 'asof', 'id', 'ttl_at')
  if not f[3] then
    redis.call('HSET', ak, 'v', '1', 'id', agent, 'created', now, 'updated', now, 'req', 0,
      'cum', '0', 'asof', now)
  end
  remember(ak, f, as, aq)
  if sid ~= '' and redis.call('LINDEX', an, -1) ~= sid then
    redis.call('LREM', an, 0, sid)
    rpush(an, sid)
    redis.call('LTRIM', an, -32, -1)
  end
  expire({ak, as, aq, an}, f[4])
end

local tail = ARGV[13]
if tail ~= '' then
  local tk, ck = base .. 'tail', base .. 'tailseq'
  local seq = redis.call('INCR', ck)
  local r = redis.pcall('XADD', tk, 'MAXLEN', '~', ARGV[14], seq .. '-0', 'g', ARGV[15], 'e', tail)
  if type(r) == 'table' and r.err then
    -- The counter fell behind the stream (it was deleted): move past it.
    local info = redis.call('XINFO', 'STREAM', tk)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        seq = tonumber(string.match(info[i + 1], '^(%d+)')) + 1
      end
    end
    redis.call('SET', ck, seq)
    redis.call('XADD', tk, 'MAXLEN', '~', ARGV[14], seq .. '-0', 'g', ARGV[15], 'e', tail)
  end
end
return 1
