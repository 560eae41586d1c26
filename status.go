package cofidis

import "strings"

// Status is a transactionStatus as Cofidis sends it in redirects and
// notifications. Known values have the constants below; any other value is
// kept as it arrived, because new statuses will appear one day and must reach
// the merchant rather than be dropped.
//
// Convert received strings with ParseStatus, not Status(raw): like == and
// switch, the methods recognise only the canonical spellings.
type Status string

// The statuses of the Partner API, spelled as the getStatus table prints
// them. Other pages of the documentation capitalise them differently
// (To_confirm, Validated, refused…): ParseStatus maps every capitalisation to
// these constants.
const (
	// StatusInitialized: initialize succeeded and the customer has not
	// opened the journey yet.
	StatusInitialized Status = "Initialized"
	// StatusInitializedToRetry: initialize had missing or empty mandatory
	// fields; fix them and call initialize again.
	StatusInitializedToRetry Status = "Initialized_to_retry"
	// StatusUndefined: the customer is in the journey.
	StatusUndefined Status = "Undefined"
	// StatusAborted: the customer abandoned the journey (also what getStatus
	// answers when no outcome came back within 50 minutes). Final failure.
	StatusAborted Status = "Aborted"
	// StatusRefused: the journey is done and Cofidis refused the credit.
	// Final failure.
	StatusRefused Status = "Refused"
	// StatusError: a technical anomaly ended the journey. Final failure.
	StatusError Status = "Error"
	// StatusPending: the journey is done and the decision waits for a
	// manual check; a SubState may tell how far it went. More notifications
	// follow.
	StatusPending Status = "pending"
	// StatusToConfirm: Cofidis accepted the credit; the merchant must call
	// confirm. Final for the journey, but the sale is not financed yet.
	StatusToConfirm Status = "to_confirm"
	// StatusConfirmRefused: confirm was called but the amount could not be
	// reserved (credit line reuse). Final failure.
	StatusConfirmRefused Status = "confirm_refused"
	// StatusAuthorized: confirm was called in "Validate" capture mode; the
	// merchant must call validate within 6 days (3X/4X) or 30 days (loans).
	// A partly canceled authorization stays authorized.
	StatusAuthorized Status = "authorized"
	// StatusValidated: the sale is financed (confirm in "Immediate" mode, or
	// validate done). A partly refunded sale stays validated.
	StatusValidated Status = "validated"
	// StatusRefunded: the whole amount was refunded.
	StatusRefunded Status = "Refunded"
	// StatusCanceled: the whole amount was canceled.
	StatusCanceled Status = "Canceled"
	// StatusAbandonned (sic, as the Italian pages spell it): the merchant
	// reported an early abandon through updateStatus (Italy only). Final
	// failure, like StatusAborted.
	StatusAbandonned Status = "Abandonned"
)

// Statuses of the merchant's own calls that could not be carried out. The
// documentation only gives the patterns "<api>_failed" (could not be executed:
// contact Cofidis support) and "<api>_to_retry" (missing fields: fix the call
// and retry); the exact strings below are inferred from them. The
// documentation lists no "_to_retry" for refund; StatusRefundToRetry is
// accepted for symmetry so that it is recognised if it ever appears.
const (
	// StatusConfirmFailed: confirm could not be executed; contact support.
	StatusConfirmFailed Status = "confirm_failed"
	// StatusConfirmToRetry: confirm lacked mandatory fields; fix and retry.
	StatusConfirmToRetry Status = "confirm_to_retry"
	// StatusValidateFailed: validate could not be executed; contact support.
	StatusValidateFailed Status = "validate_failed"
	// StatusValidateToRetry: validate lacked mandatory fields; fix and retry.
	StatusValidateToRetry Status = "validate_to_retry"
	// StatusCancelFailed: cancel could not be executed; contact support.
	StatusCancelFailed Status = "cancel_failed"
	// StatusCancelToRetry: cancel lacked mandatory fields; fix and retry.
	StatusCancelToRetry Status = "cancel_to_retry"
	// StatusRefundFailed: refund could not be executed; contact support.
	StatusRefundFailed Status = "refund_failed"
	// StatusRefundToRetry: refund lacked mandatory fields; fix and retry.
	// Not listed by the documentation (see above).
	StatusRefundToRetry Status = "refund_to_retry"
)

// statusClass is what a status asks of the merchant. Every known status has
// exactly one, which keeps the exported predicates mutually exclusive.
type statusClass uint8

const (
	classUnknown    statusClass = iota
	classRunning                // wait: the journey is still moving
	classAccepted               // call confirm
	classAuthorized             // call validate (or cancel) before the deadline
	classFinanced               // done: the sale is financed
	classReversed               // done: the whole amount was refunded or canceled
	classFailed                 // done: the sale will not be financed
	classRetry                  // fix the call and retry it
	classSupport                // contact Cofidis support
)

// statusInfo is one row of the fact sheet's status table.
type statusInfo struct {
	status Status
	class  statusClass
	rank   int
	api    APICall // the call a *_failed / *_to_retry status is about
}

