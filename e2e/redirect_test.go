package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// returnEndpoints is the set a browser's request to five identical URLs is
// narrowed to: both return URLs.
var returnEndpoints = cofidis.EndpointSet(0).Add(cofidis.EndpointReturnSuccess).Add(cofidis.EndpointReturnOther)

// TestReturnJourneys plays journeys that end on Cofidis' page and come back
// to the merchant's return URL, in a real browser: a script-submitted,
// top-level, cross-site form POST, answered 303 See Other to the order page.
func TestReturnJourneys(t *testing.T) {
	browser := newBrowser(t)
	site := newCofidisSite(t)

	tests := []struct {
		name     string
		cfg      merchantConfig
		order    string
		endpoint cofidis.Endpoint // the per-order URL the journey page posts to
		status   cofidis.Status
		sentID   string // merchantTransactionId on the journey page
		charset  string

		// What the browser ends up showing.
		wantPath  string // path and query on the merchant's site
		wantCheck bool   // the order page says it asks getStatus (the library's error path)
		// What the redirect callback receives; none when rejected.
		wantEndpoints cofidis.EndpointSet
		wantInferred  bool
		wantID        string // merchantTransactionId as decoded
		// What the OnError hooks receive when the library rejects the POST.
		wantRejection error
		wantField     string
	}{
		{
			name: "accepted journey to returnUrlSuccess", cfg: readme, order: "A-1",
			endpoint: cofidis.EndpointReturnSuccess, status: cofidis.StatusToConfirm, sentID: "2YgKoUd4DB", charset: utf8Charset,
			wantPath:      "/orders/A-1",
			wantEndpoints: cofidis.EndpointSet(0).Add(cofidis.EndpointReturnSuccess), wantID: "2YgKoUd4DB",
		},
		{
			name: "refused journey to returnUrlOther", cfg: readme, order: "A-2",
			endpoint: cofidis.EndpointReturnOther, status: cofidis.StatusRefused, sentID: "bq8pgQgzwj", charset: utf8Charset,
			wantPath:      "/orders/A-2",
			wantEndpoints: cofidis.EndpointSet(0).Add(cofidis.EndpointReturnOther), wantID: "bq8pgQgzwj",
		},
		{
			// The browser's real headers make the channel a redirect.
			name: "five identical URLs", cfg: merchantConfig{identical: true}, order: "A-3",
			endpoint: cofidis.EndpointReturnSuccess, status: cofidis.StatusToConfirm, sentID: "Al2JggxqDa", charset: utf8Charset,
			wantPath:      "/orders/A-3",
			wantEndpoints: returnEndpoints, wantInferred: true, wantID: "Al2JggxqDa",
		},
		{
			name: "UTF-8 journey page, non-ASCII merchantTransactionId", cfg: readme, order: "A-4",
			endpoint: cofidis.EndpointReturnSuccess, status: cofidis.StatusToConfirm, sentID: "Café", charset: utf8Charset,
			wantPath:      "/orders/A-4",
			wantEndpoints: cofidis.EndpointSet(0).Add(cofidis.EndpointReturnSuccess), wantID: "Café",
		},
		{
			// The page posts é as %E9, not UTF-8: the library rejects the
			// POST and WithRedirectError sends the customer to the order
			// named by the return URL's own query element.
			name: "windows-1252 journey page, non-ASCII merchantTransactionId", cfg: readme, order: "A-5",
			endpoint: cofidis.EndpointReturnSuccess, status: cofidis.StatusToConfirm, sentID: "Café", charset: windows1252,
			wantPath: "/orders/A-5?check=1", wantCheck: true,
			wantRejection: cofidis.ErrInvalidField, wantField: "transactionKey.merchantTransactionId",
		},
		{
			// A character windows-1252 cannot encode is posted as the
			// text "&#321;": valid UTF-8, accepted, silently not the id
			// the merchant sent (the README's reason to keep it ASCII).
			name: "windows-1252 journey page, character outside windows-1252", cfg: readme, order: "A-6",
			endpoint: cofidis.EndpointReturnSuccess, status: cofidis.StatusToConfirm, sentID: "Łukasz", charset: windows1252,
			wantPath:      "/orders/A-6",
			wantEndpoints: cofidis.EndpointSet(0).Add(cofidis.EndpointReturnSuccess), wantID: "&#321;ukasz",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMerchant(t, tt.cfg)
			action := m.orderURLs(tt.order).Get(tt.endpoint)
			journeyURL := site.add(t, journey{action: action, key: testKey(tt.sentID), status: tt.status, charset: tt.charset})

			got := visit(t, newTab(t, browser), journeyURL)

			// What the browser shows.
			assert.Equal(t, m.base+tt.wantPath, got.URL)
			assert.Contains(t, got.Text, "Order "+tt.order)
			assert.Equal(t, tt.wantCheck, strings.Contains(got.Text, "asking Cofidis"), "order page reached through the error path: %q", got.Text)

			// What the merchant's server saw: the POST answered 303, the
			// order page fetched with GET.
			exchanges, redirects, notifications, rejections, _ := m.seen()
			require.Len(t, exchanges, 2, "exchanges: %v", exchanges)
			checkBrowserPost(t, exchanges[0], site.origin(), requestURI(t, action))
			assert.Equal(t, http.StatusSeeOther, exchanges[0].Status, "the return URL's answer")
			assert.Equal(t, http.MethodGet+" "+tt.wantPath+" 200", exchanges[1].String(), "the page after the redirect")
			assert.Empty(t, notifications, "notification callback")

			// What the redirect callback received.
			if tt.wantRejection != nil {
				assert.Empty(t, redirects, "redirect callback")
				require.Len(t, rejections, 1)
				assert.ErrorIs(t, rejections[0], tt.wantRejection)
				assert.Equal(t, tt.wantField, errorField(rejections[0]))
				return
			}
			assert.Empty(t, rejections)
			require.Len(t, redirects, 1, "redirect callback")
			ev := redirects[0]
			assert.Equal(t, cofidis.ChannelRedirect, ev.Channel)
			assert.Equal(t, tt.wantInferred, ev.ChannelInferred, "ChannelInferred")
			assert.Equal(t, tt.wantEndpoints, ev.Endpoints, "Endpoints: %v", ev.Endpoints)
			assert.Equal(t, tt.status, ev.Status)
			assert.Equal(t, string(tt.status), ev.RawStatus)
			assert.Equal(t, testKey(tt.wantID), ev.TransactionKey)
			assert.Equal(t, tt.order, ev.Query().Get(orderParameter))
			assert.False(t, ev.Verified, "a redirect without a Verifier")
			assert.False(t, ev.Unexpected, "Unexpected")
		})
	}
}

