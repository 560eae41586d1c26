package cofidis

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/cofidis-go/cofidis/internal/clientip"
)

// Option configures a Router. Every option applies to the Router it is
// given to; NewRouter checks them all before it returns, and reports a bad
// one as an error wrapping ErrInvalidOption that names the option: a bad
// value, an option given twice (but for the ones that add up, such as
// WithAllowedSources and the hooks), or an option whose prerequisite is
// missing (WithLease without WithIdempotency). Nothing is checked at the
// first request.
type Option func(*config) error

// Verifier asks Cofidis for the current status of a transaction: in practice
// the merchant's getStatus call. Callbacks carry no signature, so this is the
// only way to know that a posted status is real.
type Verifier interface {
	// CurrentStatus returns the transaction's status as Cofidis reports it.
	// An error means the status could not be checked. It must pass ctx on
	// to its request: ctx ends after the verify timeout.
	CurrentStatus(ctx context.Context, key TransactionKey) (Status, error)
}

// VerifierFunc adapts a function to the Verifier interface.
type VerifierFunc func(ctx context.Context, key TransactionKey) (Status, error)

// CurrentStatus calls f.
func (f VerifierFunc) CurrentStatus(ctx context.Context, key TransactionKey) (Status, error) {
	return f(ctx, key)
}

// ErrorHandlerFunc observes a rejected request or a failed callback: err is
// an *Error (errors.As) wrapping a sentinel (errors.Is) and saying why;
// ErrorClass(err) names its kind. It runs before the answer is written and
// must not write to the response. Every rejection reaches it, including the
// ones whose log lines the rejection log limit suppresses.
type ErrorHandlerFunc func(r *http.Request, err error)

// RedirectErrorFunc answers a customer's browser whose redirect could not be
// processed: a request that could not be decoded (a page in a legacy charset
// posting "é" as %E9, say), a failed redirect callback, or a store failure
// with WithRedirectClaims. The customer is in the middle of a checkout, so
// send them somewhere useful: query holds the query elements of the URL the
// browser posted to, the merchant's own (an order reference added with
// URLs.WithQuery), which identify the order even when nothing else could be
// read. HTTPStatus(err) is the status that fits; ErrorPage is the default
// answer.
type RedirectErrorFunc func(w http.ResponseWriter, r *http.Request, err error, query url.Values)

// DefaultVerifyTimeout bounds one Verifier call unless WithVerifyTimeout sets
// another.
const DefaultVerifyTimeout = 10 * time.Second

// config is the single configuration a Router is built from.
type config struct {
	maxBody   int64
	logger    *slog.Logger
	logLimit  logLimit
	onError   []ErrorHandlerFunc
	hooks     []DeliveryHookFunc
	observers observers

	redirectError RedirectErrorFunc
	allowed       []netip.Prefix
	proxies       clientip.Resolver

	verifier      Verifier
	skipVerify    bool
	verifyTimeout time.Duration

	store          Store
	lease          time.Duration
	deliverStale   bool
	redirectClaims bool
	reconcile      *ReconcileOptions

	now func() time.Time

	// given records the options that may be given once, by name.
	given map[string]bool
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		maxBody:       DefaultMaxBodyBytes,
		logger:        slog.Default(),
		logLimit:      logLimit{lines: DefaultRejectionLogLines, per: DefaultRejectionLogInterval},
		redirectError: ErrorPage,
		verifyTimeout: DefaultVerifyTimeout,
		lease:         DefaultLease,
		now:           time.Now,
		given:         map[string]bool{},
	}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// check enforces the rules between options, once all are applied.
func (c *config) check() error {
	switch {
	case c.verifier == nil && !c.skipVerify:
		return optionError("NewRouter", "want WithVerifier (your getStatus call) or, knowingly, "+
			"WithInsecureSkipVerify: notifications are unsigned, so without a Verifier "+
			"anyone who knows a notification URL can post a to_confirm for any order")
	case c.verifier != nil && c.skipVerify:
		return optionError("WithInsecureSkipVerify", "given with WithVerifier: choose one")
	case c.given["WithVerifyTimeout"] && c.verifier == nil:
		return optionError("WithVerifyTimeout", "needs WithVerifier, whose calls it bounds")
	}
	if c.store == nil {
		for _, name := range [...]string{"WithLease", "WithStaleEvents", "WithRedirectClaims"} {
			if c.given[name] {
				return optionError(name, "needs WithIdempotency, whose store it configures")
			}
		}
	}
	if c.reconcile != nil {
		if c.verifier == nil {
			return optionError("WithReconciliation", "needs WithVerifier: reconciliation asks getStatus")
		}
		if _, ok := c.store.(Tracker); !ok {
			return optionError("WithReconciliation", "needs WithIdempotency with a Store that implements Tracker "+
				"(NewMemoryStore, redisstore, pgstore), which keeps the due list")
		}
	}
	return nil
}

