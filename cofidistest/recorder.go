package cofidistest

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/cofidis-go/cofidis"
)

// Recorder implements both callbacks of a cofidis receiver and keeps every
// event they are called with, in call order, for assertions:
//
//	var rec cofidistest.Recorder
//	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify, cofidis.WithVerifier(&ledger))
//
// It is safe for concurrent use. The zero value records and answers
// successfully; set the fields before the receiver runs. A Recorder must not
// be copied after first use.
type Recorder struct {
	// RedirectURL, when set, makes Redirect answer 303 See Other to it
	// (cofidis.SeeOther); otherwise it answers 200 with a short text page.
	RedirectURL string
	// NotifyError, when set, is called by Notify with each event after
	// recording it, and its result is returned to the receiver: an error
	// has the notification answered 500 (retry), cofidis.Permanent(err)
	// 200. Use it to test retries.
	NotifyError func(ev cofidis.Event) error
	// OnEvent, when set, is called with each event after it is recorded,
	// on the receiver's goroutine: print or forward events as they arrive.
	OnEvent func(ev cofidis.Event)

	mu      sync.Mutex
	events  []cofidis.Event
	changed chan struct{} // closed and replaced at each event
}

// Redirect is a cofidis.RedirectFunc: it records the event and answers the
// browser (see RedirectURL).
func (r *Recorder) Redirect(w http.ResponseWriter, req *http.Request, ev cofidis.Event) error {
	r.record(ev)
	if r.RedirectURL != "" {
		return cofidis.SeeOther(w, req, r.RedirectURL)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err := io.WriteString(w, "recorded\n")
	return err
}

// Notify is a cofidis.NotificationFunc: it records the event and returns nil
// (answered 200), or what NotifyError returns.
func (r *Recorder) Notify(_ context.Context, ev cofidis.Event) error {
	r.record(ev)
	if r.NotifyError != nil {
		return r.NotifyError(ev)
	}
	return nil
}

func (r *Recorder) record(ev cofidis.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
	if r.OnEvent != nil {
		r.OnEvent(ev)
	}
}

// Events returns a copy of the events recorded so far, in call order.
func (r *Recorder) Events() []cofidis.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Len returns the number of events recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Filter returns the recorded events for which keep returns true, in call
// order: rec.Filter(cofidistest.OnChannel(cofidis.ChannelRedirect)) for the
// redirects, rec.Filter(cofidistest.ForTransaction(id)) for one
// transaction.
func (r *Recorder) Filter(keep func(cofidis.Event) bool) []cofidis.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return filter(r.events, keep)
}

// Wait blocks until at least n events are recorded and returns them all, or
// returns the events so far with ctx's error.
func (r *Recorder) Wait(ctx context.Context, n int) ([]cofidis.Event, error) {
	return r.WaitFor(ctx, n, func(cofidis.Event) bool { return true })
}

// WaitFor blocks until at least n recorded events satisfy match and returns
// those, or returns the matching events so far with ctx's error. Events are
// recorded before the receiver answers, so after a synchronous Fake.Play
// there is nothing to wait for; WaitFor is for events caused elsewhere.
func (r *Recorder) WaitFor(ctx context.Context, n int, match func(cofidis.Event) bool) ([]cofidis.Event, error) {
	for {
		r.mu.Lock()
		got := filter(r.events, match)
		if len(got) >= n {
			r.mu.Unlock()
			return got, nil
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-changed:
		}
	}
}

// Reset forgets the recorded events.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// OnChannel returns a filter keeping the events of channel ch, for Filter
// and WaitFor.
func OnChannel(ch cofidis.Channel) func(cofidis.Event) bool {
	return func(ev cofidis.Event) bool { return ev.Channel == ch }
}

// ForTransaction returns a filter keeping the events of one transaction, for
// Filter and WaitFor.
func ForTransaction(id cofidis.TransactionID) func(cofidis.Event) bool {
	return func(ev cofidis.Event) bool { return ev.TransactionKey.ID() == id }
}

// HasStatus returns a filter keeping the events with status s (compared
// after cofidis.ParseStatus), for Filter and WaitFor.
func HasStatus(s cofidis.Status) func(cofidis.Event) bool {
	s = cofidis.ParseStatus(string(s))
	return func(ev cofidis.Event) bool { return ev.Status == s }
}

func filter(evs []cofidis.Event, keep func(cofidis.Event) bool) []cofidis.Event {
	var out []cofidis.Event
	for _, ev := range evs {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}
