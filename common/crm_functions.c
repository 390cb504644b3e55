/*  The Redis Function library "crm", loaded (REPLACE) on every connect.
 *
 *  The append (keys: events, seq; args: maxlen, then frame and seq offset
 *  for each event) allocates the next sequence numbers of a stream and
 *  appends the envelopes under them, patching each number into its
 *  envelope's fixed-width seq field, so what Redis keeps is byte for byte
 *  what ZeroMQ carries. crm_append_lua does the same for every stream of a
 *  transaction in one call, inside MULTI/EXEC with the handler's state
 *  changes: "state + events" is atomic, and the Lua overhead is paid once a
 *  batch, not once an event or a stream.
 *
 *  crm_claim takes the due timers of a set, removes them and appends their
 *  events, all in one step: two instances can never fire a timer twice, and
 *  a crash between claim and append cannot happen.
 *
 *  crm_fire does the same for compact timers (a timer is only its id in a
 *  sorted set scored by its due time): up to a limit of them, removed and
 *  listed in one timers.fired event.
 *
 *  Inside MULTI/EXEC the append runs as EVAL of crm_append_lua, not as a
 *  library function: a command of an EXEC that fails does not undo the
 *  others, so a transaction must not depend on a library that FUNCTION
 *  FLUSH (or a restore without it) can take away between two commits. EVAL
 *  carries its script; Redis caches it. crm_claim runs on its own, where
 *  "function not found" makes the store reconnect and load the library
 *  again.
 */
#include "crm_store.h"

/* The append, once: allocates the next number of a stream and appends the
   envelope under it, patching the number into its fixed-width seq field. */
#define S_APPEND_LUA                                                                               \
    "local function be64(n)\n"                                                                      \
    "  local floor = math.floor\n"                                                                  \
    "  local lo = n % 4294967296\n"                                                                 \
    "  local hi = floor(n / 4294967296)\n"                                                          \
    "  return string.char(floor(hi / 16777216) % 256, floor(hi / 65536) % 256, floor(hi / 256) % 256,\n" \
    "                     hi % 256, floor(lo / 16777216) % 256, floor(lo / 65536) % 256,\n"          \
    "                     floor(lo / 256) % 256, lo % 256)\n"                                        \
    "end\n"                                                                                         \
    "local function put(events, seq, frame, off, maxlen)\n"                                        \
    "  if off > 0 then\n"                                                                           \
    "    frame = string.sub(frame, 1, off) .. be64(seq) .. string.sub(frame, off + 9)\n"            \
    "  end\n"                                                                                       \
    "  redis.call('XADD', events, 'MAXLEN', '~', maxlen, seq .. '-0', 'm', frame)\n"                \
    "  return frame\n"                                                                              \
    "end\n"                                                                                         \
    "local function append(events, seqkey, frame, off, maxlen)\n"                                  \
    "  local seq = redis.call('INCR', seqkey)\n"                                                    \
    "  return seq, put(events, seq, frame, off, maxlen)\n"                                          \
    "end\n"

/* For EVAL inside MULTI/EXEC, once per transaction for all its streams
   (keys: events and seq of each stream; args: maxlen, then per stream the
   count of its events and the number the writer expects its first to get,
   followed by frame and seq offset of each event); returns the first number
   of each stream, in the order of the keys. The writer sends the frames
   with the numbers it expects already patched in (the ones its last commit
   to the stream left next): when the stream's counter agrees, as it does
   while no other writer appended in between, they are appended as they
   are; otherwise each number is patched into its frame here. Redis hashes
   an EVAL's script at every call and sets up Lua for it: one call a
   transaction, not one a stream, and per event as few Lua calls as it
   takes (a Lua number concatenated to a string goes through "%.14g": the id
   is formatted as an integer). The stream is trimmed once a call, not at
   every XADD: an XADD with MAXLEN goes to the append-only file with three
   more arguments, and an XTRIM that removes nothing does not go at all.
   Redis takes at most 10,000 entries off in one approximate trim; a call
   appends far fewer, so a stream stays at about maxlen (a lowered maxlen
   is reached over the calls that follow). A frame without room for its
   number at the offset (none that crm_msg_encode makes) is kept as sent. */
const char crm_append_lua[] =
    "local a,r,f=2,{},string.format for g=1,#KEYS/2 do local n=tonumber(ARGV[a]) "
    "local s=redis.call('INCRBY',KEYS[2*g],n)-n local ok=s+1==tonumber(ARGV[a+1]) a=a+2 r[g]=s+1 "
    "local k=KEYS[2*g-1] for i=1,n do s=s+1 local m=ARGV[a] if not ok then local o=tonumber(ARGV[a+1]) "
    "if o>0 and o+8<=#m then m=m:sub(1,o)..struct.pack('>I8',s)..m:sub(o+9) end end a=a+2 "
    "redis.call('XADD',k,f('%d',s),'m',m) end redis.call('XTRIM',k,'MAXLEN','~',ARGV[1]) end return r";

/* The library: crm_claim. */
const char crm_functions_lua[] =
    "#!lua name=crm\n" S_APPEND_LUA
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
    "end)\n"
    /* crm_fire (keys: due set, events, seq; args: now, limit, maxlen, the
       timers.fired envelope whose last byte is its empty timers array, the
       seq offset): the due timers, oldest first, removed and appended as one
       event listing "<due> <id>" for each, in one step. */
    "local function mpstr(s)\n"
    "  local l = #s\n"
    "  if l < 32 then return string.char(160 + l) .. s end\n"
    "  if l < 256 then return string.char(217, l) .. s end\n"
    "  return string.char(218, math.floor(l / 256), l % 256) .. s\n"
    "end\n"
    "redis.register_function('crm_fire', function(keys, args)\n"
    "  local got = redis.call('ZRANGE', keys[1], '-inf', args[1], 'BYSCORE', 'LIMIT', 0, "
    "tonumber(args[2]), 'WITHSCORES')\n"
    "  local n = #got / 2\n"
    "  if n == 0 then return {0} end\n"
    "  local ids, parts = {}, {}\n"
    "  for i = 1, #got, 2 do\n"
    "    ids[#ids + 1] = got[i]\n"
    "    parts[#parts + 1] = mpstr(got[i + 1] .. ' ' .. got[i])\n"
    "  end\n"
    "  for i = 1, #ids, 500 do\n"
    "    redis.call('ZREM', keys[1], unpack(ids, i, math.min(i + 499, #ids)))\n"
    "  end\n"
    "  local head = string.sub(args[4], 1, #args[4] - 1)\n"
    "  local count = n < 16 and string.char(144 + n) or string.char(220, math.floor(n / 256), n % 256)\n"
    "  local seq, frame = append(keys[2], keys[3], head .. count .. table.concat(parts), "
    "tonumber(args[5]), args[3])\n"
    "  return {n, seq, frame}\n"
    "end)\n";
