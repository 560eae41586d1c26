package cofidistest_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// quiet keeps the receiver's logs of rejected requests out of the test
// output.
var quiet = cofidis.WithLogger(slog.New(slog.DiscardHandler))

func newURLs(t *testing.T) cofidis.URLs {
	t.Helper()
	urls, err := cofidis.NewURLs("https://shop.example/pay")
	if err != nil {
		t.Fatal(err)
	}
	return urls
}

func newRouter(t *testing.T, urls cofidis.URLs, rec *cofidistest.Recorder, opts ...cofidis.Option) *cofidis.Router {
	t.Helper()
	// The fake posts no getStatus of its own unless a test gives a Ledger.
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify, append([]cofidis.Option{quiet, cofidis.WithInsecureSkipVerify()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func describeAll(evs []cofidis.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = cofidistest.Describe(ev)
	}
	return out
}

func deliveryStrings(ds []cofidistest.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// journeyNamed returns the constructor's journey called name, and checks
// that the constructor names it so.
func journeyNamed(t *testing.T, name string, key cofidis.TransactionKey) cofidistest.Journey {
	t.Helper()
	for _, j := range []cofidistest.Journey{
		cofidistest.Accepted(key), cofidistest.Refused(key), cofidistest.Aborted(key),
		cofidistest.Errored(key), cofidistest.PendingAccepted(key), cofidistest.PendingRefused(key),
	} {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no constructor names its journey %q", name)
	return cofidistest.Journey{}
}

// The documented sequence of every journey, as the real Router records it.
var journeys = []struct {
	name       string
	events     []string
	deliveries []string
}{
	{
		name: "accepted",
		events: []string{
			"redirect returnUrlSuccess to_confirm",
			"notification notificationUrlSuccess to_confirm",
		},
		deliveries: []string{
			"redirect returnUrlSuccess to_confirm -> 303",
			"notification notificationUrlSuccess to_confirm -> 200",
		},
	},
	{
		name: "refused",
		events: []string{
			"redirect returnUrlOther Refused",
			"notification notificationUrlOther Refused",
		},
		deliveries: []string{
			"redirect returnUrlOther Refused -> 303",
			"notification notificationUrlOther Refused -> 200",
		},
	},
	{
		name:       "aborted",
		events:     []string{"notification notificationUrlOther Aborted"},
		deliveries: []string{"notification notificationUrlOther Aborted -> 200"},
	},
	{
		name:       "error",
		events:     []string{"notification notificationUrlOther Error"},
		deliveries: []string{"notification notificationUrlOther Error -> 200"},
	},
	{
		name: "pending-accepted",
		events: []string{
			"redirect returnUrlOther pending",
			"notification notificationUrlPending pending",
			"notification notificationUrlPending pending/signed",
			"notification notificationUrlPending to_confirm",
		},
		deliveries: []string{
			"redirect returnUrlOther pending -> 303",
			"notification notificationUrlPending pending -> 200",
			"notification notificationUrlPending pending/signed -> 200",
			"notification notificationUrlPending to_confirm -> 200",
		},
	},
	{
		name: "pending-refused",
		events: []string{
			"redirect returnUrlOther pending",
			"notification notificationUrlPending pending",
			"notification notificationUrlPending pending/signed",
			"notification notificationUrlPending Refused",
		},
		deliveries: []string{
			"redirect returnUrlOther pending -> 303",
			"notification notificationUrlPending pending -> 200",
			"notification notificationUrlPending pending/signed -> 200",
			"notification notificationUrlPending Refused -> 200",
		},
	},
}

func TestFakePlaysEveryDocumentedJourneyInProcess(t *testing.T) {
	t.Parallel()
	for _, tc := range journeys {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			urls := newURLs(t)
			rec := &cofidistest.Recorder{RedirectURL: "/orders/42"}
			fake := cofidistest.Fake{URLs: urls, Handler: newRouter(t, urls, rec)}
			key := cofidistest.NewKey(cofidistest.KeyOptions{})
			ds, err := fake.Play(t.Context(), journeyNamed(t, tc.name, key))
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "deliveries", deliveryStrings(ds), tc.deliveries)
			evs := rec.Events()
			equal(t, "events", describeAll(evs), tc.events)
			for _, ev := range evs {
				if ev.TransactionKey != key {
					t.Errorf("event key = %+v, want %+v", ev.TransactionKey, key)
				}
				if ev.Unexpected || ev.ChannelInferred || ev.Verified {
					t.Errorf("%s: Unexpected=%t ChannelInferred=%t Verified=%t, want all false",
						cofidistest.Describe(ev), ev.Unexpected, ev.ChannelInferred, ev.Verified)
				}
			}
			for _, d := range ds {
				if !d.OK() {
					t.Errorf("%s: not OK", d)
				}
				if d.Channel == cofidis.ChannelRedirect && d.Location != "/orders/42" {
					t.Errorf("%s: Location = %q, want /orders/42", d, d.Location)
				}
			}
		})
	}
}

func TestFakePlaysEveryDocumentedJourneyOverHTTP(t *testing.T) {
	t.Parallel()
	rec := &cofidistest.Recorder{}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	urls, err := cofidis.NewURLs(srv.URL+"/shop", cofidis.AllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	newRouter(t, urls, rec).Register(mux)
	fake := cofidistest.Fake{URLs: urls, Client: srv.Client()}

	for _, tc := range journeys {
		key := cofidistest.NewKey(cofidistest.KeyOptions{})
		ds, err := fake.Play(t.Context(), journeyNamed(t, tc.name, key))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// The recorder answers redirects 200 here: no RedirectURL.
		want := make([]string, len(tc.deliveries))
		for i, d := range tc.deliveries {
			want[i] = strings.Replace(d, "-> 303", "-> 200", 1)
		}
		equal(t, tc.name+" deliveries", deliveryStrings(ds), want)
		equal(t, tc.name+" events", describeAll(rec.Filter(cofidistest.ForTransaction(key.ID()))), tc.events)
		for _, ev := range rec.Filter(cofidistest.ForTransaction(key.ID())) {
			if !ev.RemoteAddr.IsLoopback() {
				t.Errorf("RemoteAddr = %v, want loopback", ev.RemoteAddr)
			}
		}
	}
}

func TestFakeReflectsReorderingAndDuplicates(t *testing.T) {
	t.Parallel()
	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	tests := []struct {
		name    string
		fake    cofidistest.Fake
		journey cofidistest.Journey
		want    []string
	}{
		{
			name:    "notification before the redirect",
			journey: cofidistest.Accepted(key).NotificationsFirst(),
			want: []string{
				"notification notificationUrlSuccess to_confirm",
				"redirect returnUrlSuccess to_confirm",
			},
		},
		{
			name:    "every notification repeated, redirects not",
			fake:    cofidistest.Fake{RepeatNotifications: 2},
			journey: cofidistest.Refused(key),
			want: []string{
				"redirect returnUrlOther Refused",
				"notification notificationUrlOther Refused",
				"notification notificationUrlOther Refused",
				"notification notificationUrlOther Refused",
			},
		},
		{
			name:    "final decision overtaking the signed sub-state, redirect duplicated",
			journey: cofidistest.PendingAccepted(key).Reorder(0, 1, 3, 2, 0),
			want: []string{
				"redirect returnUrlOther pending",
				"notification notificationUrlPending pending",
				"notification notificationUrlPending to_confirm",
				"notification notificationUrlPending pending/signed",
				"redirect returnUrlOther pending",
			},
		},
		{
			name:    "lost redirect",
			journey: cofidistest.Accepted(key).Reorder(1),
			want:    []string{"notification notificationUrlSuccess to_confirm"},
		},
		{
			name:    "chosen sub-states",
			journey: cofidistest.PendingRefused(key, "signed", "Documents_Received"),
			want: []string{
				"redirect returnUrlOther pending",
				"notification notificationUrlPending pending/signed",
				"notification notificationUrlPending pending/Documents_Received",
				"notification notificationUrlPending Refused",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			urls := newURLs(t)
			rec := &cofidistest.Recorder{}
			tc.fake.URLs, tc.fake.Handler = urls, newRouter(t, urls, rec)
			ds, err := tc.fake.Play(t.Context(), tc.journey)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "events", describeAll(rec.Events()), tc.want)
			if len(ds) != len(tc.want) {
				t.Errorf("%d deliveries, want %d", len(ds), len(tc.want))
			}
		})
	}
}

func TestFakeNumbersStepsAndRepeats(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	rec := &cofidistest.Recorder{}
	fake := cofidistest.Fake{URLs: urls, Handler: newRouter(t, urls, rec), RepeatNotifications: 1}
	ds, err := fake.Play(t.Context(), cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]int
	for _, d := range ds {
		got = append(got, [2]int{d.Step, d.Repeat})
	}
	if want := [][2]int{{0, 0}, {1, 0}, {1, 1}}; !slices.Equal(got, want) {
		t.Errorf("(step, repeat) = %v, want %v", got, want)
	}
}

func TestFakeWithLedgerPlaysGetStatus(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	var ledger cofidistest.Ledger
	rec := &cofidistest.Recorder{}
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify, quiet, cofidis.WithVerifier(&ledger))
	if err != nil {
		t.Fatal(err)
	}
	fake := cofidistest.Fake{URLs: urls, Handler: rt, Ledger: &ledger}
	key := cofidistest.NewKey(cofidistest.KeyOptions{})

	// The final decision overtakes the signed sub-state: by then getStatus
	// says to_confirm, so the stale pending/signed is acknowledged without
	// being dispatched.
	ds, err := fake.Play(t.Context(), cofidistest.PendingAccepted(key).Reorder(0, 1, 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "deliveries", deliveryStrings(ds), []string{
		"redirect returnUrlOther pending -> 200",
		"notification notificationUrlPending pending -> 200",
		"notification notificationUrlPending to_confirm -> 200",
		"notification notificationUrlPending pending/signed -> 200",
	})
	evs := rec.Events()
	equal(t, "events", describeAll(evs), []string{
		"redirect returnUrlOther pending",
		"notification notificationUrlPending pending",
		"notification notificationUrlPending to_confirm",
	})
	for _, ev := range evs {
		if !ev.Verified {
			t.Errorf("%s: not verified", cofidistest.Describe(ev))
		}
	}
	if st, _ := ledger.Status(key); st != cofidis.StatusToConfirm {
		t.Errorf("ledger status = %q, want to_confirm", st)
	}
	if _, err := ledger.CurrentStatus(t.Context(), cofidistest.NewKey(cofidistest.KeyOptions{})); !errors.Is(err, cofidistest.ErrUnknownTransaction) {
		t.Errorf("unknown transaction: err = %v, want ErrUnknownTransaction", err)
	}
}

func TestFakeConcurrentDeliversEverything(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	rec := &cofidistest.Recorder{}
	fake := cofidistest.Fake{URLs: urls, Handler: newRouter(t, urls, rec), Concurrent: true, RepeatNotifications: 3}
	j := cofidistest.PendingAccepted(cofidistest.NewKey(cofidistest.KeyOptions{}))
	ds, err := fake.Play(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	// 1 redirect + 3 notifications, each notification 4 times.
	if len(ds) != 13 || rec.Len() != 13 {
		t.Fatalf("%d deliveries and %d events, want 13", len(ds), rec.Len())
	}
	for i, d := range ds {
		if !d.OK() {
			t.Errorf("delivery %d: %s", i, d)
		}
	}
	if n := len(rec.Filter(cofidistest.HasStatus("TO_CONFIRM"))); n != 4 {
		t.Errorf("%d to_confirm events, want 4", n)
	}
}

func TestFakeDelays(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	rec := &cofidistest.Recorder{}
	fake := cofidistest.Fake{URLs: urls, Handler: newRouter(t, urls, rec), Delay: 20 * time.Millisecond}
	j := cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{}))
	j.Steps[0].Delay = 10 * time.Millisecond
	start := time.Now()
	if _, err := fake.Play(t.Context(), j); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("played in %v, want at least 30ms", d)
	}

	// The first step goes at once and the second waits an hour: the
	// deadline can only cut the second, however slow the machine.
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	j.Steps[0].Delay = 0
	j.Steps[1].Delay = time.Hour
	ds, err := fake.Play(ctx, j)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if len(ds) != 2 || !ds[0].OK() || ds[1].Err == nil {
		t.Errorf("deliveries = %q, want the first answered and the second failed", deliveryStrings(ds))
	}
}

func TestFakeReportsTransportErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	urls, err := cofidis.NewURLs(srv.URL, cofidis.AllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	srv.Close() // nothing listens any more
	fake := cofidistest.Fake{URLs: urls, Client: &http.Client{Timeout: 5 * time.Second}}
	ds, err := fake.Play(t.Context(), cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{})))
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if len(ds) != 1 || ds[0].Err == nil || ds[0].OK() {
		t.Errorf("deliveries = %q, want one failed", deliveryStrings(ds))
	}
}

// With five identical URLs the receiver can only tell the browser from the
// server by their headers: the fake's must be realistic enough.
func TestFakeHeadersTellTheChannelOnIdenticalURLs(t *testing.T) {
	t.Parallel()
	const u = "https://shop.example/cofidis"
	urls := cofidis.URLs{ReturnURLSuccess: u, ReturnURLOther: u, NotificationURLSuccess: u, NotificationURLPending: u, NotificationURLOther: u}
	rec := &cofidistest.Recorder{}
	fake := cofidistest.Fake{URLs: urls, Handler: newRouter(t, urls, rec)}
	if _, err := fake.Play(t.Context(), cofidistest.PendingAccepted(cofidistest.NewKey(cofidistest.KeyOptions{}))); err != nil {
		t.Fatal(err)
	}
	equal(t, "events", describeAll(rec.Events()), []string{
		"redirect returnUrlSuccess|returnUrlOther pending",
		"notification notificationUrlSuccess|notificationUrlPending|notificationUrlOther pending",
		"notification notificationUrlSuccess|notificationUrlPending|notificationUrlOther pending/signed",
		"notification notificationUrlSuccess|notificationUrlPending|notificationUrlOther to_confirm",
	})
	for _, ev := range rec.Events() {
		if !ev.ChannelInferred {
			t.Errorf("%s: ChannelInferred false", cofidistest.Describe(ev))
		}
	}
}

