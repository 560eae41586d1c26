package clientip

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := ParsePrefix(s)
		require.NoError(t, err)
		out[i] = p
	}
	return out
}

func TestResolver_ClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted []string
		remote  string
		headers http.Header
		want    string // "" with wantErr
		wantErr bool
	}{
		// No trusted proxy: the peer, whatever the headers say.
		{name: "returns an IPv4 peer", remote: "203.0.113.7:4711", want: "203.0.113.7"},
		{name: "returns an IPv6 peer", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "unmaps an IPv4-mapped IPv6 peer", remote: "[::ffff:203.0.113.7]:443", want: "203.0.113.7"},
		{name: "accepts a peer without a port", remote: "203.0.113.7", want: "203.0.113.7"},
		{name: "accepts a bracketed IPv6 peer without a port", remote: "[2001:db8::1]", want: "2001:db8::1"},
		{
			name:    "ignores X-Forwarded-For when no proxy is trusted",
			remote:  "198.51.100.7:1",
			headers: http.Header{"X-Forwarded-For": {"203.0.113.7"}},
			want:    "198.51.100.7",
		},
		{
			name:    "ignores Forwarded when no proxy is trusted",
			remote:  "198.51.100.7:1",
			headers: http.Header{"Forwarded": {"for=203.0.113.7"}},
			want:    "198.51.100.7",
		},
		{
			name:    "ignores headers from a peer that is not trusted",
			trusted: []string{"10.0.0.0/8"},
			remote:  "198.51.100.7:1",
			headers: http.Header{"X-Forwarded-For": {"203.0.113.7"}},
			want:    "198.51.100.7",
		},
		{
			name:    "ignores malformed headers from a peer that is not trusted",
			trusted: []string{"10.0.0.0/8"},
			remote:  "198.51.100.7:1",
			headers: http.Header{"X-Forwarded-For": {"garbage"}, "Forwarded": {"garbage"}},
			want:    "198.51.100.7",
		},
		{name: "rejects an empty peer", remote: "", wantErr: true},
		{name: "rejects a non-IP peer", remote: "@unix", wantErr: true},
		{name: "rejects a host name peer", remote: "localhost:80", wantErr: true},
		{name: "rejects a peer with an empty port", remote: "203.0.113.7:", wantErr: true},

		// Through trusted proxies.
		{
			name:    "returns the peer itself when a trusted proxy sends no header",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			want:    "10.0.0.2",
		},
		{
			name:    "returns the X-Forwarded-For hop of a trusted proxy",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"203.0.113.7"}},
			want:    "203.0.113.7",
		},
		{
			name:    "returns the rightmost untrusted X-Forwarded-For hop",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.7, 10.0.0.9"}},
			want:    "203.0.113.7",
		},
		{
			name:    "reads several X-Forwarded-For lines in order",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.7", "10.0.0.9"}},
			want:    "203.0.113.7",
		},
		{
			name:    "accepts X-Forwarded-For hops with ports and without spaces",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"203.0.113.7:5555,10.0.0.9"}},
			want:    "203.0.113.7",
		},
		{
			name:    "returns the leftmost hop when every hop is trusted",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"10.0.0.5, 10.0.0.9"}},
			want:    "10.0.0.5",
		},
		{
			name:    "trusts single addresses and several prefixes",
			trusted: []string{"10.0.0.2", "2001:db8:ffff::/48"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"203.0.113.7, 2001:db8:ffff::1"}},
			want:    "203.0.113.7",
		},
		{
			name:    "rejects a malformed X-Forwarded-For hop",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"203.0.113.7, not-an-ip"}},
			wantErr: true,
		},
		{
			name:    "rejects an empty X-Forwarded-For element",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"203.0.113.7,,10.0.0.9"}},
			wantErr: true,
		},
		{
			name:    "stops at the client, so that junk a client prepended is never read",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"X-Forwarded-For": {"junk, 203.0.113.7"}},
			want:    "203.0.113.7",
		},
		{
			name:    "returns the Forwarded for= of a trusted proxy",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {"for=203.0.113.7;proto=https;by=10.0.0.2"}},
			want:    "203.0.113.7",
		},
		{
			name:    "reads a quoted IPv6 Forwarded for= with a port",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {`for="[2001:db8::1]:4711"`}},
			want:    "2001:db8::1",
		},
		{
			name:    "reads a quoted bracketed IPv6 Forwarded for= without a port",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {`for="[2001:db8::1]"`}},
			want:    "2001:db8::1",
		},
		{
			name:    "reads the for parameter case-insensitively",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {"For=203.0.113.7"}},
			want:    "203.0.113.7",
		},
		{
			name:    "returns the rightmost untrusted Forwarded element",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {"for=1.1.1.1, for=203.0.113.7", "for=10.0.0.9;proto=http"}},
			want:    "203.0.113.7",
		},
		{
			name:    "prefers Forwarded to X-Forwarded-For",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {"for=203.0.113.7"}, "X-Forwarded-For": {"198.51.100.7"}},
			want:    "203.0.113.7",
		},
		{
			name:    "rejects a Forwarded element without for=",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {"for=203.0.113.7, proto=https"}},
			wantErr: true,
		},
		{
			name:    "rejects Forwarded for=unknown",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {"for=unknown"}},
			wantErr: true,
		},
		{
			name:    "rejects an obfuscated Forwarded identifier",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {"for=_hidden"}},
			wantErr: true,
		},
		{
			name:    "rejects an empty Forwarded header",
			trusted: []string{"10.0.0.0/8"},
			remote:  "10.0.0.2:1",
			headers: http.Header{"Forwarded": {""}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Resolver{Trusted: prefixes(t, tt.trusted...)}
			got, err := r.ClientIP(tt.remote, tt.headers)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrMalformed)
				assert.False(t, got.IsValid())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestResolver_zeroValueTrustsNoProxy(t *testing.T) {
	t.Parallel()
	got, err := Resolver{}.ClientIP("127.0.0.1:80", http.Header{"X-Forwarded-For": {"203.0.113.7"}})
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("127.0.0.1"), got)
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "parses an IPv4 prefix", in: "203.0.113.0/24", want: "203.0.113.0/24"},
		{name: "masks host bits", in: "203.0.113.7/24", want: "203.0.113.0/24"},
		{name: "parses an IPv6 prefix", in: "2001:db8::/32", want: "2001:db8::/32"},
		{name: "turns an IPv4 address into a /32", in: "203.0.113.7", want: "203.0.113.7/32"},
		{name: "turns an IPv6 address into a /128", in: "2001:db8::1", want: "2001:db8::1/128"},
		{name: "unmaps an IPv4-mapped address", in: "::ffff:203.0.113.7", want: "203.0.113.7/32"},
		{name: "rejects an IPv4-mapped prefix, which would never match an unmapped client", in: "::ffff:203.0.113.0/120", wantErr: true},
		{name: "rejects an over-long prefix length", in: "203.0.113.0/33", wantErr: true},
		{name: "rejects a host name", in: "cofidis.fr", wantErr: true},
		{name: "rejects an empty string", in: "", wantErr: true},
		{name: "rejects an address with a port", in: "203.0.113.7:80", wantErr: true},
		{name: "rejects an out-of-range octet", in: "203.0.113.256", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePrefix(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, netip.MustParsePrefix(tt.want), got)
		})
	}
}
