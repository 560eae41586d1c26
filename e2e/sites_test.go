package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cofidis-go/cofidis"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// The two charsets a journey page can be served in.
const (
	utf8Charset    = "utf-8"
	windows1252    = "windows-1252"
	orderParameter = "order" // the merchant's own query element in the return URLs
)

// journey is the end of a customer's journey on Cofidis' pages: the form a
// script posts back to the merchant.
type journey struct {
	// action is the URL the form posts to, normally a per-order return URL.
	action string
	// key is posted as the JSON transactionKey.
	key cofidis.TransactionKey
	// status is posted as transactionStatus.
	status cofidis.Status
	// charset is the page's charset, utf8Charset or windows1252; the browser
	// encodes the form in it.
	charset string
}

// journeyPage is Cofidis' last page, reduced to what matters: a form of
// hidden fields that a script submits as soon as it is parsed, a top-level
// cross-site POST of application/x-www-form-urlencoded.
var journeyPage = template.Must(template.New("journey").Parse(`<!doctype html>
<html lang="fr">
<head><meta charset="{{.Charset}}"><title>Cofidis - 4x</title></head>
<body>
<p id="journey">Votre demande est terminee. Retour au site marchand...</p>
<form id="back" method="post" action="{{.Action}}" enctype="application/x-www-form-urlencoded">
<input type="hidden" name="transactionKey" value="{{.Key}}">
<input type="hidden" name="transactionStatus" value="{{.Status}}">
</form>
<script>document.getElementById("back").submit();</script>
</body>
</html>
`))

// cofidisSite is a fake Cofidis serving journey pages on
// http://127.0.0.1:PORT, a site other than the merchant's localhost.
type cofidisSite struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pages map[string]page
}

// page is a rendered journey page.
type page struct {
	body        []byte
	contentType string
}

