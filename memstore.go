package cofidis

import (
	"container/heap"
	"context"
	"crypto/rand"
	"hash/maphash"
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
// most the transactions of the last 9/8 TTL, about 150 bytes each for a
// transaction with one action (BENCHMARKS.md).
type MemoryStore struct {
	mu        sync.Mutex
	ttl       time.Duration
	now       func() time.Time
	seed      maphash.Seed // for the tokens' hashes
	txns      map[string]memTxn
	nextSweep time.Time
	tracked   map[string]*memTracked // Tracker: by transaction
	due       dueHeap                // Tracker: tracked, earliest due first
}

// memTxn is what a MemoryStore records about one transaction: a value in
// the map, kept small because a busy receiver holds a week of them.
type memTxn struct {
	actions  []memAction
	expires  int64 // UnixNano
	furthest uint8 // 1 + the furthest status's row in statusTable; 0 for none
}

// memAction is one action of a transaction: held under a lease, or done.
type memAction struct {
	action string
	token  uint64 // the holder's token, hashed: a store compares tokens, never returns them
	until  int64  // UnixNano end of the lease while held
	done   bool
}

var (
	_ Store   = (*MemoryStore)(nil)
	_ Tracker = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	s := &MemoryStore{
		ttl: opts.TTL, now: opts.Clock, seed: maphash.MakeSeed(),
		txns: map[string]memTxn{}, tracked: map[string]*memTracked{},
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
	return len(s.txns)
}

// Claim implements Store.
func (s *MemoryStore) Claim(ctx context.Context, key ActionKey, lease time.Duration) (ClaimResult, error) {
	if err := ctx.Err(); err != nil {
		return ClaimResult{}, err
	}
	token := rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	t, _ := s.txn(key.Transaction, now)
	i, res := t.state(key.Action, now.UnixNano())
	if res.State != Unclaimed {
		return res, nil
	}
	a := memAction{action: key.Action, token: s.hash(token), until: now.Add(lease).UnixNano()}
	if i < 0 {
		t.actions = append(t.actions, a)
	} else {
		t.actions[i] = a
	}
	t.expires = now.Add(s.ttl).UnixNano()
	s.txns[key.Transaction] = t
	res.State, res.Token = Claimed, token
	return res, nil
}

// Complete implements Store.
func (s *MemoryStore) Complete(ctx context.Context, key ActionKey, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h := s.hash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t, _ := s.txn(key.Transaction, now)
	i := t.find(key.Action)
	switch {
	case i < 0:
		t.actions = append(t.actions, memAction{action: key.Action, token: h, done: true})
	case t.actions[i].token != h:
		return ErrLeaseLost
	default:
		t.actions[i].done, t.actions[i].until = true, 0
	}
	if row := statusRow(key.Status); key.Rank > 0 && row >= 0 && key.Rank > t.furthestInfo().rank {
		t.furthest = uint8(row + 1) //nolint:gosec // the table has fewer than 255 rows
	}
	t.expires = now.Add(s.ttl).UnixNano()
	s.txns[key.Transaction] = t
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, key ActionKey, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h := s.hash(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.txn(key.Transaction, s.now())
	if !ok {
		return nil
	}
	i := t.find(key.Action)
	switch {
	case i < 0:
		return nil
	case t.actions[i].done || t.actions[i].token != h:
		return ErrLeaseLost
	}
	t.actions = append(t.actions[:i], t.actions[i+1:]...)
	s.txns[key.Transaction] = t
	return nil
}

// Peek implements Store.
func (s *MemoryStore) Peek(ctx context.Context, key ActionKey) (ClaimResult, error) {
	if err := ctx.Err(); err != nil {
		return ClaimResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t, ok := s.txn(key.Transaction, now)
	if !ok {
		return ClaimResult{State: Unclaimed}, nil
	}
	_, res := t.state(key.Action, now.UnixNano())
	return res, nil
}

// hash is the hash under which a token is kept.
func (s *MemoryStore) hash(token string) uint64 {
	return maphash.String(s.seed, token)
}

// find returns the index of action in t.actions, or -1.
func (t *memTxn) find(action string) int {
	for i := range t.actions {
		if t.actions[i].action == action {
			return i
		}
	}
	return -1
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
// it is Unclaimed.
func (t *memTxn) state(action string, now int64) (int, ClaimResult) {
	res := ClaimResult{State: Unclaimed, Furthest: t.furthestInfo().status}
	i := t.find(action)
	if i >= 0 {
		a := t.actions[i]
		if a.done {
			res.State = Done
		} else if left := a.until - now; left > 0 {
			res.State, res.RetryAfter = InProgress, time.Duration(left)
		}
	}
	return i, res
}

// txn returns the live record of a transaction (a copy: store it back
// after changing it), and whether it exists; an expired record is dropped
// and counts as absent. The caller holds s.mu.
func (s *MemoryStore) txn(id string, now time.Time) (memTxn, bool) {
	t, ok := s.txns[id]
	if ok && now.UnixNano() >= t.expires {
		delete(s.txns, id)
		return memTxn{}, false
	}
	return t, ok
}

// sweep drops expired records every TTL/8: the cost of a pass over the map
// is spread over the writes of that period, which bounds the memory to the
// transactions of the last 9/8 TTL. The caller holds s.mu.
func (s *MemoryStore) sweep(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	n := now.UnixNano()
	for id, t := range s.txns {
		if n >= t.expires {
			delete(s.txns, id)
		}
	}
	s.nextSweep = now.Add(s.ttl / 8)
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
		e.t.Token = rand.Text()
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
