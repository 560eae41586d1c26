package cofidistest_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// A Fake plays a whole journey against the receiver under test, here in
// process; with Client instead of Handler it posts over HTTP.
func ExampleFake() {
	urls, _ := cofidis.NewURLs("https://shop.example/pay")
	var getStatus cofidistest.Ledger // the fake's getStatus: proof, as in production
	rec := &cofidistest.Recorder{RedirectURL: "/orders/42"}
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify, cofidis.WithVerifier(&getStatus))
	if err != nil {
		fmt.Println(err)
		return
	}

	fake := cofidistest.Fake{URLs: urls, Handler: rt, Ledger: &getStatus}
	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	deliveries, err := fake.Play(context.Background(), cofidistest.PendingAccepted(key))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range deliveries {
		fmt.Println(d)
	}
	fmt.Println(rec.Len(), "events recorded")
	// Output:
	// redirect returnUrlOther pending -> 303
	// notification notificationUrlPending pending -> 200
	// notification notificationUrlPending pending/signed -> 200
	// notification notificationUrlPending to_confirm -> 200
	// 4 events recorded
}

// Journeys can be reordered and their notifications repeated, as a real
// network would; a Ledger answers getStatus for the receiver's Verifier.
func ExampleFake_duplicatesAndReordering() {
	urls, _ := cofidis.NewURLs("https://shop.example/pay")
	var ledger cofidistest.Ledger
	var rec cofidistest.Recorder
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify, cofidis.WithVerifier(&ledger))
	if err != nil {
		fmt.Println(err)
		return
	}

	fake := cofidistest.Fake{URLs: urls, Handler: rt, Ledger: &ledger, RepeatNotifications: 1}
	journey := cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{})).NotificationsFirst()
	if _, err := fake.Play(context.Background(), journey); err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range rec.Events() {
		fmt.Println(cofidistest.Describe(ev), "verified:", ev.Verified)
	}
	// Output:
	// notification notificationUrlSuccess to_confirm verified: true
	// notification notificationUrlSuccess to_confirm verified: true
	// redirect returnUrlSuccess to_confirm verified: true
}

// A Recorder stands in for the merchant's callbacks and keeps the typed
// events; here one notification is built by hand and served in process.
func ExampleRecorder() {
	urls, _ := cofidis.NewURLs("https://shop.example/pay")
	var rec cofidistest.Recorder
	// A request built by hand has no Ledger behind it: this test says so.
	rt, err := cofidis.NewRouter(urls, rec.Redirect, rec.Notify,
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}

	// A seeded Rand gives the same merchantTransactionId at every run.
	key := cofidistest.NewKey(cofidistest.KeyOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	req := cofidistest.Request{
		Endpoint: cofidis.EndpointNotificationPending,
		Key:      key,
		Status:   "Pending", // spelled as some pages do
		SubState: "signed",
	}
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, req.HTTPRequest(urls))

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	evs, err := rec.WaitFor(ctx, 1, cofidistest.HasStatus(cofidis.StatusPending))
	if err != nil {
		fmt.Println(err)
		return
	}
	ev := evs[0]
	fmt.Println("answer:", w.Code)
	fmt.Println(cofidistest.Describe(ev))
	fmt.Println("raw status:", ev.RawStatus, "known sub-state:", ev.SubState.Known())
	fmt.Println("same transaction:", ev.TransactionKey.ID() == key.ID())
	// Output:
	// answer: 200
	// notification notificationUrlPending pending/signed
	// raw status: Pending known sub-state: true
	// same transaction: true
}

// Request builds one callback exactly as Cofidis posts it.
func ExampleRequest_Body() {
	key := cofidistest.NewKey(cofidistest.KeyOptions{
		MerchantTransactionID: "2YgKoUd4DB",
		Now:                   time.Date(2026, 2, 27, 10, 0, 0, 0, time.UTC),
	})
	req := cofidistest.Request{Key: key, Status: cofidis.StatusPending, SubState: cofidis.SubStateSigned}
	fmt.Println(req.KeyJSON())
	fmt.Println(req.Body())
	// Output:
	// {"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,"merchantId":"020280098","merchantTransactionId":"2YgKoUd4DB","merchantTransactionDate":"20260227"}
	// transactionKey=%7B%22merchantCountry%22%3A%22fr%22%2C%22providerId%22%3A%22providrid%22%2C%22providerTransactionId%22%3Anull%2C%22merchantId%22%3A%22020280098%22%2C%22merchantTransactionId%22%3A%222YgKoUd4DB%22%2C%22merchantTransactionDate%22%3A%2220260227%22%7D&transactionStatus=pending&subState=signed
}
