package cofidistest_test

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// docKey is the documentation's example key.
var docKey = cofidis.TransactionKey{
	MerchantCountry:         "fr",
	ProviderID:              "providrid",
	ProviderTransactionID:   cofidis.NullValue(),
	MerchantID:              "020280098",
	MerchantTransactionID:   "2YgKoUd4DB",
	MerchantTransactionDate: "20260227",
}

func TestRequestBodyIsWhatCofidisPosts(t *testing.T) {
	t.Parallel()
	r := cofidistest.Request{Endpoint: cofidis.EndpointNotificationPending, Key: docKey, Status: "pending", SubState: "signed"}
	want := "transactionKey=" + url.QueryEscape(`{"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,"merchantId":"020280098","merchantTransactionId":"2YgKoUd4DB","merchantTransactionDate":"20260227"}`) +
		"&transactionStatus=pending&subState=signed"
	if got := r.Body(); got != want {
		t.Errorf("Body() =\n %s\nwant\n %s", got, want)
	}

	r.MultilineJSON = true
	wantKey := "{\n" + `"merchantCountry": "fr",` + "\n" + `"providerId": "providrid",` + "\n" +
		`"providerTransactionId": null,` + "\n" + `"merchantId": "020280098",` + "\n" +
		`"merchantTransactionId": "2YgKoUd4DB",` + "\n" + `"merchantTransactionDate": "20260227"` + "\n}"
	if got := r.KeyJSON(); got != wantKey {
		t.Errorf("multi-line KeyJSON() =\n%s\nwant the documentation's layout\n%s", got, wantKey)
	}
}

// Every documented variant decodes back to what was built.
func TestRequestVariantsRoundTrip(t *testing.T) {
	t.Parallel()
	absent := docKey
	absent.ProviderTransactionID = cofidis.NullString{}
	valued := docKey
	valued.ProviderTransactionID = cofidis.NullStringOf("PSP-1")
	tests := []struct {
		name string
		req  cofidistest.Request
		want cofidis.Status
	}{
		{"compact", cofidistest.Request{Key: docKey, Status: "to_confirm"}, cofidis.StatusToConfirm},
		{"multi-line JSON", cofidistest.Request{Key: docKey, Status: "pending", SubState: "signed", MultilineJSON: true}, cofidis.StatusPending},
		{"capitalised status", cofidistest.Request{Key: docKey, Status: "To_confirm"}, cofidis.StatusToConfirm},
		{"absent providerTransactionId", cofidistest.Request{Key: absent, Status: "refused"}, cofidis.StatusRefused},
		{"valued providerTransactionId", cofidistest.Request{Key: valued, Status: "Validated"}, cofidis.StatusValidated},
		{"unknown status", cofidistest.Request{Key: docKey, Status: "Documents_Missing"}, "Documents_Missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.req.Endpoint = cofidis.EndpointNotificationOther
			cb, err := cofidis.ParseRequest(tc.req.HTTPRequest(newURLs(t)))
			if err != nil {
				t.Fatal(err)
			}
			if cb.TransactionKey != tc.req.Key {
				t.Errorf("key = %+v, want %+v", cb.TransactionKey, tc.req.Key)
			}
			if cb.Status != tc.want || cb.RawStatus != string(tc.req.Status) {
				t.Errorf("status = %q (raw %q), want %q (raw %q)", cb.Status, cb.RawStatus, tc.want, tc.req.Status)
			}
			if cb.RawSubState != string(tc.req.SubState) {
				t.Errorf("subState = %q, want %q", cb.RawSubState, tc.req.SubState)
			}
		})
	}
}

