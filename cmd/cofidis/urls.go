package main

import (
	"context"
	"encoding/json"
	"flag"

	"github.com/cofidis-go/cofidis"
)

func urlsCommand() command {
	return command{
		name: "urls",
		usage: `Usage: cofidis urls -base URL [-query key=value]... [-allow-http]

Prints the technicalData JSON object for the initialize call: the five
callback URLs derived from -base (see cofidis.NewURLs), with the -query
elements appended to each, after checking them as Cofidis requires (one
domain, no user-info or fragment). An invalid set is reported with the
reason and exit status 1.

` + httpRule + `
Cofidis itself posts only to https URLs.
`,
		setup: func(fs *flag.FlagSet) func(context.Context, env) error {
			base := fs.String("base", "", "base URL of the receiver, scheme://host[:port][/prefix][?query] (required)")
			var query queryFlag
			fs.Var(&query, "query", "`key=value` appended to every URL, such as an order reference (repeatable)")
			allowHTTP := fs.Bool("allow-http", false, allowHTTPUsage)
			return func(_ context.Context, e env) error {
				if *base == "" {
					return usagef("-base is required")
				}
				urls, err := newURLs("base", *base, *allowHTTP)
				if err != nil {
					return err
				}
				urls = urls.WithQuery(query.values) // appending encoded pairs keeps a valid set valid
				enc := json.NewEncoder(e.stdout)
				enc.SetEscapeHTML(false) // keep & readable in query strings
				enc.SetIndent("", "  ")
				return enc.Encode(urls)
			}
		},
	}
}

// newURLs derives the five URLs from base, given as the flag called name,
// under the CLI's scheme rule (see checkHTTP) instead of the library's
// https-only default.
func newURLs(name, base string, allowHTTP bool) (cofidis.URLs, error) {
	if err := checkHTTP(name, base, allowHTTP); err != nil {
		return cofidis.URLs{}, err
	}
	// http passed checkHTTP: the library need not refuse it again, which it
	// would do naming its own option.
	return cofidis.NewURLs(base, cofidis.AllowHTTP())
}
