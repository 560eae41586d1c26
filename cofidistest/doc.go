// Package cofidistest lets a merchant test the code behind the Cofidis
// callbacks without a sandbox: it builds the requests Cofidis and the
// customer's browser send, plays whole journeys against an http.Handler or a
// running server as the documentation describes them, and records the typed
// events a receiver delivers.
//
//   - NewKey generates a transaction key like a real one (today in Paris).
//   - Request builds one callback, exactly as Cofidis posts it, with knobs for
//     the documented variants (multi-line JSON, capitalised statuses, null or
//     absent providerTransactionId) and for deliberately broken requests.
//   - Fake plays a Journey (Accepted, Refused, Aborted, Errored,
//     PendingAccepted, PendingRefused) and reports one Delivery per request;
//     journeys can be reordered, duplicated and delayed.
//   - Ledger plays Cofidis' getStatus: a Fake with a Ledger advances it as it
//     plays, and it plugs into cofidis.WithVerifier, so that the receiver
//     under test is built as in production. A test that posts requests no
//     Ledger knows says so with cofidis.WithInsecureSkipVerify.
//   - Recorder implements both callbacks and keeps the events for
//     assertions.
//
// A typical test:
//
//	var getStatus cofidistest.Ledger
//	var rec cofidistest.Recorder
//	rt, _ := cofidis.NewRouter(urls, rec.Redirect, rec.Notify, cofidis.WithVerifier(&getStatus))
//	fake := cofidistest.Fake{URLs: urls, Handler: rt, Ledger: &getStatus}
//	deliveries, err := fake.Play(ctx, cofidistest.Accepted(cofidistest.NewKey(cofidistest.KeyOptions{})))
//	// rec.Events() now holds the redirect and the notification.
//
// The values it produces follow the published documentation; where that is
// silent (header values, Cofidis' origin, the order of deliveries), the
// choices are plausible stand-ins, documented on each identifier.
package cofidistest
