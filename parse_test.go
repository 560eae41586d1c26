package cofidis_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// The documentation's transactionKey, compact and as printed (one member per
// line, no indentation).
const (
	docKeyCompact = `{"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,` +
		`"merchantId":"020280098","merchantTransactionId":"2YgKoUd4DB","merchantTransactionDate":"20260227"}`
	docKeyPrinted = "{\n" +
		"\"merchantCountry\": \"fr\",\n" +
		"\"providerId\": \"providrid\",\n" +
		"\"providerTransactionId\": null,\n" +
		"\"merchantId\": \"020280098\",\n" +
		"\"merchantTransactionId\": \"2YgKoUd4DB\",\n" +
		"\"merchantTransactionDate\": \"20260227\"\n" +
		"}"
)

// wantDocKey is the key both forms decode to.
var wantDocKey = cofidis.TransactionKey{
	MerchantCountry:         "fr",
	ProviderID:              "providrid",
	ProviderTransactionID:   cofidis.NullValue(),
	MerchantID:              "020280098",
	MerchantTransactionID:   "2YgKoUd4DB",
	MerchantTransactionDate: "20260227",
}

// Payload values distinctive enough that finding one in a response or a log
// line can only mean it was echoed.
const (
	echoProviderID    = "prov-echo-5c1e"
	echoMerchantID    = "099887766"
	echoTransactionID = "ORDER-echo-7f3a9"
)

// echoKeyJSON is a valid key made of the distinctive values.
const echoKeyJSON = `{"merchantCountry":"fr","providerId":"` + echoProviderID + `","providerTransactionId":null,` +
	`"merchantId":"` + echoMerchantID + `","merchantTransactionId":"` + echoTransactionID + `","merchantTransactionDate":"20260227"}`

// echoParts are the fragments of an echo body that must never be answered
// or logged.
var echoParts = []string{echoProviderID, echoMerchantID, echoTransactionID, echoKeyJSON, url.QueryEscape(echoKeyJSON)}

// formBody encodes a callback body in the documentation's field order;
// empty values are left out.
func formBody(key, status, subState string) string {
	var parts []string
	for _, f := range [...][2]string{
		{cofidis.FieldTransactionKey, key},
		{cofidis.FieldTransactionStatus, status},
		{cofidis.FieldSubState, subState},
	} {
		if f[1] != "" {
			parts = append(parts, f[0]+"="+url.QueryEscape(f[1]))
		}
	}
	return strings.Join(parts, "&")
}

// postForm builds a callback POST to target (a path or an absolute URL).
func postForm(target, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// serve runs h on r and returns the recorded answer.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// quietLogger keeps expected rejections out of the test output.
// answerBody is what the handlers write for a status: nothing for the 200
// acknowledgement, the status text otherwise.
func answerBody(code int) string {
	if code == http.StatusOK {
		return ""
	}
	return http.StatusText(code) + "\n"
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// readRequestBody reads a golden body from testdata/requests.
func readRequestBody(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "requests", name))
	require.NoError(t, err)
	return string(b)
}

// assertNoEcho checks that an answer holds no fragment of the request.
func assertNoEcho(t *testing.T, answer string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if p != "" {
			assert.NotContains(t, answer, p, "the answer echoes the request")
		}
	}
}

// received records the events delivered to the callbacks it hands out.
type received struct {
	mu     sync.Mutex
	events []cofidis.Event
	via    []cofidis.Channel // which callback ran, independently of ev.Channel
}

func (rc *received) add(ch cofidis.Channel, ev cofidis.Event) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.events = append(rc.events, ev)
	rc.via = append(rc.via, ch)
}

// notification returns a NotificationFunc that records the event and
// returns err.
func (rc *received) notification(err error) cofidis.NotificationFunc {
	return func(_ context.Context, ev cofidis.Event) error {
		rc.add(cofidis.ChannelNotification, ev)
		return err
	}
}

// redirect returns a RedirectFunc that records the event and answers 303 to
// /orders.
func (rc *received) redirect() cofidis.RedirectFunc {
	return func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
		rc.add(cofidis.ChannelRedirect, ev)
		return cofidis.SeeOther(w, r, "/orders")
	}
}

func (rc *received) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.events)
}

// only returns the single event received and the callback that got it.
func (rc *received) only(t *testing.T) (cofidis.Event, cofidis.Channel) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Len(t, rc.events, 1, "want exactly one dispatched event")
	return rc.events[0], rc.via[0]
}

