package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// maxAnswerBytes bounds how much of an answer send prints.
const maxAnswerBytes = 64 << 10

func sendCommand() command {
	return command{
		name: "send",
		usage: `Usage: cofidis send -url URL -status STATUS [-substate X] [-browser] [key flags]

Posts one callback to URL exactly as Cofidis would: POST
application/x-www-form-urlencoded with transactionKey (JSON),
transactionStatus and, when given, subState. The status and sub-state are
sent verbatim, so other spellings ("To_confirm") and unknown statuses can be
tried. By default the request carries a server's headers, as a notification;
-browser sends a browser's navigation headers, as a redirect to a return URL.

Prints the request, then the answer's status, Location and body. Exits 0 when
the answer is 2xx or 3xx, 1 otherwise.

` + httpRule + `
`,
		setup: func(fs *flag.FlagSet) func(context.Context, env) error {
			target := fs.String("url", "", "callback URL to post to (required)")
			status := fs.String("status", "", "transactionStatus, sent verbatim (required)")
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
	res, err := noRedirects(http.DefaultClient).Do(req)
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
