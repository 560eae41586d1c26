package cofidis_test

import (
	"encoding"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// The interfaces that make JSON and text decoding canonicalise.
var (
	_ encoding.TextMarshaler   = cofidis.Status("")
	_ encoding.TextUnmarshaler = (*cofidis.Status)(nil)
	_ encoding.TextMarshaler   = cofidis.SubState("")
	_ encoding.TextUnmarshaler = (*cofidis.SubState)(nil)
)

func TestParseStatus(t *testing.T) {
	t.Parallel()

	t.Run("returns every canonical spelling unchanged", func(t *testing.T) {
		t.Parallel()
		for _, s := range cofidis.Statuses() {
			assert.Equal(t, s, cofidis.ParseStatus(string(s)), "%q", s)
		}
	})

	t.Run("maps every capitalisation of a known status to its constant", func(t *testing.T) {
		t.Parallel()
		for _, s := range cofidis.Statuses() {
			raw := string(s)
			for _, v := range []string{strings.ToUpper(raw), strings.ToLower(raw), swapCase(raw)} {
				assert.Equal(t, s, cofidis.ParseStatus(v), "%q", v)
			}
		}
	})

	// Spellings seen on the documentation's pages, and a few likely ones.
	variants := []struct {
		raw  string
		want cofidis.Status
	}{
		{"Refused", cofidis.StatusRefused},
		{"refused", cofidis.StatusRefused},
		{"REFUSED", cofidis.StatusRefused},
		{"To_confirm", cofidis.StatusToConfirm},
		{"TO_CONFIRM", cofidis.StatusToConfirm},
		{"to_confirm", cofidis.StatusToConfirm},
		{"Validated", cofidis.StatusValidated},
		{"aborted", cofidis.StatusAborted},
		{"refunded", cofidis.StatusRefunded},
		{"Pending", cofidis.StatusPending},
		{"PENDING", cofidis.StatusPending},
		{"initialized", cofidis.StatusInitialized},
		{"INITIALIZED_TO_RETRY", cofidis.StatusInitializedToRetry},
		{"undefined", cofidis.StatusUndefined},
		{"error", cofidis.StatusError},
		{"Authorized", cofidis.StatusAuthorized},
		{"canceled", cofidis.StatusCanceled},
		{"Confirm_Refused", cofidis.StatusConfirmRefused},
		{"Confirm_Failed", cofidis.StatusConfirmFailed},
		{"Confirm_To_Retry", cofidis.StatusConfirmToRetry},
		{"VALIDATE_FAILED", cofidis.StatusValidateFailed},
		{"Validate_to_retry", cofidis.StatusValidateToRetry},
		{"Cancel_Failed", cofidis.StatusCancelFailed},
		{"CANCEL_TO_RETRY", cofidis.StatusCancelToRetry},
		{"Refund_failed", cofidis.StatusRefundFailed},
		{"refund_TO_retry", cofidis.StatusRefundToRetry},
		{"abandonned", cofidis.StatusAbandonned},
		{"ABANDONNED", cofidis.StatusAbandonned},
	}
	for _, tc := range variants {
		t.Run("maps "+tc.raw+" to "+string(tc.want), func(t *testing.T) {
			t.Parallel()
			got := cofidis.ParseStatus(tc.raw)
			assert.Equal(t, tc.want, got)
			assert.True(t, got.Known())
		})
	}

	unknown := []struct {
		name string
		raw  string
	}{
		{"an undocumented status", "approved"},
		{"the empty string", ""},
		{"a leading space", " pending"},
		{"a trailing space", "pending "},
		{"a trailing newline", "Refused\n"},
		{"a trailing NUL", "pending\x00"},
		{"a byte order mark", "\ufeffpending"},
		{"a non-ASCII letter", "refusé"},
		{"a long s folding onto s", "Refu\u017fed"},
		{"a Kelvin sign folding onto k", "\u212a"},
		{"invalid UTF-8", "pend\xffing"},
		{"a space instead of an underscore", "to confirm"},
		{"a hyphen instead of an underscore", "to-confirm"},
		{"a prefix of a status", "confirm_refuse"},
		{"a status with a suffix", "validateds"},
		{"the English spelling of Abandonned", "Abandoned"},
		{"the British spelling of Canceled", "Cancelled"},
	}
	for _, tc := range unknown {
		t.Run("keeps "+tc.name+" verbatim and unknown", func(t *testing.T) {
			t.Parallel()
			got := cofidis.ParseStatus(tc.raw)
			assert.Equal(t, cofidis.Status(tc.raw), got)
			assert.Equal(t, tc.raw, got.String())
			assert.False(t, got.Known())
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()

	t.Run("String returns the stored value", func(t *testing.T) {
		t.Parallel()
		assert.Equal(t, "to_confirm", cofidis.StatusToConfirm.String())
		assert.Equal(t, "Whatever Comes", cofidis.Status("Whatever Comes").String())
		assert.Empty(t, cofidis.Status("").String())
	})

	t.Run("methods recognise only canonical spellings, like ==", func(t *testing.T) {
		t.Parallel()
		raw := cofidis.Status("REFUSED")
		assert.False(t, raw.Known())
		assert.False(t, raw.IsFailed())
		assert.Zero(t, raw.Rank())
		assert.True(t, cofidis.ParseStatus(string(raw)).IsFailed())
	})
}

func TestStatuses(t *testing.T) {
	t.Parallel()

	t.Run("lists every documented status once, canonical and known", func(t *testing.T) {
		t.Parallel()
		all := cofidis.Statuses()
		require.Len(t, all, 22)
		seen := map[string]bool{}
		for _, s := range all {
			folded := strings.ToLower(string(s))
			assert.False(t, seen[folded], "%q listed twice (ignoring case)", s)
			seen[folded] = true
			assert.True(t, s.Known(), "%q", s)
		}
	})

	t.Run("lists statuses in the order of the flow", func(t *testing.T) {
		t.Parallel()
		all := cofidis.Statuses()
		for i := 1; i < len(all); i++ {
			assert.LessOrEqual(t, all[i-1].Rank(), all[i].Rank(), "%q before %q", all[i-1], all[i])
		}
	})

	t.Run("returns a new slice on each call", func(t *testing.T) {
		t.Parallel()
		first := cofidis.Statuses()
		first[0] = "mutated"
		assert.Equal(t, cofidis.StatusInitialized, cofidis.Statuses()[0])
		assert.Equal(t, cofidis.StatusInitialized, cofidis.ParseStatus("Initialized"))
	})
}

// classification is the expected answer of every predicate for one status.
type classification struct {
	running, accepted, authorized, financed, reversed, failed, retry, support bool

	final bool
	api   string
	rank  int
}

func (c classification) classes() int {
	n := 0
	for _, b := range []bool{c.running, c.accepted, c.authorized, c.financed, c.reversed, c.failed, c.retry, c.support} {
		if b {
			n++
		}
	}
	return n
}

func classify(s cofidis.Status) classification {
	return classification{
		running: s.IsRunning(), accepted: s.IsAccepted(), authorized: s.IsAuthorized(),
		financed: s.IsFinanced(), reversed: s.IsReversed(), failed: s.IsFailed(),
		retry: s.NeedsRetry(), support: s.NeedsSupport(),
		final: s.IsFinal(), api: string(s.API()), rank: s.Rank(),
	}
}

// expectedClassification mirrors the status table of the fact sheet.
var expectedClassification = map[cofidis.Status]classification{
	cofidis.StatusInitialized:        {running: true, rank: 1},
	cofidis.StatusInitializedToRetry: {retry: true, api: "initialize", rank: 1},
	cofidis.StatusUndefined:          {running: true, rank: 2},
	cofidis.StatusPending:            {running: true, rank: 3},
	cofidis.StatusToConfirm:          {accepted: true, final: true, rank: 4},
	cofidis.StatusRefused:            {failed: true, final: true, rank: 4},
	cofidis.StatusAborted:            {failed: true, final: true, rank: 4},
	cofidis.StatusError:              {failed: true, final: true, rank: 4},
	cofidis.StatusAbandonned:         {failed: true, final: true, rank: 4},
	cofidis.StatusConfirmRefused:     {failed: true, final: true, rank: 5},
	cofidis.StatusConfirmFailed:      {support: true, api: "confirm", rank: 5},
	cofidis.StatusConfirmToRetry:     {retry: true, api: "confirm", rank: 5},
	cofidis.StatusAuthorized:         {authorized: true, rank: 5},
	cofidis.StatusValidateFailed:     {support: true, api: "validate", rank: 6},
	cofidis.StatusValidateToRetry:    {retry: true, api: "validate", rank: 6},
	cofidis.StatusValidated:          {financed: true, final: true, rank: 6},
	cofidis.StatusCancelFailed:       {support: true, api: "cancel", rank: 7},
	cofidis.StatusCancelToRetry:      {retry: true, api: "cancel", rank: 7},
	cofidis.StatusRefundFailed:       {support: true, api: "refund", rank: 7},
	cofidis.StatusRefundToRetry:      {retry: true, api: "refund", rank: 7},
	cofidis.StatusRefunded:           {reversed: true, final: true, rank: 7},
	cofidis.StatusCanceled:           {reversed: true, final: true, rank: 7},
}

func TestStatusClassification(t *testing.T) {
	t.Parallel()

	t.Run("covers every known status", func(t *testing.T) {
		t.Parallel()
		all := cofidis.Statuses()
		assert.Len(t, expectedClassification, len(all))
		for _, s := range all {
			assert.Contains(t, expectedClassification, s)
		}
	})

	for s, want := range expectedClassification {
		t.Run(string(s)+" is classified as the fact sheet says", func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, want, classify(s))
			assert.Equal(t, 1, want.classes(), "exactly one class per status")
		})
	}

	for _, raw := range []string{"", "approved", " pending", "REFUSED", "refund", "_failed", "to_retry"} {
		t.Run("unknown "+strconv.Quote(raw)+" answers false, no API and rank 0", func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, classification{}, classify(cofidis.Status(raw)))
		})
	}

	t.Run("every _failed status needs support and names its call", func(t *testing.T) {
		t.Parallel()
		for _, s := range cofidis.Statuses() {
			if strings.HasSuffix(string(s), "_failed") {
				assert.True(t, s.NeedsSupport(), "%q", s)
				assert.Equal(t, strings.TrimSuffix(string(s), "_failed"), string(s.API()))
			}
		}
	})

	t.Run("every _to_retry status needs a retry and names its call", func(t *testing.T) {
		t.Parallel()
		for _, s := range cofidis.Statuses() {
			if strings.HasSuffix(strings.ToLower(string(s)), "_to_retry") {
				assert.True(t, s.NeedsRetry(), "%q", s)
				assert.NotEmpty(t, s.API(), "%q", s)
				assert.True(t, strings.HasPrefix(strings.ToLower(string(s)), string(s.API())), "%q", s)
			}
		}
	})
}

