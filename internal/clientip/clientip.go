// Package clientip finds the address of the client that sent an HTTP request,
// trusting the X-Forwarded-For and Forwarded headers only when they were added
// by a proxy the operator declared trusted.
package clientip

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
)

// ErrMalformed reports a RemoteAddr or a forwarding header that cannot be
// parsed; the client's address is then unknown.
var ErrMalformed = errors.New("malformed client address")

// Resolver resolves client addresses. The zero value trusts no proxy and
// returns the peer address of the connection.
type Resolver struct {
	// Trusted lists the proxies whose forwarding headers are believed.
	Trusted []netip.Prefix
}

// ClientIP returns the address of the client. The connection's peer is the
// client unless it is a trusted proxy; then the forwarding chain
// (Forwarded if present, else X-Forwarded-For) is walked from the right,
// skipping trusted proxies, and the first untrusted hop is the client. A
// client can prepend anything to those headers, which is why only hops added
// by trusted proxies (the right-hand end) are believed.
func (r Resolver) ClientIP(remoteAddr string, h http.Header) (netip.Addr, error) {
	peer, err := parseHost(remoteAddr)
	if err != nil {
		return netip.Addr{}, err
	}
	if !r.trusted(peer) {
		return peer, nil
	}
	var chain []string
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		chain, err = forwardedFor(fwd)
		if err != nil {
			return netip.Addr{}, err
		}
	} else {
		for _, line := range h.Values("X-Forwarded-For") {
			for part := range strings.SplitSeq(line, ",") {
				chain = append(chain, strings.TrimSpace(part))
			}
		}
	}
	client := peer
	for i := len(chain) - 1; i >= 0; i-- {
		hop, err := parseHost(chain[i])
		if err != nil {
			return netip.Addr{}, err
		}
		client = hop
		if !r.trusted(hop) {
			return hop, nil
		}
	}
	return client, nil
}

func (r Resolver) trusted(a netip.Addr) bool {
	for _, p := range r.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor extracts the for= parameters of RFC 7239 Forwarded headers, in
// order. An element without for= is an unknown hop and makes the chain
// unusable.
func forwardedFor(lines []string) ([]string, error) {
	var out []string
	for _, line := range lines {
		for elem := range strings.SplitSeq(line, ",") {
			found := false
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				v = strings.Trim(v, `"`)
				out = append(out, v)
				found = true
			}
			if !found {
				return nil, ErrMalformed
			}
		}
	}
	return out, nil
}

// parseHost parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port" and unmaps
// IPv4-mapped IPv6 addresses so that prefixes match either form.
func parseHost(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, ErrMalformed
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, ErrMalformed
	}
	return a.Unmap(), nil
}

// ParsePrefix parses a CIDR prefix or a single address (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, ErrMalformed
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
