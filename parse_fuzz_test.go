package cofidis_test

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cofidis-go/cofidis"
	"github.com/stretchr/testify/require"
)

// fuzzSeedBodies returns every request body kept in testdata: the recorded
// requests, the hostile bodies, and each transaction key wrapped in a
// pending notification.
func fuzzSeedBodies(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, pattern := range []string{"requests/*.body", "hostile/*.body"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		require.NoError(tb, err)
		for _, path := range files {
			b, err := os.ReadFile(path)
			require.NoError(tb, err)
			out = append(out, b)
		}
	}
	keys, err := filepath.Glob(filepath.Join("testdata", "transactionkey", "*.json"))
	require.NoError(tb, err)
	for _, path := range keys {
		b, err := os.ReadFile(path)
		require.NoError(tb, err)
		v := url.Values{cofidis.FieldTransactionKey: {string(b)}, cofidis.FieldTransactionStatus: {"to_confirm"}}
		out = append(out, []byte(v.Encode()))
	}
	return out
}

// fuzzCheckAccepted checks what every accepted callback guarantees.
func fuzzCheckAccepted(t *testing.T, cb cofidis.Callback) {
	t.Helper()
	require.NoError(t, cb.TransactionKey.Validate(), "an accepted key validates")
	require.NotEmpty(t, strings.TrimSpace(cb.RawStatus), "an accepted callback has a status")
	for _, s := range []string{cb.RawStatus, cb.RawSubState} {
		require.LessOrEqual(t, len(s), cofidis.MaxStatusBytes)
		require.True(t, utf8.ValidString(s), "invalid UTF-8 got through")
		require.False(t, strings.ContainsFunc(s, unicode.IsControl), "a control character got through")
	}
	require.Equal(t, cofidis.ParseStatus(cb.RawStatus), cb.Status)
	require.Equal(t, cofidis.ParseSubState(cb.RawSubState), cb.SubState)
}

// fuzzReencode writes cb back as the form Cofidis would post.
func fuzzReencode(t *testing.T, cb cofidis.Callback) url.Values {
	t.Helper()
	key, err := json.Marshal(cb.TransactionKey)
	require.NoError(t, err)
	v := url.Values{
		cofidis.FieldTransactionKey:    {string(key)},
		cofidis.FieldTransactionStatus: {cb.RawStatus},
	}
	if cb.RawSubState != "" {
		v.Set(cofidis.FieldSubState, cb.RawSubState)
	}
	return v
}

// FuzzParseRequest feeds arbitrary bodies and content types to
// Parser.ParseRequest. It must never panic; a rejection is a 400, 413 or 415
// *Error; ParseRequest decides exactly as url.ParseQuery followed by
// ParseValues does (whatever shortcuts it takes); and an accepted callback,
// written back as a form, parses to the same Callback.
func FuzzParseRequest(f *testing.F) {
	for _, b := range fuzzSeedBodies(f) {
		f.Add(hostileFormType, b)
	}
	for _, ct := range []string{"", "text/plain", "APPLICATION/X-WWW-FORM-URLENCODED; charset=UTF-8", "application/x-www-form-urlencoded; charset=latin1", "multipart/form-data; boundary=x"} {
		f.Add(ct, []byte(hostileBody))
	}
	p := cofidis.NewParser(0)

	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		cb, err := p.ParseRequest(r)

		// The oracle: the envelope checks, then the general path.
		var want error
		mt, params, ctErr := mime.ParseMediaType(contentType)
		charset := strings.ToLower(params["charset"])
		switch {
		case ctErr != nil || mt != hostileFormType ||
			(charset != "" && charset != "utf-8" && charset != "utf8" && charset != "us-ascii"):
			want = cofidis.ErrUnsupportedMediaType
		case len(body) > cofidis.DefaultMaxBodyBytes:
			want = cofidis.ErrBodyTooLarge
		}
		if want != nil {
			require.ErrorIs(t, err, want)
			require.Equal(t, cofidis.Callback{}, cb)
			return
		}
		values, qErr := url.ParseQuery(string(body))
		if qErr != nil {
			require.ErrorIs(t, err, cofidis.ErrMalformedBody)
			require.Equal(t, http.StatusBadRequest, cofidis.HTTPStatus(err))
			return
		}
		wantCB, wantErr := p.ParseValues(values)
		if wantErr != nil {
			require.Error(t, err, "ParseRequest accepted what ParseValues rejects: %v", wantErr)
			require.Equal(t, wantErr.Error(), err.Error(), "both paths must give the same error")
			var e *cofidis.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, http.StatusBadRequest, e.HTTPStatus)
			return
		}
		require.NoError(t, err, "ParseRequest rejected what ParseValues accepts")
		require.Equal(t, wantCB, cb)
		fuzzCheckAccepted(t, cb)

		again := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(fuzzReencode(t, cb).Encode()))
		again.Header.Set("Content-Type", hostileFormType)
		cb2, err := p.ParseRequest(again)
		require.NoError(t, err, "the re-encoded callback must parse")
		require.Equal(t, cb, cb2)
	})
}

