package cofidistest

import (
	"fmt"
	"slices"
	"time"

	"github.com/cofidis-go/cofidis"
)

// Journey is the script of the callbacks one transaction produces, in the
// order Fake.Play posts them. Build one with Accepted, Refused, Aborted,
// Errored, PendingAccepted or PendingRefused, then adjust it with its
// methods, which return modified copies, or by editing Steps.
type Journey struct {
	// Name says what the journey is, for messages: "accepted", "refused",
	// "aborted", "error", "pending-accepted" or "pending-refused" from the
	// constructors.
	Name string
	// Key is the transaction key of every step whose Request.Key is the
	// zero value.
	Key cofidis.TransactionKey
	// Steps are the callbacks, in the order they are posted.
	Steps []Step
}

// Step is one callback of a Journey.
type Step struct {
	// Request is what is posted. Its Key may be left zero: Journey.Key is
	// used.
	Request
	// Delay is waited before the step is posted: after the previous step,
	// or after the start of the journey when Fake.Concurrent is set.
	Delay time.Duration
	// Lost makes the step happen at Cofidis (a Fake's Ledger advances to
	// its status) without reaching the receiver: a notification lost on
	// the way, a redirect the customer's closed tab never made. Fake.Play
	// posts nothing for it and returns no Delivery.
	Lost bool
}

func step(e cofidis.Endpoint, s cofidis.Status, sub cofidis.SubState) Step {
	return Step{Request: Request{Endpoint: e, Status: s, SubState: sub}}
}

// Accepted is a journey ending with Cofidis' acceptance: the browser comes
// back to returnUrlSuccess with to_confirm, and Cofidis doubles it with a
// to_confirm notification on notificationUrlSuccess. The documentation does
// not order the two; NotificationsFirst swaps them.
func Accepted(key cofidis.TransactionKey) Journey {
	return Journey{Name: "accepted", Key: key, Steps: []Step{
		step(cofidis.EndpointReturnSuccess, cofidis.StatusToConfirm, ""),
		step(cofidis.EndpointNotificationSuccess, cofidis.StatusToConfirm, ""),
	}}
}

// Refused is a journey ending with Cofidis' refusal: the browser comes back
// to returnUrlOther with Refused, and a Refused notification goes to
// notificationUrlOther.
func Refused(key cofidis.TransactionKey) Journey {
	return Journey{Name: "refused", Key: key, Steps: []Step{
		step(cofidis.EndpointReturnOther, cofidis.StatusRefused, ""),
		step(cofidis.EndpointNotificationOther, cofidis.StatusRefused, ""),
	}}
}

// Aborted is a journey the customer abandoned: no browser comes back, and an
// Aborted notification goes to notificationUrlOther.
func Aborted(key cofidis.TransactionKey) Journey {
	return Journey{Name: "aborted", Key: key, Steps: []Step{
		step(cofidis.EndpointNotificationOther, cofidis.StatusAborted, ""),
	}}
}

// Errored is a journey ended by a technical anomaly: an Error notification
// goes to notificationUrlOther (the documentation sends the browser back only
// for acceptance, refusal and pending).
func Errored(key cofidis.TransactionKey) Journey {
	return Journey{Name: "error", Key: key, Steps: []Step{
		step(cofidis.EndpointNotificationOther, cofidis.StatusError, ""),
	}}
}

// PendingAccepted is a journey that ends pending a manual check, which then
// accepts: the browser comes back to returnUrlOther with pending, one pending
// notification per sub-state goes to notificationUrlPending, and the final
// to_confirm goes to notificationUrlPending too.
//
// Without subStates, the pending notifications are one without subState and
// one with "signed" (the only documented sub-state). An empty sub-state
// posts a notification without the field.
func PendingAccepted(key cofidis.TransactionKey, subStates ...cofidis.SubState) Journey {
	return pending("pending-accepted", key, subStates, cofidis.StatusToConfirm)
}

// PendingRefused is PendingAccepted with a final Refused on
// notificationUrlPending.
func PendingRefused(key cofidis.TransactionKey, subStates ...cofidis.SubState) Journey {
	return pending("pending-refused", key, subStates, cofidis.StatusRefused)
}

// pending is a pending journey ending with final on notificationUrlPending.
func pending(name string, key cofidis.TransactionKey, subStates []cofidis.SubState, final cofidis.Status) Journey {
	if len(subStates) == 0 {
		subStates = []cofidis.SubState{"", cofidis.SubStateSigned}
	}
	steps := []Step{step(cofidis.EndpointReturnOther, cofidis.StatusPending, "")}
	for _, sub := range subStates {
		steps = append(steps, step(cofidis.EndpointNotificationPending, cofidis.StatusPending, sub))
	}
	steps = append(steps, step(cofidis.EndpointNotificationPending, final, ""))
	return Journey{Name: name, Key: key, Steps: steps}
}

// clone returns j with its own Steps.
func (j Journey) clone() Journey {
	j.Steps = slices.Clone(j.Steps)
	return j
}

// NotificationsFirst returns j with every notification moved before the
// redirects, each group keeping its order: Cofidis' server was faster than
// the customer's browser.
func (j Journey) NotificationsFirst() Journey {
	j = j.clone()
	slices.SortStableFunc(j.Steps, func(a, b Step) int {
		return rankChannel(a) - rankChannel(b)
	})
	return j
}

func rankChannel(s Step) int {
	if s.channel() == cofidis.ChannelRedirect {
		return 1
	}
	return 0
}

// Reorder returns j with the steps at the given indices, in that order: a
// permutation reorders, a repeated index duplicates a step and a missing one
// drops it (a lost delivery). It panics on an index out of range.
func (j Journey) Reorder(order ...int) Journey {
	steps := make([]Step, 0, len(order))
	for _, i := range order {
		if i < 0 || i >= len(j.Steps) {
			panic(fmt.Sprintf("cofidistest: Journey.Reorder: index %d out of range [0, %d)", i, len(j.Steps)))
		}
		steps = append(steps, j.Steps[i])
	}
	j.Steps = steps
	return j
}

// Each returns j after calling fn on each of its steps, to change them all:
// j.Each(func(_ int, s *cofidistest.Step) { s.MultilineJSON = true }).
func (j Journey) Each(fn func(i int, s *Step)) Journey {
	j = j.clone()
	for i := range j.Steps {
		fn(i, &j.Steps[i])
	}
	return j
}

// LoseNotifications returns j with every notification lost (Step.Lost):
// Cofidis decides, but none of its notifications reaches the receiver, as
// when they are not enabled yet for the merchant or the merchant's servers
// were down longer than Cofidis retries.
func (j Journey) LoseNotifications() Journey {
	return j.lose(cofidis.ChannelNotification)
}

// CloseBrowser returns j with every redirect lost (Step.Lost): the customer
// closed the tab before Cofidis' page sent the browser back. With
// LoseNotifications too, every callback is lost, and only reconciliation
// (cofidis.WithReconciliation) recovers the decision.
func (j Journey) CloseBrowser() Journey {
	return j.lose(cofidis.ChannelRedirect)
}

func (j Journey) lose(ch cofidis.Channel) Journey {
	return j.Each(func(_ int, s *Step) {
		if s.channel() == ch {
			s.Lost = true
		}
	})
}

// Then returns j with steps appended, such as a later validated
// notification.
func (j Journey) Then(steps ...Step) Journey {
	j = j.clone()
	j.Steps = append(j.Steps, steps...)
	return j
}
