package cofidis_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// The tests exercise each channel through a Router, the only constructor.
// channelURLs gives the three notification URLs one path and the two
// return URLs another, so that the handler of each path serves one channel
// and expects every known status, as a receiver built for "any URL of the
// channel" would.
const (
	testNotifyURL = "https://shop.example/pay/notify"
	testReturnURL = "https://shop.example/pay/return"
)

// channelURLs is the URL set described above.
func channelURLs() cofidis.URLs {
	var u cofidis.URLs
	for _, e := range cofidis.Endpoints() {
		if e.Channel() == cofidis.ChannelRedirect {
			u.Set(e, testReturnURL)
		} else {
			u.Set(e, testNotifyURL)
		}
	}
	return u
}

// notificationEndpoints is the Endpoints of an event received on the
// notification path of channelURLs.
var notificationEndpoints = cofidis.EndpointSet(0).
	Add(cofidis.EndpointNotificationSuccess).
	Add(cofidis.EndpointNotificationPending).
	Add(cofidis.EndpointNotificationOther)

// buildRouter is cofidis.NewRouter with WithInsecureSkipVerify added unless
// opts hold a Verifier: most tests are about something else than proof.
func buildRouter(urls cofidis.URLs, onRedirect cofidis.RedirectFunc, onNotification cofidis.NotificationFunc, opts ...cofidis.Option) (*cofidis.Router, error) {
	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification,
		append(opts[:len(opts):len(opts)], cofidis.WithInsecureSkipVerify())...)
	if err != nil && strings.Contains(err.Error(), "WithInsecureSkipVerify: given with WithVerifier") {
		return cofidis.NewRouter(urls, onRedirect, onNotification, opts...)
	}
	return rt, err
}

// routeHandler returns the handler of the route that serves e. It matches
// query elements but not the path, so requests may use any path.
func routeHandler(tb testing.TB, rt *cofidis.Router, e cofidis.Endpoint) http.Handler {
	tb.Helper()
	h := routeFor(rt, e)
	if h == nil {
		tb.Fatalf("no route serves %s", e)
	}
	return h
}

// routeFor is routeHandler for code without a testing.TB; nil when no
// route serves e.
func routeFor(rt *cofidis.Router, e cofidis.Endpoint) http.Handler {
	for _, r := range rt.Routes() {
		if r.Endpoints.Has(e) {
			return r.Handler
		}
	}
	return nil
}

// notifier returns the notification handler of a Router on channelURLs
// whose notification callback is fn (and whose redirect callback fails the
// test).
func notifier(tb testing.TB, fn cofidis.NotificationFunc, opts ...cofidis.Option) http.Handler {
	tb.Helper()
	rt, err := buildRouter(channelURLs(), unexpectedRedirect(tb), fn, opts...)
	require.NoError(tb, err)
	return routeHandler(tb, rt, cofidis.EndpointNotificationOther)
}

// redirector returns the redirect handler of a Router on channelURLs whose
// redirect callback is fn.
func redirector(tb testing.TB, fn cofidis.RedirectFunc, opts ...cofidis.Option) http.Handler {
	tb.Helper()
	rt, err := buildRouter(channelURLs(), fn, nopNotification, opts...)
	require.NoError(tb, err)
	return routeHandler(tb, rt, cofidis.EndpointReturnOther)
}

func unexpectedRedirect(tb testing.TB) cofidis.RedirectFunc {
	return func(http.ResponseWriter, *http.Request, cofidis.Event) error {
		tb.Error("unexpected redirect dispatch")
		return nil
	}
}

// nopNotification is a notification callback that accepts everything.
func nopNotification(context.Context, cofidis.Event) error { return nil }

// testURLs are five distinct URLs, as NewURLs builds them.
func testURLs(tb testing.TB) cofidis.URLs {
	tb.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	require.NoError(tb, err)
	return urls
}

// notifierAt returns the handler of notification URL e of a Router on
// testURLs whose notification callback is fn.
func notifierAt(tb testing.TB, e cofidis.Endpoint, fn cofidis.NotificationFunc, opts ...cofidis.Option) http.Handler {
	tb.Helper()
	rt, err := buildRouter(testURLs(tb), unexpectedRedirect(tb), fn, opts...)
	require.NoError(tb, err)
	return routeHandler(tb, rt, e)
}

// redirectorAt returns the handler of return URL e of a Router on testURLs
// whose redirect callback is fn.
func redirectorAt(tb testing.TB, e cofidis.Endpoint, fn cofidis.RedirectFunc, opts ...cofidis.Option) http.Handler {
	tb.Helper()
	rt, err := buildRouter(testURLs(tb), fn, nopNotification, opts...)
	require.NoError(tb, err)
	return routeHandler(tb, rt, e)
}
