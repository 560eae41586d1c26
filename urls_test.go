package cofidis_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cofidis-go/cofidis"
)

// distinctURLs returns a valid set of five distinct URLs on host.
func distinctURLs(host string) cofidis.URLs {
	return cofidis.URLs{
		ReturnURLSuccess:       "https://" + host + "/cofidis/return/success",
		ReturnURLOther:         "https://" + host + "/cofidis/return/other",
		NotificationURLSuccess: "https://" + host + "/cofidis/notify/success",
		NotificationURLPending: "https://" + host + "/cofidis/notify/pending",
		NotificationURLOther:   "https://" + host + "/cofidis/notify/other",
	}
}

// sameURLs returns a set whose five URLs are raw.
func sameURLs(raw string) cofidis.URLs {
	var u cofidis.URLs
	for _, e := range cofidis.Endpoints() {
		u.Set(e, raw)
	}
	return u
}

// with returns u with the URL of e replaced.
func with(u cofidis.URLs, e cofidis.Endpoint, raw string) cofidis.URLs {
	u.Set(e, raw)
	return u
}

func TestEndpoint(t *testing.T) {
	t.Parallel()

	t.Run("lists the five endpoints in documented order in a fresh slice", func(t *testing.T) {
		t.Parallel()
		want := []cofidis.Endpoint{
			cofidis.EndpointReturnSuccess, cofidis.EndpointReturnOther,
			cofidis.EndpointNotificationSuccess, cofidis.EndpointNotificationPending,
			cofidis.EndpointNotificationOther,
		}
		got := cofidis.Endpoints()
		assert.Equal(t, want, got)
		got[0] = cofidis.EndpointUnknown
		assert.Equal(t, want, cofidis.Endpoints(), "callers must not be able to change the list")
	})

	t.Run("names each endpoint by its technicalData field and channel", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			e       cofidis.Endpoint
			name    string
			channel cofidis.Channel
		}{
			{cofidis.EndpointUnknown, "unknown", cofidis.ChannelUnknown},
			{cofidis.EndpointReturnSuccess, "returnUrlSuccess", cofidis.ChannelRedirect},
			{cofidis.EndpointReturnOther, "returnUrlOther", cofidis.ChannelRedirect},
			{cofidis.EndpointNotificationSuccess, "notificationUrlSuccess", cofidis.ChannelNotification},
			{cofidis.EndpointNotificationPending, "notificationUrlPending", cofidis.ChannelNotification},
			{cofidis.EndpointNotificationOther, "notificationUrlOther", cofidis.ChannelNotification},
			{cofidis.Endpoint(42), "Endpoint(42)", cofidis.ChannelUnknown},
		}
		for _, tt := range tests {
			assert.Equal(t, tt.name, tt.e.String())
			assert.Equal(t, tt.channel, tt.e.Channel(), tt.name)
		}
	})

	t.Run("names channels for logs", func(t *testing.T) {
		t.Parallel()
		assert.Equal(t, "unknown", cofidis.ChannelUnknown.String())
		assert.Equal(t, "redirect", cofidis.ChannelRedirect.String())
		assert.Equal(t, "notification", cofidis.ChannelNotification.String())
		assert.Equal(t, "Channel(9)", cofidis.Channel(9).String())
	})
}

