package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// maxAnswerBytes bounds how much of an answer send prints.
const maxAnswerBytes = 64 << 10

// replayFlags are the flags that apply to send -from; the others build a
// callback, which -from reads from its file instead.
var replayFlags = []string{"from", "url", "timeout", "allow-http"}

func sendCommand() command {
	return command{
		name: "send",
		usage: `Usage: cofidis send -url URL -status STATUS [-substate X] [-browser] [key flags]
       cofidis send -from FILE -url URL

Posts one callback to URL exactly as Cofidis would: POST
application/x-www-form-urlencoded with transactionKey (JSON),
transactionStatus and, when given, subState. The status and sub-state are
sent verbatim, so other spellings ("To_confirm") and unknown statuses can be
tried. By default the request carries a server's headers, as a notification;
-browser sends a browser's navigation headers, as a redirect to a return URL.

With -from, replays a request that 'cofidis listen -record' wrote to FILE,
accepted or not: the recorded method, headers and body, as received, except
the headers that describe the recorded connection (Host, Content-Length,
Connection and those it names, Keep-Alive, Proxy-Authenticate,
Proxy-Authorization, Proxy-Connection, TE, Trailer, Transfer-Encoding,
Upgrade), which are recomputed or dropped. URL gives the scheme and
host, and optionally a path prefix: the request goes to URL's path, without
its trailing slash, followed by the recorded path and query. A file recorded
by a receiver of base http://127.0.0.1:8080 (path /cofidis/notify/success)
is replayed on a receiver of base https://shop.example with -url
https://shop.example, and on one of base https://shop.example/pay with -url
https://shop.example/pay. URL carries no query: the recorded one is sent.
The callback flags (-status, -browser, key flags...) do not apply. A body
recorded incomplete (over 1 MiB) is replayed as kept, with a warning.

Prints the request, then the answer's status, Location and body. Exits 0 when
the answer is 2xx or 3xx, 1 otherwise.

` + httpRule + `
`,
		setup: func(fs *flag.FlagSet) func(context.Context, env) error {
			target := fs.String("url", "", "callback URL to post to, or with -from the base URL to replay on (required)")
			from := fs.String("from", "", "replay the request recorded in `FILE` by 'cofidis listen -record'")
			status := fs.String("status", "", "transactionStatus, sent verbatim (required without -from)")
			subState := fs.String("substate", "", "subState, sent verbatim (default: no subState field)")
			browser := fs.Bool("browser", false, "send a browser's headers, as a redirect")
			multiline := fs.Bool("multiline", false, "write the key's JSON one member per line, as the documentation prints it")
			timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
			allowHTTP := fs.Bool("allow-http", false, allowHTTPUsage)
			var kf keyFlags
			kf.register(fs)
			return func(ctx context.Context, e env) error {
				if *target == "" {
					return usagef("-url is required")
				}
				if err := checkTarget(*target); err != nil {
					return err
				}
				if *timeout <= 0 {
					return usagef("-timeout must be positive")
				}
				if *from != "" {
					var extra []string
					fs.Visit(func(f *flag.Flag) {
						if !slices.Contains(replayFlags, f.Name) {
							extra = append(extra, "-"+f.Name)
						}
					})
					if len(extra) > 0 {
						return usagef("%s cannot be used with -from, which replays the recorded request as it is", strings.Join(extra, ", "))
					}
					if err := checkHTTP("url", *target, *allowHTTP); err != nil {
						return err
					}
					return replay(ctx, e, *from, *target, *timeout)
				}
				if *status == "" {
					return usagef("-status is required")
				}
				if err := checkHTTP("url", *target, *allowHTTP); err != nil {
					return err
				}
				key, err := kf.key(time.Now())
				if err != nil {
					return err
				}
				req := cofidistest.Request{
					Key:           key,
					Status:        cofidis.Status(*status),
					SubState:      cofidis.SubState(*subState),
					MultilineJSON: *multiline,
					Channel:       cofidis.ChannelNotification,
				}
				if *browser {
					req.Channel = cofidis.ChannelRedirect
				}
				return send(ctx, e, req, *target, *timeout)
			}
		},
	}
}

// checkTarget rejects URLs an HTTP client cannot post to.
func checkTarget(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return usagef("-url: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("-url: want an absolute http or https URL")
	}
	return nil
}

func send(ctx context.Context, e env, r cofidistest.Request, target string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := r.NewClientRequest(ctx, target)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "> POST %s (%s)\n", target, channelName(r.Channel))
	fmt.Fprintf(e.stdout, "> %s: %s\n", cofidis.FieldTransactionKey, r.KeyJSON())
	fmt.Fprintf(e.stdout, "> %s: %s\n", cofidis.FieldTransactionStatus, r.Status)
	if r.SubState != "" {
		fmt.Fprintf(e.stdout, "> %s: %s\n", cofidis.FieldSubState, r.SubState)
	}
	return exchange(e, noRedirects(http.DefaultClient), req)
}

// replay posts the request recorded in file to base (see replayURL).
func replay(ctx context.Context, e env, file, base string, timeout time.Duration) error {
	b, err := url.Parse(base)
	if err != nil {
		return usagef("-url: %v", err)
	}
	if b.RawQuery != "" || b.ForceQuery || strings.Contains(base, "#") {
		return usagef("-url: with -from, give scheme://host[:port][/prefix]: the query is the recorded one")
	}
	rec, err := readRecording(file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := newReplayRequest(ctx, rec, b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if rec.BodyIncomplete != "" {
		fmt.Fprintf(e.stderr, "cofidis send: warning: %s: the recorded body is incomplete (%s): replaying what was kept\n", file, rec.BodyIncomplete)
	}
	fmt.Fprintf(e.stdout, "> %s %s (replaying %s, received %s)\n", req.Method, req.URL, file, rec.ReceivedAt.Format(time.RFC3339Nano))
	fmt.Fprintf(e.stdout, "> %s\n", printable(string(rec.Body)))
	// Exactly the recorded headers: no Accept-Encoding added by the
	// transport either.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	defer tr.CloseIdleConnections()
	return exchange(e, noRedirects(&http.Client{Transport: tr}), req)
}

// printable returns s as it is when it is readable on one line, otherwise
// quoted.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// exchange sends req with c and prints the answer: its status, Location
// and body. An answer other than 2xx or 3xx is an error.
func exchange(e env, c *http.Client, req *http.Request) error {
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes))
	fmt.Fprintf(e.stdout, "< %s\n", res.Status)
	if loc := res.Header.Get("Location"); loc != "" {
		fmt.Fprintf(e.stdout, "< Location: %s\n", loc)
	}
	if len(body) > 0 {
		fmt.Fprintf(e.stdout, "\n%s", body)
		if body[len(body)-1] != '\n' {
			fmt.Fprintln(e.stdout)
		}
	}
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode >= 400 {
		return fmt.Errorf("the receiver answered %s", res.Status)
	}
	return nil
}

func channelName(ch cofidis.Channel) string {
	if ch == cofidis.ChannelRedirect {
		return "as a browser redirect"
	}
	return "as a server notification"
}

// noRedirects returns a copy of c that reports redirects instead of
// following them: a 303 is the receiver's answer to show.
func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}
