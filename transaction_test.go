package cofidis

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the host's zone database
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docKey is the key of the documentation's example.
var docKey = TransactionKey{
	MerchantCountry:         "fr",
	ProviderID:              "providrid",
	ProviderTransactionID:   NullValue(),
	MerchantID:              "020280098",
	MerchantTransactionID:   "2YgKoUd4DB",
	MerchantTransactionDate: "20260227",
}

// withProvider returns docKey with another providerTransactionId.
func withProvider(n NullString) TransactionKey {
	k := docKey
	k.ProviderTransactionID = n
	return k
}

// goldenKeys maps each file of testdata/transactionkey to the key it holds.
var goldenKeys = map[string]TransactionKey{
	"doc-example.json":                    docKey,
	"compact.json":                        docKey,
	"reordered-crlf.json":                 docKey,
	"unknown-members.json":                docKey,
	"case-folded-names.json":              docKey,
	"provider-transaction-id-absent.json": withProvider(NullString{}),
	"provider-transaction-id-empty.json":  withProvider(NullStringOf("")),
	"provider-transaction-id-value.json":  withProvider(NullStringOf("PSP-7781")),
	"escapes.json": func() TransactionKey {
		k := withProvider(NullStringOf("tx \"42\" \\ café 😀"))
		k.ProviderID = "provider/eu"
		return k
	}(),
}

func readGolden(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "transactionkey", name))
	require.NoError(t, err)
	return string(b)
}

func TestParseTransactionKey_golden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "transactionkey", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := goldenKeys[name]
			require.True(t, ok, "every golden input needs an expected key in goldenKeys")
			got, err := ParseTransactionKey(readGolden(t, name))
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.NoError(t, got.Validate())
		})
	}
}

func TestParseTransactionKey_docExampleIsTheDocumentationsText(t *testing.T) {
	t.Parallel()
	// Multi-line, one member per line, no indentation: as printed.
	want := "{\n" +
		"\"merchantCountry\": \"fr\",\n" +
		"\"providerId\": \"providrid\",\n" +
		"\"providerTransactionId\": null,\n" +
		"\"merchantId\": \"020280098\",\n" +
		"\"merchantTransactionId\": \"2YgKoUd4DB\",\n" +
		"\"merchantTransactionDate\": \"20260227\"\n" +
		"}\n"
	assert.Equal(t, want, readGolden(t, "doc-example.json"))
}

