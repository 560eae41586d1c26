package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cofidis-go/cofidis"
)

// trackerTag is the hash tag of the due list's two keys: a Redis Cluster
// keeps them in one slot, as the scripts, which touch both, require.
const trackerTag = "{tracker}"

// trackedRecord is a tracked transaction's record in the tracked hash, as
// JSON. The scripts rewrite its first two members in place, without
// decoding the rest: keep them first, and in this order.
type trackedRecord struct {
	Attempts int                    `json:"attempts"`
	Token    string                 `json:"token"` // the holder's (TakeDue); empty when not taken
	Since    int64                  `json:"since"` // Unix milliseconds
	Key      cofidis.TransactionKey `json:"key"`
}

// recordHead is the Lua pattern of a record's first two members, as
// trackedRecord encodes them: captures the attempts, the token and the
// rest of the record.
const recordHead = `'^{"attempts":(%-?%d+),"token":"([^"]*)(",.*)$'`

// trackScript: KEYS due, tracked; ARGV id, due ms, record. A transaction
// already tracked is left as it is.
var trackScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 1 then
	redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
return 1
`)

// takeDueScript: KEYS due, tracked; ARGV now ms, limit, lease end ms, token
// base. It takes up to limit transactions scored at now or before, earliest
// first, gives each the token "<base>.<rank in the take>" and the lease end
// as score, and returns {id, score before, record, …}. It checks every record
// before it writes any: a record missing or not as the store writes it
// fails the call and changes nothing.
var takeDueScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local taken = {}
for i = 1, #due, 2 do
	local id = due[i]
	local rec = redis.call('HGET', KEYS[2], id)
	local attempts, token, tail
	if rec then
		attempts, token, tail = string.match(rec, ` + recordHead + `)
	end
	if not attempts then
		return redis.error_reply('redisstore: tracked transaction ' .. id .. ' has no record in ' .. KEYS[2] ..
			', or not one the store wrote: repair it or remove it from both ' .. KEYS[1] .. ' and ' .. KEYS[2])
	end
	taken[#taken + 1] = {id, due[i + 1], attempts, tail}
end
local out = {}
for n, t in ipairs(taken) do
	local rec = '{"attempts":' .. t[3] .. ',"token":"' .. ARGV[4] .. '.' .. n .. t[4]
	redis.call('HSET', KEYS[2], t[1], rec)
	redis.call('ZADD', KEYS[1], ARGV[3], t[1])
	out[#out + 1] = t[1]
	out[#out + 1] = t[2]
	out[#out + 1] = rec
end
return out
`)

// holderCheck starts the scripts that change a taken transaction: KEYS
// due, tracked; ARGV id, token, …. It returns 0 unless the token holds the
// transaction, and leaves its record's rest (after the token) in tail.
const holderCheck = `
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if not rec then
	return 0
end
local attempts, token, tail = string.match(rec, ` + recordHead + `)
if not attempts then
	return redis.error_reply('redisstore: tracked transaction ' .. ARGV[1] .. ': its record in ' .. KEYS[2] ..
		' is not one the store wrote: repair it or remove it from both ' .. KEYS[1] .. ' and ' .. KEYS[2])
end
if token ~= ARGV[2] then -- holderWrite never sends an empty token
	return 0
end
`

// rescheduleScript: KEYS due, tracked; ARGV id, token, due ms, attempts.
// Returns 1, or 0 when the token does not hold the transaction.
var rescheduleScript = redis.NewScript(holderCheck + `
redis.call('HSET', KEYS[2], ARGV[1], '{"attempts":' .. ARGV[4] .. ',"token":"' .. tail)
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`)