func TestStatusRank(t *testing.T) {
	t.Parallel()

	t.Run("ranks the happy paths in flow order", func(t *testing.T) {
		t.Parallel()
		paths := [][]cofidis.Status{
			{cofidis.StatusInitialized, cofidis.StatusUndefined, cofidis.StatusPending, cofidis.StatusToConfirm,
				cofidis.StatusAuthorized, cofidis.StatusValidated, cofidis.StatusRefunded},
			{cofidis.StatusInitialized, cofidis.StatusUndefined, cofidis.StatusToConfirm, cofidis.StatusValidated},
			{cofidis.StatusUndefined, cofidis.StatusPending, cofidis.StatusRefused},
			{cofidis.StatusToConfirm, cofidis.StatusAuthorized, cofidis.StatusCanceled},
		}
		for _, path := range paths {
			for i := 1; i < len(path); i++ {
				assert.Less(t, path[i-1].Rank(), path[i].Rank(), "%q before %q", path[i-1], path[i])
			}
		}
	})

	t.Run("gives alternatives the same rank", func(t *testing.T) {
		t.Parallel()
		groups := [][]cofidis.Status{
			{cofidis.StatusInitialized, cofidis.StatusInitializedToRetry},
			{cofidis.StatusToConfirm, cofidis.StatusRefused, cofidis.StatusAborted, cofidis.StatusError, cofidis.StatusAbandonned},
			{cofidis.StatusAuthorized, cofidis.StatusConfirmRefused, cofidis.StatusConfirmFailed, cofidis.StatusConfirmToRetry},
			{cofidis.StatusValidated, cofidis.StatusValidateFailed, cofidis.StatusValidateToRetry},
			{cofidis.StatusRefunded, cofidis.StatusCanceled, cofidis.StatusRefundFailed, cofidis.StatusRefundToRetry,
				cofidis.StatusCancelFailed, cofidis.StatusCancelToRetry},
		}
		for _, g := range groups {
			for _, s := range g[1:] {
				assert.Equal(t, g[0].Rank(), s.Rank(), "%q and %q", g[0], s)
			}
		}
	})

	t.Run("ranks every journey outcome above pending", func(t *testing.T) {
		t.Parallel()
		for _, s := range cofidis.Statuses() {
			if s.IsFinal() || s.IsAuthorized() {
				assert.Greater(t, s.Rank(), cofidis.StatusPending.Rank(), "%q", s)
			}
		}
	})

	t.Run("ranks known statuses from 1 and unknown ones 0", func(t *testing.T) {
		t.Parallel()
		for _, s := range cofidis.Statuses() {
			assert.GreaterOrEqual(t, s.Rank(), 1, "%q", s)
		}
		assert.Zero(t, cofidis.Status("approved").Rank())
		assert.Zero(t, cofidis.Status("").Rank())
	})
}

