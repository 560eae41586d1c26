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
// one line. Proof is chosen when it is built: here the merchant's getStatus.
func ExampleNewRouter() {
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	if err != nil {
		fmt.Println(err)
		return
	}
	getStatus := cofidis.VerifierFunc(func(ctx context.Context, key cofidis.TransactionKey) (cofidis.Status, error) {
		return cofidis.StatusPending, nil // your call to Cofidis' getStatus
	})

	onRedirect := func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
		// The customer's browser: show where the order stands. Proves nothing.
		return cofidis.SeeOther(w, r, "/orders/"+ev.Query().Get("order"))
	}
	onNotification := func(ctx context.Context, ev cofidis.Event) error {
		endpoint, _ := ev.Endpoint()
		fmt.Println("transaction:", ev.TransactionKey.ID())
		fmt.Println("status:", ev.Status, ev.SubState, "verified:", ev.Verified)
		fmt.Println("received on:", endpoint, "via", ev.Channel)
		fmt.Println("order:", ev.Query().Get("order"))
		return nil // answered 200; an error would be answered 500 and retried
	}
	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification, cofidis.WithVerifier(getStatus))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	rt.Register(mux)

	// The URLs sent to initialize carry the order's own reference.
	sent := urls.WithQuery(url.Values{"order": {"A-1042"}})
	resp := examplePost(mux, sent.NotificationURLPending, exampleBody("pending", "signed"))
	fmt.Println("answer:", resp.StatusCode)
	// Output:
	// transaction: 020280098/2YgKoUd4DB/20260227
	// status: pending signed verified: true
	// received on: notificationUrlPending via notification
	// order: A-1042
	// answer: 200
}

// exampleRouter is a Router on the URLs of "https://shop.example/payments".
func exampleRouter(onRedirect cofidis.RedirectFunc, onNotification cofidis.NotificationFunc, opts ...cofidis.Option) (*cofidis.Router, cofidis.URLs) {
	urls, err := cofidis.NewURLs("https://shop.example/payments")
	if err != nil {
		panic(err)
	}
	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification, opts...)
	if err != nil {
		panic(err)
	}
	return rt, urls
}

// A Router without a Verifier must say so: WithInsecureSkipVerify. Here the
// fake Cofidis of a test; in production, only when the callback itself asks
// getStatus before acting on money. Each event says where it was posted, and
// statuses the documentation does not send there are flagged.
func ExampleWithInsecureSkipVerify() {
	rt, urls := exampleRouter(
		func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
		func(ctx context.Context, ev cofidis.Event) error {
			fmt.Printf("%s %s unexpected=%t verified=%t\n",
				ev.TransactionKey.MerchantTransactionID, ev.Status, ev.Unexpected, ev.Verified)
			return nil
		},
		cofidis.WithInsecureSkipVerify())

	fmt.Println(examplePost(rt, urls.NotificationURLSuccess, exampleBody("to_confirm", "")).StatusCode)
	fmt.Println(examplePost(rt, urls.NotificationURLSuccess, exampleBody("Refused", "")).StatusCode)
	// Output:
	// 2YgKoUd4DB to_confirm unexpected=false verified=false
	// 200
	// 2YgKoUd4DB Refused unexpected=true verified=false
	// 200
}

// RedirectTo makes a 303 See Other to a page of the merchant's choice one
// line. A request that is no redirect from Cofidis gets the error page.
func ExampleRedirectTo() {
	rt, urls := exampleRouter(cofidis.RedirectTo(func(ctx context.Context, ev cofidis.Event) (string, error) {
		// No session cookie arrives on this cross-site POST: the order is
		// found from the transaction key or the URL's own query.
		order := ev.Query().Get("order")
		if ev.Status.IsAccepted() {
			return "/orders/" + order + "/thanks", nil
		}
		return "/orders/" + order, nil
	}), func(context.Context, cofidis.Event) error { return nil }, cofidis.WithInsecureSkipVerify())

	sent := urls.WithQuery(url.Values{"order": {"A-1042"}})
	resp := examplePost(rt, sent.ReturnURLSuccess, exampleBody("to_confirm", ""))
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))

	r := httptest.NewRequest(http.MethodGet, sent.ReturnURLSuccess, nil)
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// 303 /orders/A-1042/thanks
	// 405 text/html; charset=utf-8
}

// A redirect that cannot be decoded must not strand the customer mid
// checkout: a page in a legacy charset posts "é" as %E9, which is not UTF-8.
// The URL's own query elements still say which order it was.
func ExampleWithRedirectError() {
	rt, urls := exampleRouter(
		func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
			return cofidis.SeeOther(w, r, "/orders/"+ev.Query().Get("order"))
		},
		func(context.Context, cofidis.Event) error { return nil },
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)),
		cofidis.WithRedirectError(func(w http.ResponseWriter, r *http.Request, err error, query url.Values) {
			if order := query.Get("order"); order != "" {
				// The order page asks getStatus: nothing is lost.
				_ = cofidis.SeeOther(w, r, "/orders/"+order+"?check=1")
				return
			}
			cofidis.ErrorPage(w, r, err, query)
		}))

	sent := urls.WithQuery(url.Values{"order": {"A-1042"}})
	body := strings.Replace(exampleBody("to_confirm", ""), "2YgKoUd4DB", "Caf%E9", 1)
	resp := examplePost(rt, sent.ReturnURLSuccess, body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))
	// Output:
	// 303 /orders/A-1042?check=1
}