func TestParseRequest_documentationBodies(t *testing.T) {
	t.Parallel()
	t.Run("uses the key golden files of testdata/transactionkey", func(t *testing.T) {
		t.Parallel()
		for file, want := range map[string]string{"doc-example.json": docKeyPrinted + "\n", "compact.json": docKeyCompact + "\n"} {
			b, err := os.ReadFile(filepath.Join("testdata", "transactionkey", file))
			require.NoError(t, err)
			assert.Equal(t, want, string(b), file)
		}
	})
	tests := []struct {
		file    string
		key     string // the transactionKey text the body must carry
		wantSub cofidis.SubState
	}{
		{"doc-redirect.body", docKeyPrinted, ""},
		{"doc-notification.body", docKeyPrinted, cofidis.SubStateSigned},
		{"doc-redirect-compact.body", docKeyCompact, ""},
		{"doc-notification-compact.body", docKeyCompact, cofidis.SubStateSigned},
	}
	for _, tt := range tests {
		t.Run("decodes "+tt.file, func(t *testing.T) {
			t.Parallel()
			body := readRequestBody(t, tt.file)

			// The golden file holds the documentation's own text.
			values, err := url.ParseQuery(body)
			require.NoError(t, err)
			assert.Equal(t, tt.key, values.Get(cofidis.FieldTransactionKey))

			cb, err := cofidis.ParseRequest(postForm("/cb", body))
			require.NoError(t, err)
			assert.Equal(t, wantDocKey, cb.TransactionKey)
			assert.Equal(t, cofidis.StatusPending, cb.Status)
			assert.Equal(t, "pending", cb.RawStatus)
			assert.Equal(t, tt.wantSub, cb.SubState)
			assert.Equal(t, string(tt.wantSub), cb.RawSubState)
		})
	}
}

func TestParseRequest_method(t *testing.T) {
	t.Parallel()
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		t.Run("rejects "+m+" with 405", func(t *testing.T) {
			t.Parallel()
			r := postForm("/cb", formBody(docKeyCompact, "pending", ""))
			r.Method = m
			_, err := cofidis.ParseRequest(r)
			require.ErrorIs(t, err, cofidis.ErrMethodNotAllowed)
			assert.Equal(t, http.StatusMethodNotAllowed, cofidis.HTTPStatus(err))
		})
	}
}

func TestParseRequest_contentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ct     string
		accept bool
	}{
		{"accepts no charset", "application/x-www-form-urlencoded", true},
		{"accepts charset=UTF-8", "application/x-www-form-urlencoded; charset=UTF-8", true},
		{"accepts charset=utf-8", "application/x-www-form-urlencoded; charset=utf-8", true},
		{"accepts a quoted charset", `application/x-www-form-urlencoded; charset="UTF-8"`, true},
		{"accepts charset=us-ascii, a subset of UTF-8", "application/x-www-form-urlencoded; charset=us-ascii", true},
		{"accepts an upper-case media type", "Application/X-WWW-Form-URLEncoded;charset=UTF-8", true},
		{"accepts unknown parameters", "application/x-www-form-urlencoded; foo=bar", true},
		{"rejects charset=ISO-8859-1 with 415", "application/x-www-form-urlencoded; charset=ISO-8859-1", false},
		{"rejects charset=windows-1252 with 415", "application/x-www-form-urlencoded; charset=windows-1252", false},
		{"rejects a repeated charset with 415", "application/x-www-form-urlencoded; charset=UTF-8; charset=ISO-8859-1", false},
		{"rejects multipart/form-data with 415", "multipart/form-data; boundary=xyz", false},
		{"rejects text/plain with 415", "text/plain; charset=utf-8", false},
		{"rejects application/json with 415", "application/json", false},
		{"rejects a missing Content-Type with 415", "", false},
		{"rejects an unparsable Content-Type with 415", "application/x-www-form-urlencoded; charset", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := postForm("/cb", formBody(docKeyCompact, "pending", ""))
			if tt.ct == "" {
				r.Header.Del("Content-Type")
			} else {
				r.Header.Set("Content-Type", tt.ct)
			}
			cb, err := cofidis.ParseRequest(r)
			if tt.accept {
				require.NoError(t, err)
				assert.Equal(t, wantDocKey, cb.TransactionKey)
				return
			}
			require.ErrorIs(t, err, cofidis.ErrUnsupportedMediaType)
			assert.Equal(t, http.StatusUnsupportedMediaType, cofidis.HTTPStatus(err))
		})
	}
}

