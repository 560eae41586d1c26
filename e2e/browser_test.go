package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// browserEnv names the environment variable that points the tests at a
	// Chromium or Chrome binary.
	browserEnv = "CHROMIUM_PATH"
	// defaultBrowser is where Debian's chromium package installs its
	// launcher.
	defaultBrowser = "/usr/bin/chromium"

	// waitBudget bounds every wait on the browser: a scenario whose page
	// never shows fails with the context's error instead of hanging until
	// go test's own timeout. It is a bound, not an assertion on speed.
	waitBudget = 20 * time.Second
	// closeBudget bounds the graceful close of a browser.
	closeBudget = 10 * time.Second
)

// browserFlags are the only switches given to Chromium, besides a fresh
// --user-data-dir. chromedp adds --remote-debugging-pipe (its connection)
// and about:blank (the first page); it also adds --no-sandbox when it runs
// as root, which this list states anyway.
var browserFlags = []string{
	// Needed to run at all in CI, as root and without a display.
	"no-sandbox",
	"headless",
	"disable-gpu",
	// Needed on a machine without internet: no update, sync, first-run or
	// QUIC traffic that would stall or print errors.
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
	"no-first-run",
	"disable-quic",
}

// findBrowser returns the browser to drive: $CHROMIUM_PATH, or Debian's
// /usr/bin/chromium. Without one the test fails in CI (CI set, as .ci/run
// has it) and is skipped elsewhere.
func findBrowser(t *testing.T) string {
	t.Helper()
	path := os.Getenv(browserEnv)
	if path == "" {
		path = defaultBrowser
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no browser: %v (install Debian's chromium or set %s)", err, browserEnv)
		}
		t.Skipf("no browser: %v (install Debian's chromium or set %s)", err, browserEnv)
	}
	return path
}

// newBrowser starts a headless Chromium with a fresh profile for the whole
// test t and returns its chromedp context; it is closed when t ends. Give
// each scenario its own tab and cookie jar with newTab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser(t)
	out := &lockedBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	}
	for _, f := range browserFlags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	// Cleanups run last-registered first: the browser closes, then the
	// allocator waits for its process, then t.TempDir is removed.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		defer cancel()
		closeCtx, cancelClose := context.WithTimeout(ctx, closeBudget)
		defer cancelClose()
		if err := chromedp.Cancel(closeCtx); err != nil {
			t.Errorf("closing the browser: %v", err)
		}
		if t.Failed() {
			t.Logf("browser output:\n%s", out.String())
		}
	})
	// The first action starts the browser; it must not run under a
	// timeout, which would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\nbrowser output:\n%s", path, err, out.String())
	}
	version, err := chromedp.Run(ctx, chromedp.Evaluate[string]("navigator.userAgent"))
	if err != nil {
		t.Fatalf("reading the browser's user agent: %v", err)
	}
	t.Logf("browser: %s (%s)", path, version)
	return ctx
}

// newTab opens a tab in a browser context of its own (its own cookie jar,
// like a fresh incognito window) and returns its chromedp context, closed
// when t ends.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// landing is what the browser ends up showing.
type landing struct {
	// URL is the document's location.
	URL string
	// Text is the visible text of the document's body.
	Text string
}

// landed matches the pages a visit ends on, and no journey page: the
// merchant's HTML pages (each has an h1: the order page, the sign-in page,
// the library's ErrorPage) and the answers in text/plain, which the browser
// renders in a <pre> (403s, 405s). Waiting for any of them, rather than for
// the page a scenario expects, lets a wrong landing fail at once on the
// assertions that follow instead of at the end of the wait.
const landed chromedp.CSS = "h1, pre"

// visit navigates tab to pageURL and waits until the browser lands on one
// of the merchant's pages, possibly after more navigations (a journey page
// submits its form as it loads, and the merchant may redirect). It returns
// where the browser landed.
func visit(t *testing.T, tab context.Context, pageURL string) landing {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitBudget)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(landed)); err != nil {
		t.Fatalf("visiting %s, waiting for %q: %v", pageURL, landed, err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("reading the location: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	return landing{URL: loc, Text: text}
}

// lockedBuffer collects the browser's output, written from chromedp's
// goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