// Each broken knob produces the failure it is meant for.
func TestRequestBrokenKnobs(t *testing.T) {
	t.Parallel()
	ok := cofidistest.Request{Endpoint: cofidis.EndpointNotificationOther, Key: docKey, Status: "Refused"}
	tests := []struct {
		name   string
		change func(*cofidistest.Request)
		status int
		err    error
	}{
		{"repeated status", func(r *cofidistest.Request) { r.RepeatStatus = true }, 400, cofidis.ErrRepeatedField},
		{"second subState", func(r *cofidistest.Request) {
			r.SubState = "signed"
			r.ExtraFields = url.Values{"subState": {"other"}}
		}, 400, cofidis.ErrRepeatedField},
		{"no key", func(r *cofidistest.Request) { r.OmitKey = true }, 400, cofidis.ErrMissingField},
		{"no status", func(r *cofidistest.Request) { r.OmitStatus = true }, 400, cofidis.ErrMissingField},
		{"key not JSON", func(r *cofidistest.Request) { r.RawKey = `{"merchantId":` }, 400, cofidis.ErrInvalidTransactionKey},
		{"malformed body", func(r *cofidistest.Request) { r.RawBody = "transactionKey=%zz" }, 400, cofidis.ErrMalformedBody},
		{"wrong content type", func(r *cofidistest.Request) { r.ContentType = "application/json" }, 415, cofidis.ErrUnsupportedMediaType},
		{"Latin-1 charset", func(r *cofidistest.Request) { r.ContentType = "application/x-www-form-urlencoded; charset=ISO-8859-1" }, 415, cofidis.ErrUnsupportedMediaType},
		{"no content type", func(r *cofidistest.Request) { r.Header = http.Header{"content-type": nil} }, 415, cofidis.ErrUnsupportedMediaType},
		{"GET", func(r *cofidistest.Request) { r.Method = http.MethodGet }, 405, cofidis.ErrMethodNotAllowed},
		{"outside the allowlist", func(r *cofidistest.Request) { r.RemoteAddr = "198.51.100.7:443" }, 403, cofidis.ErrForbiddenSource},
		{"inside the allowlist", func(r *cofidistest.Request) { r.RemoteAddr = "203.0.113.9:443" }, 200, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			urls := newURLs(t)
			var got error
			rt := newRouter(t, urls, &cofidistest.Recorder{},
				cofidis.WithAllowedSources("203.0.113.0/24", "192.0.2.1"),
				cofidis.WithOnError(func(_ *http.Request, err error) { got = err }))
			r := ok
			tc.change(&r)
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r.HTTPRequest(urls))
			if w.Code != tc.status {
				t.Errorf("answered %d, want %d", w.Code, tc.status)
			}
			if tc.err != nil && !errors.Is(got, tc.err) {
				t.Errorf("error = %v, want %v", got, tc.err)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	redirect := cofidistest.Request{Endpoint: cofidis.EndpointReturnSuccess}.Headers()
	for k, v := range map[string]string{
		"Content-Type":   "application/x-www-form-urlencoded",
		"Sec-Fetch-Mode": "navigate",
		"Sec-Fetch-Site": "cross-site",
		"Sec-Fetch-Dest": "document",
		"Origin":         cofidistest.CofidisOrigin,
	} {
		if got := redirect.Get(k); got != v {
			t.Errorf("redirect %s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(redirect.Get("Accept"), "text/html") {
		t.Errorf("redirect Accept = %q, want text/html first", redirect.Get("Accept"))
	}

	notif := cofidistest.Request{Endpoint: cofidis.EndpointNotificationSuccess}.Headers()
	for _, k := range []string{"Sec-Fetch-Mode", "Sec-Fetch-Site", "Origin", "Referer"} {
		if notif.Get(k) != "" {
			t.Errorf("notification carries %s", k)
		}
	}
	if strings.Contains(notif.Get("Accept"), "html") {
		t.Errorf("notification Accept = %q", notif.Get("Accept"))
	}

	forced := cofidistest.Request{Endpoint: cofidis.EndpointNotificationSuccess, Channel: cofidis.ChannelRedirect,
		Header: http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-User": nil}}.Headers()
	if forced.Get("Sec-Fetch-Mode") != "navigate" || forced.Get("Origin") != "https://evil.example" || forced.Get("Sec-Fetch-User") != "" {
		t.Errorf("Channel and Header overrides not applied: %v", forced)
	}
}

func TestHTTPRequestPanicsWithoutURL(t *testing.T) {
	t.Parallel()
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "no URL") {
			t.Errorf("recovered %v, want a panic naming the missing URL", v)
		}
	}()
	cofidistest.Request{}.HTTPRequest(newURLs(t))
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	if err := key.Validate(); err != nil {
		t.Fatal(err)
	}
	today, err := cofidis.ParisDate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Around midnight in Paris the day may have turned between the two calls.
	if key.MerchantTransactionDate != today {
		if again, _ := cofidis.ParisDate(time.Now()); again == today {
			t.Errorf("date = %s, want today in Paris %s", key.MerchantTransactionDate, today)
		}
	}
	if key.MerchantCountry != "fr" || key.ProviderID != "providrid" || key.MerchantID != "020280098" ||
		key.ProviderTransactionID != cofidis.NullValue() {
		t.Errorf("key = %+v, want the documentation's values", key)
	}
	id := key.MerchantTransactionID
	if len(id) != cofidistest.TransactionIDLength || strings.Trim(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("merchantTransactionId = %q, want %d alphanumerics", id, cofidistest.TransactionIDLength)
	}
	if other := cofidistest.NewKey(cofidistest.KeyOptions{}); other.MerchantTransactionID == id {
		t.Errorf("two keys share the id %q", id)
	}
}

func TestNewKeyOptions(t *testing.T) {
	t.Parallel()
	seeded := func() cofidis.TransactionKey {
		return cofidistest.NewKey(cofidistest.KeyOptions{Rand: rand.New(rand.NewPCG(7, 7))})
	}
	if a, b := seeded(), seeded(); a.MerchantTransactionID != b.MerchantTransactionID {
		t.Errorf("same seed gave %q and %q", a.MerchantTransactionID, b.MerchantTransactionID)
	}

	// 23:30 UTC on 2026-02-27 is already the 28th in Paris (UTC+1).
	key := cofidistest.NewKey(cofidistest.KeyOptions{
		MerchantCountry:       "it",
		ProviderID:            "psp",
		MerchantID:            "000123",
		MerchantTransactionID: "order-42",
		Now:                   time.Date(2026, 2, 27, 23, 30, 0, 0, time.UTC),
	})
	want := cofidis.TransactionKey{MerchantCountry: "it", ProviderID: "psp", ProviderTransactionID: cofidis.NullValue(),
		MerchantID: "000123", MerchantTransactionID: "order-42", MerchantTransactionDate: "20260228"}
	if key != want {
		t.Errorf("key = %+v, want %+v", key, want)
	}
}
