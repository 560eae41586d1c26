package cofidis

import (
	"errors"
	"net/http"
	"strings"
)

// Sentinel errors, one per failure class. Every error returned by this package
// wraps exactly one of them, so callers can branch with errors.Is; most are
// also wrapped in an *Error that carries the field and the HTTP status.
var (
	// ErrMissingField: a required field (form field, JSON member or URL) is
	// absent or empty.
	ErrMissingField = errors.New("cofidis: missing field")

	// ErrInvalidField: a field is present but its value is malformed: wrong
	// JSON type, impossible date, invalid UTF-8, control characters, or a
	// transactionStatus or subState longer than MaxStatusBytes.
	ErrInvalidField = errors.New("cofidis: invalid field")

	// ErrInvalidTransactionKey: the transactionKey form field is not a valid
	// JSON object (syntax error, trailing data, wrong JSON type, duplicate member).
	ErrInvalidTransactionKey = errors.New("cofidis: invalid transaction key")

	// ErrRepeatedField: a form field that Cofidis sends once arrived several
	// times (HTTP parameter pollution).
	ErrRepeatedField = errors.New("cofidis: repeated field")

	// ErrMalformedBody: the request body is not valid
	// application/x-www-form-urlencoded data.
	ErrMalformedBody = errors.New("cofidis: malformed body")

	// ErrMethodNotAllowed: the request method is not POST.
	ErrMethodNotAllowed = errors.New("cofidis: method not allowed")

	// ErrUnsupportedMediaType: the Content-Type is not
	// application/x-www-form-urlencoded with a UTF-8 (or absent) charset.
	ErrUnsupportedMediaType = errors.New("cofidis: unsupported media type")

	// ErrBodyTooLarge: the request body exceeds the configured limit.
	ErrBodyTooLarge = errors.New("cofidis: body too large")

	// ErrBodyRead: the request body could not be read (client went away,
	// timeout).
	ErrBodyRead = errors.New("cofidis: body read failed")

	// ErrForbiddenSource: the request's source address is not in the
	// configured allowlist.
	ErrForbiddenSource = errors.New("cofidis: source address not allowed")

	// ErrBrowserRequest: a request carrying the Fetch Metadata headers that
	// only browsers send (Sec-Fetch-Site, Sec-Fetch-Mode) reached a URL that
	// only Cofidis' servers post to. A browser there is a page on another
	// site posting a forged notification, or a misrouted redirect.
	ErrBrowserRequest = errors.New("cofidis: browser request to a notification URL")

	// ErrNotVerified: the verifier (the merchant's getStatus call) reported
	// another status than the one the callback claims.
	ErrNotVerified = errors.New("cofidis: status not confirmed by verifier")

	// ErrVerifierUnavailable: the verifier failed or timed out; the status
	// could not be checked.
	ErrVerifierUnavailable = errors.New("cofidis: verifier unavailable")

	// ErrStoreUnavailable: the idempotency store failed; the event was not
	// dispatched and the request should be retried.
	ErrStoreUnavailable = errors.New("cofidis: idempotency store unavailable")

	// ErrCallback: the merchant's callback returned an error or panicked;
	// the answer is a retryable 5xx. The callback's own error stays in the
	// message and in the chain (errors.Is, errors.As).
	ErrCallback = errors.New("cofidis: callback failed")

	// ErrPermanent marks a callback error that must not be retried: the
	// request is acknowledged with 2xx and the error is logged. Wrap it with
	// Permanent.
	ErrPermanent = errors.New("cofidis: permanent failure")

	// ErrInvalidURL: one of the five technicalData URLs is not acceptable
	// (not absolute, wrong scheme, user-info, fragment, unparsable host).
	ErrInvalidURL = errors.New("cofidis: invalid URL")

	// ErrDomainMismatch: the five technicalData URLs do not share one domain
	// name (and port).
	ErrDomainMismatch = errors.New("cofidis: URLs do not share one domain")

	// ErrUnknownURL: a Router received a request whose path and query match
	// none of the five URLs it was built from (answered 404). Usually a
	// wiring mistake: a prefix stripped twice, or URLs sent to initialize
	// that differ from the Router's.
	ErrUnknownURL = errors.New("cofidis: no callback URL matches the request")

	// ErrTimeZone: the Europe/Paris time zone could not be loaded, so a
	// merchantTransactionDate cannot be placed in time. Import
	// _ "time/tzdata" in the program to embed the zone database.
	ErrTimeZone = errors.New("cofidis: time zone unavailable")

	// ErrInvalidOption: an option given to a constructor is invalid. Returned
	// when the handler is built, never at the first request.
	ErrInvalidOption = errors.New("cofidis: invalid option")
)