// TestCrossOriginControls are the negative controls: cross-site POSTs from
// the same kind of page that must not reach the merchant's code.
func TestCrossOriginControls(t *testing.T) {
	browser := newBrowser(t)
	site := newCofidisSite(t)
	const copRefusal = "cross-origin request detected from Sec-Fetch-Site header"

	tests := []struct {
		name   string
		cfg    merchantConfig
		target func(m *merchant) string // the URL the page posts to
		// What the browser shows: the 403's text.
		wantText string
		// The rejection the Router's OnError hooks receive; none when
		// http.CrossOriginProtection refused the POST before the Router.
		wantRejection error
	}{
		{
			name:     "return URL without the exemption",
			cfg:      merchantConfig{noExemption: true},
			target:   func(m *merchant) string { return m.orderURLs("B-1").ReturnURLSuccess },
			wantText: copRefusal,
		},
		{
			name:     "another POST route of the shop, exemption in place",
			cfg:      readme,
			target:   func(m *merchant) string { return m.base + "/account/delete" },
			wantText: copRefusal,
		},
		{
			name:     "notification URL behind the README's configuration",
			cfg:      readme,
			target:   func(m *merchant) string { return m.orderURLs("B-3").NotificationURLSuccess },
			wantText: copRefusal,
		},
		{
			// Without http.CrossOriginProtection in front (a merchant who
			// skipped it), the Router refuses the browser itself.
			name:          "notification URL, Router without CrossOriginProtection",
			cfg:           merchantConfig{unprotected: true},
			target:        func(m *merchant) string { return m.orderURLs("B-4").NotificationURLSuccess },
			wantText:      "Forbidden",
			wantRejection: cofidis.ErrBrowserRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMerchant(t, tt.cfg)
			target := tt.target(m)
			journeyURL := site.add(t, journey{action: target, key: testKey("2YgKoUd4DB"), status: cofidis.StatusToConfirm, charset: utf8Charset})

			got := visit(t, newTab(t, browser), journeyURL)

			assert.Equal(t, target, got.URL)
			assert.Equal(t, tt.wantText, strings.TrimSpace(got.Text))

			exchanges, redirects, notifications, rejections, accountPosts := m.seen()
			require.Len(t, exchanges, 1, "exchanges: %v", exchanges)
			checkBrowserPost(t, exchanges[0], site.origin(), requestURI(t, target))
			assert.Equal(t, http.StatusForbidden, exchanges[0].Status)
			assert.Empty(t, redirects, "redirect callback")
			assert.Empty(t, notifications, "notification callback")
			assert.Zero(t, accountPosts, "the shop's own POST handler")
			if tt.wantRejection == nil {
				assert.Empty(t, rejections, "the Router was never reached")
				return
			}
			require.Len(t, rejections, 1)
			assert.ErrorIs(t, rejections[0], tt.wantRejection)
		})
	}
}

