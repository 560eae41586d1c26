package cofidis

import "slices"

// The merchant's side of the lifecycle: the Partner API calls a merchant
// makes around the callbacks (initialize, confirm, validate, cancel,
// refund…), the status each one needs, and the response codes they answer.
// This package makes none of these calls: their endpoints, authentication
// and schemas are not public. The model below is what the merchant's own
// client (often generated from the Swagger Cofidis gives its merchants)
// plugs into, so that "may I call validate now?" and "did my retried
// confirm succeed?" have one answer.

// APICall names a Partner API call.
type APICall string

// The Partner API calls, as the documentation names them.
const (
	// APIInitialize creates the transaction and returns the journey's URL.
	APIInitialize APICall = "initialize"
	// APISendPayment is initialize's retail counterpart (captureMode
	// Immediate).
	APISendPayment APICall = "sendPayment"
	// APIGetStatus answers the transaction's current status, in any
	// status: the only proof of one (see Verifier).
	APIGetStatus APICall = "getStatus"
	// APIConfirm confirms an accepted transaction (to_confirm); in
	// "Immediate" capture mode it finances it (validated), in "Validate"
	// mode it authorizes it (authorized).
	APIConfirm APICall = "confirm"
	// APIValidate finances an authorized transaction, once, before the
	// authorization expires (6 days for 3X/4X, 30 for loans).
	APIValidate APICall = "validate"
	// APICancel cancels all or part of an authorized transaction not yet
	// validated; repeatable within the authorized amount.
	APICancel APICall = "cancel"
	// APIRefund refunds all or part of a validated transaction; repeatable
	// within the financed amount.
	APIRefund APICall = "refund"
	// APIUpdateStatus reports an early abandon of a pending transaction
	// (Italy only; newStatus "Abandonned").
	APIUpdateStatus APICall = "updateStatus"
)

// allows is, for each call that needs one, the status it needs: the
// preconditions of the fact sheet's table.
var allows = [...]struct {
	call   APICall
	status Status
}{
	{APIConfirm, StatusToConfirm},
	{APIValidate, StatusAuthorized},
	{APICancel, StatusAuthorized},
	{APIRefund, StatusValidated},
	{APIUpdateStatus, StatusPending},
}

// Allows reports whether the documentation allows call in status s
// (canonical: parse with ParseStatus first): confirm in to_confirm, validate
// and cancel in authorized (partial cancels keep it authorized), refund in
// validated (partial refunds keep it validated), updateStatus in pending;
// getStatus in any status. initialize and sendPayment create the
// transaction, so no status allows them. A call the status does not allow
// answers an error code (005, 007, 010…); a call made again after it
// succeeded answers an "already done" one (see ResponseCode.AlreadyDone).
func (s Status) Allows(call APICall) bool {
	if call == APIGetStatus {
		return true
	}
	for _, a := range allows {
		if a.call == call && a.status == s {
			return true
		}
	}
	return false
}

// ResponseCode is the response code of a Partner API call, three digits as
// the documentation prints them ("000", "004", "904"). Codes not listed
// below are kept as they are, and reported unknown.
type ResponseCode string

// The documented response codes.
const (
	CodeSuccess            ResponseCode = "000" // success
	CodeDateNotToday       ResponseCode = "001" // merchantTransactionDate is not today in Paris
	CodeKeyAlreadyUsed     ResponseCode = "002" // the id/date pair is already used
	CodeNotAccepted        ResponseCode = "003" // the transaction is not an accepted one
	CodeAlreadyConfirmed   ResponseCode = "004" // confirm: already confirmed
	CodeNotToConfirm       ResponseCode = "005" // confirm: not in to_confirm
	CodeAlreadyValidated   ResponseCode = "006" // validate: already validated
	CodeNotAuthorized      ResponseCode = "007" // validate: not authorized
	CodeValidateAmountHigh ResponseCode = "008" // validate: amount over authorizedAmount
	CodeAlreadyRefunded    ResponseCode = "009" // refund: already refunded
	CodeNotValidated       ResponseCode = "010" // refund: not validated
	CodeRefundAmountHigh   ResponseCode = "011" // refund: amount over validated − refunded
	CodeAlreadyCanceled    ResponseCode = "012" // cancel: already canceled
	CodeCancelAmountHigh   ResponseCode = "013" // cancel: amount over authorized − cancelled
	CodeKeyUnknown         ResponseCode = "022" // the transaction key does not exist
	CodeSellerNotAllowed   ResponseCode = "040" // sendPayment: seller not allowed
	CodeSellerNotTrained   ResponseCode = "041" // sendPayment: seller not trained
	CodeConfirmTechnical   ResponseCode = "904" // confirm: technical failure
	CodeValidateTechnical  ResponseCode = "906" // validate: technical failure
	CodeRefundTechnical    ResponseCode = "908" // refund: technical failure
	CodeCancelTechnical    ResponseCode = "910" // cancel: technical failure
	CodeConfirmTechnical2  ResponseCode = "912" // confirm: technical failure
	CodeConfirmTechnical3  ResponseCode = "913" // confirm: technical failure
	CodeValidateTechnical2 ResponseCode = "914" // validate: technical failure
	CodeRefundTechnical2   ResponseCode = "915" // refund: technical failure
	CodeCancelTechnical2   ResponseCode = "916" // cancel: technical failure
	codeTechnicalPrefix    byte         = '9'
)

