package cofidis_test

import (
	"fmt"

	"github.com/cofidis-go/cofidis"
)

func ExampleParseStatus() {
	for _, raw := range []string{"To_confirm", "REFUSED", "pending", "approved", " pending"} {
		s := cofidis.ParseStatus(raw)
		fmt.Printf("%q -> %q known=%t\n", raw, s, s.Known())
	}
	// Output:
	// "To_confirm" -> "to_confirm" known=true
	// "REFUSED" -> "Refused" known=true
	// "pending" -> "pending" known=true
	// "approved" -> "approved" known=false
	// " pending" -> " pending" known=false
}

// A merchant's callback decides what to do next from the classification,
// and escalates what it does not know instead of dropping it.
func ExampleStatus_IsAccepted() {
	next := func(s cofidis.Status) string {
		switch {
		case s.IsAccepted():
			return "call confirm"
		case s.IsAuthorized():
			return "call validate before the deadline"
		case s.IsFinanced():
			return "ship the order"
		case s.IsReversed():
			return "close the order"
		case s.IsFailed():
			return "release the order"
		case s.NeedsRetry():
			return "fix and retry " + string(s.API())
		case s.NeedsSupport():
			return "contact Cofidis support about " + string(s.API())
		case s.IsRunning():
			return "wait"
		default:
			return "alert: unknown status"
		}
	}
	for _, raw := range []string{"to_confirm", "authorized", "Validated", "refused", "confirm_to_retry", "refund_failed", "pending", "approved"} {
		fmt.Printf("%s: %s\n", raw, next(cofidis.ParseStatus(raw)))
	}
	// Output:
	// to_confirm: call confirm
	// authorized: call validate before the deadline
	// Validated: ship the order
	// refused: release the order
	// confirm_to_retry: fix and retry confirm
	// refund_failed: contact Cofidis support about refund
	// pending: wait
	// approved: alert: unknown status
}

// Rank tells an event that arrives late from a newer one, for example a
// pending notification delivered after the to_confirm that followed it.
func ExampleStatus_Rank() {
	stored := cofidis.StatusToConfirm
	incoming := cofidis.ParseStatus("pending")
	if incoming.Rank() != 0 && incoming.Rank() < stored.Rank() {
		fmt.Printf("ignore stale %s after %s\n", incoming, stored)
	}
	// Output:
	// ignore stale pending after to_confirm
}