// Redirects are cross-site navigations: a merchant who forgets to exempt the
// return URLs from http.CrossOriginProtection sees them fail in tests.
func TestRedirectsAreCrossSite(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	rec := &cofidistest.Recorder{}
	rt := newRouter(t, urls, rec)
	fake := cofidistest.Fake{URLs: urls, Handler: http.NewCrossOriginProtection().Handler(rt)}
	ds, err := fake.Play(t.Context(), cofidistest.Refused(cofidistest.NewKey(cofidistest.KeyOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "unprotected", deliveryStrings(ds), []string{
		"redirect returnUrlOther Refused -> 403",
		"notification notificationUrlOther Refused -> 200",
	})

	cop := http.NewCrossOriginProtection()
	for _, e := range []cofidis.Endpoint{cofidis.EndpointReturnSuccess, cofidis.EndpointReturnOther} {
		cop.AddInsecureBypassPattern(strings.TrimPrefix(urls.Get(e), "https://shop.example"))
	}
	fake.Handler = cop.Handler(rt)
	ds, err = fake.Play(t.Context(), cofidistest.Refused(cofidistest.NewKey(cofidistest.KeyOptions{})))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "exempted", deliveryStrings(ds), []string{
		"redirect returnUrlOther Refused -> 200",
		"notification notificationUrlOther Refused -> 200",
	})
}

func TestJourneyMethodsReturnCopies(t *testing.T) {
	t.Parallel()
	j := cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{Rand: rand.New(rand.NewPCG(1, 1))}))
	_ = j.NotificationsFirst()
	_ = j.Each(func(_ int, s *cofidistest.Step) { s.Status = "x" })
	_ = j.Then(cofidistest.Step{})
	if j.Steps[0].Endpoint != cofidis.EndpointReturnSuccess || j.Steps[0].Status != cofidis.StatusToConfirm || len(j.Steps) != 2 {
		t.Errorf("journey modified: %+v", j.Steps)
	}
	defer func() {
		if recover() == nil {
			t.Error("Reorder(2) did not panic")
		}
	}()
	j.Reorder(2)
}

func TestFakeReportsMissingURLs(t *testing.T) {
	t.Parallel()
	urls := newURLs(t)
	urls.NotificationURLSuccess = ""
	urls.ReturnURLSuccess = "/relative"
	fake := cofidistest.Fake{URLs: urls, Handler: http.NotFoundHandler()}
	ds, err := fake.Play(t.Context(), cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{})))
	if err == nil || len(ds) != 1 || !strings.Contains(err.Error(), "returnUrlSuccess") {
		t.Errorf("Play = %q, %v; want the relative returnUrlSuccess reported", deliveryStrings(ds), err)
	}
	ds, err = fake.Play(t.Context(), cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{})).Reorder(1))
	if err == nil || len(ds) != 1 || !strings.Contains(err.Error(), "notificationUrlSuccess") {
		t.Errorf("Play = %q, %v; want the missing notificationUrlSuccess reported", deliveryStrings(ds), err)
	}
}
