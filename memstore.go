package cofidis

import (
	"container/heap"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"hash/maphash"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// MemoryStoreOptions configures NewMemoryStore. The zero value gives the
// defaults.
type MemoryStoreOptions struct {
	// TTL is how long a transaction's record (its actions and furthest
	// status) is kept after its last Claim or Complete; DefaultRetention
	// when zero or negative.
	TTL time.Duration
	// Clock returns the current time; time.Now when nil. For tests.
	Clock func() time.Time
}

// MemoryStore is a Store held in the process's memory: the store for a
// receiver that runs as a single process. It is also a Tracker, for
// WithReconciliation; tracked transactions are kept until untracked, not
// for the TTL. Several replicas need a shared store (see the redisstore
// and pgstore modules), since each MemoryStore only knows its own
// deliveries. It is safe for concurrent use.
//
// Memory stays bounded: a transaction's record expires TTL after its last
// write, and expired records are swept every TTL/8, so the store holds at
// most the transactions of the last 9/8 TTL, about 135 bytes each for a
// transaction of up to three actions (BENCHMARKS.md). The records hold no
// pointers, so the garbage collector does not scan them.
type MemoryStore struct {
	mu        sync.Mutex
	ttl       time.Duration
	now       func() time.Time
	seed      maphash.Seed           // for the actions' and tokens' hashes
	tokens    *mrand.ChaCha8         // the claims' tokens, seeded by crypto/rand
	drawn     string                 // tokens drawn and not handed out yet
	index     map[memKey]uint32      // a transaction's slot in recs
	recs      memSlab                // the transactions' records
	more      map[memKey][]memAction // actions beyond the memInline first ones
	nextSweep time.Time
	tracked   map[string]*memTracked // Tracker: by transaction
	due       dueHeap                // Tracker: tracked, earliest due first
}

// memKey is the key of a transaction's record: the first 128 bits of the
// SHA-256 digest of its identity. Records hold no pointers, keys included,
// so that the garbage collector never scans the map, however large; a
// collision between two identities, which would merge their records, is
// as unlikely as finding a SHA-256 collision on 128 bits.
type memKey [16]byte

// memInline is how many actions a record holds in place: a to_confirm
// notification and its redirect, or a pending one and its final decision.
// A transaction with more actions keeps the rest in MemoryStore.more.
const memInline = 3

// memTxn is what a MemoryStore records about one transaction, kept small
// and free of pointers because a busy receiver holds a week of them.
type memTxn struct {
	expires  int64  // UnixNano
	furthest uint8  // 1 + the furthest status's row in statusTable; 0 for none
	n        uint32 // actions recorded, in place and in MemoryStore.more
	inline   [memInline]memAction
}

// memAction is one action of a transaction: held under a lease, or done.
// Actions and tokens are kept as keyed 64-bit hashes: a store compares
// them, never returns them, and two actions of one transaction are told
// apart unless their hashes collide (a chance of 2⁻⁶⁴ per pair).
type memAction struct {
	action uint64
	token  uint64
	until  int64 // UnixNano end of the lease while held; memDone once done
}

// memDone is memAction.until of a completed action.
const memDone = -1

var (
	_ Store   = (*MemoryStore)(nil)
	_ Tracker = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	s := &MemoryStore{
		ttl: opts.TTL, now: opts.Clock, seed: maphash.MakeSeed(),
		tokens: newTokenSource(),
		index:  map[memKey]uint32{}, more: map[memKey][]memAction{},
		tracked: map[string]*memTracked{},
	}
	if s.ttl <= 0 {
		s.ttl = DefaultRetention
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// inMemory marks the Router's stores that answer from memory, under a
// mutex: bounding their calls with a timer would only cost.
func (*MemoryStore) inMemory() {}

// Len returns the number of transactions the store holds, including
// expired ones not swept yet: a gauge of its memory use.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index)
}

// Claim implements Store.
func (s *MemoryStore) Claim(ctx context.Context, key ActionKey, lease time.Duration) (ClaimResult, error) {
	if err := ctx.Err(); err != nil {
		return ClaimResult{}, err
	}
	k, action := txnKey(key.Transaction), s.hash(key.Action)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	t := s.txn(k, now, true)
	i, res := s.state(k, t, action, now.UnixNano())
	if res.State != Unclaimed {
		return res, nil
	}
	token := s.token()
	a := memAction{action: action, token: s.hash(token), until: now.Add(lease).UnixNano()}
	if i < 0 {
		s.add(k, t, a)
	} else {
		*s.at(k, t, i) = a
	}
	t.expires = now.Add(s.ttl).UnixNano()
	res.State, res.Token = Claimed, token
	return res, nil
}

// Complete implements Store.
func (s *MemoryStore) Complete(ctx context.Context, key ActionKey, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, action, h := txnKey(key.Transaction), s.hash(key.Action), s.hash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t := s.txn(k, now, true)
	if i := s.find(k, t, action); i < 0 {
		s.add(k, t, memAction{action: action, token: h, until: memDone})
	} else if a := s.at(k, t, i); a.token != h {
		return ErrLeaseLost
	} else {
		a.until = memDone
	}
	if key.Rank > t.furthestInfo().rank {
		if row := statusRow(key.Status); row >= 0 {
			t.furthest = uint8(row + 1) //nolint:gosec // the table has fewer than 255 rows
		}
	}
	t.expires = now.Add(s.ttl).UnixNano()
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, key ActionKey, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, action, h := txnKey(key.Transaction), s.hash(key.Action), s.hash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txn(k, s.now(), false)
	if t == nil {
		return nil
	}
	i := s.find(k, t, action)
	if i < 0 {
		return nil
	}
	if a := s.at(k, t, i); a.until == memDone || a.token != h {
		return ErrLeaseLost
	}
	s.remove(k, t, i)
	return nil
}

// Peek implements Store.
func (s *MemoryStore) Peek(ctx context.Context, key ActionKey) (ClaimResult, error) {
	if err := ctx.Err(); err != nil {
		return ClaimResult{}, err
	}
	k, action := txnKey(key.Transaction), s.hash(key.Action)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t := s.txn(k, now, false)
	if t == nil {
		return ClaimResult{State: Unclaimed}, nil
	}
	_, res := s.state(k, t, action, now.UnixNano())
	return res, nil
}

// tokenAlphabet is the alphabet of the claims' tokens, as crypto/rand.Text's.
const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// newTokenSource returns a ChaCha8 seeded with 256 bits from crypto/rand.
func newTokenSource() *mrand.ChaCha8 {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // never fails (it crashes the program instead)
	return mrand.NewChaCha8(seed)
}

// tokenLen is the length of a claim token: 26 base32 characters, 130 bits.
const tokenLen = 26

// tokenBatch is how many tokens the store draws at once, into one string
// that the tokens it hands out are slices of: one allocation per batch. A
// token kept after its claim keeps its batch (1.6 kB) in memory.
const tokenBatch = 64

// token returns a new claim token: 26 characters of the base32 alphabet,
// 130 bits from the store's ChaCha8, a cryptographically strong generator
// seeded by crypto/rand (the format of crypto/rand.Text, without a system
// call per claim). The caller holds s.mu.
func (s *MemoryStore) token() string {
	if s.drawn == "" {
		var b [tokenLen * tokenBatch]byte
		_, _ = s.tokens.Read(b[:]) // never fails
		for i, c := range b {
			b[i] = tokenAlphabet[c%32]
		}
		s.drawn = string(b[:])
	}
	t := s.drawn[:tokenLen]
	s.drawn = s.drawn[tokenLen:]
	return t
}

// txnKey returns the key of a transaction's record.
func txnKey(id string) memKey {
	var buf [128]byte // most identities: hashed without an allocation
	b := buf[:0]
	if len(id) <= len(buf) {
		b = append(b, id...)
	} else {
		b = []byte(id)
	}
	d := sha256.Sum256(b)
	return memKey(d[:16])
}

// hash is the hash under which an action or a token is kept.
func (s *MemoryStore) hash(v string) uint64 {
	return maphash.String(s.seed, v)
}

// at returns the i-th action of t, whose key is k. The caller holds s.mu.
func (s *MemoryStore) at(k memKey, t *memTxn, i int) *memAction {
	if i < memInline {
		return &t.inline[i]
	}
	return &s.more[k][i-memInline]
}

// find returns the index of the action hashed as action in t, or -1. The
// caller holds s.mu.
func (s *MemoryStore) find(k memKey, t *memTxn, action uint64) int {
	for i := range int(t.n) {
		if s.at(k, t, i).action == action {
			return i
		}
	}
	return -1
}

// add appends an action to t. The caller holds s.mu.
func (s *MemoryStore) add(k memKey, t *memTxn, a memAction) {
	if t.n < memInline {
		t.inline[t.n] = a
	} else {
		s.more[k] = append(s.more[k], a)
	}
	t.n++
}

// remove drops the i-th action of t, moving the last one in its place.
// The caller holds s.mu.
func (s *MemoryStore) remove(k memKey, t *memTxn, i int) {
	last := int(t.n) - 1
	*s.at(k, t, i) = *s.at(k, t, last)
	t.n--
	if last >= memInline {
		if more := s.more[k][:last-memInline]; len(more) > 0 {
			s.more[k] = more
		} else {
			delete(s.more, k)
		}
	} else {
		t.inline[last] = memAction{}
	}
}

// drop deletes the record of t, whose key is k and slot i. The caller
// holds s.mu.
func (s *MemoryStore) drop(k memKey, i uint32, t *memTxn) {
	delete(s.index, k)
	if t.n > memInline {
		delete(s.more, k)
	}
	s.recs.free(i)
}

// furthestInfo returns the row of the furthest status, or a zero row
// (no status, rank 0) when none is recorded.
func (t *memTxn) furthestInfo() statusInfo {
	if t.furthest == 0 {
		return statusInfo{}
	}
	return statusTable[t.furthest-1]
}

// state reports what is recorded for an action (Unclaimed, InProgress or
// Done) and the transaction's furthest status, as Peek answers, with the
// action's index (-1 when it has no record). Claim takes the action when
// it is Unclaimed. The caller holds s.mu.
func (s *MemoryStore) state(k memKey, t *memTxn, action uint64, now int64) (int, ClaimResult) {
	res := ClaimResult{State: Unclaimed, Furthest: t.furthestInfo().status}
	i := s.find(k, t, action)
	if i >= 0 {
		a := s.at(k, t, i)
		if a.until == memDone {
			res.State = Done
		} else if left := a.until - now; left > 0 {
			res.State, res.RetryAfter = InProgress, time.Duration(left)
		}
	}
	return i, res
}

// txn returns the live record of a transaction, to change in place, or
// nil when there is none; an expired record is dropped and counts as
// none. With create, a missing record is made, empty. The caller holds
// s.mu.
func (s *MemoryStore) txn(k memKey, now time.Time, create bool) *memTxn {
	if i, ok := s.index[k]; ok {
		t := s.recs.at(i)
		if now.UnixNano() < t.expires {
			return t
		}
		s.drop(k, i, t)
	}
	if !create {
		return nil
	}
	i, t := s.recs.alloc()
	s.index[k] = i
	return t
}

// sweep drops expired records every TTL/8: the cost of a pass over the map
// is spread over the writes of that period, which bounds the memory to the
// transactions of the last 9/8 TTL. The caller holds s.mu.
func (s *MemoryStore) sweep(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	n := now.UnixNano()
	for k, i := range s.index {
		if t := s.recs.at(i); n >= t.expires {
			s.drop(k, i, t)
		}
	}
	s.nextSweep = now.Add(s.ttl / 8)
}

// memChunk is how many records a chunk of a memSlab holds.
const memChunk = 1024

// memSlab holds a MemoryStore's records in chunks that never move, so that
// the index map holds only slot numbers: small slots keep the map's probes
// in cache, and the map's growth never copies records. Chunks hold no
// pointers. Like a map, a slab keeps the memory of its busiest time: the
// slots of dropped records are reused, never given back.
type memSlab struct {
	chunks []*[memChunk]memTxn
	freed  []uint32 // slots of dropped records, reused first
	used   uint32   // slots handed out from the chunks, freed ones included
}

// at returns the record in slot i.
func (sl *memSlab) at(i uint32) *memTxn {
	return &sl.chunks[i/memChunk][i%memChunk]
}

// alloc returns an empty slot and its record.
func (sl *memSlab) alloc() (uint32, *memTxn) {
	if n := len(sl.freed); n > 0 {
		i := sl.freed[n-1]
		sl.freed = sl.freed[:n-1]
		return i, sl.at(i)
	}
	if sl.used%memChunk == 0 {
		sl.chunks = append(sl.chunks, new([memChunk]memTxn))
	}
	i := sl.used
	sl.used++
	return i, sl.at(i)
}

// free empties slot i for reuse.
func (sl *memSlab) free(i uint32) {
	*sl.at(i) = memTxn{}
	sl.freed = append(sl.freed, i)
}

// memTracked is a tracked transaction in a MemoryStore.
type memTracked struct {
	t     Tracked   // Token is the holder's, empty when not taken
	due   time.Time // when it is next returned by TakeDue
	index int       // in the due heap
}

// Track implements Tracker.
func (s *MemoryStore) Track(ctx context.Context, t Tracked) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := t.Key.ID().String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tracked[id]; ok {
		return nil
	}
	t.Token = ""
	e := &memTracked{t: t, due: t.Due}
	s.tracked[id] = e
	heap.Push(&s.due, e)
	return nil
}

// TakeDue implements Tracker.
func (s *MemoryStore) TakeDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Tracked, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Tracked
	for len(out) < limit && len(s.due) > 0 && !s.due[0].due.After(now) {
		e := s.due[0]
		e.t.Token = s.token()
		out = append(out, e.t)
		e.due = now.Add(lease) // taken over after the lease
		heap.Fix(&s.due, 0)
	}
	return out, nil
}

// Reschedule implements Tracker.
func (s *MemoryStore) Reschedule(ctx context.Context, t Tracked) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.holder(t)
	if e == nil {
		return ErrLeaseLost
	}
	e.t.Due, e.t.Attempts, e.t.Token = t.Due, t.Attempts, ""
	e.due = t.Due
	heap.Fix(&s.due, e.index)
	return nil
}

// Untrack implements Tracker.
func (s *MemoryStore) Untrack(ctx context.Context, t Tracked) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.holder(t)
	if e == nil {
		return ErrLeaseLost
	}
	delete(s.tracked, t.Key.ID().String())
	heap.Remove(&s.due, e.index)
	return nil
}

// holder returns the tracked entry t.Token holds, or nil. The caller holds
// s.mu.
func (s *MemoryStore) holder(t Tracked) *memTracked {
	e := s.tracked[t.Key.ID().String()]
	if e == nil || t.Token == "" || e.t.Token != t.Token {
		return nil
	}
	return e
}

// dueHeap orders tracked transactions by due time (container/heap).
type dueHeap []*memTracked

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *dueHeap) Push(x any) {
	e := x.(*memTracked) //nolint:forcetypeassert // only memTracked is pushed
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
