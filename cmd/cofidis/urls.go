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
domain, https, no user-info or fragment). An invalid set is reported with the
reason and exit status 1.
`,
		setup: func(fs *flag.FlagSet) func(context.Context, env) error {
			base := fs.String("base", "", "base URL of the receiver, scheme://host[:port][/prefix][?query] (required)")
			var query queryFlag
			fs.Var(&query, "query", "`key=value` appended to every URL, such as an order reference (repeatable)")
			allowHTTP := fs.Bool("allow-http", false, "accept http URLs, for local development only")
			return func(_ context.Context, e env) error {
				if *base == "" {
					return usagef("-base is required")
				}
				var opts []cofidis.URLOption
				if *allowHTTP {
					opts = append(opts, cofidis.AllowHTTP())
				}
				urls, err := cofidis.NewURLs(*base, opts...)
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
