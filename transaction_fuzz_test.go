package cofidis

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzParseTransactionKey checks that the hand-written scanner never panics,
// never accepts what encoding/json calls invalid, agrees with encoding/json
// on the values it accepts, and that what it accepts survives a
// json.Marshal round trip.
func FuzzParseTransactionKey(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "transactionkey", "*.json"))
	require.NoError(f, err)
	for _, path := range files {
		b, err := os.ReadFile(path)
		require.NoError(f, err)
		f.Add(string(b))
	}
	for _, tt := range parseErrorCases {
		f.Add(tt.input)
	}

	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseTransactionKey(s)
		if err != nil {
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, http.StatusBadRequest, e.HTTPStatus)
			require.True(t, errors.Is(err, ErrInvalidTransactionKey) || errors.Is(err, ErrInvalidField), err)
			require.Equal(t, TransactionKey{}, key)
			return
		}
		require.True(t, json.Valid([]byte(s)), "accepted invalid JSON")

		for _, v := range []string{key.MerchantCountry, key.ProviderID, key.ProviderTransactionID.Value, key.MerchantID, key.MerchantTransactionID, key.MerchantTransactionDate} {
			require.True(t, utf8.ValidString(v), "invalid UTF-8 got through")
			require.False(t, strings.ContainsFunc(v, unicode.IsControl), "a control character got through")
		}
		if !key.ProviderTransactionID.Valid {
			require.Empty(t, key.ProviderTransactionID.Value)
		}

		// encoding/json, which folds case the same way, reads the same values.
		var plain struct {
			MerchantCountry         string  `json:"merchantCountry"`
			ProviderID              string  `json:"providerId"`
			ProviderTransactionID   *string `json:"providerTransactionId"`
			MerchantID              string  `json:"merchantId"`
			MerchantTransactionID   string  `json:"merchantTransactionId"`
			MerchantTransactionDate string  `json:"merchantTransactionDate"`
		}
		require.NoError(t, json.Unmarshal([]byte(s), &plain))
		require.Equal(t, plain.MerchantCountry, key.MerchantCountry)
		require.Equal(t, plain.ProviderID, key.ProviderID)
		require.Equal(t, plain.MerchantID, key.MerchantID)
		require.Equal(t, plain.MerchantTransactionID, key.MerchantTransactionID)
		require.Equal(t, plain.MerchantTransactionDate, key.MerchantTransactionDate)
		if plain.ProviderTransactionID != nil {
			require.Equal(t, NullStringOf(*plain.ProviderTransactionID), key.ProviderTransactionID)
		} else {
			require.False(t, key.ProviderTransactionID.Valid)
		}

		out, err := json.Marshal(key)
		require.NoError(t, err)
		again, err := ParseTransactionKey(string(out))
		require.NoError(t, err, "Marshal output must parse back")
		require.Equal(t, key, again)

		var viaUnmarshal TransactionKey
		require.NoError(t, json.Unmarshal([]byte(s), &viaUnmarshal))
		require.Equal(t, key, viaUnmarshal)

		id, err := ParseTransactionID(key.ID().String())
		require.NoError(t, err)
		require.Equal(t, key.ID(), id)

		_ = key.Validate() // must not panic on anything the parser accepts
	})
}

// FuzzTransactionID checks that String is injective by checking that
// ParseTransactionID inverts it, and that ParseTransactionID accepts only
// canonical strings.
func FuzzTransactionID(f *testing.F) {
	f.Add("020280098", "2YgKoUd4DB", "20260227", "020280098/2YgKoUd4DB/20260227")
	f.Add("a/b", "%2F", " é", "a%2Fb/%252F/%20%C3%A9")
	f.Add("", "", "", "%41/%2f/")
	f.Fuzz(func(t *testing.T, merchantID, transactionID, date, s string) {
		id := TransactionID{merchantID, transactionID, date}
		got, err := ParseTransactionID(id.String())
		require.NoError(t, err)
		require.Equal(t, id, got)

		if parsed, err := ParseTransactionID(s); err == nil {
			require.Equal(t, s, parsed.String(), "only canonical strings are accepted")
		}
	})
}