func TestParseRequest_bodyLimit(t *testing.T) {
	t.Parallel()
	body := formBody(docKeyCompact, "pending", "")
	size := int64(len(body))

	t.Run("accepts a body exactly at the limit", func(t *testing.T) {
		t.Parallel()
		cb, err := cofidis.NewParser(size).ParseRequest(postForm("/cb", body))
		require.NoError(t, err)
		assert.Equal(t, wantDocKey, cb.TransactionKey)
	})
	t.Run("rejects a body one byte over the limit with 413", func(t *testing.T) {
		t.Parallel()
		_, err := cofidis.NewParser(size - 1).ParseRequest(postForm("/cb", body))
		require.ErrorIs(t, err, cofidis.ErrBodyTooLarge)
		assert.Equal(t, http.StatusRequestEntityTooLarge, cofidis.HTTPStatus(err))
	})
	t.Run("rejects a body over the limit whose Content-Length understates it", func(t *testing.T) {
		t.Parallel()
		r := postForm("/cb", body)
		r.ContentLength = 10
		_, err := cofidis.NewParser(size - 1).ParseRequest(r)
		require.ErrorIs(t, err, cofidis.ErrBodyTooLarge)
	})
	t.Run("rejects a body over the limit of unknown length", func(t *testing.T) {
		t.Parallel()
		r := postForm("/cb", body)
		r.ContentLength = -1
		_, err := cofidis.NewParser(size - 1).ParseRequest(r)
		require.ErrorIs(t, err, cofidis.ErrBodyTooLarge)
	})
	t.Run("rejects a declared Content-Length over the limit before reading", func(t *testing.T) {
		t.Parallel()
		r := postForm("/cb", body)
		r.ContentLength = size + 1
		r.Body = io.NopCloser(failingReader{})
		_, err := cofidis.NewParser(size).ParseRequest(r)
		require.ErrorIs(t, err, cofidis.ErrBodyTooLarge)
	})
	t.Run("answers 413 when the server's own http.MaxBytesReader trips first", func(t *testing.T) {
		t.Parallel()
		r := postForm("/cb", body)
		r.ContentLength = -1
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
		_, err := cofidis.NewParser(size).ParseRequest(r)
		require.ErrorIs(t, err, cofidis.ErrBodyTooLarge)
		var mbe *http.MaxBytesError
		assert.ErrorAs(t, err, &mbe, "the cause stays reachable")
	})
	t.Run("reports a body that cannot be read with 400", func(t *testing.T) {
		t.Parallel()
		r := postForm("/cb", body)
		r.ContentLength = -1
		r.Body = io.NopCloser(failingReader{})
		_, err := cofidis.NewParser(size).ParseRequest(r)
		require.ErrorIs(t, err, cofidis.ErrBodyRead)
		assert.Equal(t, http.StatusBadRequest, cofidis.HTTPStatus(err))
	})
	t.Run("uses DefaultMaxBodyBytes for a non-positive limit", func(t *testing.T) {
		t.Parallel()
		pad := "&pad=" + strings.Repeat("x", cofidis.DefaultMaxBodyBytes-len(body)-len("&pad="))
		_, err := cofidis.NewParser(0).ParseRequest(postForm("/cb", body+pad))
		require.NoError(t, err, "exactly DefaultMaxBodyBytes")
		_, err = cofidis.NewParser(-1).ParseRequest(postForm("/cb", body+pad+"x"))
		require.ErrorIs(t, err, cofidis.ErrBodyTooLarge)
	})
}

// failingReader fails every read, like a client that went away.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestParseRequest_malformedBody(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"rejects a bad percent-escape with 400", "transactionKey=%zz&transactionStatus=pending"},
		{"rejects a semicolon separator with 400", formBody(docKeyCompact, "pending", "") + ";subState=signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := cofidis.ParseRequest(postForm("/cb", tt.body))
			require.ErrorIs(t, err, cofidis.ErrMalformedBody)
			assert.Equal(t, http.StatusBadRequest, cofidis.HTTPStatus(err))
		})
	}
}

