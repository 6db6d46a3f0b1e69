-- Helpers prepended to every script (scripts.rs). List fields hold one
-- entry per line; entries are JSON written by the gateway (never a raw
-- newline), prefixed where a script needs a field: steps "<at_ms> <json>",
-- staged "<at_ms> <approval id> <json>".
local function lines(s)
  local t = {}
  if s then
    for l in string.gmatch(s, '[^\n]+') do t[#t + 1] = l end
  end
  return t
end
local function join(t) return table.concat(t, '\n') end
local function num(x, default)
  local n = tonumber(x)
  if n == nil then return default end
  return n
end
-- An approval's status as of now: pending past its deadline, or approved
-- past its permit's lifetime, is expired (decision/approvals.rs refresh).
local function effective(status, expires, pexp, now)
  if status == 'pending' and now >= num(expires, 0) then return 'expired' end
  if status == 'approved' and pexp and now >= num(pexp, 0) then return 'expired' end
  return status
end
local function staged_id(l)
  local _, id = string.match(l, '^(%-?%d+) (%S+) ')
  return id
end
-- A decided approval no longer waits: drop it from a scope's staged list.
local function unstage(key, id)
  local staged = redis.call('HGET', key, 'staged')
  if not staged then return end
  local keep, changed = {}, false
  for _, l in ipairs(lines(staged)) do
    if staged_id(l) == id then changed = true else keep[#keep + 1] = l end
  end
  if changed then redis.call('HSET', key, 'staged', join(keep)) end
end
local function unstage_both(base, session, agent, id)
  if session and session ~= '' then unstage(base .. 's:' .. session, id) end
  if agent and agent ~= '' then unstage(base .. 'a:' .. agent, id) end
end
-- Wake-ups are best effort (pcall at every PUBLISH): a transition that was
-- written must never fail because publishing did; held calls also poll.