// untrackScript: KEYS due, tracked; ARGV id, token. Returns 1, or 0 when
// the token does not hold the transaction.
var untrackScript = redis.NewScript(holderCheck + `
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// The Tracker's times are Unix milliseconds (time.Time.UnixMilli: finer
// digits truncated, toward the past before 1970 too), read back in UTC.
func fromUnixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Track implements cofidis.Tracker: it records t, due at t.Due, unless its
// transaction is already tracked. t.Token is ignored.
func (s *Store) Track(ctx context.Context, t cofidis.Tracked) error {
	rec, err := json.Marshal(trackedRecord{Attempts: t.Attempts, Since: t.Since.UnixMilli(), Key: t.Key})
	if err != nil {
		return fmt.Errorf("redisstore: track %s: %w", t.Key, err)
	}
	if err := trackScript.Run(ctx, s.rdb, s.trackerKeys, t.Key.ID().String(), t.Due.UnixMilli(), rec).Err(); err != nil {
		return fmt.Errorf("redisstore: track %s: %w", t.Key, err)
	}
	return nil
}

// TakeDue implements cofidis.Tracker. now and lease are the caller's: a
// transaction taken is due again at now+lease (at least a millisecond
// later), by the caller's clock.
func (s *Store) TakeDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]cofidis.Tracked, error) {
	if limit <= 0 {
		return nil, nil
	}
	nowMS := now.UnixMilli()
	end := max(now.Add(lease).UnixMilli(), nowMS+1)
	v, err := takeDueScript.Run(ctx, s.rdb, s.trackerKeys, nowMS, limit, end, rand.Text()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: take due transactions: %w", err)
	}
	if len(v)%3 != 0 {
		return nil, fmt.Errorf("%w: take due transactions: %d values", errReply, len(v))
	}
	out := make([]cofidis.Tracked, 0, len(v)/3)
	for i := 0; i < len(v); i += 3 {
		t, err := parseTracked(v[i+1], v[i+2])
		if err != nil {
			return nil, fmt.Errorf("redisstore: take due transactions: tracked transaction %s: %w", v[i], err)
		}
		out = append(out, t)
	}
	return out, nil
}

// parseTracked decodes a transaction TakeDue took: its score before the
// take, and its record.
func parseTracked(score, record string) (cofidis.Tracked, error) {
	// Redis writes a whole score as an integer; a float parses both.
	due, err := strconv.ParseFloat(score, 64)
	if err != nil {
		return cofidis.Tracked{}, fmt.Errorf("%w: score %q", errReply, score)
	}
	// The key is what Track wrote: it fails to parse (TransactionKey's
	// UnmarshalJSON) only if the record was edited by hand, which is worth
	// stopping for.
	var rec trackedRecord
	if err := json.Unmarshal([]byte(record), &rec); err != nil {
		return cofidis.Tracked{}, fmt.Errorf("%w: record %q: %w", errReply, record, err)
	}
	return cofidis.Tracked{
		Key:      rec.Key,
		Since:    fromUnixMilli(rec.Since),
		Due:      fromUnixMilli(int64(due)),
		Attempts: rec.Attempts,
		Token:    rec.Token,
	}, nil
}

// Reschedule implements cofidis.Tracker.
func (s *Store) Reschedule(ctx context.Context, t cofidis.Tracked) error {
	return s.holderWrite(ctx, "reschedule", rescheduleScript, t, t.Due.UnixMilli(), t.Attempts)
}

// Untrack implements cofidis.Tracker.
func (s *Store) Untrack(ctx context.Context, t cofidis.Tracked) error {
	return s.holderWrite(ctx, "untrack", untrackScript, t)
}

// holderWrite runs script, which changes t's transaction if t.Token still
// holds it, with the transaction's id, the token and args;
// cofidis.ErrLeaseLost when it changed nothing.
func (s *Store) holderWrite(ctx context.Context, op string, script *redis.Script, t cofidis.Tracked, args ...any) error {
	if t.Token == "" { // the empty token holds nothing: skip the round trip
		return cofidis.ErrLeaseLost
	}
	ok, err := script.Run(ctx, s.rdb, s.trackerKeys, append([]any{t.Key.ID().String(), t.Token}, args...)...).Int()
	if err != nil {
		return fmt.Errorf("redisstore: %s %s: %w", op, t.Key, err)
	}
	if ok == 0 {
		return cofidis.ErrLeaseLost
	}
	return nil
}