// statusTable is the single source of every fact about known statuses, in
// the order of the documented flow. It is never written to.
var statusTable = [...]statusInfo{
	{StatusInitialized, classRunning, 1, ""},
	{StatusInitializedToRetry, classRetry, 1, APIInitialize},
	{StatusUndefined, classRunning, 2, ""},
	{StatusPending, classRunning, 3, ""},
	{StatusToConfirm, classAccepted, 4, ""},
	{StatusRefused, classFailed, 4, ""},
	{StatusAborted, classFailed, 4, ""},
	{StatusError, classFailed, 4, ""},
	{StatusAbandonned, classFailed, 4, ""},
	{StatusConfirmRefused, classFailed, 5, ""},
	{StatusConfirmFailed, classSupport, 5, APIConfirm},
	{StatusConfirmToRetry, classRetry, 5, APIConfirm},
	{StatusAuthorized, classAuthorized, 5, ""},
	{StatusValidateFailed, classSupport, 6, APIValidate},
	{StatusValidateToRetry, classRetry, 6, APIValidate},
	{StatusValidated, classFinanced, 6, ""},
	{StatusCancelFailed, classSupport, 7, APICancel},
	{StatusCancelToRetry, classRetry, 7, APICancel},
	{StatusRefundFailed, classSupport, 7, APIRefund},
	{StatusRefundToRetry, classRetry, 7, APIRefund},
	{StatusRefunded, classReversed, 7, ""},
	{StatusCanceled, classReversed, 7, ""},
}

// statusRow returns the row of the canonical status s in statusTable, or
// -1 for any other value.
func statusRow(s Status) int {
	for i := range statusTable {
		if statusTable[i].status == s {
			return i
		}
	}
	return -1
}

// ParseStatus returns the canonical constant for a transactionStatus,
// matching ASCII letters case-insensitively ("REFUSED", "To_confirm" and
// "refused" all give StatusRefused or StatusToConfirm).
//
// Any other value is returned unchanged as Status(raw), never rejected, so
// that statuses Cofidis adds later still reach the merchant (Known reports
// false for them). Surrounding whitespace is not trimmed: " pending" is an
// unknown status, not StatusPending, because Cofidis is not known to pad
// values and guessing would hide a malformed request. The empty string gives
// the empty, unknown Status. Canonicalisation loses the original
// capitalisation; callers that need the raw value keep it themselves (the
// handler stores it as RawStatus).
func ParseStatus(raw string) Status {
	for i := range statusTable {
		s := statusTable[i].status
		// Equal lengths restrict EqualFold to ASCII case folding: the
		// canonical spellings are ASCII, and the only non-ASCII runes that
		// fold onto ASCII letters (the Kelvin sign, the long s) are longer.
		if len(s) == len(raw) && strings.EqualFold(string(s), raw) {
			return s
		}
	}
	return Status(raw)
}

// Statuses returns every known status in the order of the documented flow,
// as a new slice the caller may modify. It is meant for tests and tools.
func Statuses() []Status {
	out := make([]Status, len(statusTable))
	for i := range statusTable {
		out[i] = statusTable[i].status
	}
	return out
}

// info returns the table row of a canonical status, or a zero row (unknown
// class, rank 0) for anything else, including non-canonical spellings: parse
// first with ParseStatus.
func (s Status) info() statusInfo {
	if i := statusRow(s); i >= 0 {
		return statusTable[i]
	}
	return statusInfo{}
}

// String returns the status as it is stored: the canonical spelling for a
// known status, the value as received otherwise.
func (s Status) String() string { return string(s) }

// StatusLabelUnknown is the Label of every status that is not Known.
const StatusLabelUnknown = "unknown"

// Label returns a name for s from a fixed set, for a metric label or any
// other place where the number of distinct values must stay bounded: the
// canonical spelling of a known status, StatusLabelUnknown for every other
// value. An unknown status is whatever was posted (and, without a Verifier,
// whoever posted it chose it): used verbatim as a label, it would let
// anyone create series at will.
func (s Status) Label() string {
	if i := s.info(); i.class != classUnknown {
		return string(i.status)
	}
	return StatusLabelUnknown
}

// Known reports whether s is one of the canonical constants of this package.
// An unknown status must still be handled (logged, stored, escalated), not
// dropped.
func (s Status) Known() bool { return s.info().class != classUnknown }

// IsRunning reports whether the journey is still moving without any action
// from the merchant (Initialized, Undefined, pending): wait for the next
// callback, or call getStatus if none comes within 50 minutes.
func (s Status) IsRunning() bool { return s.info().class == classRunning }

// IsAccepted reports whether Cofidis accepted the credit (to_confirm): the
// merchant must now call confirm. Nothing is financed yet, and the same
// to_confirm can arrive up to three times, so act on it idempotently.
func (s Status) IsAccepted() bool { return s.info().class == classAccepted }

// IsAuthorized reports whether the amount is authorized in "Validate" capture
// mode (authorized): the merchant must call validate before the deadline, or
// cancel.
func (s Status) IsAuthorized() bool { return s.info().class == classAuthorized }