// codeClass is what a response code means for the call that got it.
type codeClass uint8

const (
	codeUnknown   codeClass = iota
	codeSucceeded           // done now
	codeAlready             // done before: a retried call succeeded earlier
	codeRefused             // a business refusal: retrying the same call cannot help
	codeTechnical           // this attempt failed: retry
)

// codeInfo is one row of the fact sheet's table of response codes.
type codeInfo struct {
	code    ResponseCode
	class   codeClass
	meaning string
	calls   []APICall // the calls that answer it, from each call's page
}

// codeTable is the single source of every fact about response codes.
var codeTable = [...]codeInfo{
	{CodeSuccess, codeSucceeded, "success", []APICall{APIInitialize, APISendPayment, APIConfirm, APIValidate, APICancel, APIRefund, APIUpdateStatus}},
	{CodeDateNotToday, codeRefused, "merchantTransactionDate is not today (Paris time)", []APICall{APIInitialize, APISendPayment}},
	{CodeKeyAlreadyUsed, codeRefused, "the transaction key is already used", []APICall{APIInitialize, APISendPayment}},
	{CodeNotAccepted, codeRefused, "not an accepted transaction", []APICall{APIConfirm, APIValidate, APICancel, APIRefund}},
	{CodeAlreadyConfirmed, codeAlready, "already confirmed", []APICall{APIConfirm}},
	{CodeNotToConfirm, codeRefused, "not in to_confirm", []APICall{APIConfirm}},
	{CodeAlreadyValidated, codeAlready, "already validated", []APICall{APIValidate}},
	{CodeNotAuthorized, codeRefused, "not authorized", []APICall{APIValidate}},
	{CodeValidateAmountHigh, codeRefused, "validate amount higher than the authorized amount", []APICall{APIValidate}},
	{CodeAlreadyRefunded, codeAlready, "already refunded", []APICall{APIRefund}},
	{CodeNotValidated, codeRefused, "not validated", []APICall{APIRefund}},
	{CodeRefundAmountHigh, codeRefused, "refund amount higher than validated minus refunded", []APICall{APIRefund}},
	{CodeAlreadyCanceled, codeAlready, "already canceled", []APICall{APICancel}},
	{CodeCancelAmountHigh, codeRefused, "cancel amount higher than authorized minus cancelled", []APICall{APICancel}},
	{CodeKeyUnknown, codeRefused, "the transaction key does not exist", []APICall{APIConfirm, APIValidate, APICancel, APIRefund}},
	{CodeSellerNotAllowed, codeRefused, "seller not allowed", []APICall{APISendPayment}},
	{CodeSellerNotTrained, codeRefused, "seller not trained", []APICall{APISendPayment}},
	{CodeConfirmTechnical, codeTechnical, "technical error", []APICall{APIConfirm}},
	{CodeValidateTechnical, codeTechnical, "technical error", []APICall{APIValidate}},
	{CodeRefundTechnical, codeTechnical, "technical error", []APICall{APIRefund}},
	{CodeCancelTechnical, codeTechnical, "technical error", []APICall{APICancel}},
	{CodeConfirmTechnical2, codeTechnical, "technical error", []APICall{APIConfirm}},
	{CodeConfirmTechnical3, codeTechnical, "technical error", []APICall{APIConfirm}},
	{CodeValidateTechnical2, codeTechnical, "technical error", []APICall{APIValidate}},
	{CodeRefundTechnical2, codeTechnical, "technical error", []APICall{APIRefund}},
	{CodeCancelTechnical2, codeTechnical, "technical error", []APICall{APICancel}},
}

// info returns c's row; a 9xx code not listed is still technical, as the
// documentation says of every 9xx code.
func (c ResponseCode) info() codeInfo {
	for _, row := range codeTable {
		if row.code == c {
			return row
		}
	}
	if len(c) == 3 && c[0] == codeTechnicalPrefix && isDigits(string(c)) {
		return codeInfo{code: c, class: codeTechnical, meaning: "technical error"}
	}
	return codeInfo{code: c}
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Known reports whether the documentation lists c (every 9xx code counts:
// "9xx technical errors").
func (c ResponseCode) Known() bool { return c.info().class != codeUnknown }

// Meaning returns the documented meaning of c, "" when it is unknown.
func (c ResponseCode) Meaning() string { return c.info().meaning }

// Succeeded reports whether the instruction is carried out: done now (000)
// or before (AlreadyDone). A retried confirm that gets 004 has succeeded.
func (c ResponseCode) Succeeded() bool {
	cl := c.info().class
	return cl == codeSucceeded || cl == codeAlready
}

// AlreadyDone reports whether c says the instruction was carried out by an
// earlier call: 004 (confirm), 006 (validate), 009 (refund), 012 (cancel).
// A merchant retrying a call after a timeout, or after a replica crashed,
// treats it as success: this is what makes those calls idempotent.
func (c ResponseCode) AlreadyDone() bool { return c.info().class == codeAlready }

// Retryable reports whether c is a technical failure of this attempt
// (9xx): the same call may be made again, with backoff.
func (c ResponseCode) Retryable() bool { return c.info().class == codeTechnical }

// AnsweredBy reports whether the documentation lists c among the codes of
// call. An unlisted 9xx code is not attributed to any call.
func (c ResponseCode) AnsweredBy(call APICall) bool {
	return slices.Contains(c.info().calls, call)
}

// String returns the code as it was given.
func (c ResponseCode) String() string { return string(c) }
