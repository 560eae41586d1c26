package cofidistest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/cofidis-go/cofidis"
)

// maxAnswerBytes bounds how much of an answer's body a Delivery keeps.
const maxAnswerBytes = 64 << 10

// Fake plays Cofidis: it posts the callbacks of a Journey to the merchant's
// URLs, either in process to Handler or over HTTP with Client. All fields are
// read by Play; set them before calling it. A Fake holds no state of its own
// and may play several journeys at once.
type Fake struct {
	// URLs are the merchant's technicalData URLs, the ones the receiver
	// under test was built with. Over HTTP they are also where the
	// requests go, so they must point at the server under test.
	URLs cofidis.URLs
	// Handler, when set, receives every request in process (no network):
	// typically the cofidis.Router under test.
	Handler http.Handler
	// Client sends the requests over HTTP when Handler is nil (nil means
	// http.DefaultClient). Redirects in the answers are never followed:
	// the Delivery reports them.
	Client *http.Client
	// Ledger, when set, is advanced to each step's status just before the
	// step is posted, as Cofidis' own state moves before it calls back;
	// pass the same Ledger to cofidis.WithVerifier to play getStatus.
	Ledger *Ledger
	// Delay is waited between two deliveries, on top of each step's own
	// Delay. Ignored when Concurrent is set.
	Delay time.Duration
	// RepeatNotifications posts every notification this many extra times
	// right after the first, as a server retrying or delivering at least
	// once would. Redirects are never repeated.
	RepeatNotifications int
	// Concurrent posts all the steps at once, each after its own Delay,
	// instead of one after the other: a redirect and a notification racing
	// each other.
	Concurrent bool
}

// Delivery is what happened to one posted request.
type Delivery struct {
	// Step is the index of the request's step in the journey.
	Step int
	// Repeat is 0 for the first post of the step and n for its nth
	// repetition (Fake.RepeatNotifications).
	Repeat int
	// Endpoint is the URL the request was posted to.
	Endpoint cofidis.Endpoint
	// Channel is who the request pretended to come from, which decided its
	// headers.
	Channel cofidis.Channel
	// Status is the transactionStatus as posted.
	Status cofidis.Status
	// SubState is the subState as posted, empty when absent.
	SubState cofidis.SubState
	// URL is where the request was posted.
	URL string
	// HTTPStatus is the status code of the answer, 0 when there was none.
	HTTPStatus int
	// Location is the answer's Location header (a redirect's target).
	Location string
	// Body is the start of the answer's body.
	Body string
	// Err is why there was no answer: a transport failure or the context
	// ending. Nil when the request was answered, whatever the status code.
	Err error
}

// OK reports whether the request was answered with a 2xx or 3xx status:
// accepted by the receiver.
func (d Delivery) OK() bool {
	return d.Err == nil && d.HTTPStatus >= 200 && d.HTTPStatus < 400
}

// String describes the delivery in one line, as
// "notification notificationUrlPending pending/signed -> 200" (see
// Describe), or "-> error: ..." when it was not answered.
func (d Delivery) String() string {
	s := describe(d.Channel, cofidis.EndpointSet(0).Add(d.Endpoint), d.Status, d.SubState)
	if d.Err != nil {
		return s + " -> error: " + d.Err.Error()
	}
	return fmt.Sprintf("%s -> %d", s, d.HTTPStatus)
}

// Describe returns a one-line summary of an event, in the format of
// Delivery.String without the answer: channel, endpoint(s), status and, when
// present, "/" and the sub-state, as
// "redirect returnUrlSuccess to_confirm". Comparing []string of these makes
// readable test failures.
func Describe(ev cofidis.Event) string {
	return describe(ev.Channel, ev.Endpoints, ev.Status, ev.SubState)
}

func describe(ch cofidis.Channel, set cofidis.EndpointSet, st cofidis.Status, sub cofidis.SubState) string {
	s := ch.String() + " " + set.String() + " " + string(st)
	if sub != "" {
		s += "/" + string(sub)
	}
	return s
}

