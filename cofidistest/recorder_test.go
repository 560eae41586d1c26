package cofidistest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

func TestRecorderWaitsForEventsFromOtherGoroutines(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	rec := &cofidistest.Recorder{}
	fake := cofidistest.Fake{URLs: urls, Handler: newRouter(t, urls, rec)}
	keys := []cofidis.TransactionKey{cofidistest.NewKey(cofidistest.KeyOptions{}), cofidistest.NewKey(cofidistest.KeyOptions{})}

	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			if _, err := fake.Play(context.Background(), cofidistest.PendingRefused(k)); err != nil {
				t.Error(err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	refusals, err := rec.WaitFor(ctx, 2, cofidistest.HasStatus(cofidis.StatusRefused))
	if err != nil {
		t.Fatal(err)
	}
	if len(refusals) != 2 || refusals[0].TransactionKey.ID() == refusals[1].TransactionKey.ID() {
		t.Errorf("refusals = %v, want one per transaction", describeAll(refusals))
	}
	all, err := rec.Wait(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	redirects := rec.Filter(cofidistest.OnChannel(cofidis.ChannelRedirect))
	notifications := rec.Filter(cofidistest.OnChannel(cofidis.ChannelNotification))
	if len(all) != 8 || len(redirects) != 2 || len(notifications) != 6 {
		t.Errorf("%d events, %d redirects, %d notifications; want 8, 2, 6", len(all), len(redirects), len(notifications))
	}
	for _, k := range keys {
		if n := len(rec.Filter(cofidistest.ForTransaction(k.ID()))); n != 4 {
			t.Errorf("%d events for %s, want 4", n, k)
		}
	}
	rec.Reset()
	if rec.Len() != 0 {
		t.Errorf("Len after Reset = %d", rec.Len())
	}
}

func TestRecorderWaitGivesUpWithTheContext(t *testing.T) {
	t.Parallel()
	var rec cofidistest.Recorder
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	evs, err := rec.Wait(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || len(evs) != 0 {
		t.Errorf("Wait = %v, %v; want no events and DeadlineExceeded", evs, err)
	}
}

func TestRecorderAnswers(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	var seen []string
	rec := &cofidistest.Recorder{
		NotifyError: func(ev cofidis.Event) error {
			if ev.Status == cofidis.StatusAborted {
				return cofidis.Permanent(errors.New("unknown order"))
			}
			return errors.New("database down")
		},
		OnEvent: func(ev cofidis.Event) { seen = append(seen, string(ev.Status)) },
	}
	rt := newRouter(t, urls, rec)
	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	for _, tc := range []struct {
		req  cofidistest.Request
		want int
	}{
		{cofidistest.Request{Endpoint: cofidis.EndpointReturnOther, Key: key, Status: "Refused"}, http.StatusOK},
		{cofidistest.Request{Endpoint: cofidis.EndpointNotificationOther, Key: key, Status: "Refused"}, http.StatusInternalServerError},
		{cofidistest.Request{Endpoint: cofidis.EndpointNotificationOther, Key: key, Status: "Aborted"}, http.StatusOK},
	} {
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, tc.req.HTTPRequest(urls))
		if w.Code != tc.want {
			t.Errorf("%s %s: answered %d, want %d", tc.req.Endpoint, tc.req.Status, w.Code, tc.want)
		}
	}
	// Failed notifications are recorded too: they were delivered.
	equal(t, "OnEvent", seen, []string{"Refused", "Refused", "Aborted"})
}
