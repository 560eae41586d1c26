package cofidis_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/stretchr/testify/require"
)

// fuzzRouterProbe records the last dispatched event; inputs run one at a
// time in a fuzz worker.
type fuzzRouterProbe struct {
	calls int
	ev    cofidis.Event
}

type fuzzRouter struct {
	urls  cofidis.URLs
	rt    *cofidis.Router
	probe *fuzzRouterProbe
}

// fuzzRouters builds a Router over five distinct URLs and one over five
// identical URLs with a query element (channel inferred from headers).
var fuzzRouters = sync.OnceValue(func() []fuzzRouter {
	distinct, err := cofidis.NewURLs("https://shop.example/pay?shop=1")
	if err != nil {
		panic(err)
	}
	var same cofidis.URLs
	for _, e := range cofidis.Endpoints() {
		same.Set(e, "https://shop.example/cb/%C3%A9?k=1&k=2")
	}
	var out []fuzzRouter
	for _, urls := range []cofidis.URLs{distinct, same} {
		p := new(fuzzRouterProbe)
		rt, err := buildRouter(urls,
			func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
				p.calls++
				p.ev = ev
				return cofidis.SeeOther(w, r, "/done")
			},
			func(_ context.Context, ev cofidis.Event) error {
				p.calls++
				p.ev = ev
				return nil
			},
			cofidis.WithLogger(fuzzLogger))
		if err != nil {
			panic(err)
		}
		out = append(out, fuzzRouter{urls: urls, rt: rt, probe: p})
	}
	return out
})

// FuzzRouter sends arbitrary request targets and browser headers to a
// Router. It must never panic; it answers 404 for what matches no URL, 303
// from the redirect callback, or one of the notification handler's statuses;
// and what it dispatches matches matchURLs and is posted to endpoints of a
// single channel.
func FuzzRouter(f *testing.F) {
	for _, target := range []string{
		"/pay/cofidis/notify/pending?shop=1", "/pay/cofidis/return/success?shop=1&order=7",
		"/pay/cofidis/notify/pending", "/pay/cofidis/notify/pending/?shop=1", "/pay/cofidis/notify/%70ending?shop=1",
		"/cb/%C3%A9?k=2&k=1", "/cb/%c3%a9?k=1&k=2", "/cb/é?k=1&k=2", "/cb/%C3%A9?k=1", "//cb/%C3%A9?k=1&k=2",
		"/pay/cofidis/notify/pending?shop=1;shop=2", "/pay/cofidis/notify/pending?shop=%zz", "*",
	} {
		for _, nav := range []string{"", "navigate"} {
			f.Add(uint8(0), target, nav, "text/html", []byte(hostileBody))
			f.Add(uint8(1), target, nav, "*/*", []byte(hostileBody))
		}
	}

	f.Fuzz(func(t *testing.T, which uint8, target, fetchMode, accept string, body []byte) {
		fr := fuzzRouters()[int(which)%2]
		r, err := http.NewRequest(http.MethodPost, "http://shop.example"+target, bytes.NewReader(body))
		if err != nil {
			return // not a target net/http can carry
		}
		r.Header.Set("Content-Type", hostileFormType)
		if fetchMode != "" {
			r.Header.Set("Sec-Fetch-Mode", fetchMode)
		}
		r.Header.Set("Accept", accept)
		fr.probe.calls = 0
		w := httptest.NewRecorder()
		fr.rt.ServeHTTP(w, r)

		matched := matchURLs(fr.urls, r.URL.EscapedPath(), r.URL.Query())
		switch {
		case w.Code == http.StatusNotFound:
			require.Zero(t, fr.probe.calls)
			return
		case w.Code == http.StatusSeeOther:
			require.Equal(t, 1, fr.probe.calls)
			require.Equal(t, cofidis.ChannelRedirect, fr.probe.ev.Channel)
		case w.Code == http.StatusOK && fr.probe.calls == 1:
			require.Equal(t, cofidis.ChannelNotification, fr.probe.ev.Channel)
		default:
			require.True(t, fuzzDocumentedStatuses[w.Code] || w.Code < 400,
				"undocumented status %d", w.Code)
			require.Zero(t, fr.probe.calls)
			return
		}
		ev := fr.probe.ev
		require.NotZero(t, ev.Endpoints.Len(), "a dispatched event names its endpoints")
		require.Equal(t, ev.Endpoints, ev.Endpoints&matched, "the router dispatched to URLs that matchURLs does not match")
		ch, ok := ev.Endpoints.Channel()
		require.True(t, ok, "the endpoints of one event share a channel")
		require.Equal(t, ev.Channel, ch)
		require.Equal(t, r.URL.RawQuery, ev.RawQuery)
		fuzzCheckAccepted(t, ev.Callback)
	})
}

// matchURLs is the reference the Router's matching is fuzzed against,
// written the plainest way: the endpoints whose URL has the request's path
// (compared segment by segment after unescaping; "" is "/") and whose query
// elements (key and each value) are all in the request's query.
func matchURLs(urls cofidis.URLs, path string, query url.Values) cofidis.EndpointSet {
	segments := func(escaped string) ([]string, bool) {
		if escaped == "" {
			escaped = "/"
		}
		segs := strings.Split(escaped, "/")
		for i, s := range segs {
			un, err := url.PathUnescape(s)
			if err != nil {
				return nil, false
			}
			segs[i] = un
		}
		return segs, true
	}
	want, ok := segments(path)
	if !ok {
		return 0
	}
	var set cofidis.EndpointSet
	for _, e := range cofidis.Endpoints() {
		p, err := url.Parse(urls.Get(e))
		if err != nil {
			continue
		}
		got, ok := segments(p.EscapedPath())
		if !ok || !slices.Equal(got, want) {
			continue
		}
		contained := true
		for k, vs := range p.Query() {
			for _, v := range vs {
				contained = contained && slices.Contains(query[k], v)
			}
		}
		if contained {
			set = set.Add(e)
		}
	}
	return set
}