// Cofidis' journey page posts the customer's browser back to the return
// URLs: a cross-site POST that http.CrossOriginProtection refuses.
// ExemptReturnRoutes exempts exactly those routes and keeps the protection
// for the rest of the site. Notifications come from servers that send no
// Sec-Fetch-Site or Origin header, so they pass anyway; a browser posting to
// a notification URL is refused by the Router itself.
func ExampleRouter_ExemptReturnRoutes() {
	rt, urls := exampleRouter(
		func(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
			fmt.Println("redirect callback:", ev.Status)
			return cofidis.SeeOther(w, r, "/orders")
		},
		func(ctx context.Context, ev cofidis.Event) error {
			fmt.Println("notification callback:", ev.Status)
			return nil
		},
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)))

	mux := http.NewServeMux()
	rt.Register(mux)
	mux.HandleFunc("POST /account/email", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("email changed") // must never run for a cross-site POST
	})
	cop := http.NewCrossOriginProtection()
	if err := rt.ExemptReturnRoutes(cop); err != nil {
		fmt.Println(err)
		return
	}
	site := cop.Handler(mux)

	crossSite := func(target, body string) {
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		r.Header.Set("Origin", "https://journey.cofidis.example")
		w := httptest.NewRecorder()
		site.ServeHTTP(w, r)
		fmt.Println(r.URL.Path, "→", w.Code)
	}
	crossSite(urls.ReturnURLSuccess, exampleBody("to_confirm", ""))
	crossSite("https://shop.example/account/email", "email=attacker@example.org")
	crossSite(urls.NotificationURLSuccess, exampleBody("to_confirm", ""))

	// Cofidis' server: no browser headers, not a cross-origin request.
	resp := examplePost(site, urls.NotificationURLSuccess, exampleBody("to_confirm", ""))
	fmt.Println("/payments/cofidis/notify/success →", resp.StatusCode)
	// Output:
	// redirect callback: to_confirm
	// /payments/cofidis/return/success → 303
	// /account/email → 403
	// /payments/cofidis/notify/success → 403
	// notification callback: to_confirm
	// /payments/cofidis/notify/success → 200
}

// Permanent tells the Router that retrying can never help: the notification
// is acknowledged with 200 (and logged) instead of 500. The merchant's own
// error text stays in the error the OnError hooks see.
func ExamplePermanent() {
	orders := map[string]bool{"2YgKoUd4DB": true} // the merchant's orders
	rt, urls := exampleRouter(
		func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
		func(ctx context.Context, ev cofidis.Event) error {
			id := ev.TransactionKey.MerchantTransactionID
			if !orders[id] {
				// No retry will make this order exist.
				return cofidis.Permanent(fmt.Errorf("order %s: %w", id, errors.New("unknown order")))
			}
			if ev.Status == cofidis.StatusRefused {
				return errors.New("database unavailable") // temporary: answered 500, retried
			}
			return nil
		},
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithLogger(slog.New(slog.DiscardHandler)),
		cofidis.WithOnError(func(_ *http.Request, err error) {
			fmt.Println("  OnError:", cofidis.ErrorClass(err), "-", err)
		}))

	notify := urls.NotificationURLOther
	unknown := strings.Replace(exampleBody("to_confirm", ""), "2YgKoUd4DB", "nope", 1)
	fmt.Println("unknown order:", examplePost(rt, notify, unknown).StatusCode)
	fmt.Println("temporary failure:", examplePost(rt, notify, exampleBody("Refused", "")).StatusCode)
	fmt.Println("handled:", examplePost(rt, notify, exampleBody("to_confirm", "")).StatusCode)
	// Output:
	// unknown order: 200
	//   OnError: callback_failed - cofidis: callback failed: database unavailable
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
	rt, urls := exampleRouter(
		func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
		func(ctx context.Context, ev cofidis.Event) error {
			fmt.Println("dispatched:", ev.Status, "verified:", ev.Verified)
			return nil
		},
		cofidis.WithVerifier(getStatus), cofidis.WithLogger(slog.New(slog.DiscardHandler)))

	body := exampleBody("to_confirm", "")
	fmt.Println(examplePost(rt, urls.NotificationURLSuccess, body).StatusCode)

	cofidisSays = cofidis.StatusValidated // Cofidis is further along: stale
	fmt.Println(examplePost(rt, urls.NotificationURLSuccess, body).StatusCode)

	cofidisSays = cofidis.StatusRefused // a contradiction, maybe a forgery: retry later
	fmt.Println(examplePost(rt, urls.NotificationURLSuccess, body).StatusCode)
	// Output:
	// dispatched: to_confirm verified: true
	// 200
	// 200
	// 503
}

// ErrorClass names the kind of a rejection with a fixed set of short names:
// a metric label that a request cannot inflate.
func ExampleErrorClass() {
	p := cofidis.NewParser(0)
	for _, body := range []string{
		"transactionStatus=to_confirm",
		exampleBody("to_confirm", "") + "&transactionStatus=Refused",
		exampleBody(strings.Repeat("x", cofidis.MaxStatusBytes+1), ""),
	} {
		r := httptest.NewRequest(http.MethodPost, "/notify", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		_, err := p.ParseRequest(r)
		fmt.Println(cofidis.ErrorClass(err), cofidis.HTTPStatus(err))
	}
	// Output:
	// missing_field 400
	// repeated_field 400
	// invalid_field 400
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