func TestStatusEncoding(t *testing.T) {
	t.Parallel()

	type payload struct {
		Status   cofidis.Status   `json:"transactionStatus"`
		SubState cofidis.SubState `json:"subState,omitempty"`
	}

	t.Run("decodes JSON to the canonical constant", func(t *testing.T) {
		t.Parallel()
		var p payload
		require.NoError(t, json.Unmarshal([]byte(`{"transactionStatus":"TO_CONFIRM","subState":"Signed"}`), &p))
		assert.Equal(t, cofidis.StatusToConfirm, p.Status)
		assert.Equal(t, cofidis.SubStateSigned, p.SubState)
	})

	t.Run("decodes unknown JSON values verbatim", func(t *testing.T) {
		t.Parallel()
		var p payload
		require.NoError(t, json.Unmarshal([]byte(`{"transactionStatus":" Approved\u0000","subState":"ready"}`), &p))
		assert.Equal(t, cofidis.Status(" Approved\x00"), p.Status)
		assert.Equal(t, cofidis.SubState("ready"), p.SubState)
	})

	t.Run("encodes JSON as the plain string", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(payload{Status: cofidis.StatusToConfirm, SubState: cofidis.SubStateSigned})
		require.NoError(t, err)
		assert.JSONEq(t, `{"transactionStatus":"to_confirm","subState":"signed"}`, string(b))

		b, err = json.Marshal(payload{Status: "new_status"})
		require.NoError(t, err)
		assert.JSONEq(t, `{"transactionStatus":"new_status"}`, string(b))
	})

	t.Run("round-trips every status through JSON", func(t *testing.T) {
		t.Parallel()
		for _, s := range append(cofidis.Statuses(), "approved", "", "refusé") {
			b, err := json.Marshal(s)
			require.NoError(t, err)
			var got cofidis.Status
			require.NoError(t, json.Unmarshal(b, &got))
			assert.Equal(t, s, got)
		}
	})

	t.Run("canonicalises JSON map keys", func(t *testing.T) {
		t.Parallel()
		var m map[cofidis.Status]int
		require.NoError(t, json.Unmarshal([]byte(`{"REFUSED":1,"approved":2}`), &m))
		assert.Equal(t, map[cofidis.Status]int{cofidis.StatusRefused: 1, "approved": 2}, m)
	})

	t.Run("leaves the value alone on JSON null", func(t *testing.T) {
		t.Parallel()
		p := payload{Status: cofidis.StatusPending}
		require.NoError(t, json.Unmarshal([]byte(`{"transactionStatus":null}`), &p))
		assert.Equal(t, cofidis.StatusPending, p.Status)
	})

	t.Run("rejects a JSON number as before", func(t *testing.T) {
		t.Parallel()
		var p payload
		assert.Error(t, json.Unmarshal([]byte(`{"transactionStatus":3}`), &p))
	})

	t.Run("round-trips text", func(t *testing.T) {
		t.Parallel()
		for _, s := range append(cofidis.Statuses(), "approved") {
			text, err := s.MarshalText()
			require.NoError(t, err)
			var got cofidis.Status
			require.NoError(t, got.UnmarshalText(text))
			assert.Equal(t, s, got)
		}
		var got cofidis.Status
		require.NoError(t, got.UnmarshalText([]byte("Validated")))
		assert.Equal(t, cofidis.StatusValidated, got)

		var sub cofidis.SubState
		require.NoError(t, sub.UnmarshalText([]byte("SIGNED")))
		assert.Equal(t, cofidis.SubStateSigned, sub)
		text, err := sub.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, "signed", string(text))
	})
}

