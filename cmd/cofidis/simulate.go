package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

func simulateCommand() command {
	return command{
		name: "simulate",
		usage: `Usage: cofidis simulate -base URL -journey NAME [-query key=value]... [flags] [key flags]

Plays a whole Cofidis journey against a running receiver whose five URLs
derive from -base as cofidis.NewURLs derives them (as 'cofidis listen' and
'cofidis urls' print them). The journeys, as the documentation describes them:

  accepted          redirect to returnUrlSuccess, to_confirm on notificationUrlSuccess
  refused           redirect to returnUrlOther, Refused on notificationUrlOther
  aborted           Aborted on notificationUrlOther
  error             Error on notificationUrlOther
  pending-accepted  redirect to returnUrlOther with pending, pending and
                    pending/signed on notificationUrlPending, then to_confirm there
  pending-refused   the same, ending with Refused on notificationUrlPending

Prints one line per callback with the receiver's answer. Exits 0 when every
answer is 2xx or 3xx, 1 otherwise.

` + httpRule + `
`,
		setup: func(fs *flag.FlagSet) func(context.Context, env) error {
			base := fs.String("base", "", "base URL of the receiver (required)")
			journey := fs.String("journey", "", "journey to play: "+strings.Join(journeyNames(), ", ")+" (required)")
			var query queryFlag
			fs.Var(&query, "query", "`key=value` appended to every URL, as the merchant's own elements (repeatable)")
			notificationsFirst := fs.Bool("notifications-first", false, "post the notifications before the redirects")
			repeat := fs.Int("repeat", 0, "post every notification this many extra times")
			delay := fs.Duration("delay", 0, "wait this long between two callbacks")
			timeout := fs.Duration("timeout", 10*time.Second, "give up on one callback after this long")
			allowHTTP := fs.Bool("allow-http", false, allowHTTPUsage)
			var kf keyFlags
			kf.register(fs)
			return func(ctx context.Context, e env) error {
				if *base == "" {
					return usagef("-base is required")
				}
				if *journey == "" {
					return usagef("-journey is required")
				}
				if *repeat < 0 || *delay < 0 || *timeout <= 0 {
					return usagef("-repeat and -delay must not be negative, -timeout must be positive")
				}
				key, err := kf.key(time.Now())
				if err != nil {
					return err
				}
				j, ok := newJourney(*journey, key)
				if !ok {
					return usagef("-journey: unknown journey %q (want one of %s)", *journey, strings.Join(journeyNames(), ", "))
				}
				if *notificationsFirst {
					j = j.NotificationsFirst()
				}
				urls, err := newURLs("base", *base, *allowHTTP)
				if err != nil {
					return err
				}
				urls = urls.WithQuery(query.values)
				fake := cofidistest.Fake{
					URLs:                urls,
					Client:              &http.Client{Timeout: *timeout},
					Delay:               *delay,
					RepeatNotifications: *repeat,
				}
				return simulate(ctx, e, fake, j)
			}
		},
	}
}

// journeys are the journeys simulate plays, by the names their constructors
// give them.
func journeys(key cofidis.TransactionKey) []cofidistest.Journey {
	return []cofidistest.Journey{
		cofidistest.Accepted(key), cofidistest.Refused(key), cofidistest.Aborted(key),
		cofidistest.Errored(key), cofidistest.PendingAccepted(key), cofidistest.PendingRefused(key),
	}
}

// journeyNames returns the names -journey accepts, in a fixed order.
func journeyNames() []string {
	var names []string
	for _, j := range journeys(cofidis.TransactionKey{}) {
		names = append(names, j.Name)
	}
	return names
}

// newJourney returns the journey called name for key.
func newJourney(name string, key cofidis.TransactionKey) (cofidistest.Journey, bool) {
	for _, j := range journeys(key) {
		if j.Name == name {
			return j, true
		}
	}
	return cofidistest.Journey{}, false
}

func simulate(ctx context.Context, e env, fake cofidistest.Fake, j cofidistest.Journey) error {
	fmt.Fprintf(e.stdout, "journey %s, transaction %s\n", j.Name, j.Key)
	ds, err := fake.Play(ctx, j)
	refused := 0
	for _, d := range ds {
		line := d.String()
		if d.Location != "" {
			line += " Location: " + d.Location
		}
		fmt.Fprintln(e.stdout, line)
		if d.Err == nil && !d.OK() {
			refused++
		}
	}
	if err != nil {
		return err
	}
	if refused > 0 {
		return fmt.Errorf("%d of %d callbacks were not accepted", refused, len(ds))
	}
	return nil
}
