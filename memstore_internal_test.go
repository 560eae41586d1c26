package cofidis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryStore_slotsAreReusedEmpty: records dropped at the TTL give
// their slots to new transactions, which start with nothing of the old
// records (actions, furthest status, actions kept beyond the record), and
// the slab does not grow while the number of live transactions is flat.
func TestMemoryStore_slotsAreReusedEmpty(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 2, 27, 12, 0, 0, 0, time.UTC)
	s := NewMemoryStore(MemoryStoreOptions{TTL: time.Hour, Clock: func() time.Time { return now }})
	ctx := context.Background()
	actions := []ActionKey{
		{Action: "pending", Status: StatusPending, Rank: StatusPending.Rank()},
		{Action: "pending/signed", Status: StatusPending, Rank: StatusPending.Rank()},
		{Action: "pending/doc_ok", Status: StatusPending, Rank: StatusPending.Rank()},
		{Action: "to_confirm", Status: StatusToConfirm, Rank: StatusToConfirm.Rank()},
		{Action: "validated", Status: StatusValidated, Rank: StatusValidated.Rank()},
	}
	const perGeneration = 3 * memChunk / 2 // chunks partly filled
	var slots uint32
	for gen := range 4 {
		for i := range perGeneration {
			txn := "m/" + strconv.Itoa(gen) + "-" + strconv.Itoa(i) + "/d"
			for j, a := range actions {
				a.Transaction = txn
				res, err := s.Claim(ctx, a, time.Minute)
				require.NoError(t, err)
				require.Equal(t, Claimed, res.State, "generation %d, transaction %d, action %d", gen, i, j)
				if j == 0 {
					require.Empty(t, res.Furthest, "a new transaction has no furthest status")
				}
				require.NoError(t, s.Complete(ctx, a, res.Token))
			}
		}
		require.Equal(t, perGeneration, s.Len())
		if gen == 0 {
			slots = s.recs.used
		}
		assert.Equal(t, slots, s.recs.used, "generation %d: the slab reuses the dropped records' slots", gen)
		assert.Len(t, s.more, perGeneration, "generation %d: one list of further actions per transaction", gen)
		now = now.Add(time.Hour + time.Minute) // the next Claim sweeps this generation
	}
}