func TestParseValues_fields(t *testing.T) {
	t.Parallel()
	valid := url.Values{
		cofidis.FieldTransactionKey:    {docKeyCompact},
		cofidis.FieldTransactionStatus: {"pending"},
		cofidis.FieldSubState:          {"signed"},
	}
	with := func(edit func(v url.Values)) url.Values {
		v := url.Values{}
		for k, vs := range valid {
			v[k] = append([]string(nil), vs...)
		}
		edit(v)
		return v
	}
	tests := []struct {
		name      string
		values    url.Values
		wantErr   error
		wantField string
	}{
		{"rejects a repeated transactionKey field", with(func(v url.Values) { v.Add(cofidis.FieldTransactionKey, docKeyCompact) }), cofidis.ErrRepeatedField, cofidis.FieldTransactionKey},
		{"rejects a repeated transactionStatus field", with(func(v url.Values) { v.Add(cofidis.FieldTransactionStatus, "to_confirm") }), cofidis.ErrRepeatedField, cofidis.FieldTransactionStatus},
		{"rejects a repeated transactionStatus field even with equal values", with(func(v url.Values) { v.Add(cofidis.FieldTransactionStatus, "pending") }), cofidis.ErrRepeatedField, cofidis.FieldTransactionStatus},
		{"rejects a repeated subState field", with(func(v url.Values) { v.Add(cofidis.FieldSubState, "signed") }), cofidis.ErrRepeatedField, cofidis.FieldSubState},
		{"rejects a repeated field whose second value is empty", with(func(v url.Values) { v.Add(cofidis.FieldTransactionStatus, "") }), cofidis.ErrRepeatedField, cofidis.FieldTransactionStatus},
		{"rejects a missing transactionKey", with(func(v url.Values) { v.Del(cofidis.FieldTransactionKey) }), cofidis.ErrMissingField, cofidis.FieldTransactionKey},
		{"rejects an empty transactionKey", with(func(v url.Values) { v.Set(cofidis.FieldTransactionKey, "") }), cofidis.ErrMissingField, cofidis.FieldTransactionKey},
		{"rejects a missing transactionStatus", with(func(v url.Values) { v.Del(cofidis.FieldTransactionStatus) }), cofidis.ErrMissingField, cofidis.FieldTransactionStatus},
		{"rejects an empty transactionStatus", with(func(v url.Values) { v.Set(cofidis.FieldTransactionStatus, "") }), cofidis.ErrMissingField, cofidis.FieldTransactionStatus},
		{"rejects a transactionKey that is not JSON", with(func(v url.Values) { v.Set(cofidis.FieldTransactionKey, "2YgKoUd4DB") }), cofidis.ErrInvalidTransactionKey, cofidis.FieldTransactionKey},
		{"rejects a transactionKey that is a JSON array", with(func(v url.Values) { v.Set(cofidis.FieldTransactionKey, "[1]") }), cofidis.ErrInvalidTransactionKey, cofidis.FieldTransactionKey},
		{"rejects a truncated transactionKey", with(func(v url.Values) { v.Set(cofidis.FieldTransactionKey, docKeyCompact[:40]) }), cofidis.ErrInvalidTransactionKey, cofidis.FieldTransactionKey},
		{"rejects a transactionKey without merchantId", with(func(v url.Values) {
			v.Set(cofidis.FieldTransactionKey, strings.Replace(docKeyCompact, `"merchantId":"020280098",`, "", 1))
		}), cofidis.ErrMissingField, "transactionKey.merchantId"},
		{"rejects a numeric merchantId", with(func(v url.Values) {
			v.Set(cofidis.FieldTransactionKey, strings.Replace(docKeyCompact, `"020280098"`, `20280098`, 1))
		}), cofidis.ErrInvalidField, "transactionKey.merchantId"},
		{"rejects a transactionStatus with control characters", with(func(v url.Values) { v.Set(cofidis.FieldTransactionStatus, "pending\n") }), cofidis.ErrInvalidField, cofidis.FieldTransactionStatus},
		{"rejects a transactionStatus over MaxStatusBytes", with(func(v url.Values) {
			v.Set(cofidis.FieldTransactionStatus, strings.Repeat("a", cofidis.MaxStatusBytes+1))
		}), cofidis.ErrInvalidField, cofidis.FieldTransactionStatus},
		{"rejects a subState over MaxStatusBytes", with(func(v url.Values) {
			v.Set(cofidis.FieldSubState, strings.Repeat("a", cofidis.MaxStatusBytes+1))
		}), cofidis.ErrInvalidField, cofidis.FieldSubState},
		{"rejects a subState that is not UTF-8", with(func(v url.Values) { v.Set(cofidis.FieldSubState, "sign\xffed") }), cofidis.ErrInvalidField, cofidis.FieldSubState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := cofidis.ParseValues(tt.values)
			require.ErrorIs(t, err, tt.wantErr)
			var e *cofidis.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.wantField, e.Field)
			assert.Equal(t, http.StatusBadRequest, e.HTTPStatus)
			assert.Equal(t, http.StatusBadRequest, cofidis.HTTPStatus(err))
		})
	}

	t.Run("keeps a long unknown status and sub-state, up to MaxStatusBytes", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{65, 66, 200, cofidis.MaxStatusBytes} {
			status, sub := strings.Repeat("s", n), strings.Repeat("b", n)
			cb, err := cofidis.ParseValues(with(func(v url.Values) {
				v.Set(cofidis.FieldTransactionStatus, status)
				v.Set(cofidis.FieldSubState, sub)
			}))
			require.NoError(t, err, "%d bytes", n)
			assert.Equal(t, cofidis.Status(status), cb.Status)
			assert.False(t, cb.Status.Known())
			assert.Equal(t, cofidis.SubState(sub), cb.SubState)
		}
	})
	t.Run("ignores unknown extra fields", func(t *testing.T) {
		t.Parallel()
		v := with(func(v url.Values) {
			v.Set("amount", "1000")
			v.Add("foo", "1")
			v.Add("foo", "2") // repeated unknown fields are no pollution risk
			v.Set("transactionKey[0]", "x")
			v.Set("TransactionStatus", "Refused") // field names are case-sensitive
		})
		cb, err := cofidis.ParseValues(v)
		require.NoError(t, err)
		assert.Equal(t, wantDocKey, cb.TransactionKey)
		assert.Equal(t, cofidis.StatusPending, cb.Status)
	})
	t.Run("accepts a missing or empty subState", func(t *testing.T) {
		t.Parallel()
		for _, v := range []url.Values{
			with(func(v url.Values) { v.Del(cofidis.FieldSubState) }),
			with(func(v url.Values) { v.Set(cofidis.FieldSubState, "") }),
		} {
			cb, err := cofidis.ParseValues(v)
			require.NoError(t, err)
			assert.Empty(t, cb.SubState)
			assert.Empty(t, cb.RawSubState)
		}
	})
	t.Run("canonicalises the status and keeps the raw value", func(t *testing.T) {
		t.Parallel()
		cb, err := cofidis.ParseValues(with(func(v url.Values) { v.Set(cofidis.FieldTransactionStatus, "To_Confirm") }))
		require.NoError(t, err)
		assert.Equal(t, cofidis.StatusToConfirm, cb.Status)
		assert.Equal(t, "To_Confirm", cb.RawStatus)
	})
	t.Run("delivers an unknown status verbatim", func(t *testing.T) {
		t.Parallel()
		cb, err := cofidis.ParseValues(with(func(v url.Values) { v.Set(cofidis.FieldTransactionStatus, "brand_new_status") }))
		require.NoError(t, err)
		assert.Equal(t, cofidis.Status("brand_new_status"), cb.Status)
		assert.False(t, cb.Status.Known())
	})
}