// FuzzParseValues gives ParseValues arbitrary field values, possibly
// repeated through extra, and checks its decision against the rules it
// documents: exactly one valid transactionKey, exactly one printable
// transactionStatus of at most MaxStatusBytes bytes, at most one such subState.
func FuzzParseValues(f *testing.F) {
	for _, b := range fuzzSeedBodies(f) {
		v, _ := url.ParseQuery(string(b))
		f.Add(v.Get(cofidis.FieldTransactionKey), v.Get(cofidis.FieldTransactionStatus), v.Get(cofidis.FieldSubState), "")
	}
	f.Add(hostileKey, "pending", "signed", "transactionStatus=refused")
	f.Add(hostileKey, "to_confirm", "", "transactionKey.merchantId=evil&transactionKey[0]=x&a]=1")
	f.Add(hostileKey, " ", "", "subState=signed")

	f.Fuzz(func(t *testing.T, key, status, sub, extra string) {
		values, _ := url.ParseQuery(extra)
		if values == nil {
			values = url.Values{}
		}
		values.Add(cofidis.FieldTransactionKey, key)
		values.Add(cofidis.FieldTransactionStatus, status)
		if sub != "" {
			values.Add(cofidis.FieldSubState, sub)
		}
		cb, err := cofidis.ParseValues(values)

		token := func(s string) bool {
			return len(s) <= cofidis.MaxStatusBytes && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
		}
		repeated := len(values[cofidis.FieldTransactionKey]) > 1 ||
			len(values[cofidis.FieldTransactionStatus]) > 1 || len(values[cofidis.FieldSubState]) > 1
		subValue := values.Get(cofidis.FieldSubState)
		parsed, keyErr := cofidis.ParseTransactionKey(key)
		if keyErr == nil {
			keyErr = parsed.Validate()
		}
		ok := !repeated && key != "" && strings.TrimSpace(status) != "" &&
			token(status) && token(subValue) && keyErr == nil

		if !ok {
			require.Error(t, err)
			require.Equal(t, cofidis.Callback{}, cb)
			require.Equal(t, http.StatusBadRequest, cofidis.HTTPStatus(err))
			if repeated {
				require.ErrorIs(t, err, cofidis.ErrRepeatedField)
			}
			return
		}
		require.NoError(t, err)
		fuzzCheckAccepted(t, cb)
		require.Equal(t, parsed, cb.TransactionKey, "the key is transactionKey's, whatever else was posted")
		require.Equal(t, status, cb.RawStatus)
		require.Equal(t, subValue, cb.RawSubState)

		cb2, err := cofidis.ParseValues(fuzzReencode(t, cb))
		require.NoError(t, err)
		require.Equal(t, cb, cb2)
	})
}