func newCofidisSite(t *testing.T) *cofidisSite {
	t.Helper()
	c := &cofidisSite{pages: map[string]page{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

// origin is the Origin header of the pages' POSTs.
func (c *cofidisSite) origin() string { return c.srv.URL }

// add renders j and returns the URL of its page.
func (c *cofidisSite) add(t *testing.T, j journey) string {
	t.Helper()
	key, err := json.MarshalIndent(j.key, "", "  ") // multi-line, as in Cofidis' documentation
	if err != nil {
		t.Fatalf("marshaling the transaction key: %v", err)
	}
	var buf bytes.Buffer
	err = journeyPage.Execute(&buf, map[string]string{
		"Charset": j.charset, "Action": j.action, "Key": string(key), "Status": string(j.status),
	})
	if err != nil {
		t.Fatalf("rendering the journey page: %v", err)
	}
	body := buf.Bytes()
	switch j.charset {
	case utf8Charset:
	case windows1252:
		// What windows-1252 lacks is written as &#NNN;, which the page's
		// DOM reads back as the character.
		enc := encoding.HTMLEscapeUnsupported(charmap.Windows1252.NewEncoder())
		if body, err = enc.Bytes(body); err != nil {
			t.Fatalf("encoding the journey page in %s: %v", j.charset, err)
		}
	default:
		t.Fatalf("journey page charset %q: want %q or %q", j.charset, utf8Charset, windows1252)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	path := "/journey/" + strconv.Itoa(len(c.pages)+1)
	c.pages[path] = page{body: body, contentType: "text/html; charset=" + j.charset}
	return c.srv.URL + path
}

func (c *cofidisSite) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	p, ok := c.pages[r.URL.Path]
	c.mu.Unlock()
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", p.contentType)
	_, _ = w.Write(p.body)
}

// testKey is a transaction key shaped like the documentation's example, with
// the given merchantTransactionId.
func testKey(merchantTransactionID string) cofidis.TransactionKey {
	return cofidis.TransactionKey{
		MerchantCountry:         "fr",
		ProviderID:              "providrid",
		ProviderTransactionID:   cofidis.NullValue(),
		MerchantID:              "020280098",
		MerchantTransactionID:   merchantTransactionID,
		MerchantTransactionDate: "20260227",
	}
}

// merchantConfig chooses how the merchant's application is put together.
type merchantConfig struct {
	// unprotected serves the mux without http.CrossOriginProtection.
	unprotected bool
	// noExemption leaves out rt.ExemptReturnRoutes(cop).
	noExemption bool
	// identical sets the five technicalData URLs to one URL.
	identical bool
}

// readme is the configuration the README tells merchants to use.
var readme = merchantConfig{}

// merchant is the merchant's application on http://localhost:PORT: the
// library's Router next to the shop's own pages, and recorders of what
// reached it.
type merchant struct {
	srv  *httptest.Server
	base string
	// urls are the base URLs the Router is built from; the journeys post to
	// per-order copies (orderURLs).
	urls cofidis.URLs

	mu            sync.Mutex
	redirects     []cofidis.Event
	notifications []cofidis.Event
	rejections    []error
	exchanges     []*exchange
	accountPosts  int
}

// exchange is one request that reached the merchant's server, before any
// middleware, and the status it was answered with.
type exchange struct {
	Method string
	URI    string
	Header http.Header
	Status int
}

// String formats the exchange as "POST /path?query 303".
func (x exchange) String() string {
	return x.Method + " " + x.URI + " " + strconv.Itoa(x.Status)
}

// The session cookies the shop's sign-in page sets, one per SameSite
// setting.
var sessionCookies = []struct {
	name  string
	attrs string
}{
	{"lax", "SameSite=Lax"},
	{"strict", "SameSite=Strict"},
	{"plain", ""}, // no SameSite attribute: Lax by default
	{"none", "SameSite=None; Secure"},
}

// orderPage is the shop's order page: the order, whether it was reached
// through the library's error path, and the names of the cookies that came
// with the request.
var orderPage = template.Must(template.New("order").Parse(`<!doctype html>
<meta charset="utf-8"><title>Order {{.ID}}</title>
<h1 id="order">Order {{.ID}}</h1>
{{if .Check}}<p id="check">We are asking Cofidis for the status of your financing.</p>{{end}}
<p id="cookies">cookies: {{.Cookies}}</p>
`))

func newMerchant(t *testing.T, cfg merchantConfig) *merchant {
	t.Helper()
	m := &merchant{}
	// The listener exists before the server starts: its port goes into the
	// URLs the Router is built from. "localhost" is another site than the
	// fake Cofidis' 127.0.0.1.
	m.srv = httptest.NewUnstartedServer(nil)
	_, port, err := net.SplitHostPort(m.srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("listener address: %v", err)
	}
	m.base = "http://localhost:" + port
	m.urls, err = cofidis.NewURLs(m.base, cofidis.AllowHTTP())
	if err != nil {
		t.Fatalf("NewURLs: %v", err)
	}
	if cfg.identical {
		for _, e := range cofidis.Endpoints() {
			m.urls.Set(e, m.base+"/cofidis")
		}
		if err := m.urls.Validate(cofidis.AllowHTTP()); err != nil {
			t.Fatalf("identical URLs: %v", err)
		}
	}

	rt, err := cofidis.NewRouter(m.urls, m.onRedirect, m.onNotification,
		cofidis.WithInsecureSkipVerify(), // no getStatus here: redirects are unverified either way
		cofidis.WithOnError(m.onError),
		cofidis.WithRedirectError(redirectError),
		cofidis.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))),
	)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}

	mux := http.NewServeMux()
	rt.Register(mux)
	mux.HandleFunc("GET /orders/{id}", m.order)
	mux.HandleFunc("GET /signin", signIn)
	mux.HandleFunc("POST /account/delete", m.deleteAccount)

	var h http.Handler = mux
	if !cfg.unprotected {
		// The README's configuration, verbatim.
		cop := http.NewCrossOriginProtection()
		if !cfg.noExemption {
			if err := rt.ExemptReturnRoutes(cop); err != nil {
				t.Fatalf("ExemptReturnRoutes: %v", err)
			}
		}
		h = cop.Handler(mux)
	}
	m.srv.Config.Handler = m.record(h)
	m.srv.Start()
	t.Cleanup(m.srv.Close)
	return m
}

