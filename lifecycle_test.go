package cofidis_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cofidis-go/cofidis"
)

func TestResponseCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code                                 cofidis.ResponseCode
		known, succeeded, alreadyDone, retry bool
	}{
		{cofidis.CodeSuccess, true, true, false, false},
		{cofidis.CodeAlreadyConfirmed, true, true, true, false},
		{cofidis.CodeAlreadyValidated, true, true, true, false},
		{cofidis.CodeAlreadyRefunded, true, true, true, false},
		{cofidis.CodeAlreadyCanceled, true, true, true, false},
		{cofidis.CodeDateNotToday, true, false, false, false},
		{cofidis.CodeNotToConfirm, true, false, false, false},
		{cofidis.CodeKeyUnknown, true, false, false, false},
		{cofidis.CodeSellerNotTrained, true, false, false, false},
		{cofidis.CodeConfirmTechnical, true, false, false, true},
		{cofidis.CodeCancelTechnical2, true, false, false, true},
		{"999", true, false, false, true}, // "9xx technical errors"
		{"9x9", false, false, false, false},
		{"042", false, false, false, false},
		{"", false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.known, tt.code.Known(), "Known")
			assert.Equal(t, tt.succeeded, tt.code.Succeeded(), "Succeeded")
			assert.Equal(t, tt.alreadyDone, tt.code.AlreadyDone(), "AlreadyDone")
			assert.Equal(t, tt.retry, tt.code.Retryable(), "Retryable")
			assert.Equal(t, tt.known, tt.code.Meaning() != "", "Meaning")
		})
	}
}

// The codes each call answers, from each call's page of the documentation
// (the fact sheet's table).
func TestResponseCode_AnsweredBy(t *testing.T) {
	t.Parallel()
	byCall := map[cofidis.APICall][]cofidis.ResponseCode{
		cofidis.APIInitialize:  {"000", "001", "002"},
		cofidis.APISendPayment: {"000", "001", "002", "040", "041"},
		cofidis.APIConfirm:     {"000", "003", "004", "005", "022", "904", "912", "913"},
		cofidis.APIValidate:    {"000", "003", "006", "007", "008", "022", "906", "914"},
		cofidis.APICancel:      {"000", "003", "012", "013", "022", "910", "916"},
		cofidis.APIRefund:      {"000", "003", "009", "010", "011", "022", "908", "915"},
	}
	for call, codes := range byCall {
		for n := range 1000 {
			code := cofidis.ResponseCode(fmt.Sprintf("%03d", n))
			want := false
			for _, c := range codes {
				want = want || c == code
			}
			assert.Equal(t, want, code.AnsweredBy(call), "%s answers %s", call, code)
		}
	}
}

func TestStatus_Allows(t *testing.T) {
	t.Parallel()
	calls := []cofidis.APICall{cofidis.APIConfirm, cofidis.APIValidate, cofidis.APICancel, cofidis.APIRefund, cofidis.APIUpdateStatus, cofidis.APIInitialize}
	allowed := map[cofidis.Status][]cofidis.APICall{
		cofidis.StatusToConfirm:  {cofidis.APIConfirm},
		cofidis.StatusAuthorized: {cofidis.APIValidate, cofidis.APICancel},
		cofidis.StatusValidated:  {cofidis.APIRefund},
		cofidis.StatusPending:    {cofidis.APIUpdateStatus},
	}
	for _, s := range append(cofidis.Statuses(), "unknown_one") {
		assert.True(t, s.Allows(cofidis.APIGetStatus), "getStatus in %s", s)
		for _, c := range calls {
			want := false
			for _, a := range allowed[s] {
				want = want || a == c
			}
			assert.Equal(t, want, s.Allows(c), "%s in %s", c, s)
		}
	}
}

// A merchant's confirm, retried after a timeout: 004 means the first one
// went through.
func ExampleResponseCode_Succeeded() {
	for _, code := range []cofidis.ResponseCode{"000", "004", "005", "904"} {
		switch {
		case code.Succeeded():
			fmt.Printf("%s %s: done (already before: %t)\n", code, code.Meaning(), code.AlreadyDone())
		case code.Retryable():
			fmt.Printf("%s %s: retry later\n", code, code.Meaning())
		default:
			fmt.Printf("%s %s: ask getStatus, do not retry\n", code, code.Meaning())
		}
	}
	fmt.Println("confirm allowed in to_confirm:", cofidis.StatusToConfirm.Allows(cofidis.APIConfirm))
	fmt.Println("refund allowed in authorized:", cofidis.StatusAuthorized.Allows(cofidis.APIRefund))
	// Output:
	// 000 success: done (already before: false)
	// 004 already confirmed: done (already before: true)
	// 005 not in to_confirm: ask getStatus, do not retry
	// 904 technical error: retry later
	// confirm allowed in to_confirm: true
	// refund allowed in authorized: false
}
