// Package e2e proves the redirect path of github.com/cofidis-go/cofidis in a
// real browser. Its tests start Debian's Chromium headless through chromedp,
// serve a fake Cofidis journey page on one site (http://127.0.0.1:A) whose
// form a script submits to the merchant's return URL on another site
// (http://localhost:B), and check both what the browser ends up showing and
// what the merchant's callback received.
//
// The merchant's application is configured the way the README tells
// merchants to: the library's Router registered on an http.ServeMux, behind
// http.CrossOriginProtection with the return routes exempted
// (Router.ExemptReturnRoutes), answering redirects with cofidis.SeeOther.
//
// The package holds no code but its tests; it lives in a module of its own
// so that the core module gains no dependency. See README.md beside this
// file for what the tests show and how to run them.
package e2e