func TestParseSubState(t *testing.T) {
	t.Parallel()

	for _, raw := range []string{"signed", "Signed", "SIGNED", "sIgNeD"} {
		t.Run("maps "+raw+" to signed", func(t *testing.T) {
			t.Parallel()
			got := cofidis.ParseSubState(raw)
			assert.Equal(t, cofidis.SubStateSigned, got)
			assert.True(t, got.Known())
			assert.Equal(t, "signed", got.String())
		})
	}

	for _, raw := range []string{"", "scoring", " signed", "signed\x00", "signé", "\u017figned", "pending"} {
		t.Run("keeps "+strconv.Quote(raw)+" verbatim and unknown", func(t *testing.T) {
			t.Parallel()
			got := cofidis.ParseSubState(raw)
			assert.Equal(t, cofidis.SubState(raw), got)
			assert.Equal(t, raw, got.String())
			assert.False(t, got.Known())
		})
	}

	t.Run("recognises only the canonical spelling on a converted value", func(t *testing.T) {
		t.Parallel()
		assert.False(t, cofidis.SubState("SIGNED").Known())
	})
}

func BenchmarkParseStatus(b *testing.B) {
	cases := []struct{ name, raw string }{
		{"canonical", "to_confirm"},
		{"other case", "TO_CONFIRM"},
		{"last in table", "Canceled"},
		{"unknown", "approved"},
		{"empty", ""},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cofidis.ParseStatus(bc.raw)
			}
		})
	}
}

// swapCase inverts the case of every ASCII letter, giving spellings such as
// "iNITIALIZED_TO_RETRY" that no page prints.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
}

func TestLabels_areBounded(t *testing.T) {
	t.Parallel()
	labels := map[string]bool{}
	for _, s := range cofidis.Statuses() {
		assert.Equal(t, string(s), s.Label())
		labels[s.Label()] = true
	}
	for i := range 1000 {
		s := cofidis.ParseStatus(fmt.Sprintf("brand_new_%d", i))
		labels[s.Label()] = true
		assert.Equal(t, cofidis.StatusLabelUnknown, s.Label())
	}
	assert.Len(t, labels, len(cofidis.Statuses())+1, "every known status, and one value for all the others")
	assert.Equal(t, "to_confirm", cofidis.ParseStatus("TO_CONFIRM").Label())
	assert.Equal(t, cofidis.StatusLabelUnknown, cofidis.Status("").Label())
	assert.Equal(t, "signed", cofidis.SubStateSigned.Label())
	assert.Equal(t, "", cofidis.SubState("").Label())
	assert.Equal(t, cofidis.StatusLabelUnknown, cofidis.SubState("under_review").Label())
}
