package cofidis

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/cofidis-go/cofidis/internal/clientip"
)

// Option configures a RedirectHandler, a NotificationHandler or a Router.
// Options are checked when the handler is built: a bad option is an error
// from the constructor (wrapping ErrInvalidOption), never at a request.
type Option func(*config) error

// Verifier asks Cofidis for the current status of a transaction: in practice
// the merchant's getStatus call. Callbacks carry no signature, so this is the
// only way to know that a posted status is real.
type Verifier interface {
	// CurrentStatus returns the transaction's status as Cofidis reports it.
	// An error means the status could not be checked.
	CurrentStatus(ctx context.Context, key TransactionKey) (Status, error)
}

// VerifierFunc adapts a function to the Verifier interface.
type VerifierFunc func(ctx context.Context, key TransactionKey) (Status, error)

// CurrentStatus calls f.
func (f VerifierFunc) CurrentStatus(ctx context.Context, key TransactionKey) (Status, error) {
	return f(ctx, key)
}

// ErrorHandlerFunc observes a rejected request: its error is an *Error (or
// wraps a sentinel) saying why. It runs before the answer is written and must
// not write to the response.
type ErrorHandlerFunc func(r *http.Request, err error)

// ErrorPageFunc writes the answer to a browser whose redirect could not be
// processed. status is the HTTP status that fits err.
type ErrorPageFunc func(w http.ResponseWriter, r *http.Request, status int, err error)

type config struct {
	maxBody       int64
	logger        *slog.Logger
	onError       ErrorHandlerFunc
	errorPage     ErrorPageFunc
	allowed       []netip.Prefix
	proxies       clientip.Resolver
	verifier      Verifier
	verifyTimeout time.Duration
	endpoints     EndpointSet
	urlOpts       []URLOption
	now           func() time.Time
	idem          idemConfig // see idempotency.go
}

// DefaultVerifyTimeout bounds one Verifier call unless WithVerifier's caller
// sets another with WithVerifyTimeout.
const DefaultVerifyTimeout = 10 * time.Second

func newConfig(opts []Option) (*config, error) {
	c := &config{
		maxBody:       DefaultMaxBodyBytes,
		logger:        slog.Default(),
		errorPage:     defaultErrorPage,
		verifyTimeout: DefaultVerifyTimeout,
		now:           time.Now,
		idem:          idemConfig{lease: DefaultLease},
	}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func optionError(name, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, name, reason)
}

// WithMaxBodyBytes sets the largest body accepted (default
// DefaultMaxBodyBytes); a larger one is answered 413.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return optionError("WithMaxBodyBytes", "want a positive size")
		}
		c.maxBody = n
		return nil
	}
}

// WithLogger sets the logger for rejected requests, callback failures and
// panics (default slog.Default()). Log lines never contain the request body.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optionError("WithLogger", "want a non-nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithOnError sets a hook called for every rejected request (bad envelope or
// content, forbidden source, failed verification, failed callback), for
// metrics or alerting.
func WithOnError(fn ErrorHandlerFunc) Option {
	return func(c *config) error {
		if fn == nil {
			return optionError("WithOnError", "want a non-nil function")
		}
		c.onError = fn
		return nil
	}
}

// WithErrorPage sets the page a browser gets when its redirect cannot be
// processed (default: a minimal HTML page with the status code and no detail
// of the request).
func WithErrorPage(fn ErrorPageFunc) Option {
	return func(c *config) error {
		if fn == nil {
			return optionError("WithErrorPage", "want a non-nil function")
		}
		c.errorPage = fn
		return nil
	}
}

// WithAllowedSources restricts notifications to clients whose address is in
// one of the given prefixes ("203.0.113.0/24", "2001:db8::/32" or a single
// address); others get 403. Cofidis publishes no source addresses: use the
// ones its integration team gives you. Redirects come from customers'
// browsers and are never filtered.
func WithAllowedSources(prefixes ...string) Option {
	return func(c *config) error {
		ps, err := parsePrefixes("WithAllowedSources", prefixes)
		c.allowed = append(c.allowed, ps...)
		return err
	}
}

// WithTrustedProxies declares the reverse proxies (prefixes or addresses)
// whose X-Forwarded-For or Forwarded headers are believed when finding the
// client's address for WithAllowedSources. By default no proxy is trusted
// and the connection's peer address is the client: anybody can write those
// headers.
func WithTrustedProxies(prefixes ...string) Option {
	return func(c *config) error {
		ps, err := parsePrefixes("WithTrustedProxies", prefixes)
		c.proxies.Trusted = append(c.proxies.Trusted, ps...)
		return err
	}
}

// parsePrefixes parses the prefixes given to option name.
func parsePrefixes(name string, prefixes []string) ([]netip.Prefix, error) {
	if len(prefixes) == 0 {
		return nil, optionError(name, "want at least one prefix")
	}
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, s := range prefixes {
		p, err := clientip.ParsePrefix(s)
		if err != nil {
			return nil, optionError(name, fmt.Sprintf("%q is not a CIDR prefix or an IP address", s))
		}
		out = append(out, p)
	}
	return out, nil
}

// WithVerifier makes the handlers ask v for the transaction's current status
// before dispatching. A notification whose status v does not confirm is not
// dispatched (see the package documentation for the answer); a redirect is
// still dispatched, with Verified false. Events are reported Verified only
// when v confirmed them.
func WithVerifier(v Verifier) Option {
	return func(c *config) error {
		// A nil VerifierFunc is a non-nil interface that would panic at the
		// first request.
		if f, ok := v.(VerifierFunc); v == nil || ok && f == nil {
			return optionError("WithVerifier", "want a non-nil verifier")
		}
		c.verifier = v
		return nil
	}
}

// WithVerifyTimeout bounds each Verifier call (default DefaultVerifyTimeout)
// through its context: a Verifier must pass that context on to its getStatus
// request, since one that ignores it holds the request as long as it runs.
// Keep it short for redirects: a customer is waiting for the page.
func WithVerifyTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optionError("WithVerifyTimeout", "want a positive duration")
		}
		c.verifyTimeout = d
		return nil
	}
}

// WithEndpoint tells a standalone RedirectHandler or NotificationHandler
// which of the five URLs it serves, so that events report it and statuses
// the documentation does not send there are flagged. A Router sets this
// itself.
func WithEndpoint(e Endpoint) Option {
	return func(c *config) error {
		if !e.valid() {
			return optionError("WithEndpoint", "want one of the five Endpoint constants")
		}
		c.endpoints = c.endpoints.Add(e)
		return nil
	}
}

// WithURLOptions passes options to the validation of the Router's URL set,
// such as AllowHTTP() for local development.
func WithURLOptions(opts ...URLOption) Option {
	return func(c *config) error {
		c.urlOpts = append(c.urlOpts, opts...)
		return nil
	}
}

// WithClock sets the clock that stamps Event.ReceivedAt (default time.Now);
// for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return optionError("WithClock", "want a non-nil function")
		}
		c.now = now
		return nil
	}
}
