package cofidis_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cofidis-go/cofidis"
	"github.com/stretchr/testify/require"
)

// FuzzNullStringUnmarshalJSON checks NullString's own JSON decoder, which a
// merchant reaches when decoding stored keys: it never panics, accepts only
// valid JSON strings and null (as strictly as ParseTransactionKey: no control
// characters, no lone surrogates), reads what encoding/json reads, and
// survives a Marshal round trip.
func FuzzNullStringUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`null`, `""`, `"PSP-7781"`, ` "x" `, `"caf\u00e9 \ud83d\ude00"`, `"\ud800"`, `"\u0000"`, "\"\x7f\"",
		`nul`, `"x`, `"x" y`, `0`, `[]`, `{}`, `true`, "\"\xff\"", `"\/\b"`, "",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var n cofidis.NullString
		err := n.UnmarshalJSON(data)
		if err != nil {
			require.Equal(t, cofidis.NullString{}, n, "a failed decode must leave the value alone")
			return
		}
		require.True(t, json.Valid(data), "accepted invalid JSON %q", data)
		require.True(t, n.Present)
		var plain *string
		require.NoError(t, json.Unmarshal(data, &plain))
		if plain == nil {
			require.Equal(t, cofidis.NullValue(), n)
		} else {
			require.Equal(t, cofidis.NullStringOf(*plain), n)
			require.True(t, utf8.ValidString(n.Value))
			require.False(t, strings.ContainsFunc(n.Value, unicode.IsControl), "a control character got through")
		}

		out, err := json.Marshal(n)
		require.NoError(t, err)
		var again cofidis.NullString
		require.NoError(t, again.UnmarshalJSON(out))
		require.Equal(t, n, again)
	})
}