// once fails when the option called name was given before: a second value
// would silently replace the first.
func (c *config) once(name string) error {
	if c.given[name] {
		return optionError(name, "given twice; give it once")
	}
	c.given[name] = true
	return nil
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
		return c.once("WithMaxBodyBytes")
	}
}

// WithLogger sets the logger (default slog.Default()). Log lines never
// contain the request body; see the package documentation for what each
// line carries and WithRejectionLogLimit for how rejections are rate-limited.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return optionError("WithLogger", "want a non-nil logger")
		}
		c.logger = l
		return c.once("WithLogger")
	}
}

// WithOnError adds a hook called for every rejected request (bad envelope or
// content, forbidden source, failed verification, store failure) and every
// failed callback, for metrics or alerting. Hooks given by several
// WithOnError options all run, in the order given.
func WithOnError(fn ErrorHandlerFunc) Option {
	return func(c *config) error {
		if fn == nil {
			return optionError("WithOnError", "want a non-nil function")
		}
		c.onError = append(c.onError, fn)
		return nil
	}
}

// WithRedirectError sets how a browser whose redirect could not be processed
// is answered (default ErrorPage, a minimal page with the status code and no
// detail of the request). See RedirectErrorFunc.
func WithRedirectError(fn RedirectErrorFunc) Option {
	return func(c *config) error {
		if fn == nil {
			return optionError("WithRedirectError", "want a non-nil function")
		}
		c.redirectError = fn
		return c.once("WithRedirectError")
	}
}

// WithAllowedSources restricts notifications to clients whose address is in
// one of the given prefixes ("203.0.113.0/24", "2001:db8::/32" or a single
// address); others get 403. Cofidis publishes no source addresses: use the
// ones its integration team gives you. Redirects come from customers'
// browsers and are never filtered. Several options add up.
func WithAllowedSources(prefixes ...string) Option {
	return func(c *config) error {
		ps, err := parsePrefixes("WithAllowedSources", prefixes)
		c.allowed = append(c.allowed, ps...)
		return err
	}
}

// WithTrustedProxies declares the reverse proxies (prefixes or addresses)
// whose X-Forwarded-For or Forwarded headers are believed when finding the
// client's address (Event.RemoteAddr, WithAllowedSources). By default no
// proxy is trusted and the connection's peer address is the client: anybody
// can write those headers. Several options add up.
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

// WithVerifier makes the Router ask v (the merchant's getStatus call) for
// the transaction's current status before dispatching, and report events
// Verified only when v confirms them. A notification whose status v does not
// confirm is not dispatched (see the package documentation for the answer);
// a redirect is still dispatched, with Verified false.
//
// Each Router needs either WithVerifier or WithInsecureSkipVerify. With
// WithIdempotency, a delivery of an action already done is answered without
// calling v, and concurrent verifications of one transaction share one call.
func WithVerifier(v Verifier) Option {
	return func(c *config) error {
		// A nil VerifierFunc is a non-nil interface that would panic at the
		// first request.
		if f, ok := v.(VerifierFunc); v == nil || ok && f == nil {
			return optionError("WithVerifier", "want a non-nil verifier")
		}
		c.verifier = v
		return c.once("WithVerifier")
	}
}

// WithInsecureSkipVerify builds a Router without a Verifier: notifications
// are dispatched as posted, with Verified false. Notifications carry no
// signature and Cofidis publishes no source addresses, so anyone who knows a
// notification URL can then post a to_confirm for any order, and the
// callback is the only place left to tell. Use it in tests, with a fake
// Cofidis, or when the notification callback itself calls getStatus before
// acting on money; never merely to get started.
func WithInsecureSkipVerify() Option {
	return func(c *config) error {
		c.skipVerify = true
		return c.once("WithInsecureSkipVerify")
	}
}

// WithVerifyTimeout bounds each Verifier call (default DefaultVerifyTimeout)
// through its context: a Verifier must pass that context on to its getStatus
// request, since one that ignores it holds the request as long as it runs.
// Keep it short for redirects: a customer is waiting for the page. It needs
// WithVerifier.
func WithVerifyTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optionError("WithVerifyTimeout", "want a positive duration")
		}
		c.verifyTimeout = d
		return c.once("WithVerifyTimeout")
	}
}

// WithClock sets the clock that stamps Event.ReceivedAt and times the
// rejection log limit (default time.Now); for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return optionError("WithClock", "want a non-nil function")
		}
		c.now = now
		return c.once("WithClock")
	}
}
