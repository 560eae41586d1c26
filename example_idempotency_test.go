package cofidis_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/cofidis-go/cofidis"
)

// A to_confirm arrives on notificationUrlSuccess, again on
// notificationUrlPending (after a pending check), and once more as a retry:
// with WithIdempotency the callback runs once. A pending notification
// arriving late is recognised as stale and acknowledged without dispatch.
// Several replicas share a redisstore.Store instead of a MemoryStore.
func ExampleWithIdempotency() {
	store := cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{}) // one process
	confirmCalls := 0
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders/"+ev.TransactionKey.MerchantTransactionID)
		},
		func(ctx context.Context, ev cofidis.Event) error {
			if ev.Status.IsAccepted() {
				confirmCalls++ // call confirm, ship, e-mail: once per decision
			}
			return nil // an error releases the claim: the next delivery retries
		},
		cofidis.WithInsecureSkipVerify(), // the example posts made-up events; see WithVerifier
		cofidis.WithIdempotency(store),
		cofidis.WithDeliveryHook(func(_ context.Context, ev cofidis.Event, o cofidis.Outcome) {
			action := ev.ActionKey().Action
			fmt.Printf("%-15s %-9s", action, o) // in production: a metrics counter by outcome
		}),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	deliver := func(target, status, subState string) {
		form := url.Values{
			"transactionKey": {`{"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,` +
				`"merchantId":"020280098","merchantTransactionId":"2YgKoUd4DB","merchantTransactionDate":"20260227"}`},
			"transactionStatus": {status},
			"subState":          {subState},
		}
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		fmt.Println(" →", w.Code)
	}
	deliver(urls.NotificationURLPending, "pending", "signed")
	deliver(urls.NotificationURLSuccess, "to_confirm", "")
	deliver(urls.NotificationURLPending, "to_confirm", "signed") // same decision
	deliver(urls.NotificationURLSuccess, "to_confirm", "")       // a retry
	deliver(urls.NotificationURLPending, "pending", "")          // late: the transaction is further along
	fmt.Println("confirm called", confirmCalls, "time(s)")
	// Output:
	// pending/signed  processed → 200
	// to_confirm      processed → 200
	// to_confirm      duplicate → 200
	// to_confirm      duplicate → 200
	// pending         stale     → 200
	// confirm called 1 time(s)
}
