package cofidis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/cofidis-go/cofidis"
)

// exampleBody is a callback body as Cofidis posts it.
func exampleBody(status, subState string) string {
	v := url.Values{
		"transactionKey": {`{"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,` +
			`"merchantId":"020280098","merchantTransactionId":"2YgKoUd4DB","merchantTransactionDate":"20260227"}`},
		"transactionStatus": {status},
	}
	if subState != "" {
		v.Set("subState", subState)
	}
	return v.Encode()
}

// examplePost plays Cofidis (or the customer's browser) posting body to
// target through h, and returns the answer.
func examplePost(h http.Handler, target, body string) *http.Response {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// A Router serves the five technicalData URLs; mounting it on a ServeMux is
// one line.
func ExampleNewRouter() {
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	if err != nil {
		fmt.Println(err)
		return
	}

	onRedirect := func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
		// The customer's browser: show where the order stands. Proves nothing.
		return cofidis.SeeOther(w, r, "/orders/"+ev.Query().Get("order"))
	}
	onNotification := func(ctx context.Context, ev cofidis.Event) error {
		endpoint, _ := ev.Endpoint()
		fmt.Println("transaction:", ev.ID())
		fmt.Println("status:", ev.Status, ev.SubState)
		fmt.Println("received on:", endpoint, "via", ev.Channel)
		fmt.Println("order:", ev.Query().Get("order"))
		return nil // answered 200; an error would be answered 500 and retried
	}
	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification)
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/payments/", rt)

	// The URLs sent to initialize carry the order's own reference.
	sent := urls.WithQuery("order", "A-1042")
	resp := examplePost(mux, sent.NotificationURLPending, exampleBody("pending", "signed"))
	fmt.Println("answer:", resp.StatusCode)
	// Output:
	// transaction: 020280098/2YgKoUd4DB/20260227
	// status: pending signed
	// received on: notificationUrlPending via notification
	// order: A-1042
	// answer: 200
}

// A NotificationHandler serves one notification URL. WithEndpoint tells it
// which, so that statuses the documentation does not send there are flagged.
func ExampleNewNotificationHandler() {
	h, err := cofidis.NewNotificationHandler(func(ctx context.Context, ev cofidis.Event) error {
		// Must be idempotent: the same decision can arrive several times.
		fmt.Printf("%s %s unexpected=%t verified=%t\n",
			ev.TransactionKey.MerchantTransactionID, ev.Status, ev.Unexpected, ev.Verified)
		return nil
	}, cofidis.WithEndpoint(cofidis.EndpointNotificationSuccess))
	if err != nil {
		fmt.Println(err)
		return
	}

	fmt.Println(examplePost(h, "/cofidis/notify/success", exampleBody("to_confirm", "")).StatusCode)
	fmt.Println(examplePost(h, "/cofidis/notify/success", exampleBody("Refused", "")).StatusCode)
	// Output:
	// 2YgKoUd4DB to_confirm unexpected=false verified=false
	// 200
	// 2YgKoUd4DB Refused unexpected=true verified=false
	// 200
}

// A RedirectHandler answers the customer's browser. RedirectTo makes a 303
// See Other to a page of the merchant's choice one line.
func ExampleNewRedirectHandler() {
	h, err := cofidis.NewRedirectHandler(cofidis.RedirectTo(func(ctx context.Context, ev cofidis.Event) (string, error) {
		// No session cookie arrives on this cross-site POST: the order is
		// found from the transaction key or the URL's own query.
		order := ev.Query().Get("order")
		if ev.Status.IsAccepted() {
			return "/orders/" + order + "/thanks", nil
		}
		return "/orders/" + order, nil
	}))
	if err != nil {
		fmt.Println(err)
		return
	}

	resp := examplePost(h, "/cofidis/return/success?order=A-1042", exampleBody("to_confirm", ""))
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))

	// A GET is no redirect from Cofidis: the browser gets the error page.
	r := httptest.NewRequest(http.MethodGet, "/cofidis/return/success", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// 303 /orders/A-1042/thanks
	// 405 text/html; charset=utf-8
}