// Error is the typed error of this package. It names the field at fault, the
// HTTP status the failure maps to, and wraps a sentinel (errors.Is) and, when
// there is one, the underlying cause.
//
// Its message never contains a value taken from the request: payloads are
// untrusted and may be replayed from logs. Errors of the merchant's own code
// (a callback, the Verifier, the Store) are trusted: their text is part of
// the message, and they stay reachable through errors.Is and errors.As.
type Error struct {
	// Field is the field at fault in Cofidis' vocabulary, such as
	// "transactionStatus", "transactionKey.merchantId" or "returnUrlOther".
	// Empty when the failure concerns the whole request.
	Field string
	// Reason says what was wrong and what was expected, without the value.
	Reason string
	// HTTPStatus is the status code a receiver answers with for this failure.
	HTTPStatus int
	// Err is the sentinel this error belongs to (one of the ErrXxx values).
	Err error
	// Cause is the underlying error, if any: a *url.Error or
	// *http.MaxBytesError about the request (reachable through errors.As,
	// not printed), or the error of the merchant's own code (printed, see
	// trustedError).
	Cause error
}

// Error formats the failure as "cofidis: <class>: <field>: <reason>".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("cofidis: error")
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause, so that errors.Is and errors.As
// see both.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// newError builds an *Error whose HTTP status derives from the sentinel.
func newError(sentinel error, field, reason string) *Error {
	return &Error{Field: field, Reason: reason, HTTPStatus: statusFor(sentinel), Err: sentinel}
}

// wrapError is newError with an underlying cause, which the message leaves
// out: a cause about the request may hold a part of it.
func wrapError(sentinel error, field, reason string, cause error) *Error {
	e := newError(sentinel, field, reason)
	e.Cause = cause
	return e
}

// trustedError wraps the error of the merchant's own code (a callback, the
// Verifier, the Store): its text follows the reason in the message, since
// operators need it and it holds nothing the request did not pass through
// the merchant's code first.
func trustedError(sentinel error, reason string, cause error) *Error {
	text := cause.Error()
	if reason != "" {
		text = reason + ": " + text
	}
	return wrapError(sentinel, "", text, cause)
}

