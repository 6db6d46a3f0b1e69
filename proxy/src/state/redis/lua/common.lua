-- Helpers prepended to every script (scripts.rs). Risk lists are Redis
-- lists; entries that scripts read are prefixed with what they need:
-- steps "<at_ms> <json>", staged "<at_ms> <approval id> <json>".
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
local function unstage(list, id)
  for _, l in ipairs(redis.call('LRANGE', list, 0, -1)) do
    if staged_id(l) == id then redis.call('LREM', list, 0, l) end
  end
end
local function unstage_both(base, session, agent, id)
  if session and session ~= '' then unstage(base .. 'sq:' .. session, id) end
  if agent and agent ~= '' then unstage(base .. 'aq:' .. agent, id) end
end
-- Wake-ups are best effort (pcall at every PUBLISH): a transition that was
-- written must never fail because publishing did; held calls also poll.