// Cofidis' journey page posts the customer's browser back to the return
// URLs: a cross-site POST that http.CrossOriginProtection refuses. Exempt the
// redirect routes (they use no cookie, so there is nothing to forge) and keep
// the protection for the rest of the site. Notifications come from servers
// that send no Sec-Fetch-Site or Origin header, so they pass anyway.
func ExampleRedirectHandler_crossOrigin() {
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, err := cofidis.NewRouter(urls,
		func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
			fmt.Println("redirect callback:", ev.Status)
			return cofidis.SeeOther(w, r, "/orders")
		},
		func(ctx context.Context, ev cofidis.Event) error {
			fmt.Println("notification callback:", ev.Status)
			return nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := http.NewServeMux()
	rt.Register(mux)
	mux.HandleFunc("POST /account/email", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("email changed") // must never run for a cross-site POST
	})

	cop := http.NewCrossOriginProtection()
	for _, route := range rt.Routes() {
		if route.Endpoints.Has(cofidis.EndpointReturnSuccess) || route.Endpoints.Has(cofidis.EndpointReturnOther) {
			cop.AddInsecureBypassPattern("POST " + route.Path)
		}
	}
	site := cop.Handler(mux)

	crossSite := func(target, body string) {
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Origin", "https://journey.cofidis.example")
		w := httptest.NewRecorder()
		site.ServeHTTP(w, r)
		fmt.Println(r.URL.Path, "→", w.Code)
	}
	crossSite(urls.ReturnURLSuccess, exampleBody("to_confirm", ""))
	crossSite("https://shop.example/account/email", "email=attacker@example.org")

	// Cofidis' server: no browser headers, not a cross-origin request.
	resp := examplePost(site, urls.NotificationURLSuccess, exampleBody("to_confirm", ""))
	fmt.Println("/payments/cofidis/notify/success →", resp.StatusCode)
	// Output:
	// redirect callback: to_confirm
	// /payments/cofidis/return/success → 303
	// /account/email → 403
	// notification callback: to_confirm
	// /payments/cofidis/notify/success → 200
}

// Permanent tells the handler that retrying can never help: the notification
// is acknowledged with 200 (and logged) instead of 500.
func ExamplePermanent() {
	orders := map[string]bool{"2YgKoUd4DB": true} // the merchant's orders
	h, err := cofidis.NewNotificationHandler(func(ctx context.Context, ev cofidis.Event) error {
		id := ev.TransactionKey.MerchantTransactionID
		if !orders[id] {
			// No retry will make this order exist.
			return cofidis.Permanent(fmt.Errorf("order %s: %w", id, errors.New("unknown order")))
		}
		if ev.Status == cofidis.StatusRefused {
			return errors.New("database unavailable") // temporary: answered 500, retried
		}
		return nil
	}, cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}

	unknown := strings.Replace(exampleBody("to_confirm", ""), "2YgKoUd4DB", "nope", 1)
	fmt.Println("unknown order:", examplePost(h, "/notify", unknown).StatusCode)
	fmt.Println("temporary failure:", examplePost(h, "/notify", exampleBody("Refused", "")).StatusCode)
	fmt.Println("handled:", examplePost(h, "/notify", exampleBody("to_confirm", "")).StatusCode)
	// Output:
	// unknown order: 200
	// temporary failure: 500
	// handled: 200
}

// A Verifier (the merchant's getStatus call) confirms what a notification
// claims before it is dispatched: callbacks are unsigned.
func ExampleWithVerifier() {
	cofidisSays := cofidis.StatusToConfirm // what getStatus would answer
	getStatus := cofidis.VerifierFunc(func(ctx context.Context, key cofidis.TransactionKey) (cofidis.Status, error) {
		return cofidisSays, nil
	})
	h, err := cofidis.NewNotificationHandler(func(ctx context.Context, ev cofidis.Event) error {
		fmt.Println("dispatched:", ev.Status, "verified:", ev.Verified)
		return nil
	}, cofidis.WithVerifier(getStatus), cofidis.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}

	body := exampleBody("to_confirm", "")
	fmt.Println(examplePost(h, "/notify", body).StatusCode)

	cofidisSays = cofidis.StatusValidated // Cofidis is further along: stale
	fmt.Println(examplePost(h, "/notify", body).StatusCode)

	cofidisSays = cofidis.StatusRefused // a contradiction, maybe a forgery: retry later
	fmt.Println(examplePost(h, "/notify", body).StatusCode)
	// Output:
	// dispatched: to_confirm verified: true
	// 200
	// 200
	// 503
}

// A Parser decodes a callback without any handler, for routers that want to
// answer themselves. Errors carry the HTTP status that fits.
func ExampleParser_ParseRequest() {
	p := cofidis.NewParser(0) // DefaultMaxBodyBytes; share one Parser

	r := httptest.NewRequest(http.MethodPost, "/cofidis", strings.NewReader(exampleBody("Pending", "signed")))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	cb, err := p.ParseRequest(r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cb.TransactionKey.MerchantTransactionID, cb.TransactionKey.MerchantTransactionDate)
	fmt.Printf("%s (sent as %q) %s\n", cb.Status, cb.RawStatus, cb.SubState)

	// A second transactionStatus is parameter pollution, not a choice.
	polluted := exampleBody("pending", "") + "&transactionStatus=to_confirm"
	r = httptest.NewRequest(http.MethodPost, "/cofidis", strings.NewReader(polluted))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = p.ParseRequest(r)
	fmt.Println(err)
	fmt.Println(errors.Is(err, cofidis.ErrRepeatedField), cofidis.HTTPStatus(err))
	// Output:
	// 2YgKoUd4DB 20260227
	// pending (sent as "Pending") signed
	// cofidis: repeated field: transactionStatus: want the field once
	// true 400
}