// sentinels maps each sentinel to the HTTP status a receiver answers with
// and to its class, the stable short name ErrorClass returns. Its order is
// the order of the classes a log limiter counts.
var sentinels = [...]struct {
	err    error
	status int
	class  string
}{
	{ErrPermanent, http.StatusOK, "permanent"},
	{ErrUnknownURL, http.StatusNotFound, "unknown_url"},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed"},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{ErrForbiddenSource, http.StatusForbidden, "forbidden_source"},
	{ErrBrowserRequest, http.StatusForbidden, "browser_request"},
	{ErrNotVerified, http.StatusServiceUnavailable, "not_verified"},
	{ErrVerifierUnavailable, http.StatusServiceUnavailable, "verifier_unavailable"},
	{ErrStoreUnavailable, http.StatusServiceUnavailable, "store_unavailable"},
	{ErrCallback, http.StatusInternalServerError, "callback_failed"},
	{ErrLeaseLost, http.StatusInternalServerError, "lease_lost"},
	{ErrInvalidOption, http.StatusInternalServerError, "invalid_option"},
	{ErrTimeZone, http.StatusInternalServerError, "time_zone"},
	{ErrMissingField, http.StatusBadRequest, "missing_field"},
	{ErrInvalidField, http.StatusBadRequest, "invalid_field"},
	{ErrInvalidTransactionKey, http.StatusBadRequest, "invalid_transaction_key"},
	{ErrRepeatedField, http.StatusBadRequest, "repeated_field"},
	{ErrMalformedBody, http.StatusBadRequest, "malformed_body"},
	{ErrBodyRead, http.StatusBadRequest, "body_read"},
	{ErrInvalidURL, http.StatusBadRequest, "invalid_url"},
	{ErrDomainMismatch, http.StatusBadRequest, "domain_mismatch"},
}

// classOther is the class of errors that wrap none of the sentinels.
const classOther = "other"

// sentinelIndex returns the row of sentinels that err belongs to, or
// len(sentinels) for none. An *Error belongs to its own sentinel, whatever
// its cause wraps.
func sentinelIndex(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Err != nil {
		err = e.Err
	}
	for i := range sentinels {
		if errors.Is(err, sentinels[i].err) {
			return i
		}
	}
	return len(sentinels)
}

// statusFor maps a sentinel to the HTTP status a receiver answers with.
func statusFor(sentinel error) int {
	if i := sentinelIndex(sentinel); i < len(sentinels) {
		return sentinels[i].status
	}
	// Everything else about the content of a request is the client's fault.
	return http.StatusBadRequest
}

// ErrorClass returns a short, stable name for the kind of failure err is,
// one per sentinel of this package: "missing_field", "body_too_large",
// "not_verified", "callback_failed"… (see the package documentation for
// the list); "other" for an error that wraps none of them, "" for nil. The
// set of names is fixed, so it is safe as a metric label: unlike an error's
// message, it never carries anything from the request.
func ErrorClass(err error) string {
	if err == nil {
		return ""
	}
	if i := sentinelIndex(err); i < len(sentinels) {
		return sentinels[i].class
	}
	return classOther
}

// ErrorClasses returns every name ErrorClass can return but "", in a fixed
// order ending with "other", as a new slice: for declaring metrics up
// front.
func ErrorClasses() []string {
	out := make([]string, 0, len(sentinels)+1)
	for _, s := range sentinels {
		out = append(out, s.class)
	}
	return append(out, classOther)
}

// HTTPStatus returns the HTTP status code a receiver answers with for err:
// 200 for nil or a Permanent error, the HTTPStatus of the first *Error in its
// chain, the status of a known sentinel, or 500 for any other error.
func HTTPStatus(err error) int {
	if err == nil || errors.Is(err, ErrPermanent) {
		return http.StatusOK
	}
	var e *Error
	if errors.As(err, &e) && e.HTTPStatus != 0 {
		return e.HTTPStatus
	}
	if i := sentinelIndex(err); i < len(sentinels) {
		return sentinels[i].status
	}
	return http.StatusInternalServerError
}

// permanentError marks a callback error as not to be retried.
type permanentError struct{ err error }

func (p *permanentError) Error() string {
	if p.err == nil {
		return ErrPermanent.Error()
	}
	return ErrPermanent.Error() + ": " + p.err.Error()
}

func (p *permanentError) Unwrap() []error { return []error{ErrPermanent, p.err} }

// Permanent wraps a callback error to say "do not retry": the notification is
// acknowledged with 200 and the error is logged. Use it for events the
// merchant can never process (unknown order, already refunded…), not for
// temporary failures, which should be returned as they are to get a
// retryable 5xx. Permanent(nil) is a permanent failure without a cause.
func Permanent(err error) error {
	return &permanentError{err: err}
}
