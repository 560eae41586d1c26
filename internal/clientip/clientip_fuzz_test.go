package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

// FuzzClientIP feeds arbitrary peer addresses and forwarding headers to a
// resolver that trusts no proxy and to one that trusts some. It must never
// panic; a resolved address is valid and unmapped; without a trusted peer the
// headers are ignored; and a forwarded address is believed only as the first
// untrusted hop from the right, or as the leftmost hop of an all-trusted
// chain.
func FuzzClientIP(f *testing.F) {
	for _, s := range [][3]string{
		{"192.0.2.1:1234", "", ""},
		{"10.0.0.1:80", "203.0.113.7", ""},
		{"10.0.0.1:80", "203.0.113.7, 10.0.0.2", ""},
		{"10.0.0.1:80", "1.2.3.4, 203.0.113.7, 10.0.0.2", ""},
		{"10.0.0.1:80", "", `for=203.0.113.7;proto=https, for="[2001:db8::1]:4711"`},
		{"10.0.0.1:80", "", "for=unknown"},
		{"10.0.0.1:80", "", "by=10.0.0.1"},
		{"10.0.0.1:80", "", `For="_hidden", for=10.0.0.3`},
		{"[::1]:443", "::ffff:203.0.113.7", ""},
		{"[::ffff:10.0.0.1]:80", "fe80::1%eth0", ""},
		{"10.0.0.1", ",,,", ""},
		{"", "203.0.113.7", ""},
		{"[::1", "", ""},
		{"10.0.0.1:80", " 203.0.113.7 ", `for=""`},
	} {
		f.Add(s[0], s[1], s[2])
	}
	trusted := Resolver{Trusted: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}}

	f.Fuzz(func(t *testing.T, remoteAddr, xff, forwarded string) {
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		if forwarded != "" {
			h.Set("Forwarded", forwarded)
		}

		peer, peerErr := Resolver{}.ClientIP(remoteAddr, nil)
		direct, err := Resolver{}.ClientIP(remoteAddr, h)
		if (err == nil) != (peerErr == nil) || direct != peer {
			t.Fatalf("a resolver without proxies read the headers: %v, %v vs %v, %v", direct, err, peer, peerErr)
		}
		if err != nil {
			if _, err := trusted.ClientIP(remoteAddr, h); err == nil {
				t.Fatal("an unparsable peer was resolved")
			}
			return
		}
		checkAddr(t, peer)

		got, err := trusted.ClientIP(remoteAddr, h)
		if !trusted.trusted(peer) {
			if err != nil || got != peer {
				t.Fatalf("an untrusted peer's headers were used: %v, %v", got, err)
			}
			return
		}
		if err != nil {
			return // a malformed chain leaves the client unknown
		}
		checkAddr(t, got)
		if got != peer && trusted.trusted(got) {
			// Only the leftmost hop of an all-trusted chain may be trusted;
			// then every hop must be trusted.
			hops, err := fuzzChain(h)
			if err != nil {
				t.Fatalf("chain re-read failed: %v", err)
			}
			for _, hop := range hops {
				if !trusted.trusted(hop) {
					t.Fatalf("stopped at trusted %v although %v is untrusted", got, hop)
				}
			}
		}
	})
}

func checkAddr(t *testing.T, a netip.Addr) {
	t.Helper()
	if !a.IsValid() {
		t.Fatal("resolved an invalid address")
	}
	if a.Is4In6() {
		t.Fatalf("%v is not unmapped", a)
	}
}

// fuzzChain parses the whole forwarding chain the way ClientIP reads it.
func fuzzChain(h http.Header) ([]netip.Addr, error) {
	var raw []string
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		var err error
		if raw, err = forwardedFor(fwd); err != nil {
			return nil, err
		}
	} else {
		for _, line := range h.Values("X-Forwarded-For") {
			raw = append(raw, splitComma(line)...)
		}
	}
	out := make([]netip.Addr, 0, len(raw))
	for _, s := range raw {
		a, err := parseHost(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