// IsFinanced reports whether the sale is financed (validated): the goods can
// be delivered. A partly refunded sale is still financed.
func (s Status) IsFinanced() bool { return s.info().class == classFinanced }

// IsReversed reports whether the whole amount was refunded or canceled
// (Refunded, Canceled): the sale no longer stands.
func (s Status) IsReversed() bool { return s.info().class == classReversed }

// IsFailed reports whether the sale ended without financing (Aborted, Refused,
// Error, Abandonned, confirm_refused): release the order or offer another
// means of payment.
func (s Status) IsFailed() bool { return s.info().class == classFailed }

// NeedsRetry reports whether a call lacked mandatory fields (initialize, or
// one of the merchant's confirm, validate, cancel, refund calls: see API): fix
// the call and retry it.
func (s Status) NeedsRetry() bool { return s.info().class == classRetry }

// NeedsSupport reports whether one of the merchant's calls could not be
// executed (every *_failed status, see API): contact Cofidis support, as the
// documentation gives no automatic way out.
func (s Status) NeedsSupport() bool { return s.info().class == classSupport }

// IsFinal reports whether no further status is expected from the journey,
// following the "final?" column of the fact sheet: to_confirm, validated,
// Refunded, Canceled and every failure. Later statuses then only come from
// the merchant's own calls (confirm, validate, cancel, refund). The *_failed
// statuses are not final: their outcome depends on Cofidis support.
func (s Status) IsFinal() bool {
	switch s.info().class {
	case classAccepted, classFinanced, classReversed, classFailed:
		return true
	}
	return false
}

// API names the call a *_failed or *_to_retry status is about:
// APIInitialize, APIConfirm, APIValidate, APICancel or APIRefund. It is
// empty for every other status.
func (s Status) API() APICall { return s.info().api }

// Rank is the position of s in the documented flow, for telling a stale
// event from a newer one; 0 means unknown, which cannot be ranked. Known
// statuses rank from 1:
//
//  1. Initialized, Initialized_to_retry (initialize)
//  2. Undefined (in the journey)
//  3. pending (manual check)
//  4. to_confirm, Refused, Aborted, Error, Abandonned (journey outcome)
//  5. authorized, confirm_refused, confirm_failed, confirm_to_retry (confirm)
//  6. validated, validate_failed, validate_to_retry (confirm "Immediate" or validate)
//  7. Refunded, Canceled, refund_*, cancel_* (after-sale)
//
// Statuses of equal rank are alternatives, not ordered. The order is strict
// for the journey (ranks 1 to 4) only: after it, the merchant's own calls can
// legitimately go back (a partial cancel leaves authorized, a partial refund
// leaves validated, a successful retry after cancel_to_retry gives authorized
// again), so a lower rank among 5 to 7 is not proof of a stale event.
func (s Status) Rank() int { return s.info().rank }

// MarshalText returns the status as stored, so that encoders that prefer
// encoding.TextMarshaler (flag.TextVar, some YAML libraries) write the same
// string as encoding/json.
func (s Status) MarshalText() ([]byte, error) { return []byte(s), nil }

// UnmarshalText sets s to ParseStatus(text), so that decoding JSON or text
// yields the canonical constant for any capitalisation of a known status and
// keeps unknown values verbatim. It never fails.
func (s *Status) UnmarshalText(text []byte) error {
	*s = ParseStatus(string(text))
	return nil
}

// SubState is the subState of a pending notification, telling how far the
// manual check went. Only "signed" is documented, though the documentation
// speaks of several; unknown values are kept as they arrived. The empty
// SubState means the field was absent, as it is on redirects.
type SubState string

// SubStateSigned is the one documented sub-state, sent with a pending
// status; the documentation does not say more about it than its name.
const SubStateSigned SubState = "signed"

// ParseSubState returns SubStateSigned for any ASCII capitalisation of
// "signed" and any other value unchanged, untrimmed, like ParseStatus; the
// empty string stays empty (absent).
func ParseSubState(raw string) SubState {
	if len(raw) == len(SubStateSigned) && strings.EqualFold(raw, string(SubStateSigned)) {
		return SubStateSigned
	}
	return SubState(raw)
}

// String returns the sub-state as it is stored.
func (s SubState) String() string { return string(s) }

// Known reports whether s is a documented sub-state (only SubStateSigned).
func (s SubState) Known() bool { return s == SubStateSigned }

// Label returns a name for s from a fixed set, like Status.Label: "signed",
// "" for no sub-state, StatusLabelUnknown for any other value.
func (s SubState) Label() string {
	switch {
	case s == "" || s.Known():
		return string(s)
	}
	return StatusLabelUnknown
}

// MarshalText returns the sub-state as stored, like Status.MarshalText.
func (s SubState) MarshalText() ([]byte, error) { return []byte(s), nil }

// UnmarshalText sets s to ParseSubState(text); it never fails.
func (s *SubState) UnmarshalText(text []byte) error {
	*s = ParseSubState(string(text))
	return nil
}