// TestSessionCookies shows which of the shop's session cookies come with
// the cross-site POST to the return URL, and which with the order page the
// 303 leads to. The cookies are set on the merchant's site (a sign-in page)
// just before the journey.
//
// Observed with Debian's Chromium:
//
//   - SameSite=Lax: not on the POST (a cross-site POST is not a "safe"
//     top-level navigation); back on the order page (a top-level GET).
//   - SameSite=Strict: on neither: the GET after the 303 belongs to a chain
//     of navigations that another site started.
//   - no SameSite attribute: on the POST *and* the order page. Chrome treats
//     it as Lax, but lets it ride a top-level cross-site POST during the two
//     minutes after it was set ("Lax-allowing-unsafe"). A test always runs
//     within those two minutes; a customer who took longer than two minutes
//     on Cofidis' pages (every real one) comes back without it.
//   - SameSite=None; Secure: on both (localhost counts as a secure context,
//     as HTTPS does in production).
//
// Hence the README: find the order from the transaction key and the URL's
// own query elements, never from the session.
func TestSessionCookies(t *testing.T) {
	browser := newBrowser(t)
	site := newCofidisSite(t)
	m := newMerchant(t, readme)
	tab := newTab(t, browser)

	signedIn := visit(t, tab, m.base+"/signin")
	require.Equal(t, m.base+"/signin", signedIn.URL)

	action := m.orderURLs("C-1").ReturnURLSuccess
	journeyURL := site.add(t, journey{action: action, key: testKey("2YgKoUd4DB"), status: cofidis.StatusToConfirm, charset: utf8Charset})
	got := visit(t, tab, journeyURL)
	require.Equal(t, m.base+"/orders/C-1", got.URL)

	exchanges, redirects, _, _, _ := m.seen()
	require.Len(t, exchanges, 3, "exchanges: %v", exchanges)
	post, orderPage := exchanges[1], exchanges[2]
	checkBrowserPost(t, post, site.origin(), requestURI(t, action))
	assert.Equal(t, http.StatusSeeOther, post.Status)
	assert.Equal(t, "GET /orders/C-1 200", orderPage.String())
	require.Len(t, redirects, 1, "redirect callback")

	onPost := cookieNames(post.Header)
	onOrderPage := cookieNames(orderPage.Header)
	// The order page prints what it received: the browser shows the same.
	assert.Contains(t, got.Text, "cookies: "+strings.Join(onOrderPage, " "))

	tests := []struct {
		cookie          string
		wantOnPost      bool
		wantOnOrderPage bool
	}{
		{cookie: "lax", wantOnPost: false, wantOnOrderPage: true},
		{cookie: "strict", wantOnPost: false, wantOnOrderPage: false},
		{cookie: "plain", wantOnPost: true, wantOnOrderPage: true}, // Lax-allowing-unsafe: set less than two minutes ago
		{cookie: "none", wantOnPost: true, wantOnOrderPage: true},
	}
	for _, tt := range tests {
		t.Run(tt.cookie, func(t *testing.T) {
			assert.Equal(t, tt.wantOnPost, slices.Contains(onPost, tt.cookie), "on the cross-site POST (cookies: %v)", onPost)
			assert.Equal(t, tt.wantOnOrderPage, slices.Contains(onOrderPage, tt.cookie), "on the order page after the 303 (cookies: %v)", onOrderPage)
		})
	}
}

// checkBrowserPost checks the request the browser posted from the journey
// page, and logs the headers that the library and
// http.CrossOriginProtection read.
func checkBrowserPost(t *testing.T, x exchange, origin, uri string) {
	t.Helper()
	var b strings.Builder
	for _, h := range []string{"Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User", "Content-Type", "Accept", "Cookie"} {
		fmt.Fprintf(&b, "\n  %s: %q", h, x.Header.Get(h))
	}
	t.Logf("the browser's %s %s:%s", x.Method, x.URI, b.String())
	assert.Equal(t, http.MethodPost, x.Method)
	assert.Equal(t, uri, x.URI)
	assert.Equal(t, origin, x.Header.Get("Origin"))
	assert.Equal(t, "cross-site", x.Header.Get("Sec-Fetch-Site"))
	assert.Equal(t, "navigate", x.Header.Get("Sec-Fetch-Mode"))
	assert.Equal(t, "document", x.Header.Get("Sec-Fetch-Dest"))
	// No charset parameter: the receiver cannot tell the page's charset.
	assert.Equal(t, "application/x-www-form-urlencoded", x.Header.Get("Content-Type"))
}

// requestURI is the path and query of rawURL, as the server sees them.
func requestURI(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return u.RequestURI()
}

// cookieNames lists the names of the cookies of a request's headers, sorted
// as the order page prints them.
func cookieNames(h http.Header) []string {
	var names []string
	for _, c := range (&http.Request{Header: h}).Cookies() {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}