func TestEndpointSet(t *testing.T) {
	t.Parallel()

	t.Run("the zero value is the empty set", func(t *testing.T) {
		t.Parallel()
		var s cofidis.EndpointSet
		assert.Zero(t, s.Len())
		assert.Nil(t, s.Endpoints())
		_, ok := s.Single()
		assert.False(t, ok)
		_, ok = s.Channel()
		assert.False(t, ok)
		assert.Equal(t, "none", s.String())
	})

	t.Run("holds a single endpoint", func(t *testing.T) {
		t.Parallel()
		s := cofidis.EndpointSet(0).Add(cofidis.EndpointNotificationPending)
		assert.True(t, s.Has(cofidis.EndpointNotificationPending))
		assert.False(t, s.Has(cofidis.EndpointNotificationOther))
		assert.Equal(t, 1, s.Len())
		e, ok := s.Single()
		assert.True(t, ok)
		assert.Equal(t, cofidis.EndpointNotificationPending, e)
		ch, ok := s.Channel()
		assert.True(t, ok)
		assert.Equal(t, cofidis.ChannelNotification, ch)
		assert.Equal(t, "notificationUrlPending", s.String())
	})

	t.Run("every endpoint is a single of its own", func(t *testing.T) {
		t.Parallel()
		for _, e := range cofidis.Endpoints() {
			got, ok := cofidis.EndpointSet(0).Add(e).Single()
			assert.True(t, ok, e.String())
			assert.Equal(t, e, got)
		}
	})

	t.Run("lists several endpoints in documented order whatever the order of Add", func(t *testing.T) {
		t.Parallel()
		s := cofidis.EndpointSet(0).
			Add(cofidis.EndpointNotificationOther).
			Add(cofidis.EndpointReturnOther).
			Add(cofidis.EndpointReturnOther)
		assert.Equal(t, 2, s.Len())
		assert.Equal(t, []cofidis.Endpoint{cofidis.EndpointReturnOther, cofidis.EndpointNotificationOther}, s.Endpoints())
		_, ok := s.Single()
		assert.False(t, ok)
		assert.Equal(t, "returnUrlOther|notificationUrlOther", s.String())
	})

	t.Run("reports a shared channel and none when channels mix", func(t *testing.T) {
		t.Parallel()
		redirects := cofidis.EndpointSet(0).Add(cofidis.EndpointReturnSuccess).Add(cofidis.EndpointReturnOther)
		ch, ok := redirects.Channel()
		assert.True(t, ok)
		assert.Equal(t, cofidis.ChannelRedirect, ch)

		mixed := redirects.Add(cofidis.EndpointNotificationOther)
		ch, ok = mixed.Channel()
		assert.False(t, ok)
		assert.Equal(t, cofidis.ChannelUnknown, ch)
	})

	t.Run("ignores EndpointUnknown and values outside the constants", func(t *testing.T) {
		t.Parallel()
		s := cofidis.EndpointSet(0).Add(cofidis.EndpointUnknown).Add(cofidis.Endpoint(6)).Add(cofidis.Endpoint(200))
		assert.Zero(t, s)
		assert.False(t, cofidis.EndpointSet(0xff).Has(cofidis.EndpointUnknown))
		assert.Equal(t, 5, cofidis.EndpointSet(0xff).Len())
	})
}

func TestExpects(t *testing.T) {
	t.Parallel()

	const (
		rs = cofidis.EndpointReturnSuccess
		ro = cofidis.EndpointReturnOther
		ns = cofidis.EndpointNotificationSuccess
		np = cofidis.EndpointNotificationPending
		no = cofidis.EndpointNotificationOther
	)
	// want lists, per status, the endpoints the documentation sends it to.
	tests := []struct {
		status cofidis.Status
		want   []cofidis.Endpoint
	}{
		{cofidis.StatusToConfirm, []cofidis.Endpoint{rs, ns, np}},
		{cofidis.StatusPending, []cofidis.Endpoint{ro, np}},
		{cofidis.StatusRefused, []cofidis.Endpoint{ro, np, no}},
		{cofidis.StatusAborted, []cofidis.Endpoint{ro, no}},
		{cofidis.StatusError, []cofidis.Endpoint{ro, no}},
		{cofidis.StatusValidated, []cofidis.Endpoint{ro, no}},
		{cofidis.StatusConfirmFailed, []cofidis.Endpoint{ro, no}},
		{"To_Confirm", []cofidis.Endpoint{rs, ns, np}},
		{"REFUSED", []cofidis.Endpoint{ro, np, no}},
		{"some_new_status", []cofidis.Endpoint{rs, ro, ns, np, no}},
		{"", []cofidis.Endpoint{rs, ro, ns, np, no}},
	}
	for _, tt := range tests {
		t.Run("sends "+string(tt.status)+" where the documentation does", func(t *testing.T) {
			t.Parallel()
			for _, e := range cofidis.Endpoints() {
				assert.Equal(t, contains(tt.want, e), e.Expects(tt.status), e.String())
			}
		})
	}

	t.Run("every known status is expected somewhere and to_confirm-free endpoints take all but to_confirm", func(t *testing.T) {
		t.Parallel()
		for _, s := range cofidis.Statuses() {
			all := cofidis.EndpointSet(0)
			for _, e := range cofidis.Endpoints() {
				all = all.Add(e)
			}
			assert.True(t, all.Expects(s), string(s))
			assert.Equal(t, s != cofidis.StatusToConfirm, ro.Expects(s), string(s))
		}
	})

	t.Run("an invalid endpoint and the empty set expect nothing", func(t *testing.T) {
		t.Parallel()
		assert.False(t, cofidis.EndpointUnknown.Expects(cofidis.StatusToConfirm))
		assert.False(t, cofidis.EndpointUnknown.Expects("some_new_status"))
		assert.False(t, cofidis.EndpointSet(0).Expects(cofidis.StatusToConfirm))
	})

	t.Run("a set expects what any member expects", func(t *testing.T) {
		t.Parallel()
		s := cofidis.EndpointSet(0).Add(rs).Add(no)
		assert.True(t, s.Expects(cofidis.StatusToConfirm))
		assert.True(t, s.Expects(cofidis.StatusRefused))
		assert.False(t, s.Expects(cofidis.StatusPending))
	})
}

