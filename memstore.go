package cofidis

import (
	"container/heap"
	"context"
	"crypto/rand"
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
// for the TTL. Several replicas need a shared
// store (see the redisstore module), since each MemoryStore only knows its
// own deliveries. It is safe for concurrent use.
//
// Memory stays bounded: a transaction's record expires TTL after its last
// write, and expired records are swept every TTL/8, so the store holds at
// most the transactions of the last 9/8 TTL.
type MemoryStore struct {
	mu        sync.Mutex
	ttl       time.Duration
	now       func() time.Time
	txns      map[string]*memTxn
	nextSweep time.Time
	tracked   map[string]*memTracked // Tracker: by transaction
	due       dueHeap                // Tracker: tracked, earliest due first
}

// memTxn is what a MemoryStore records about one transaction.
type memTxn struct {
	expires  time.Time
	furthest Status
	rank     int
	actions  map[string]*memAction
}

// memAction is one action of a transaction: held under a lease, or done.
type memAction struct {
	token string
	until time.Time // end of the lease while held
	done  bool
}

var (
	_ Store   = (*MemoryStore)(nil)
	_ Tracker = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryStoreOptions) *MemoryStore {
	s := &MemoryStore{ttl: opts.TTL, now: opts.Clock, txns: map[string]*memTxn{}, tracked: map[string]*memTracked{}}
	if s.ttl <= 0 {
		s.ttl = DefaultRetention
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

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
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	t := s.txn(key.Transaction, now, true)
	res := t.state(key.Action, now)
	if res.State != Unclaimed {
		return res, nil
	}
	res.State, res.Token = Claimed, rand.Text()
	t.actions[key.Action] = &memAction{token: res.Token, until: now.Add(lease)}
	t.expires = now.Add(s.ttl)
	return res, nil
}

// Complete implements Store.
func (s *MemoryStore) Complete(ctx context.Context, key ActionKey, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t := s.txn(key.Transaction, now, true)
	a := t.actions[key.Action]
	switch {
	case a == nil:
		a = &memAction{token: token}
		t.actions[key.Action] = a
	case a.token != token:
		return ErrLeaseLost
	}
	a.done, a.until = true, time.Time{}
	if key.Rank > t.rank {
		t.rank, t.furthest = key.Rank, key.Status
	}
	t.expires = now.Add(s.ttl)
	return nil
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, key ActionKey, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txn(key.Transaction, s.now(), false)
	if t == nil {
		return nil
	}
	a := t.actions[key.Action]
	switch {
	case a == nil:
		return nil
	case a.done || a.token != token:
		return ErrLeaseLost
	}
	delete(t.actions, key.Action)
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
	t := s.txn(key.Transaction, now, false)
	if t == nil {
		return ClaimResult{State: Unclaimed}, nil
	}
	return t.state(key.Action, now), nil
}

// state reports what is recorded for an action (Unclaimed, InProgress or
// Done) and the transaction's furthest status, as Peek answers; Claim takes
// the action when it is Unclaimed. The caller holds s.mu.
func (t *memTxn) state(action string, now time.Time) ClaimResult {
	res := ClaimResult{State: Unclaimed, Furthest: t.furthest}
	if a := t.actions[action]; a != nil {
		if a.done {
			res.State = Done
		} else if left := a.until.Sub(now); left > 0 {
			res.State, res.RetryAfter = InProgress, left
		}
	}
	return res
}

// txn returns the live record of a transaction, creating it if create is
// set; an expired record counts as absent. The caller holds s.mu.
func (s *MemoryStore) txn(id string, now time.Time, create bool) *memTxn {
	t := s.txns[id]
	if t != nil && !now.Before(t.expires) {
		delete(s.txns, id)
		t = nil
	}
	if t == nil && create {
		t = &memTxn{expires: now.Add(s.ttl), actions: map[string]*memAction{}}
		s.txns[id] = t
	}
	return t
}

// sweep drops expired records every TTL/8: the cost of a pass over the map
// is spread over the writes of that period, which bounds the memory to the
// transactions of the last 9/8 TTL. The caller holds s.mu.
func (s *MemoryStore) sweep(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	for id, t := range s.txns {
		if !now.Before(t.expires) {
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
