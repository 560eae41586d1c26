package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/cofidis-go/cofidis"
)

// Timeouts of the listen server. WriteTimeout covers the whole handler.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	shutdownTimeout   = 5 * time.Second
)

func listenCommand() command {
	return command{
		name: "listen",
		usage: `Usage: cofidis listen [-addr host:port] [-base URL] [-allow-http] [-dedupe] [-record DIR]

Runs a callback receiver (cofidis.Router) until interrupted (SIGINT or
SIGTERM), then stops cleanly.

On startup it prints one JSON line on stdout with the listening address and
the five technicalData URLs; port 0 picks a free port, which the line reports.
Then it prints one JSON line per accepted callback: channel, endpoint,
status (canonical and raw, known or not), subState, the full transaction key,
verified (always false: listen has no getStatus), the URL's query, the
sender's address and the time. Redirects are answered 200 with a short page,
notifications 200. Rejected requests are logged on stderr with the reason and
answered as the library does (400, 404, 405, 413, 415).

-dedupe deduplicates in memory, as a receiver built with
cofidis.WithIdempotency does. A notification of a decision already
processed does not reach the callback; it is printed all the same, with
"outcome":"duplicate" (answered 200), "in_progress" when another delivery
holds the decision (answered 503, for a retry) or "stale" when the
transaction is further along (answered 200). A redirect always reaches the
callback; its line carries "duplicate":true when a notification processed
the decision before, "stale":true when the transaction is further along.

-record DIR writes every request received, accepted or not, into a new file
in DIR (created if missing) before the receiver answers it; a request that
cannot be written is answered 500 and not processed. The files are named
NNNNNN-<endpoint>.json, numbered in order of arrival after those already in
DIR. Each is a JSON object (format "cofidis-recording/1") holding the method,
the target (path and query as sent), the headers and the body (up to 1 MiB),
exactly, for 'cofidis send -from FILE' to replay, with the time and the
sender's address. These files hold personal data (transaction keys, the
merchant's own query elements, every header): do not share them or commit
them.

The server speaks plain HTTP: -base may be an https URL served by a tunnel or
proxy in front of it, whose paths must reach this server unchanged. The
default base is http://<listening address>, with the loopback address in
place of an unspecified one (-addr :8080 gives http://[::1]:8080).
` + httpRule + `
`,
		setup: func(fs *flag.FlagSet) func(context.Context, env) error {
			var o listenOptions
			fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "`host:port` to listen on; port 0 picks a free port")
			fs.StringVar(&o.base, "base", "", "base URL of the callback URLs (default http://<listening address>)")
			fs.BoolVar(&o.allowHTTP, "allow-http", false, allowHTTPUsage)
			fs.BoolVar(&o.dedupe, "dedupe", false, "deduplicate deliveries in memory (cofidis.WithIdempotency) and print the duplicates")
			fs.StringVar(&o.record, "record", "", "write every request received into a file in `DIR`, for 'cofidis send -from' (personal data: do not share)")
			return func(ctx context.Context, e env) error {
				return listen(ctx, e, o)
			}
		},
	}
}

// listenOptions are the flags of listen.
type listenOptions struct {
	addr, base string
	allowHTTP  bool
	dedupe     bool
	record     string // directory; empty for no recording
}

// startupLine is the first line listen prints.
type startupLine struct {
	Listening string       `json:"listening"`
	URLs      cofidis.URLs `json:"urls"`
}

// eventLine is the line listen prints per accepted callback, and with
// -dedupe per delivery not dispatched.
type eventLine struct {
	Time            time.Time              `json:"time"`
	Channel         string                 `json:"channel"`
	Endpoint        string                 `json:"endpoint"`
	ChannelInferred bool                   `json:"channelInferred"`
	Status          cofidis.Status         `json:"status"`
	RawStatus       string                 `json:"rawStatus"`
	Known           bool                   `json:"known"`
	Unexpected      bool                   `json:"unexpected"`
	SubState        cofidis.SubState       `json:"subState"`
	RawSubState     string                 `json:"rawSubState"`
	TransactionKey  cofidis.TransactionKey `json:"transactionKey"`
	Verified        bool                   `json:"verified"`
	Query           string                 `json:"query"`
	RemoteAddr      string                 `json:"remoteAddr"`
	// Duplicate and Stale are Event's flags, set only with -dedupe.
	Duplicate bool `json:"duplicate,omitempty"`
	Stale     bool `json:"stale,omitempty"`
	// Outcome is set on the lines of the deliveries that did not reach the
	// callback (-dedupe): duplicate, in_progress or stale.
	Outcome string `json:"outcome,omitempty"`
}