func contains(es []cofidis.Endpoint, e cofidis.Endpoint) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

func TestURLsGetSet(t *testing.T) {
	t.Parallel()

	t.Run("gets and sets each URL by endpoint", func(t *testing.T) {
		t.Parallel()
		u := distinctURLs("shop.example")
		assert.Equal(t, u.ReturnURLSuccess, u.Get(cofidis.EndpointReturnSuccess))
		assert.Equal(t, u.ReturnURLOther, u.Get(cofidis.EndpointReturnOther))
		assert.Equal(t, u.NotificationURLSuccess, u.Get(cofidis.EndpointNotificationSuccess))
		assert.Equal(t, u.NotificationURLPending, u.Get(cofidis.EndpointNotificationPending))
		assert.Equal(t, u.NotificationURLOther, u.Get(cofidis.EndpointNotificationOther))

		u.Set(cofidis.EndpointNotificationPending, "https://shop.example/p")
		assert.Equal(t, "https://shop.example/p", u.NotificationURLPending)
	})

	t.Run("ignores EndpointUnknown", func(t *testing.T) {
		t.Parallel()
		u := distinctURLs("shop.example")
		before := u
		u.Set(cofidis.EndpointUnknown, "https://evil.example/")
		assert.Equal(t, before, u)
		assert.Empty(t, u.Get(cofidis.EndpointUnknown))
	})
}

func TestURLsJSON(t *testing.T) {
	t.Parallel()

	t.Run("marshals to the technicalData member names", func(t *testing.T) {
		t.Parallel()
		u := cofidis.URLs{
			ReturnURLSuccess:       "https://s.example/1",
			ReturnURLOther:         "https://s.example/2",
			NotificationURLSuccess: "https://s.example/3",
			NotificationURLPending: "https://s.example/4",
			NotificationURLOther:   "https://s.example/5",
		}
		b, err := json.Marshal(u)
		require.NoError(t, err)
		const golden = `{"returnUrlSuccess":"https://s.example/1","returnUrlOther":"https://s.example/2",` +
			`"notificationUrlSuccess":"https://s.example/3","notificationUrlPending":"https://s.example/4",` +
			`"notificationUrlOther":"https://s.example/5"}`
		assert.Equal(t, golden, string(b))

		var back cofidis.URLs
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, u, back)
	})
}