func TestParseTransactionKey_accepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  TransactionKey
	}{
		{"an empty object, leaving every member to Validate", `{}`, TransactionKey{}},
		{"whitespace around the object", " \t\r\n{}\n\t ", TransactionKey{}},
		{"whitespace everywhere between tokens", "{ \"merchantId\" \n:\r\n \"020280098\" \t}", TransactionKey{MerchantID: "020280098"}},
		{"an escaped member name", `{"merchant\u0049d":"1"}`, TransactionKey{MerchantID: "1"}},
		{"\\u00e9 as é", `{"merchantId":"caf\u00e9"}`, TransactionKey{MerchantID: "café"}},
		{"a surrogate pair as one rune", `{"merchantId":"\uD83D\uDE00"}`, TransactionKey{MerchantID: "😀"}},
		{"an escaped solidus", `{"merchantTransactionId":"a\/b"}`, TransactionKey{MerchantTransactionID: "a/b"}},
		{"raw non-ASCII UTF-8", `{"merchantId":"zürich"}`, TransactionKey{MerchantID: "zürich"}},
		{"an unknown member named like a known one with a suffix", `{"merchantIdX":1,"merchantId":"1"}`, TransactionKey{MerchantID: "1"}},
		{"an unknown member with a lone surrogate (not decoded)", `{"x":"\ud800","merchantId":"1"}`, TransactionKey{MerchantID: "1"}},
		{"an unknown member with an escaped control character", `{"x":"\u0000\n","merchantId":"1"}`, TransactionKey{MerchantID: "1"}},
		{"an unknown member 31 levels deep (32 with the key)", `{"x":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`, TransactionKey{}},
		{"numbers of every shape in unknown members", `{"a":[0,-0,1.5,-2e10,3E+2,4e-2,0.0]}`, TransactionKey{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTransactionKey(tt.input)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseTransactionKey_providerTransactionIDStates(t *testing.T) {
	t.Parallel()
	base := `"merchantId":"020280098"`
	tests := []struct {
		name     string
		member   string
		want     NullString
		wantJSON string
	}{
		{"absent stays absent", ``, NullString{}, `{"merchantCountry":"","providerId":"","merchantId":"020280098","merchantTransactionId":"","merchantTransactionDate":""}`},
		{"null stays null", `"providerTransactionId":null,`, NullString{Present: true}, `{"merchantCountry":"","providerId":"","providerTransactionId":null,"merchantId":"020280098","merchantTransactionId":"","merchantTransactionDate":""}`},
		{"empty string stays an empty string", `"providerTransactionId":"",`, NullString{Present: true, Valid: true}, `{"merchantCountry":"","providerId":"","providerTransactionId":"","merchantId":"020280098","merchantTransactionId":"","merchantTransactionDate":""}`},
		{"a value stays that value", `"providerTransactionId":"null",`, NullString{Value: "null", Valid: true, Present: true}, `{"merchantCountry":"","providerId":"","providerTransactionId":"null","merchantId":"020280098","merchantTransactionId":"","merchantTransactionDate":""}`},
	}
	seen := map[NullString]string{}
	for _, tt := range tests {
		require.NotContains(t, seen, tt.want, "states must be distinct")
		seen[tt.want] = tt.name
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := ParseTransactionKey("{" + tt.member + base + "}")
			require.NoError(t, err)
			assert.Equal(t, tt.want, key.ProviderTransactionID)

			out, err := json.Marshal(key)
			require.NoError(t, err)
			assert.JSONEq(t, tt.wantJSON, string(out))
			assert.Equal(t, tt.wantJSON, string(out), "documented member order")

			again, err := ParseTransactionKey(string(out))
			require.NoError(t, err)
			assert.Equal(t, key, again)

			var viaJSON TransactionKey
			require.NoError(t, json.Unmarshal(out, &viaJSON))
			assert.Equal(t, key, viaJSON)
		})
	}
}

// parseErrorCases are inputs ParseTransactionKey must reject; the fuzz test
// uses them as seeds too.
var parseErrorCases = []struct {
	name     string
	input    string
	sentinel error
	field    string // "" means "transactionKey"
	reason   string // a substring of the reason
}{
	// Not JSON, or not one object.
	{"empty input", ``, ErrInvalidTransactionKey, "", "empty input"},
	{"whitespace only", " \r\n\t", ErrInvalidTransactionKey, "", "empty input"},
	{"a top-level array", `["S3CR3T"]`, ErrInvalidTransactionKey, "", "want a JSON object, got an array"},
	{"a top-level null", `null`, ErrInvalidTransactionKey, "", "got null"},
	{"a top-level number", ` 20280098 `, ErrInvalidTransactionKey, "", "got a number"},
	{"a top-level string", `"S3CR3T"`, ErrInvalidTransactionKey, "", "got a string"},
	{"a top-level boolean", `true`, ErrInvalidTransactionKey, "", "got a boolean"},
	{"a top-level value that is not JSON", `S3CR3T`, ErrInvalidTransactionKey, "", "invalid JSON"},
	{"a byte order mark", "\ufeff{}", ErrInvalidTransactionKey, "", "invalid JSON"},
	{"a truncated object", `{"merchantId":"020280098"`, ErrInvalidTransactionKey, "", "unexpected end of input"},
	{"a truncated string", `{"merchantId":"02028`, ErrInvalidTransactionKey, "", "unexpected end of input"},
	{"a truncated literal", `{"providerTransactionId":nu`, ErrInvalidTransactionKey, "", "unexpected end of input"},
	{"a truncated escape", `{"merchantId":"\u00`, ErrInvalidTransactionKey, "", "invalid JSON"},
	{"an unquoted member name", `{merchantId:"1"}`, ErrInvalidTransactionKey, "", "want a member name"},
	{"a single-quoted string", `{"merchantId":'1'}`, ErrInvalidTransactionKey, "", "want a JSON value"},
	{"a missing colon", `{"merchantId" "1"}`, ErrInvalidTransactionKey, "", "want ':'"},
	{"a missing comma", `{"merchantId":"1" "providerId":"2"}`, ErrInvalidTransactionKey, "", "want ',' or '}'"},
	{"a trailing comma", `{"merchantId":"1",}`, ErrInvalidTransactionKey, "", "want a member name"},
	{"a leading comma", `{,"merchantId":"1"}`, ErrInvalidTransactionKey, "", "want a member name"},
	{"trailing garbage after the object", `{"merchantId":"1"} x`, ErrInvalidTransactionKey, "", "trailing data"},
	{"a second object", `{"merchantId":"1"}{}`, ErrInvalidTransactionKey, "", "trailing data"},
	{"trailing data after a non-object", `[] x`, ErrInvalidTransactionKey, "", "trailing data"},
	{"a NUL byte after the object", "{}\x00", ErrInvalidTransactionKey, "", "trailing data"},
	{"non-JSON whitespace (form feed)", "\f{}", ErrInvalidTransactionKey, "", "invalid JSON"},
	{"merchantId as the number 020280098 (leading zero)", `{"merchantId":020280098}`, ErrInvalidTransactionKey, "", "invalid JSON"},
	{"a number with a plus sign", `{"x":+1}`, ErrInvalidTransactionKey, "", "want a JSON value"},
	{"a number with a bare fraction", `{"x":1.}`, ErrInvalidTransactionKey, "", "invalid number"},
	{"a number with a bare exponent", `{"x":1e}`, ErrInvalidTransactionKey, "", "invalid number"},
	{"a lone minus", `{"x":-}`, ErrInvalidTransactionKey, "", "invalid number"},
	{"a misspelt literal", `{"x":nul}`, ErrInvalidTransactionKey, "", "invalid literal"},
	{"a capitalized literal", `{"providerTransactionId":Null}`, ErrInvalidTransactionKey, "", "want a JSON value"},
	{"an unclosed array in an unknown member", `{"x":[1,2}`, ErrInvalidTransactionKey, "", "closing bracket"},
	{"an invalid escape", `{"merchantId":"S3CR3T\x"}`, ErrInvalidTransactionKey, "", "invalid escape"},
	{"a \\u escape with a non-hex digit", `{"merchantId":"\u12G4"}`, ErrInvalidTransactionKey, "", "invalid escape"},
	{"a \\U escape", `{"merchantId":"\U0041"}`, ErrInvalidTransactionKey, "", "invalid escape"},
	{"a raw newline in a string", "{\"merchantId\":\"S3CR3T\n\"}", ErrInvalidTransactionKey, "", "control character"},
	{"a raw tab in a member name", "{\"merchant\tId\":\"1\"}", ErrInvalidTransactionKey, "", "control character"},
	{"an unknown member nested 32 levels deep (33 with the key)", `{"x":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, ErrInvalidTransactionKey, "", "32 levels"},
	{"a deeply nested unknown member", `{"x":` + strings.Repeat(`{"a":`, 100000), ErrInvalidTransactionKey, "", "32 levels"},
	{"a deeply nested top-level array", strings.Repeat("[", 100000), ErrInvalidTransactionKey, "", "32 levels"},
	{"a syntax error after a content error", `{"merchantId":1,`, ErrInvalidTransactionKey, "", "unexpected end of input"},

	// Ambiguous.
	{"a duplicate member", `{"merchantId":"020280098","merchantId":"S3CR3T"}`, ErrInvalidTransactionKey, "transactionKey.merchantId", "duplicate member"},
	{"a duplicate null providerTransactionId", `{"providerTransactionId":null,"providerTransactionId":null}`, ErrInvalidTransactionKey, "transactionKey.providerTransactionId", "duplicate member"},
	{"a duplicate through case folding", `{"merchantTransactionId":"a","merchantTransactionID":"S3CR3T"}`, ErrInvalidTransactionKey, "transactionKey.merchantTransactionId", "duplicate member"},
	{"a duplicate through an escaped name", `{"merchantId":"a","merchant\u0049d":"S3CR3T"}`, ErrInvalidTransactionKey, "transactionKey.merchantId", "duplicate member"},
	{"a duplicate of a wrongly typed member", `{"merchantId":1,"merchantId":"S3CR3T"}`, ErrInvalidField, "transactionKey.merchantId", "got a number"},
	{"a name folding to a known one through U+0130 (İ)", `{"merchantİd":"S3CR3T"}`, ErrInvalidTransactionKey, "transactionKey.merchantId", "non-ASCII"},
	{"a name folding to a known one through U+017F (ſ)", `{"merchantTranſactionId":"S3CR3T"}`, ErrInvalidTransactionKey, "transactionKey.merchantTransactionId", "non-ASCII"},
	{"a member name with invalid UTF-8", "{\"merchant\xffId\":\"S3CR3T\"}", ErrInvalidTransactionKey, "", "member name: want valid UTF-8"},
	{"an unknown member with invalid UTF-8", "{\"note\":\"S3CR3T\xff\"}", ErrInvalidTransactionKey, "", "want valid UTF-8"},

	// A known member of the wrong JSON type.
	{"merchantId as the number 20280098", `{"merchantId":20280098}`, ErrInvalidField, "transactionKey.merchantId", "want a JSON string, got a number"},
	{"merchantCountry as a number", `{"merchantCountry":33}`, ErrInvalidField, "transactionKey.merchantCountry", "want a JSON string, got a number"},
	{"providerId as a boolean", `{"providerId":true}`, ErrInvalidField, "transactionKey.providerId", "want a JSON string, got a boolean"},
	{"merchantTransactionId as an object", `{"merchantTransactionId":{"id":"S3CR3T"}}`, ErrInvalidField, "transactionKey.merchantTransactionId", "want a JSON string, got an object"},
	{"merchantTransactionDate as an array", `{"merchantTransactionDate":["20260227"]}`, ErrInvalidField, "transactionKey.merchantTransactionDate", "want a JSON string, got an array"},
	{"merchantTransactionDate as a number", `{"merchantTransactionDate":20260227}`, ErrInvalidField, "transactionKey.merchantTransactionDate", "want a JSON string, got a number"},
	{"merchantCountry as null", `{"merchantCountry":null}`, ErrInvalidField, "transactionKey.merchantCountry", "want a JSON string, got null"},
	{"providerId as null", `{"providerId":null}`, ErrInvalidField, "transactionKey.providerId", "got null"},
	{"merchantId as null", `{"merchantId":null}`, ErrInvalidField, "transactionKey.merchantId", "got null"},
	{"merchantTransactionId as null", `{"merchantTransactionId":null}`, ErrInvalidField, "transactionKey.merchantTransactionId", "got null"},
	{"merchantTransactionDate as null", `{"merchantTransactionDate":null}`, ErrInvalidField, "transactionKey.merchantTransactionDate", "got null"},
	{"providerTransactionId as a number", `{"providerTransactionId":7781}`, ErrInvalidField, "transactionKey.providerTransactionId", "want a JSON string or null, got a number"},
	{"providerTransactionId as false", `{"providerTransactionId":false}`, ErrInvalidField, "transactionKey.providerTransactionId", "got a boolean"},
	{"a case-folded member of the wrong type", `{"MERCHANTID":20280098}`, ErrInvalidField, "transactionKey.merchantId", "got a number"},
	{"the first of two wrong types", `{"merchantId":1,"providerId":2}`, ErrInvalidField, "transactionKey.merchantId", "got a number"},

	// A known member with unacceptable content.
	{"invalid UTF-8 in merchantId", "{\"merchantId\":\"S3CR3T\xff\"}", ErrInvalidField, "transactionKey.merchantId", "want valid UTF-8"},
	{"an overlong UTF-8 encoding", "{\"merchantId\":\"\xc0\xaf\"}", ErrInvalidField, "transactionKey.merchantId", "want valid UTF-8"},
	{"a UTF-8-encoded surrogate", "{\"merchantId\":\"\xed\xa0\x80\"}", ErrInvalidField, "transactionKey.merchantId", "want valid UTF-8"},
	{"an escaped NUL", `{"merchantId":"S3CR3T\u0000"}`, ErrInvalidField, "transactionKey.merchantId", "control characters"},
	{"an escaped newline", `{"merchantTransactionId":"S3CR3T\n"}`, ErrInvalidField, "transactionKey.merchantTransactionId", "control characters"},
	{"an escaped tab", `{"providerId":"\t"}`, ErrInvalidField, "transactionKey.providerId", "control characters"},
	{"an escaped DEL", `{"merchantId":"\u007f"}`, ErrInvalidField, "transactionKey.merchantId", "control characters"},
	{"a raw DEL", "{\"merchantId\":\"S3CR3T\x7f\"}", ErrInvalidField, "transactionKey.merchantId", "control characters"},
	{"a raw C1 control character", "{\"merchantId\":\"S3CR3T\u0085\"}", ErrInvalidField, "transactionKey.merchantId", "control characters"},
	{"an escaped C1 control character", `{"providerTransactionId":"\u009f"}`, ErrInvalidField, "transactionKey.providerTransactionId", "control characters"},
	{"a lone high surrogate", `{"merchantId":"S3CR3T\ud800"}`, ErrInvalidField, "transactionKey.merchantId", "lone UTF-16 surrogate"},
	{"a lone low surrogate", `{"merchantId":"\udc00S3CR3T"}`, ErrInvalidField, "transactionKey.merchantId", "lone UTF-16 surrogate"},
	{"a high surrogate followed by a non-surrogate escape", `{"merchantId":"\ud800\u0041"}`, ErrInvalidField, "transactionKey.merchantId", "lone UTF-16 surrogate"},
	{"two high surrogates", `{"merchantId":"\ud800\ud800"}`, ErrInvalidField, "transactionKey.merchantId", "lone UTF-16 surrogate"},
	{"swapped surrogates", `{"merchantId":"\ude00\ud83d"}`, ErrInvalidField, "transactionKey.merchantId", "lone UTF-16 surrogate"},
	{"a content error before a duplicate", `{"merchantId":"\u0000","merchantId":"1"}`, ErrInvalidField, "transactionKey.merchantId", "control characters"},
}

func TestParseTransactionKey_rejects(t *testing.T) {
	t.Parallel()
	for _, tt := range parseErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := ParseTransactionKey(tt.input)
			require.Error(t, err)
			assert.Equal(t, TransactionKey{}, key, "no partial key on error")

			assert.ErrorIs(t, err, tt.sentinel)
			var e *Error
			require.ErrorAs(t, err, &e)
			field := tt.field
			if field == "" {
				field = "transactionKey"
			}
			assert.Equal(t, field, e.Field)
			assert.Contains(t, e.Reason, tt.reason)
			assert.Equal(t, http.StatusBadRequest, e.HTTPStatus)
			assert.Equal(t, http.StatusBadRequest, HTTPStatus(err))

			for _, value := range []string{"S3CR3T", "020280098", "20280098", "20260227"} {
				assert.NotContains(t, err.Error(), value, "the message must not echo the input")
			}
		})
	}
}

func TestTransactionKey_UnmarshalJSONIsAsStrictAsParse(t *testing.T) {
	t.Parallel()
	t.Run("decodes the documentation's example", func(t *testing.T) {
		t.Parallel()
		var key TransactionKey
		require.NoError(t, json.Unmarshal([]byte(readGolden(t, "doc-example.json")), &key))
		assert.Equal(t, docKey, key)
	})
	t.Run("rejects a duplicate member that encoding/json would accept", func(t *testing.T) {
		t.Parallel()
		var key TransactionKey
		err := json.Unmarshal([]byte(`{"merchantId":"1","merchantId":"2"}`), &key)
		assert.ErrorIs(t, err, ErrInvalidTransactionKey)
	})
	t.Run("rejects merchantId as a number inside an outer document", func(t *testing.T) {
		t.Parallel()
		var outer struct {
			Key TransactionKey `json:"transactionKey"`
		}
		err := json.Unmarshal([]byte(`{"transactionKey":{"merchantId":20280098}}`), &outer)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "transactionKey.merchantId", e.Field)
	})
	t.Run("rejects null, which an optional *TransactionKey absorbs", func(t *testing.T) {
		t.Parallel()
		var outer struct {
			Key    TransactionKey  `json:"k"`
			MaybeK *TransactionKey `json:"m"`
		}
		assert.ErrorIs(t, json.Unmarshal([]byte(`{"k":null}`), &outer), ErrInvalidTransactionKey)
		require.NoError(t, json.Unmarshal([]byte(`{"m":null}`), &outer))
		assert.Nil(t, outer.MaybeK)
	})
}

func TestParseTransactionKey_isZeroCopyWithoutEscapes(t *testing.T) {
	t.Parallel()
	in := readGolden(t, "doc-example.json")
	key, err := ParseTransactionKey(in)
	require.NoError(t, err)
	start := uintptr(unsafe.Pointer(unsafe.StringData(in)))
	for _, v := range []string{key.MerchantCountry, key.ProviderID, key.MerchantID, key.MerchantTransactionID, key.MerchantTransactionDate} {
		p := uintptr(unsafe.Pointer(unsafe.StringData(v)))
		assert.True(t, p >= start && p < start+uintptr(len(in)), "%q should be a substring of the input", v)
	}
}

func TestParseTransactionKey_doesNotAllocate(t *testing.T) {
	// These inputs have no escapes in the members that are kept (the
	// unknown members' escapes are checked, not decoded).
	for _, name := range []string{"doc-example.json", "compact.json", "reordered-crlf.json", "unknown-members.json", "case-folded-names.json"} {
		in := readGolden(t, name)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseTransactionKey(in); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, name)
	}
}

func TestTransactionKey_Validate(t *testing.T) {
	t.Parallel()
	t.Run("accepts the documentation's example", func(t *testing.T) {
		t.Parallel()
		assert.NoError(t, docKey.Validate())
	})

	valid := []struct {
		name   string
		modify func(*TransactionKey)
	}{
		{"accepts an absent providerTransactionId", func(k *TransactionKey) { k.ProviderTransactionID = NullString{} }},
		{"accepts an empty providerTransactionId", func(k *TransactionKey) { k.ProviderTransactionID = NullStringOf("") }},
		{"accepts an upper-case merchantCountry", func(k *TransactionKey) { k.MerchantCountry = "FR" }},
		{"accepts a leap day in a leap year (20240229)", func(k *TransactionKey) { k.MerchantTransactionDate = "20240229" }},
		{"accepts 31 December", func(k *TransactionKey) { k.MerchantTransactionDate = "20261231" }},
		{"accepts non-ASCII letters in ids", func(k *TransactionKey) { k.MerchantTransactionID = "commande-é" }},
		{"accepts members of MaxKeyMemberBytes", func(k *TransactionKey) {
			k.MerchantTransactionID = strings.Repeat("x", MaxKeyMemberBytes)
			k.ProviderTransactionID = NullStringOf(strings.Repeat("p", MaxKeyMemberBytes))
		}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := docKey
			tt.modify(&k)
			assert.NoError(t, k.Validate())
		})
	}

	invalid := []struct {
		name     string
		modify   func(*TransactionKey)
		sentinel error
		field    string
	}{
		{"requires merchantCountry", func(k *TransactionKey) { k.MerchantCountry = "" }, ErrMissingField, "transactionKey.merchantCountry"},
		{"rejects a merchantTransactionId over MaxKeyMemberBytes", func(k *TransactionKey) {
			k.MerchantTransactionID = strings.Repeat("x", MaxKeyMemberBytes+1)
		}, ErrInvalidField, "transactionKey.merchantTransactionId"},
		{"rejects a providerId over MaxKeyMemberBytes", func(k *TransactionKey) {
			k.ProviderID = strings.Repeat("é", MaxKeyMemberBytes/2+1)
		}, ErrInvalidField, "transactionKey.providerId"},
		{"rejects a providerTransactionId over MaxKeyMemberBytes", func(k *TransactionKey) {
			k.ProviderTransactionID = NullStringOf(strings.Repeat("p", MaxKeyMemberBytes+1))
		}, ErrInvalidField, "transactionKey.providerTransactionId"},
		{"requires providerId", func(k *TransactionKey) { k.ProviderID = "" }, ErrMissingField, "transactionKey.providerId"},
		{"requires merchantId", func(k *TransactionKey) { k.MerchantID = "" }, ErrMissingField, "transactionKey.merchantId"},
		{"requires merchantTransactionId", func(k *TransactionKey) { k.MerchantTransactionID = "" }, ErrMissingField, "transactionKey.merchantTransactionId"},
		{"requires merchantTransactionDate", func(k *TransactionKey) { k.MerchantTransactionDate = "" }, ErrMissingField, "transactionKey.merchantTransactionDate"},
		{"rejects a three-letter merchantCountry", func(k *TransactionKey) { k.MerchantCountry = "fra" }, ErrInvalidField, "transactionKey.merchantCountry"},
		{"rejects a one-letter merchantCountry", func(k *TransactionKey) { k.MerchantCountry = "f" }, ErrInvalidField, "transactionKey.merchantCountry"},
		{"rejects digits in merchantCountry", func(k *TransactionKey) { k.MerchantCountry = "33" }, ErrInvalidField, "transactionKey.merchantCountry"},
		{"rejects non-ASCII letters in merchantCountry", func(k *TransactionKey) { k.MerchantCountry = "fé" }, ErrInvalidField, "transactionKey.merchantCountry"},
		{"rejects 30 February (20260230)", func(k *TransactionKey) { k.MerchantTransactionDate = "20260230" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects 29 February in a common year (20230229)", func(k *TransactionKey) { k.MerchantTransactionDate = "20230229" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects an ISO date with dashes (2026-02-27)", func(k *TransactionKey) { k.MerchantTransactionDate = "2026-02-27" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects seven digits (2026022)", func(k *TransactionKey) { k.MerchantTransactionDate = "2026022" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects nine digits (202602271)", func(k *TransactionKey) { k.MerchantTransactionDate = "202602271" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects all zeros (00000000)", func(k *TransactionKey) { k.MerchantTransactionDate = "00000000" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects month 13 (20261301)", func(k *TransactionKey) { k.MerchantTransactionDate = "20261301" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects day 00 (20260200)", func(k *TransactionKey) { k.MerchantTransactionDate = "20260200" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects letters (2026O227)", func(k *TransactionKey) { k.MerchantTransactionDate = "2026O227" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects a sign (+2026022)", func(k *TransactionKey) { k.MerchantTransactionDate = "+2026022" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects spaces around the date", func(k *TransactionKey) { k.MerchantTransactionDate = " 20260227" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects full-width digits (２０２６０２２７)", func(k *TransactionKey) { k.MerchantTransactionDate = "２０２６０２２７" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects Arabic-Indic digits", func(k *TransactionKey) { k.MerchantTransactionDate = "٢٠٢٦٠٢٢٧" }, ErrInvalidField, "transactionKey.merchantTransactionDate"},
		{"rejects a control character in a hand-built merchantId", func(k *TransactionKey) { k.MerchantID = "0202\n80098" }, ErrInvalidField, "transactionKey.merchantId"},
		{"rejects a C1 control character in providerId", func(k *TransactionKey) { k.ProviderID = "p\u0085" }, ErrInvalidField, "transactionKey.providerId"},
		{"rejects invalid UTF-8 in merchantTransactionId", func(k *TransactionKey) { k.MerchantTransactionID = "id\xff" }, ErrInvalidField, "transactionKey.merchantTransactionId"},
		{"rejects a control character in providerTransactionId", func(k *TransactionKey) { k.ProviderTransactionID = NullStringOf("\x00") }, ErrInvalidField, "transactionKey.providerTransactionId"},
		{"reports the first failure in documented order", func(k *TransactionKey) { k.MerchantTransactionDate, k.ProviderID = "x", "" }, ErrMissingField, "transactionKey.providerId"},
		{"reports an empty key's first member", func(k *TransactionKey) { *k = TransactionKey{} }, ErrMissingField, "transactionKey.merchantCountry"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := docKey
			tt.modify(&k)
			err := k.Validate()
			require.ErrorIs(t, err, tt.sentinel)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.field, e.Field)
			assert.Equal(t, http.StatusBadRequest, e.HTTPStatus)
			assert.NotContains(t, err.Error(), "020280098")
		})
	}
}

func TestTransactionKey_Date(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		date    string
		wantUTC string
		offset  int // seconds east of UTC at that midnight
	}{
		{"a winter day is midnight CET", "20260227", "2026-02-26T23:00:00Z", 3600},
		{"the day clocks go forward is midnight CET", "20260329", "2026-03-28T23:00:00Z", 3600},
		{"the day after clocks go forward is midnight CEST", "20260330", "2026-03-29T22:00:00Z", 7200},
		{"the day clocks go back is midnight CEST", "20261025", "2026-10-24T22:00:00Z", 7200},
		{"the day after clocks go back is midnight CET", "20261026", "2026-10-25T23:00:00Z", 3600},
		{"a leap day", "20240229", "2024-02-28T23:00:00Z", 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := docKey
			k.MerchantTransactionDate = tt.date
			got, err := k.Date()
			require.NoError(t, err)
			assert.Equal(t, tt.wantUTC, got.UTC().Format(time.RFC3339))
			assert.Equal(t, "Europe/Paris", got.Location().String())
			h, m, s := got.Clock()
			assert.Equal(t, [3]int{0, 0, 0}, [3]int{h, m, s}, "midnight")
			_, offset := got.Zone()
			assert.Equal(t, tt.offset, offset)

			back, err := ParisDate(got)
			require.NoError(t, err)
			assert.Equal(t, tt.date, back, "ParisDate inverts Date")
		})
	}

	errs := []struct {
		name     string
		date     string
		sentinel error
	}{
		{"fails on a missing date", "", ErrMissingField},
		{"fails on 30 February", "20260230", ErrInvalidField},
		{"fails on 29 February in a common year", "20230229", ErrInvalidField},
		{"fails on an ISO date", "2026-02-27", ErrInvalidField},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := docKey
			k.MerchantTransactionDate = tt.date
			got, err := k.Date()
			assert.ErrorIs(t, err, tt.sentinel)
			assert.True(t, got.IsZero())
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "transactionKey.merchantTransactionDate", e.Field)
		})
	}
}

func TestParisDate(t *testing.T) {
	t.Parallel()
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"23:30 UTC before the spring change is already the next day in Paris", time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC), "20260329"},
		{"22:59:59 UTC before the spring change is still the same day (CET)", time.Date(2026, 3, 28, 22, 59, 59, 0, time.UTC), "20260328"},
		{"23:00 UTC before the spring change is Paris midnight", time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC), "20260329"},
		{"21:59:59 UTC in summer is the same day (CEST)", time.Date(2026, 7, 14, 21, 59, 59, 0, time.UTC), "20260714"},
		{"22:00 UTC in summer is the next day (CEST)", time.Date(2026, 7, 14, 22, 0, 0, 0, time.UTC), "20260715"},
		{"22:00 UTC before the autumn change is still CEST midnight", time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC), "20261025"},
		{"22:59 UTC on the autumn change day is 23:59 CET", time.Date(2026, 10, 25, 22, 59, 0, 0, time.UTC), "20261025"},
		{"23:00 UTC on the autumn change day is the next day", time.Date(2026, 10, 25, 23, 0, 0, 0, time.UTC), "20261026"},
		{"New Year's Eve 23:00 UTC is New Year's Day in Paris", time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), "20260101"},
		{"the zone of the argument does not matter", time.Date(2026, 3, 28, 19, 30, 0, 0, newYork), "20260329"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParisDate(tt.t)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadParis_missingZoneDatabaseSaysWhatToImport(t *testing.T) {
	t.Parallel()
	cause := errors.New("unknown time zone Europe/Paris")
	loc, err := loadParis(func(string) (*time.Location, error) { return nil, cause })
	assert.Nil(t, loc)
	assert.ErrorIs(t, err, cause)
	assert.Contains(t, err.Error(), `import _ "time/tzdata"`)
}

func TestTransactionID(t *testing.T) {
	t.Parallel()
	t.Run("is the documented triple of the key", func(t *testing.T) {
		t.Parallel()
		assert.Equal(t, TransactionID{"020280098", "2YgKoUd4DB", "20260227"}, docKey.ID())
		assert.Equal(t, "020280098/2YgKoUd4DB/20260227", docKey.ID().String())
		assert.Equal(t, "020280098/2YgKoUd4DB/20260227", docKey.String())
	})
	t.Run("ignores country and provider members", func(t *testing.T) {
		t.Parallel()
		other := docKey
		other.MerchantCountry, other.ProviderID, other.ProviderTransactionID = "it", "other", NullStringOf("x")
		assert.Equal(t, docKey.ID(), other.ID())
	})
	t.Run("keys a map across redirect and notification", func(t *testing.T) {
		t.Parallel()
		seen := map[TransactionID]int{}
		for _, name := range []string{"doc-example.json", "compact.json", "reordered-crlf.json", "provider-transaction-id-value.json"} {
			key, err := ParseTransactionKey(readGolden(t, name))
			require.NoError(t, err)
			seen[key.ID()]++
		}
		assert.Equal(t, map[TransactionID]int{docKey.ID(): 4}, seen)
	})
	t.Run("is injective where a slash sits", func(t *testing.T) {
		t.Parallel()
		ids := []TransactionID{
			{"a/b", "c", "d"},
			{"a", "b/c", "d"},
			{"a", "b", "c/d"},
			{"a/b/c", "", "d"},
			{"", "a/b/c", "d"},
			{"a%2Fb", "c", "d"},
			{"a", "b", "c"},
		}
		strs := map[string]TransactionID{}
		for _, id := range ids {
			s := id.String()
			prev, dup := strs[s]
			assert.False(t, dup, "%+v and %+v both give %q", prev, id, s)
			strs[s] = id
		}
	})

	roundTrip := []struct {
		name string
		id   TransactionID
		want string
	}{
		{"round-trips the documentation's example", docKey.ID(), "020280098/2YgKoUd4DB/20260227"},
		{"round-trips slashes", TransactionID{"a/b", "/", "c/"}, "a%2Fb/%2F/c%2F"},
		{"round-trips percent signs", TransactionID{"100%", "%2F", "%"}, "100%25/%252F/%25"},
		{"round-trips spaces", TransactionID{"a b", " ", "20260227"}, "a%20b/%20/20260227"},
		{"round-trips non-ASCII", TransactionID{"zürich", "commande-é", "😀"}, "z%C3%BCrich/commande-%C3%A9/%F0%9F%98%80"},
		{"round-trips question marks and hashes", TransactionID{"a?b", "#", ";,"}, "a%3Fb/%23/%3B%2C"},
		{"round-trips invalid UTF-8", TransactionID{"\xff", "a", "b"}, "%FF/a/b"},
		{"round-trips an empty ID", TransactionID{}, "//"},
	}
	for _, tt := range roundTrip {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.id.String()
			assert.Equal(t, tt.want, s)
			got, err := ParseTransactionID(s)
			require.NoError(t, err)
			assert.Equal(t, tt.id, got)
		})
	}

	rejects := []struct {
		name string
		s    string
	}{
		{"rejects two parts", "020280098/2YgKoUd4DB"},
		{"rejects four parts", "020280098/2YgKoUd4DB/20260227/x"},
		{"rejects a malformed escape", "020280098/%zz/20260227"},
		{"rejects a truncated escape", "020280098/2YgKoUd4DB/%2"},
		{"rejects a needless escape (%41 for A)", "020280098/%41/20260227"},
		{"rejects lower-case hex (%2f)", "020280098/a%2fb/20260227"},
		{"rejects a raw space", "020280098/a b/20260227"},
		{"rejects raw non-ASCII", "020280098/é/20260227"},
		{"rejects an empty string", ""},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTransactionID(tt.s)
			assert.ErrorIs(t, err, ErrInvalidField)
			var e *Error
			require.ErrorAs(t, err, &e)
		})
	}
}

func TestNullString(t *testing.T) {
	t.Parallel()
	states := []struct {
		name     string
		n        NullString
		isZero   bool
		json     string
		str      string
		document string // how a struct with omitzero marshals it
	}{
		{"absent", NullString{}, true, `null`, `<absent>`, `{}`},
		{"null", NullValue(), false, `null`, `null`, `{"v":null}`},
		{"empty", NullStringOf(""), false, `""`, `""`, `{"v":""}`},
		{"the string null", NullStringOf("null"), false, `"null"`, `"null"`, `{"v":"null"}`},
		{"a value needing escapes", NullStringOf("a\"b<é"), false, `"a\"b\u003cé"`, `"a\"b<é"`, `{"v":"a\"b\u003cé"}`},
	}
	type doc struct {
		V NullString `json:"v,omitzero"`
	}
	for _, tt := range states {
		t.Run(tt.name+" round-trips", func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.isZero, tt.n.IsZero())
			assert.Equal(t, tt.str, tt.n.String())

			b, err := json.Marshal(tt.n)
			require.NoError(t, err)
			assert.Equal(t, tt.json, string(b))

			b, err = json.Marshal(doc{tt.n})
			require.NoError(t, err)
			assert.Equal(t, tt.document, string(b))
			var got doc
			require.NoError(t, json.Unmarshal(b, &got))
			assert.Equal(t, tt.n, got.V)
		})
	}
	t.Run("constructors set Present", func(t *testing.T) {
		t.Parallel()
		assert.Equal(t, NullString{Value: "x", Valid: true, Present: true}, NullStringOf("x"))
		assert.Equal(t, NullString{Present: true}, NullValue())
	})
	t.Run("Valid without Present still counts as present", func(t *testing.T) {
		t.Parallel()
		n := NullString{Value: "x", Valid: true}
		assert.False(t, n.IsZero())
		b, err := json.Marshal(doc{n})
		require.NoError(t, err)
		assert.Equal(t, `{"v":"x"}`, string(b))
	})
	t.Run("UnmarshalJSON accepts surrounding whitespace", func(t *testing.T) {
		t.Parallel()
		var n NullString
		require.NoError(t, n.UnmarshalJSON([]byte(" \"caf\\u00e9\" ")))
		assert.Equal(t, NullStringOf("café"), n)
	})
	for _, input := range []string{``, `1`, `true`, `{}`, `nul`, `"a" "b"`, `"\u0000"`, "\"\xff\"", `"\ud800"`, `"unterminated`} {
		t.Run("UnmarshalJSON rejects "+input, func(t *testing.T) {
			t.Parallel()
			n := NullStringOf("kept")
			err := n.UnmarshalJSON([]byte(input))
			assert.ErrorIs(t, err, ErrInvalidField)
			assert.Equal(t, NullStringOf("kept"), n, "unchanged on error")
		})
	}
}

// BenchmarkParseTransactionKey measures the hot path on the documentation's
// example; it should not allocate.
func BenchmarkParseTransactionKey(b *testing.B) {
	for _, name := range []string{"doc-example.json", "escapes.json", "unknown-members.json"} {
		in := readGolden(b, name)
		b.Run(strings.TrimSuffix(name, ".json"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := ParseTransactionKey(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// For comparison only: encoding/json into the same struct, without the
	// strictness.
	b.Run("encoding-json-baseline", func(b *testing.B) {
		type plain struct {
			MerchantCountry         string  `json:"merchantCountry"`
			ProviderID              string  `json:"providerId"`
			ProviderTransactionID   *string `json:"providerTransactionId"`
			MerchantID              string  `json:"merchantId"`
			MerchantTransactionID   string  `json:"merchantTransactionId"`
			MerchantTransactionDate string  `json:"merchantTransactionDate"`
		}
		in := []byte(readGolden(b, "doc-example.json"))
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			var k plain
			if err := json.Unmarshal(in, &k); err != nil {
				b.Fatal(err)
			}
		}
	})
}