func newEventLine(ev cofidis.Event) eventLine {
	remote := ""
	if ev.RemoteAddr.IsValid() {
		remote = ev.RemoteAddr.String()
	}
	return eventLine{
		Time:            ev.ReceivedAt.UTC(),
		Channel:         ev.Channel.String(),
		Endpoint:        ev.Endpoints.String(),
		ChannelInferred: ev.ChannelInferred,
		Status:          ev.Status,
		RawStatus:       ev.RawStatus,
		Known:           ev.Status.Known(),
		Unexpected:      ev.Unexpected,
		SubState:        ev.SubState,
		RawSubState:     ev.RawSubState,
		TransactionKey:  ev.TransactionKey,
		Verified:        ev.Verified,
		Query:           ev.RawQuery,
		RemoteAddr:      remote,
		Duplicate:       ev.Duplicate,
		Stale:           ev.Stale,
	}
}

// jsonLines writes one JSON value per line, from any goroutine.
type jsonLines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newJSONLines(w io.Writer) *jsonLines {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonLines{enc: enc}
}

func (j *jsonLines) write(v any) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.enc.Encode(v)
}

func listen(ctx context.Context, e env, o listenOptions) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.addr)
	if err != nil {
		return err
	}
	defer ln.Close() // Serve closes it too; this covers the early returns
	base, flagName := o.base, "base"
	if base == "" {
		base, flagName = defaultBase(ln.Addr()), "addr"
	}
	urls, err := newURLs(flagName, base, o.allowHTTP)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	out := newJSONLines(e.stdout)

	onRedirect := func(w http.ResponseWriter, _ *http.Request, ev cofidis.Event) error {
		if err := out.write(newEventLine(ev)); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := io.WriteString(w, "cofidis listen: redirect received\n")
		return err
	}
	onNotification := func(_ context.Context, ev cofidis.Event) error {
		return out.write(newEventLine(ev)) // a failed write asks for a retry
	}
	opts := []cofidis.Option{
		// A developer's receiver has no getStatus client: events are
		// printed as posted, with "verified": false.
		cofidis.WithInsecureSkipVerify(),
		cofidis.WithLogger(logger),
	}
	if o.dedupe {
		opts = append(opts,
			cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})),
			cofidis.WithDeliveryHook(func(_ context.Context, ev cofidis.Event, oc cofidis.Outcome) {
				switch oc {
				case cofidis.OutcomeDuplicate, cofidis.OutcomeInProgress, cofidis.OutcomeStale:
					// Not dispatched, so not printed by the callback.
					line := newEventLine(ev)
					line.Outcome = oc.String()
					if err := out.write(line); err != nil {
						logger.Error("cofidis listen: writing an event line", slog.String("error", err.Error()))
					}
				}
			}))
	}
	rt, err := cofidis.NewRouter(urls, onRedirect, onNotification, opts...)
	if err != nil {
		return err
	}
	handler := http.Handler(rt) // unknown paths are logged by the Router itself (404)
	if o.record != "" {
		rec, err := newRecorder(o.record, urls)
		if err != nil {
			return fmt.Errorf("-record: %w", err)
		}
		defer rec.Close()
		logger.Warn("cofidis listen: recording every request received; the files hold personal data "+
			"(transaction keys, the merchant's query elements, every header): do not share them or commit them",
			slog.String("dir", o.record))
		handler = rec.wrap(handler, logger)
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if err := out.write(startupLine{Listening: ln.Addr().String(), URLs: urls}); err != nil {
		return errors.Join(err, srv.Close(), serverClosed(<-served))
	}

	select {
	case err := <-served:
		return err // Serve failed before any shutdown
	case <-ctx.Done():
	}
	logger.Info("cofidis listen: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return serverClosed(<-served)
}

// defaultBase returns the base URL of a receiver listening on addr:
// http://addr, with the loopback address in place of an unspecified one,
// which is no destination.
func defaultBase(addr net.Addr) string {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	ip := ap.Addr()
	switch {
	case ip == netip.IPv4Unspecified():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case ip.IsUnspecified():
		ip = netip.IPv6Loopback()
	}
	return "http://" + netip.AddrPortFrom(ip, ap.Port()).String()
}

// serverClosed turns Serve's normal result after a shutdown into nil.
func serverClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