func TestParseRequest_fieldNames(t *testing.T) {
	t.Parallel()
	valid := formBody(docKeyCompact, "pending", "")
	t.Run("rejects a repeated field whose name is percent-encoded", func(t *testing.T) {
		t.Parallel()
		_, err := cofidis.ParseRequest(postForm("/cb", valid+"&transaction%53tatus=Refused"))
		require.ErrorIs(t, err, cofidis.ErrRepeatedField)
		var e *cofidis.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, cofidis.FieldTransactionStatus, e.Field)
	})
	t.Run("rejects a repeated subState without a value", func(t *testing.T) {
		t.Parallel()
		_, err := cofidis.ParseRequest(postForm("/cb", valid+"&subState=signed&subState"))
		require.ErrorIs(t, err, cofidis.ErrRepeatedField)
	})
	t.Run("reads a field name spelled with percent-escapes", func(t *testing.T) {
		t.Parallel()
		body := strings.Replace(valid, "transactionKey=", "transaction%4Bey=", 1)
		cb, err := cofidis.ParseRequest(postForm("/cb", body))
		require.NoError(t, err)
		assert.Equal(t, wantDocKey, cb.TransactionKey)
	})
	t.Run("ignores empty pairs", func(t *testing.T) {
		t.Parallel()
		cb, err := cofidis.ParseRequest(postForm("/cb", "&&"+valid+"&"))
		require.NoError(t, err)
		assert.Equal(t, cofidis.StatusPending, cb.Status)
	})
}