func TestURLsValidate(t *testing.T) {
	t.Parallel()

	const (
		rs = cofidis.EndpointReturnSuccess
		ro = cofidis.EndpointReturnOther
		ns = cofidis.EndpointNotificationSuccess
		np = cofidis.EndpointNotificationPending
		no = cofidis.EndpointNotificationOther
	)
	base := distinctURLs("shop.example.com")
	tests := []struct {
		name      string
		urls      cofidis.URLs
		opts      []cofidis.URLOption
		wantErr   error            // nil: valid
		wantField cofidis.Endpoint // the URL the (first) error names
	}{
		{name: "accepts five distinct https URLs on one host", urls: base},
		{name: "accepts five identical URLs", urls: sameURLs("https://shop.example.com/cofidis")},
		{name: "accepts the merchant's own query elements", urls: with(base, np, "https://shop.example.com/p?order=42&x=%2F")},
		{name: "accepts mixed-case hosts", urls: with(base, ro, "https://Shop.Example.COM/cofidis/return/other")},
		{name: "accepts an upper-case scheme", urls: with(base, ro, "HTTPS://shop.example.com/x")},
		{name: "accepts a trailing dot on the host", urls: with(base, ns, "https://shop.example.com./n")},
		{name: "accepts an IDN host against its punycode", urls: with(distinctURLs("bücher.example"), no, "https://xn--bcher-kva.example/o")},
		{name: "accepts a percent-encoded IDN host against its punycode", urls: with(distinctURLs("xn--bcher-kva.example"), ro, "https://b%C3%BCcher.example/o")},
		{name: "accepts an upper-case IDN host", urls: with(distinctURLs("bücher.example"), ro, "https://BÜCHER.example/o")},
		{name: "accepts the default port written out", urls: with(base, ro, "https://shop.example.com:443/o")},
		{name: "accepts an empty port as the default", urls: with(base, ro, "https://shop.example.com:/o")},
		{name: "accepts the same explicit port everywhere", urls: sameURLs("https://shop.example.com:8443/c")},
		{name: "accepts IPv6 literals written differently", urls: with(sameURLs("https://[2001:db8::1]/c"), no, "https://[2001:DB8:0:0:0:0:0:1]/c")},
		{name: "accepts IPv4 literals", urls: sameURLs("https://192.0.2.10/c")},
		{name: "accepts http on localhost with AllowHTTP", urls: sameURLs("http://localhost:8080/cofidis"), opts: []cofidis.URLOption{cofidis.AllowHTTP()}},
		{name: "accepts a nil option", urls: base, opts: []cofidis.URLOption{nil}},
		{name: "accepts a name with digits that is not a number", urls: sameURLs("https://shop.123abc/c")},
		{name: "accepts a name with 0x that is not a number", urls: sameURLs("https://shop.0xz/c")},

		{name: "rejects a missing returnUrlSuccess", urls: with(base, rs, ""), wantErr: cofidis.ErrMissingField, wantField: rs},
		{name: "rejects a missing notificationUrlPending", urls: with(base, np, ""), wantErr: cofidis.ErrMissingField, wantField: np},
		{name: "rejects http by default", urls: sameURLs("http://shop.example.com/c"), wantErr: cofidis.ErrInvalidURL, wantField: rs},
		{name: "rejects one http URL among https", urls: with(base, ns, "http://shop.example.com/n"), wantErr: cofidis.ErrInvalidURL, wantField: ns},
		{name: "rejects a scheme mix even with AllowHTTP", urls: with(base, ns, "http://shop.example.com:443/n"), opts: []cofidis.URLOption{cofidis.AllowHTTP()}, wantErr: cofidis.ErrDomainMismatch, wantField: ns},
		{name: "rejects ftp even with AllowHTTP", urls: with(base, ro, "ftp://shop.example.com/o"), opts: []cofidis.URLOption{cofidis.AllowHTTP()}, wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects javascript even with AllowHTTP", urls: with(base, ro, "javascript:alert(1)"), opts: []cofidis.URLOption{cofidis.AllowHTTP()}, wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a relative URL", urls: with(base, ro, "/cofidis/return/other"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a scheme-relative URL", urls: with(base, ro, "//shop.example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an opaque URL", urls: with(base, ro, "https:shop.example.com"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an unparsable URL", urls: with(base, ro, "https://shop.example.com/%zz"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a URL with spaces around it", urls: with(base, ro, " https://shop.example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects user-info", urls: with(base, ro, "https://user:pass@shop.example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an empty user-info", urls: with(base, ro, "https://@shop.example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a fragment", urls: with(base, no, "https://shop.example.com/o#top"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects an empty fragment", urls: with(base, no, "https://shop.example.com/o#"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects an empty path segment, which a ServeMux redirects", urls: with(base, no, "https://shop.example.com//cofidis/o"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects a doubled trailing slash", urls: with(base, no, "https://shop.example.com/o//"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects a dot segment", urls: with(base, no, "https://shop.example.com/a/./o"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects an escaped dot-dot segment", urls: with(base, no, "https://shop.example.com/a/%2E%2e/o"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects a raw space in the path", urls: with(base, no, "https://shop.example.com/my shop/o"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects a raw backslash in the path", urls: with(base, no, `https://shop.example.com/a\o`), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects a raw non-ASCII path", urls: with(base, no, "https://shop.example.com/café"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects a raw space in the query", urls: with(base, no, "https://shop.example.com/o?a=b c"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects a bad escape in the path", urls: with(base, no, "https://shop.example.com/o%zz"), wantErr: cofidis.ErrInvalidURL, wantField: no},
		{name: "rejects an empty host", urls: with(base, ro, "https:///o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a port without host", urls: with(base, ro, "https://:443/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects port 0", urls: with(base, ro, "https://shop.example.com:0/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a port above 65535", urls: with(base, ro, "https://shop.example.com:65536/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an invalid IDN", urls: with(base, ro, "https://xn--zz.example/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an empty label", urls: with(base, ro, "https://shop..example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects two trailing dots", urls: with(base, ro, "https://shop.example.com../o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a leading dot", urls: with(base, ro, "https://.shop.example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a host that is only a dot", urls: with(base, ro, "https://./o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an underscore in the host", urls: with(base, ro, "https://shop_fr.example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a label longer than 63 bytes", urls: with(base, ro, "https://"+strings.Repeat("a", 64)+".example.com/o"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an IPv4 shorthand", urls: with(sameURLs("https://127.0.0.1/c"), ro, "https://127.1/c"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a hexadecimal IPv4", urls: with(sameURLs("https://127.0.0.1/c"), ro, "https://0x7f.0.0.1/c"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a hexadecimal last label", urls: with(base, ro, "https://shop.0x1f/c"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a bare 0x last label", urls: with(base, ro, "https://shop.0x/c"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects an unparsable query", urls: with(base, ro, "https://shop.example.com/o?a=1;b=2"), wantErr: cofidis.ErrInvalidURL, wantField: ro},
		{name: "rejects a different subdomain", urls: with(base, ro, "https://www.shop.example.com/o"), wantErr: cofidis.ErrDomainMismatch, wantField: ro},
		{name: "rejects the parent domain", urls: with(distinctURLs("www.shop.example.com"), no, "https://shop.example.com/o"), wantErr: cofidis.ErrDomainMismatch, wantField: no},
		{name: "rejects a different TLD", urls: with(base, np, "https://shop.example.org/p"), wantErr: cofidis.ErrDomainMismatch, wantField: np},
		{name: "rejects a different port", urls: with(base, np, "https://shop.example.com:8443/p"), wantErr: cofidis.ErrDomainMismatch, wantField: np},
		{name: "rejects an explicit port that is not the default", urls: with(sameURLs("https://shop.example.com:443/c"), no, "https://shop.example.com:444/c"), wantErr: cofidis.ErrDomainMismatch, wantField: no},
		{name: "rejects a different IP address", urls: with(sameURLs("https://192.0.2.10/c"), ro, "https://192.0.2.11/c"), wantErr: cofidis.ErrDomainMismatch, wantField: ro},
		{name: "compares against the first valid URL when returnUrlSuccess is bad", urls: with(with(base, rs, "ftp://x"), ns, "https://other.example/n"), wantErr: cofidis.ErrInvalidURL, wantField: rs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.urls.Validate(tt.opts...)
			if tt.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.wantErr)
			var e *cofidis.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.wantField.String(), e.Field)
			assert.ErrorIs(t, e, tt.wantErr, "the first *Error carries the sentinel")
			assert.NotEmpty(t, e.Reason)
		})
	}

	t.Run("names the differing URL and what differs", func(t *testing.T) {
		t.Parallel()
		err := with(base, ro, "https://www.shop.example.com/o").Validate()
		var e *cofidis.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "host differs from returnUrlSuccess's", e.Reason)
		assert.Equal(t, "cofidis: URLs do not share one domain: returnUrlOther: host differs from returnUrlSuccess's", err.Error())

		err = with(base, ro, "https://shop.example.com:8443/o").Validate()
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "port differs from returnUrlSuccess's", e.Reason)

		err = with(with(base, rs, "ftp://shop.example.com/s"), ns, "https://other.example/n").Validate()
		assert.Equal(t, "cofidis: invalid URL: returnUrlSuccess: must use the https scheme (http only with AllowHTTP)\n"+
			"cofidis: URLs do not share one domain: notificationUrlSuccess: host differs from returnUrlOther's", err.Error())
	})

	t.Run("a single failure is the *Error itself", func(t *testing.T) {
		t.Parallel()
		err := with(base, ro, "").Validate()
		_, ok := err.(*cofidis.Error) //nolint:errorlint // the concrete type is what is tested
		assert.True(t, ok, "got %T", err)
	})

	t.Run("reports every bad URL at once, each as an *Error", func(t *testing.T) {
		t.Parallel()
		u := with(with(with(base, ro, ""), ns, "http://shop.example.com/n"), no, "https://other.example/o")
		err := u.Validate()
		require.Error(t, err)
		assert.ErrorIs(t, err, cofidis.ErrMissingField)
		assert.ErrorIs(t, err, cofidis.ErrInvalidURL)
		assert.ErrorIs(t, err, cofidis.ErrDomainMismatch)

		joined, ok := err.(interface{ Unwrap() []error })
		require.True(t, ok, "got %T", err)
		var fields []string
		for _, part := range joined.Unwrap() {
			e, ok := part.(*cofidis.Error) //nolint:errorlint // each joined part must be an *Error itself
			require.True(t, ok, "got %T", part)
			fields = append(fields, e.Field)
		}
		assert.Equal(t, []string{"returnUrlOther", "notificationUrlSuccess", "notificationUrlOther"}, fields)

		var first *cofidis.Error
		require.ErrorAs(t, err, &first)
		assert.Equal(t, "returnUrlOther", first.Field)
	})

	t.Run("the zero URLs reports all five missing", func(t *testing.T) {
		t.Parallel()
		err := cofidis.URLs{}.Validate()
		joined, ok := err.(interface{ Unwrap() []error })
		require.True(t, ok, "got %T", err)
		assert.Len(t, joined.Unwrap(), 5)
	})
}

func TestURLsDomain(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		urls cofidis.URLs
		want string
	}{
		{"lower-cases the host and drops the trailing dot", with(distinctURLs("Shop.Example."), cofidis.EndpointReturnOther, "https://shop.example/o"), "shop.example"},
		{"returns the punycode of an IDN", distinctURLs("bücher.example"), "xn--bcher-kva.example"},
		{"returns an IPv6 address without brackets", sameURLs("https://[2001:DB8::1]:8443/c"), "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.urls.Domain()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("fails like Validate and honours its options", func(t *testing.T) {
		t.Parallel()
		u := sameURLs("http://localhost:8080/c")
		_, err := u.Domain()
		assert.ErrorIs(t, err, cofidis.ErrInvalidURL)
		got, err := u.Domain(cofidis.AllowHTTP())
		require.NoError(t, err)
		assert.Equal(t, "localhost", got)
	})
}

func TestNewURLs(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		base string
		opts []cofidis.URLOption
		want cofidis.URLs
	}{
		{
			name: "puts the five paths at the root of a bare host",
			base: "https://shop.example",
			want: distinctURLs("shop.example"),
		},
		{
			name: "treats a trailing slash as the root",
			base: "https://shop.example/",
			want: distinctURLs("shop.example"),
		},
		{
			name: "keeps the prefix and the base query on all five",
			base: "https://shop.example/pay/?shop=fr&lang=fr",
			want: cofidis.URLs{
				ReturnURLSuccess:       "https://shop.example/pay/cofidis/return/success?shop=fr&lang=fr",
				ReturnURLOther:         "https://shop.example/pay/cofidis/return/other?shop=fr&lang=fr",
				NotificationURLSuccess: "https://shop.example/pay/cofidis/notify/success?shop=fr&lang=fr",
				NotificationURLPending: "https://shop.example/pay/cofidis/notify/pending?shop=fr&lang=fr",
				NotificationURLOther:   "https://shop.example/pay/cofidis/notify/other?shop=fr&lang=fr",
			},
		},
		{
			name: "keeps an escaped prefix and an explicit port",
			base: "https://shop.example:8443/my%20shop",
			want: cofidis.URLs{
				ReturnURLSuccess:       "https://shop.example:8443/my%20shop/cofidis/return/success",
				ReturnURLOther:         "https://shop.example:8443/my%20shop/cofidis/return/other",
				NotificationURLSuccess: "https://shop.example:8443/my%20shop/cofidis/notify/success",
				NotificationURLPending: "https://shop.example:8443/my%20shop/cofidis/notify/pending",
				NotificationURLOther:   "https://shop.example:8443/my%20shop/cofidis/notify/other",
			},
		},
		{
			name: "writes the host as lower-case punycode",
			base: "https://Bücher.Example",
			want: distinctURLs("xn--bcher-kva.example"),
		},
		{
			name: "brackets an IPv6 host",
			base: "https://[2001:db8::1]",
			want: distinctURLs("[2001:db8::1]"),
		},
		{
			name: "builds http URLs with AllowHTTP",
			base: "http://localhost:8080",
			opts: []cofidis.URLOption{cofidis.AllowHTTP()},
			want: cofidis.URLs{
				ReturnURLSuccess:       "http://localhost:8080/cofidis/return/success",
				ReturnURLOther:         "http://localhost:8080/cofidis/return/other",
				NotificationURLSuccess: "http://localhost:8080/cofidis/notify/success",
				NotificationURLPending: "http://localhost:8080/cofidis/notify/pending",
				NotificationURLOther:   "http://localhost:8080/cofidis/notify/other",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cofidis.NewURLs(tt.base, tt.opts...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			require.NoError(t, got.Validate(tt.opts...))
		})
	}

	t.Run("gives five distinct paths", func(t *testing.T) {
		t.Parallel()
		u, err := cofidis.NewURLs("https://shop.example/pay?shop=fr")
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, e := range cofidis.Endpoints() {
			p, err := url.Parse(u.Get(e))
			require.NoError(t, err)
			assert.False(t, seen[p.Path], "duplicate %s", p.Path)
			seen[p.Path] = true
		}
	})

	// The base names where the cofidis directory goes; the paths a
	// ServeMux would redirect (losing the POST body) never come out.
	for _, tt := range []struct {
		name, base, want string
	}{
		{"drops a trailing slash of the bare host", "https://shop.example/", "https://shop.example/cofidis/notify/other"},
		{"drops every trailing slash", "https://shop.example//", "https://shop.example/cofidis/notify/other"},
		{"drops trailing slashes of a prefix", "https://shop.example/pay///?a=1", "https://shop.example/pay/cofidis/notify/other?a=1"},
		{"does not double a base that is the cofidis directory", "https://shop.example/cofidis", "https://shop.example/cofidis/notify/other"},
		{"recognises the directory in any case", "https://shop.example/shop/Cofidis/", "https://shop.example/shop/Cofidis/notify/other"},
		{"adds the directory under a prefix merely containing the word", "https://shop.example/cofidis-pay", "https://shop.example/cofidis-pay/cofidis/notify/other"},
		{"keeps an escaped space in the prefix", "https://shop.example/my%20shop", "https://shop.example/my%20shop/cofidis/notify/other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cofidis.NewURLs(tt.base)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.NotificationURLOther)
			require.NoError(t, got.Validate())
		})
	}

	errTests := []struct {
		name    string
		base    string
		opts    []cofidis.URLOption
		wantErr error
	}{
		{"rejects an empty base", "", nil, cofidis.ErrMissingField},
		{"rejects an http base by default", "http://localhost:8080", nil, cofidis.ErrInvalidURL},
		{"rejects an ftp base even with AllowHTTP", "ftp://shop.example", []cofidis.URLOption{cofidis.AllowHTTP()}, cofidis.ErrInvalidURL},
		{"rejects a relative base", "/pay", nil, cofidis.ErrInvalidURL},
		{"rejects a base with user-info", "https://u@shop.example", nil, cofidis.ErrInvalidURL},
		{"rejects a base with a fragment", "https://shop.example/#", nil, cofidis.ErrInvalidURL},
		{"rejects a base with an invalid host", "https://-shop.example", nil, cofidis.ErrInvalidURL},
		{"rejects a base with an empty path segment", "https://shop.example/a//b", nil, cofidis.ErrInvalidURL},
		{"rejects a base with a dot segment", "https://shop.example/a/../b", nil, cofidis.ErrInvalidURL},
		{"rejects a base with a raw space", "https://shop.example/my shop", nil, cofidis.ErrInvalidURL},
		{"rejects a base with a raw backslash", `https://shop.example/a\b`, nil, cofidis.ErrInvalidURL},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cofidis.NewURLs(tt.base, tt.opts...)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.Zero(t, got)
			var e *cofidis.Error
			require.ErrorAs(t, err, &e)
			assert.Empty(t, e.Field, "the base is not a technicalData field")
			assert.Contains(t, e.Error(), "base URL")
		})
	}
}

func TestURLsWithQuery(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		url, key   string
		value      string
		want       string
		wantParsed url.Values // nil: not checked
	}{
		{
			name: "adds a first parameter",
			url:  "https://shop.example/c", key: "order", value: "42",
			want: "https://shop.example/c?order=42",
		},
		{
			name: "appends after existing parameters, keeping their text and order",
			url:  "https://shop.example/c?z=1&a=%2F&z=2", key: "order", value: "42",
			want: "https://shop.example/c?z=1&a=%2F&z=2&order=42",
		},
		{
			name: "does not double a trailing ? or &",
			url:  "https://shop.example/c?a=1&", key: "b", value: "2",
			want: "https://shop.example/c?a=1&b=2",
		},
		{
			name: "encodes + / % and spaces like url.Values",
			url:  "https://shop.example/c", key: "ref id", value: "a+b/c%d e",
			want:       "https://shop.example/c?ref+id=a%2Bb%2Fc%25d+e",
			wantParsed: url.Values{"ref id": {"a+b/c%d e"}},
		},
		{
			name: "encodes non-ASCII as UTF-8",
			url:  "https://shop.example/c", key: "nom", value: "Zoë & café",
			want:       "https://shop.example/c?nom=Zo%C3%AB+%26+caf%C3%A9",
			wantParsed: url.Values{"nom": {"Zoë & café"}},
		},
		{
			name: "adds a repeated key rather than replacing it",
			url:  "https://shop.example/c?order=1", key: "order", value: "2",
			want:       "https://shop.example/c?order=1&order=2",
			wantParsed: url.Values{"order": {"1", "2"}},
		},
		{
			name: "leaves an empty URL empty",
			url:  "", key: "order", value: "42",
			want: "",
		},
		{
			name: "leaves an unparsable URL unchanged",
			url:  "https://shop.example/%zz", key: "order", value: "42",
			want: "https://shop.example/%zz",
		},
		{
			name: "leaves a URL with an unparsable query unchanged",
			url:  "https://shop.example/c?a;b", key: "order", value: "42",
			want: "https://shop.example/c?a;b",
		},
		{
			name: "keeps a fragment after the query for Validate to report",
			url:  "https://shop.example/c?a=1#top", key: "b", value: "2",
			want: "https://shop.example/c?a=1&b=2#top",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := sameURLs(tt.url).WithQuery(url.Values{tt.key: {tt.value}})
			for _, e := range cofidis.Endpoints() {
				assert.Equal(t, tt.want, got.Get(e), e.String())
			}
			if tt.wantParsed != nil {
				p, err := url.Parse(got.ReturnURLSuccess)
				require.NoError(t, err)
				assert.Equal(t, tt.wantParsed, p.Query())
			}
		})
	}

	t.Run("returns a copy and leaves the receiver alone", func(t *testing.T) {
		t.Parallel()
		u := distinctURLs("shop.example")
		before := u
		got := u.WithQuery(url.Values{"order": {"42"}})
		assert.Equal(t, before, u)
		assert.Equal(t, "https://shop.example/cofidis/notify/other?order=42", got.NotificationURLOther)
		assert.NoError(t, got.Validate())
	})

	t.Run("adds several values sorted by key", func(t *testing.T) {
		t.Parallel()
		got := sameURLs("https://shop.example/c?x=0").WithQuery(url.Values{"b": {"2", "3"}, "a": {"1 1"}})
		assert.Equal(t, "https://shop.example/c?x=0&a=1+1&b=2&b=3", got.ReturnURLOther)
	})

	t.Run("adds nothing for empty values", func(t *testing.T) {
		t.Parallel()
		u := distinctURLs("shop.example")
		assert.Equal(t, u, u.WithQuery(nil))
		assert.Equal(t, u, u.WithQuery(url.Values{}))
	})
}

func TestErrorsAreTyped(t *testing.T) {
	t.Parallel()

	t.Run("a missing URL is ErrMissingField naming the technicalData field", func(t *testing.T) {
		t.Parallel()
		err := with(distinctURLs("shop.example"), cofidis.EndpointNotificationOther, "").Validate()
		require.True(t, errors.Is(err, cofidis.ErrMissingField))
		assert.False(t, errors.Is(err, cofidis.ErrInvalidURL))
		var e *cofidis.Error
		require.True(t, errors.As(err, &e))
		assert.Equal(t, "notificationUrlOther", e.Field)
		assert.Equal(t, cofidis.ErrMissingField, e.Err)
	})

	t.Run("an unparsable URL keeps the parser's error as Cause", func(t *testing.T) {
		t.Parallel()
		err := with(distinctURLs("shop.example"), cofidis.EndpointReturnOther, "https://shop.example/%zz").Validate()
		var ue *url.Error
		assert.True(t, errors.As(err, &ue))
		assert.NotContains(t, err.Error(), "%zz", "Error prints the Reason, not the cause")
	})
}