// orderURLs are the URLs sent in initialize's technicalData for one order:
// the base URLs with the order as the merchant's own query element.
func (m *merchant) orderURLs(order string) cofidis.URLs {
	return m.urls.WithQuery(url.Values{orderParameter: {order}})
}

// onRedirect is the merchant's RedirectFunc, as in the README: record the
// event, send the customer to the order page with 303 See Other.
func (m *merchant) onRedirect(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
	m.mu.Lock()
	m.redirects = append(m.redirects, ev)
	m.mu.Unlock()
	return cofidis.SeeOther(w, r, "/orders/"+url.PathEscape(ev.Query().Get(orderParameter)))
}

// onNotification is the merchant's NotificationFunc. No scenario should
// reach it: browsers do not post notifications.
func (m *merchant) onNotification(_ context.Context, ev cofidis.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notifications = append(m.notifications, ev)
	return nil
}

func (m *merchant) onError(_ *http.Request, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejections = append(m.rejections, err)
}

// redirectError is the merchant's RedirectErrorFunc, as in
// ExampleWithRedirectError: a redirect the library rejected still sends the
// customer to the order named by the URL's own query element, whose page
// asks getStatus.
func redirectError(w http.ResponseWriter, r *http.Request, err error, query url.Values) {
	if order := query.Get(orderParameter); order != "" {
		_ = cofidis.SeeOther(w, r, "/orders/"+url.PathEscape(order)+"?check=1")
		return
	}
	cofidis.ErrorPage(w, r, err, query)
}

func (m *merchant) order(w http.ResponseWriter, r *http.Request) {
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = orderPage.Execute(w, map[string]any{
		"ID":      r.PathValue("id"),
		"Check":   r.URL.Query().Has("check"),
		"Cookies": strings.Join(names, " "),
	})
}

// signIn sets the session cookies on the merchant's site, as a shop does
// before the customer leaves for Cofidis.
func signIn(w http.ResponseWriter, _ *http.Request) {
	for _, c := range sessionCookies {
		v := c.name + "=1; Path=/"
		if c.attrs != "" {
			v += "; " + c.attrs
		}
		w.Header().Add("Set-Cookie", v)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><title>Signed in</title><h1 id="signed-in">Signed in</h1>`))
}

// deleteAccount is a POST route of the shop's own that must stay protected
// from cross-site requests.
func (m *merchant) deleteAccount(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	m.accountPosts++
	m.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("account deleted\n"))
}

// record keeps every request that reaches the server and its status. The
// status is recorded when the header is written, before any byte reaches
// the browser, so whatever the browser shows was recorded first.
func (m *merchant) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" { // the browser's own request
			http.NotFound(w, r)
			return
		}
		x := &exchange{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone()}
		m.mu.Lock()
		m.exchanges = append(m.exchanges, x)
		m.mu.Unlock()
		next.ServeHTTP(&statusWriter{ResponseWriter: w, m: m, x: x}, r)
	})
}

// seen returns copies of what reached the merchant so far.
func (m *merchant) seen() (exchanges []exchange, redirects, notifications []cofidis.Event, rejections []error, accountPosts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.exchanges {
		exchanges = append(exchanges, *x)
	}
	return exchanges, slices.Clone(m.redirects), slices.Clone(m.notifications), slices.Clone(m.rejections), m.accountPosts
}

// statusWriter records the status of an exchange.
type statusWriter struct {
	http.ResponseWriter
	m *merchant
	x *exchange
}

func (s *statusWriter) WriteHeader(code int) {
	s.setStatus(code)
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.setStatus(http.StatusOK)
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) setStatus(code int) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.x.Status == 0 && code >= 200 {
		s.x.Status = code
	}
}

// Unwrap keeps http.ResponseController working through the recorder.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// errorField returns the Field of a *cofidis.Error, "" for another error.
func errorField(err error) string {
	var e *cofidis.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
