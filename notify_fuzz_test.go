package cofidis_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/stretchr/testify/require"
)

// fuzzDocumentedStatuses is the notification handler's whole answer set,
// as the package documentation lists it.
var fuzzDocumentedStatuses = map[int]bool{200: true, 400: true, 403: true, 405: true, 413: true, 415: true, 500: true, 503: true}

// fuzzMode selects the merchant code around the handler; its bits are
// decoded by FuzzNotificationHandler.
type fuzzMode uint8

const (
	fuzzCallbackMask fuzzMode = 3 // 0 nil, 1 error, 2 Permanent, 3 panic
	fuzzVerifyPend   fuzzMode = 4 // a verifier that always reports pending
	fuzzVerifyFail   fuzzMode = 8 // a failing verifier (with fuzzVerifyPend: panicking)
	fuzzForbidden    fuzzMode = 16
	fuzzModes                 = 32
)

// fuzzProbe travels in the request context to see what the callback got.
type fuzzProbe struct {
	calls int
	ev    cofidis.Event
}

type fuzzProbeKey struct{}

// fuzzHandlers builds one handler per mode, once: building them per input
// would dominate the fuzzing time.
var fuzzHandlers = sync.OnceValue(func() []http.Handler {
	hs := make([]http.Handler, fuzzModes)
	for m := range fuzzMode(fuzzModes) {
		opts := []cofidis.Option{cofidis.WithLogger(fuzzLogger)}
		switch {
		case m&fuzzVerifyPend != 0 && m&fuzzVerifyFail != 0:
			opts = append(opts, cofidis.WithVerifier(cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				panic("verifier bug")
			})))
		case m&fuzzVerifyPend != 0:
			opts = append(opts, cofidis.WithVerifier(cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				return cofidis.StatusPending, nil
			})))
		case m&fuzzVerifyFail != 0:
			opts = append(opts, cofidis.WithVerifier(cofidis.VerifierFunc(func(context.Context, cofidis.TransactionKey) (cofidis.Status, error) {
				return "", errors.New("getStatus down")
			})))
		}
		if m&fuzzForbidden != 0 {
			opts = append(opts, cofidis.WithAllowedSources("198.51.100.0/24"))
		}
		outcome := m & fuzzCallbackMask
		rt, err := buildRouter(channelURLs(), func(http.ResponseWriter, *http.Request, cofidis.Event) error {
			panic("a notification route dispatched a redirect")
		}, func(ctx context.Context, ev cofidis.Event) error {
			p := ctx.Value(fuzzProbeKey{}).(*fuzzProbe)
			p.calls++
			p.ev = ev
			switch outcome {
			case 1:
				return errors.New("try again")
			case 2:
				return cofidis.Permanent(errors.New("unknown order"))
			case 3:
				panic("callback bug")
			}
			return nil
		}, opts...)
		if err != nil {
			panic(err)
		}
		hs[m] = routeFor(rt, cofidis.EndpointNotificationOther)
	}
	return hs
})

// fuzzLogger writes JSON into fuzzLogBuf, which each input checks and
// resets; fuzz inputs run one at a time in a worker.
var (
	fuzzLogBuf bytes.Buffer
	fuzzLogger = slog.New(slog.NewJSONHandler(&fuzzLogBuf, nil))
)

// FuzzNotificationHandler drives the whole handler with arbitrary methods,
// content types, bodies and merchant behaviours. The answer is always one
// of the documented statuses, exactly the one the documented rules give
// (checked against Parser.ParseRequest as an oracle), with a body that is
// only the status text; the callback runs only for a dispatched request;
// every log line stays one well-formed JSON object.
func FuzzNotificationHandler(f *testing.F) {
	for _, b := range fuzzSeedBodies(f) {
		f.Add(http.MethodPost, hostileFormType, b, uint8(0))
	}
	for m := range uint8(fuzzModes) {
		f.Add(http.MethodPost, hostileFormType, []byte(hostileBody), m)
	}
	f.Add(http.MethodGet, "", []byte(nil), uint8(0))
	f.Add("PROPFIND", "text/plain", []byte(hostileBody), uint8(5))
	f.Add(http.MethodPost, "multipart/form-data; boundary=x", []byte(hostileBody), uint8(0))
	f.Add(http.MethodPost, hostileFormType, []byte("transactionKey="+hostileKey+"&transactionStatus=Undefined"), uint8(4))
	f.Add(http.MethodPost, hostileFormType, []byte("transactionKey="+hostileKey+"&transactionStatus=to_confirm"), uint8(4))
	oracle := cofidis.NewParser(0)

	f.Fuzz(func(t *testing.T, method, contentType string, body []byte, mode uint8) {
		m := fuzzMode(mode) % fuzzModes
		newReq := func() *http.Request {
			r, err := http.NewRequest(method, "http://shop.example/cofidis/notify", bytes.NewReader(body))
			if err != nil {
				return nil
			}
			r.Header.Set("Content-Type", contentType)
			r.RemoteAddr = "192.0.2.10:40000"
			return r
		}
		r := newReq()
		if r == nil {
			return // not a method net/http can carry
		}
		probe := new(fuzzProbe)
		r = r.WithContext(context.WithValue(r.Context(), fuzzProbeKey{}, probe))
		fuzzLogBuf.Reset()
		w := httptest.NewRecorder()
		fuzzHandlers()[m].ServeHTTP(w, r)

		require.True(t, fuzzDocumentedStatuses[w.Code], "undocumented status %d", w.Code)
		require.Equal(t, answerBody(w.Code), w.Body.String())
		require.Equal(t, w.Code == http.StatusMethodNotAllowed, w.Header().Get("Allow") == http.MethodPost)
		sc := bufio.NewScanner(bytes.NewReader(fuzzLogBuf.Bytes()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			require.True(t, json.Valid(sc.Bytes()), "a log line was broken: %q", sc.Text())
		}

		cb, perr := oracle.ParseRequest(newReq())
		dispatch := false
		want := http.StatusOK
		switch {
		case m&fuzzForbidden != 0:
			want = http.StatusForbidden
		case perr != nil:
			want = cofidis.HTTPStatus(perr)
		case m&fuzzVerifyFail != 0:
			want = http.StatusServiceUnavailable
		case m&fuzzVerifyPend != 0 && cb.Status != cofidis.StatusPending:
			// Stale (acknowledged, not dispatched) when pending is further
			// along; otherwise unconfirmed.
			if c := cb.Status.Rank(); c == 0 || c >= cofidis.StatusPending.Rank() {
				want = http.StatusServiceUnavailable
			}
		default:
			dispatch = true
			if o := m & fuzzCallbackMask; o == 1 || o == 3 {
				want = http.StatusInternalServerError
			}
		}
		require.Equal(t, want, w.Code)
		if !dispatch {
			require.Zero(t, probe.calls, "the callback ran for a request that is not dispatched")
			return
		}
		require.Equal(t, 1, probe.calls)
		require.Equal(t, cb, probe.ev.Callback)
		require.Equal(t, cofidis.ChannelNotification, probe.ev.Channel)
		require.Equal(t, m&fuzzVerifyPend != 0, probe.ev.Verified)
		fuzzCheckAccepted(t, probe.ev.Callback)
	})
}
