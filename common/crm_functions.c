/*  The Redis Function library "crm", loaded (REPLACE) on every connect.
 *
 *  crm_append allocates the next sequence number of a stream and appends the
 *  envelope under that number in one step, patching the number into the
 *  envelope's fixed-width seq field, so what Redis keeps is byte for byte
 *  what ZeroMQ carries. Called inside MULTI/EXEC with the handler's state
 *  changes, it makes "state + event" atomic.
 *
 *  crm_claim takes the due timers of a set, removes them and appends their
 *  events, all in one step: two instances can never fire a timer twice, and
 *  a crash between claim and append cannot happen.
 */
#include "crm_store.h"

const char crm_functions_lua[] =
    "#!lua name=crm\n"
    "local function be64(n)\n"
    "  local b = {}\n"
    "  for i = 8, 1, -1 do b[i] = string.char(n % 256); n = math.floor(n / 256) end\n"
    "  return table.concat(b)\n"
    "end\n"
    "local function append(events, seqkey, frame, off, maxlen)\n"
    "  local seq = redis.call('INCR', seqkey)\n"
    "  if off > 0 then\n"
    "    frame = string.sub(frame, 1, off) .. be64(seq) .. string.sub(frame, off + 9)\n"
    "  end\n"
    "  redis.call('XADD', events, 'MAXLEN', '~', maxlen, seq .. '-0', 'm', frame)\n"
    "  return seq, frame\n"
    "end\n"
    "redis.register_function('crm_append', function(keys, args)\n"
    "  local seq = append(keys[1], keys[2], args[1], tonumber(args[2]), args[3])\n"
    "  return seq\n"
    "end)\n"
    "redis.register_function('crm_claim', function(keys, args)\n"
    "  local ids = redis.call('ZRANGE', keys[1], '-inf', args[1], 'BYSCORE', 'LIMIT', 0, "
    "tonumber(args[2]))\n"
    "  local out = {}\n"
    "  for _, id in ipairs(ids) do\n"
    "    local frame = redis.call('HGET', keys[2], id)\n"
    "    local meta = redis.call('HGET', keys[3], id)\n"
    "    redis.call('ZREM', keys[1], id)\n"
    "    redis.call('HDEL', keys[2], id)\n"
    "    redis.call('HDEL', keys[3], id)\n"
    "    if frame and meta then\n"
    "      local stream, off = string.match(meta, '^(%S+) (%d+)$')\n"
    "      if stream then\n"
    "        local seq, body = append('crm:{' .. stream .. '}:events', 'crm:{' .. stream .. "
    "'}:seq', frame, tonumber(off), args[3])\n"
    "        table.insert(out, {stream, seq, body, id})\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return out\n"
    "end)\n";
