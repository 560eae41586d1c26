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
	// JSON type, impossible date, invalid UTF-8, control characters.
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
	// the answer is a retryable 5xx.
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
// Its message never contains the offending value: payloads are untrusted and
// may be replayed from logs.
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
	// Cause is the underlying error, if any (for example a *json.SyntaxError).
	// It is reachable through errors.As but not printed by Error.
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

// wrapError is newError with an underlying cause.
func wrapError(sentinel error, field, reason string, cause error) *Error {
	e := newError(sentinel, field, reason)
	e.Cause = cause
	return e
}

// sentinelStatus maps each sentinel to the HTTP status a receiver answers
// with. Sentinels not listed (content errors) map to 400.
var sentinelStatus = [...]struct {
	err    error
	status int
}{
	{ErrPermanent, http.StatusOK},
	{ErrUnknownURL, http.StatusNotFound},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge},
	{ErrForbiddenSource, http.StatusForbidden},
	{ErrNotVerified, http.StatusServiceUnavailable},
	{ErrVerifierUnavailable, http.StatusServiceUnavailable},
	{ErrStoreUnavailable, http.StatusServiceUnavailable},
	{ErrCallback, http.StatusInternalServerError},
	{ErrInvalidOption, http.StatusInternalServerError},
	{ErrTimeZone, http.StatusInternalServerError},
	{ErrMissingField, http.StatusBadRequest},
	{ErrInvalidField, http.StatusBadRequest},
	{ErrInvalidTransactionKey, http.StatusBadRequest},
	{ErrRepeatedField, http.StatusBadRequest},
	{ErrMalformedBody, http.StatusBadRequest},
	{ErrBodyRead, http.StatusBadRequest},
}

// statusFor maps a sentinel to the HTTP status a receiver answers with.
func statusFor(sentinel error) int {
	for _, m := range sentinelStatus {
		if errors.Is(sentinel, m.err) {
			return m.status
		}
	}
	// Everything else about the content of a request is the client's fault.
	return http.StatusBadRequest
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
	for _, m := range sentinelStatus {
		if errors.Is(err, m.err) {
			return m.status
		}
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