// Play posts the journey's steps and returns one Delivery per request, in
// the journey's order (with repetitions right after their step). A lost
// step (Step.Lost) only advances the Ledger, first, as Cofidis' state moves
// whatever reaches the receiver: it is neither posted nor delivered. A status
// code, even 500, is not an error: check Delivery.OK or HTTPStatus. Play
// stops at the first request that could not be sent and returns the
// deliveries so far with that error; with Concurrent, it posts everything
// and joins the errors.
func (f Fake) Play(ctx context.Context, j Journey) ([]Delivery, error) {
	type post struct {
		step   int
		repeat int
		s      Step
	}
	var posts []post
	for i, s := range j.Steps {
		if s.Key == (cofidis.TransactionKey{}) {
			s.Key = j.Key
		}
		if s.Lost {
			// It happened at Cofidis, and reached nobody.
			if f.Ledger != nil {
				f.Ledger.Advance(s.Key, s.Status)
			}
			continue
		}
		posts = append(posts, post{step: i, s: s})
		if s.channel() == cofidis.ChannelNotification {
			for n := 1; n <= f.RepeatNotifications; n++ {
				r := s
				r.Delay = 0
				posts = append(posts, post{step: i, repeat: n, s: r})
			}
		}
	}
	out := make([]Delivery, len(posts))
	if f.Concurrent {
		var wg sync.WaitGroup
		for i, p := range posts {
			wg.Go(func() {
				if err := sleep(ctx, p.s.Delay); err != nil {
					out[i] = f.failed(p.step, p.repeat, p.s, err)
					return
				}
				out[i] = f.deliver(ctx, p.step, p.repeat, p.s)
			})
		}
		wg.Wait()
		errs := make([]error, len(out))
		for i, d := range out {
			errs[i] = d.Err
		}
		return out, errors.Join(errs...)
	}
	for i, p := range posts {
		wait := p.s.Delay
		if i > 0 {
			wait += f.Delay
		}
		if err := sleep(ctx, wait); err != nil {
			out[i] = f.failed(p.step, p.repeat, p.s, err)
			return out[:i+1], err
		}
		out[i] = f.deliver(ctx, p.step, p.repeat, p.s)
		if out[i].Err != nil {
			return out[:i+1], out[i].Err
		}
	}
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (f Fake) failed(step, repeat int, s Step, err error) Delivery {
	d := f.delivery(step, repeat, s)
	d.Err = err
	return d
}

func (f Fake) delivery(step, repeat int, s Step) Delivery {
	return Delivery{
		Step:     step,
		Repeat:   repeat,
		Endpoint: s.Endpoint,
		Channel:  s.channel(),
		Status:   s.Status,
		SubState: s.SubState,
		URL:      s.URL(f.URLs),
	}
}

// deliver posts one request and records the answer.
func (f Fake) deliver(ctx context.Context, step, repeat int, s Step) Delivery {
	d := f.delivery(step, repeat, s)
	if d.URL == "" {
		d.Err = fmt.Errorf("cofidistest: no URL for endpoint %s", s.Endpoint)
		return d
	}
	if u, err := url.Parse(d.URL); err != nil || !u.IsAbs() {
		d.Err = fmt.Errorf("cofidistest: the URL of endpoint %s is not absolute", s.Endpoint)
		return d
	}
	if f.Ledger != nil {
		f.Ledger.Advance(s.Key, s.Status)
	}
	var res *http.Response
	if f.Handler != nil {
		rec := httptest.NewRecorder()
		f.Handler.ServeHTTP(rec, s.httpRequest(ctx, f.URLs))
		res = rec.Result()
	} else {
		req, err := s.NewClientRequest(ctx, d.URL)
		if err != nil {
			d.Err = err
			return d
		}
		res, err = f.client().Do(req)
		if err != nil {
			d.Err = err
			return d
		}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes))
	d.HTTPStatus = res.StatusCode
	d.Location = res.Header.Get("Location")
	d.Body = string(body)
	if err != nil {
		d.Err = fmt.Errorf("cofidistest: reading the answer: %w", err)
	}
	return d
}

// client returns the Client with redirect-following turned off.
func (f Fake) client() *http.Client {
	cc := *cmp.Or(f.Client, http.DefaultClient)
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// ErrUnknownTransaction is what a Ledger answers for a transaction it has
// never seen, as getStatus answers code 022 ("key does not exist").
var ErrUnknownTransaction = errors.New("cofidistest: unknown transaction")

// Ledger is the fake's record of each transaction's current status, what
// Cofidis' getStatus would answer. It implements cofidis.Verifier, so that a
// receiver under test can verify the events a Fake posts. It is safe for
// concurrent use; the zero value is empty and ready.
type Ledger struct {
	mu       sync.Mutex
	statuses map[cofidis.TransactionID]cofidis.Status
}

// Set makes s the current status of the transaction, whatever it was.
func (l *Ledger) Set(key cofidis.TransactionKey, s cofidis.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statuses == nil {
		l.statuses = map[cofidis.TransactionID]cofidis.Status{}
	}
	l.statuses[key.ID()] = cofidis.ParseStatus(string(s))
}

// Advance sets the current status to s unless the current one lies later in
// the documented flow (Status.Rank): a reordered or repeated callback does
// not move Cofidis' state back. A status that cannot be ranked always
// replaces the current one.
func (l *Ledger) Advance(key cofidis.TransactionKey, s cofidis.Status) {
	s = cofidis.ParseStatus(string(s))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statuses == nil {
		l.statuses = map[cofidis.TransactionID]cofidis.Status{}
	}
	id := key.ID()
	if cur, ok := l.statuses[id]; ok && s.Rank() > 0 && cur.Rank() > s.Rank() {
		return
	}
	l.statuses[id] = s
}

// Status returns the current status of the transaction, false when the
// ledger has never seen it.
func (l *Ledger) Status(key cofidis.TransactionKey) (cofidis.Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.statuses[key.ID()]
	return s, ok
}

// CurrentStatus implements cofidis.Verifier: the current status, or
// ErrUnknownTransaction.
func (l *Ledger) CurrentStatus(ctx context.Context, key cofidis.TransactionKey) (cofidis.Status, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s, ok := l.Status(key)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownTransaction, key)
	}
	return s, nil
}