func TestParseRequest_readsOnlyTheBody(t *testing.T) {
	t.Parallel()
	t.Run("ignores a transactionStatus in the URL query", func(t *testing.T) {
		t.Parallel()
		r := postForm("/cb?transactionStatus=validated", formBody(docKeyCompact, "pending", ""))
		cb, err := cofidis.ParseRequest(r)
		require.NoError(t, err)
		assert.Equal(t, cofidis.StatusPending, cb.Status)
	})
	t.Run("does not complete a body from the URL query", func(t *testing.T) {
		t.Parallel()
		r := postForm("/cb?transactionStatus=validated", formBody(docKeyCompact, "", ""))
		_, err := cofidis.ParseRequest(r)
		require.ErrorIs(t, err, cofidis.ErrMissingField)
	})
}

func TestParseRequest_percentEncodedIDsRoundTrip(t *testing.T) {
	t.Parallel()
	ids := []struct{ name, id string }{
		{"a plus sign", "A+B"},
		{"a slash", "2026/02/27-001"},
		{"a percent sign", "100%"},
		{"a literal percent-escape", "a%2Bb%20c"},
		{"spaces", "order 42  x"},
		{"non-ASCII letters", "Crème-Brûlée-Ωμέγα-日本"},
		{"JSON-special characters", `q"uo\te<&>`},
		{"all of them", " +/% é+%2B/ "},
	}
	for _, tt := range ids {
		t.Run("round-trips "+tt.name+" through url.Values.Encode", func(t *testing.T) {
			t.Parallel()
			want := wantDocKey
			want.MerchantTransactionID = tt.id
			want.ProviderTransactionID = cofidis.NullStringOf(tt.id)
			key, err := json.Marshal(want)
			require.NoError(t, err)
			body := url.Values{
				cofidis.FieldTransactionKey:    {string(key)},
				cofidis.FieldTransactionStatus: {"to_confirm"},
			}.Encode()

			cb, err := cofidis.ParseRequest(postForm("/cb", body))
			require.NoError(t, err)
			assert.Equal(t, want, cb.TransactionKey)
			assert.Equal(t, tt.id, cb.TransactionKey.MerchantTransactionID)
		})
	}

	// Bodies as another encoder may write them: JSON punctuation left raw,
	// '+' for a space, %2B for a plus sign, non-ASCII as escaped or raw
	// UTF-8.
	hand := []struct{ name, encoded, want string }{
		{"reads %2B as a plus sign and + as a space", "A%2BB+C", "A+B C"},
		{"reads %25 as a percent sign", "100%25", "100%"},
		{"reads %2F and a raw slash alike", "a%2Fb/c", "a/b/c"},
		{"reads %20 as a space", "a%20b", "a b"},
		{"reads percent-escaped UTF-8", "Cr%C3%A8me", "Crème"},
		{"reads raw UTF-8", "Crème-Ωμέγα", "Crème-Ωμέγα"},
		{"reads a JSON \\u escape", `Cr\u00e8me`, "Crème"},
	}
	for _, tt := range hand {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := `transactionKey={"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,` +
				`"merchantId":"020280098","merchantTransactionId":"` + tt.encoded + `","merchantTransactionDate":"20260227"}` +
				`&transactionStatus=to_confirm`
			cb, err := cofidis.ParseRequest(postForm("/cb", body))
			require.NoError(t, err)
			assert.Equal(t, tt.want, cb.TransactionKey.MerchantTransactionID)
			assert.Equal(t, "020280098", cb.TransactionKey.MerchantID)
		})
	}
}

func TestParser_isSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	p := cofidis.NewParser(0)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			id := "id-" + strconv.Itoa(i)
			key := strings.Replace(docKeyCompact, "2YgKoUd4DB", id, 1)
			cb, err := p.ParseRequest(postForm("/cb", formBody(key, "pending", "signed")))
			if assert.NoError(t, err) {
				assert.Equal(t, id, cb.TransactionKey.MerchantTransactionID)
			}
		})
	}
	wg.Wait()
}
