//! The Lua scripts. The table scripts touch exactly one key (one hash slot), as Redis
//! Cluster requires; the write script takes a batch of entity hashes. Each runs atomically on the server: no other command runs between its read
//! and its write, which is what makes writes event-time monotonic without a race.
//!
//! They are sent as `EVALSHA`; every pipeline that runs one starts with `SCRIPT LOAD` of
//! it (cheap: the server only hashes the text), so a server restarted or flushed between
//! two calls never answers `NOSCRIPT` in the middle of a batch.

/// Write a batch of values, each only when it is newer than the stored one.
///
/// `KEYS[1]` the registry; `KEYS[i + 1]` the entity hash of row `i`; `ARGV[1]` the table
/// field (one table per call); `ARGV[2]` the registry's "TTL-free" field name;
/// `ARGV[2i + 1]` row `i`'s encoded value, whose first 16 bytes are `(generation, event
/// time)` big-endian (see `value.rs`); `ARGV[2i + 2]` its key's expiry in Unix
/// milliseconds for a table with a TTL, `''` without. The entity keys are distinct (the
/// caller sends one row per entity). Returns the number of values written.
///
/// Newer means a greater header, compared byte by byte: a later incarnation of the table
/// (the stored value is left over from a deleted one) or, in the same incarnation, a later
/// event time. An equal header keeps the stored value.
///
/// Expiry only ever grows (`PEXPIREAT … GT` treats a key without expiry as infinite), and
/// a write to a table without TTL removes it, so a key never expires before the value of
/// any of its fields is due to. Removing it (`PERSIST`) is skipped while the registry
/// holds the TTL-free field: no table of the namespace has ever had a TTL, so no entity
/// hash has an expiry. Read here, inside the atomic script, so a TTL table created
/// meanwhile (which removes the field first) is always seen. `PERSIST` was one of three
/// lookups of the key (among millions) per value written; skipping it raised a first
/// materialization from 370 746 to 415 482 values/s (BENCHMARKS.md).
///
/// A row for a field the hash does not hold yet is one `HSETNX` instead of `HGET` then
/// `HSET` (half the key lookups of a first materialization). The script guesses per row:
/// it tries `HSETNX` while the previous row's field was new, and reads first (`HGET`,
/// compare, `HSET`) after one that existed, so a batch of updates pays one extra
/// command, not one per row. Rows of a table with a TTL always read first (their expiry
/// depends on whether the key existed).
///
/// Why many keys per call: the script call itself costs Redis about as much as the work
/// of one row, so one call per row ran at ~0.4× a pipelined `HSET` and a batch of 100 at
/// ~0.7× (BENCHMARKS.md). A single Redis runs the whole batch atomically. Redis Cluster
/// would refuse a script whose keys span slots; a cluster client must group a batch by
/// slot (this crate connects to one Redis).
pub(crate) const WRITE: &str = r"
local field = ARGV[1]
local persist = redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0
local written = 0
local expect_new = true
for i = 2, #KEYS do
  local key = KEYS[i]
  local new = ARGV[2 * i - 1]
  local expire_at = ARGV[2 * i]
  local done = false
  if expect_new and expire_at == '' then
    if redis.call('HSETNX', key, field, new) == 1 then
      if persist then
        redis.call('PERSIST', key)
      end
      written = written + 1
      done = true
    else
      expect_new = false
    end
  end
  if not done then
    local stored = redis.call('HGET', key, field)
    expect_new = not stored
    local newer = true
    if stored and string.len(stored) >= 16 then
      newer = false
      for j = 1, 16 do
        local a, b = string.byte(new, j), string.byte(stored, j)
        if a ~= b then
          newer = a > b
          break
        end
      end
    end
    if newer then
      if expire_at == '' then
        redis.call('HSET', key, field, new)
        if persist then
          redis.call('PERSIST', key)
        end
      else
        local existed = redis.call('EXISTS', key)
        redis.call('HSET', key, field, new)
        if existed == 0 then
          redis.call('PEXPIREAT', key, expire_at)
        else
          redis.call('PEXPIREAT', key, expire_at, 'GT')
        end
      end
      written = written + 1
    end
  end
end
return written
";

/// Create a table, or update its TTL and keep its generation (and so its values).
///
/// `KEYS[1]` the registry; `ARGV[1]` the table field; `ARGV[2]` the TTL in microseconds
/// or `-`; `ARGV[3]` the counter field; `ARGV[4]` the TTL-free field. Returns the table's
/// generation.
///
/// The TTL-free field (see [`WRITE`]) is set with the namespace's first table when that
/// has no TTL, and removed for good by any table with one, before that table exists.
/// A namespace whose registry predates the field never has it: its writes keep
/// `PERSIST`.
pub(crate) const CREATE_TABLE: &str = r"
local entry = redis.call('HGET', KEYS[1], ARGV[1])
local generation
if entry then
  generation = string.match(entry, '^(%d+) ')
end
if not generation then
  generation = tostring(redis.call('HINCRBY', KEYS[1], ARGV[3], 1))
  if generation == '1' and ARGV[2] == '-' then
    redis.call('HSET', KEYS[1], ARGV[4], '1')
  end
end
if ARGV[2] ~= '-' then
  redis.call('HDEL', KEYS[1], ARGV[4])
end
redis.call('HSET', KEYS[1], ARGV[1], generation .. ' ' .. ARGV[2])
return generation
";

/// Delete a table: drop its registry entry and leave a tombstone naming the generation
/// whose values the sweep removes.
///
/// `KEYS[1]` the registry; `ARGV[1]` the table field; `ARGV[2]` the tombstone field
/// prefix. Returns 1 when it existed.
pub(crate) const DELETE_TABLE: &str = r"
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
local generation = string.match(entry, '^(%d+) ')
if generation then
  redis.call('HSET', KEYS[1], ARGV[2] .. generation, ARGV[1])
end
return 1
";

/// Remove values of deleted table incarnations from one entity hash.
///
/// `KEYS[1]` the entity hash; `ARGV` pairs of (table field, 8-byte big-endian generation):
/// a field is removed when its stored generation is at most the given one (a re-created
/// table has a greater generation and keeps its values). Redis deletes the key with its
/// last field. Returns the number of fields removed.
pub(crate) const SWEEP: &str = r"
local removed = 0
for i = 1, #ARGV, 2 do
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if stored then
    local gen = ARGV[i + 1]
    local stale = true
    for j = 1, 8 do
      local a, b = string.byte(stored, j), string.byte(gen, j)
      if a == nil then
        break
      end
      if a ~= b then
        stale = a < b
        break
      end
    end
    if stale then
      redis.call('HDEL', KEYS[1], ARGV[i])
      removed = removed + 1
    end
  end
end
return removed
";
