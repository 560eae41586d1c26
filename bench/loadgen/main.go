// Command loadgen is the loopback load harness of BENCHMARKS.md: it starts
// HTTP servers in turn, each in its own process on 127.0.0.1, and drives them
// with the same concurrent POST load of documented Cofidis notifications,
// each with its own merchantTransactionId:
//
//   - bare: a handler that only drains the body and answers 200;
//   - library: cofidis.NewRouter, whose notification callback does nothing;
//   - idempotent: the same with cofidis.WithIdempotency(MemoryStore), each
//     request a new transaction, claimed and completed.
//
// It reports requests/s, p50/p99 latency and the server's CPU time per
// request for each, and the ratios the targets are stated in: library/bare
// (at least 0.90) and idempotent/library (at least 0.85). Run it from the repository root:
//
//	go run ./bench/loadgen
//
// Every run is bounded: a warm-up and a measured period per server and
// round (-warmup, -duration), a number of rounds (-rounds; the order
// alternates so that drift hurts both servers alike), a cap on the number of
// requests (-max-requests), and server processes that exit on their own
// after -server-lifetime. Traffic never leaves 127.0.0.1. Any answer but 200
// stops the run with an error.
//
// The servers and the load generator are separate processes, so that each
// has its own GOMAXPROCS (-server-procs, -client-procs): by default the
// machine's CPUs are split between them, half each, so that the server
// saturates its share and neither side starves the other. With taskset
// (Linux), each is also pinned to its own CPUs (-pin, on by default), as a
// server pinned to one core under wrk would be: rounds then vary far less,
// and the server, busy all the time, is what limits throughput. The client is a
// minimal HTTP/1.1 writer and reader over keep-alive connections, much
// cheaper per request than net/http's client, so that the server is the side
// being measured.
//
// Two more modes help explain the gap (-modes): headers is the bare handler
// answering as the library's rejections do (three headers and a status-text
// body, the library's former 200 answer), and parse runs
// cofidis.ParseRequest and then answers as the bare handler.
//
// Two modes measure a flood of malformed requests (the same body, answered
// 400), with the receiver's JSON log written to a file: flood, with the
// default rejection log limit, and flood-unlimited, with the limit lifted
// so that every rejection is logged, as before the limit existed. They
// report log bytes and lines per second besides requests/s:
//
//	go run ./bench/loadgen -modes flood-unlimited,flood
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// base is the merchant's URL prefix; only its path matters on loopback.
const base = "https://shop.example/payments"

func main() {
	serve := flag.String("serve", "", "internal: run a server in this mode and print its address")
	modes := flag.String("modes", "bare,library,idempotent", "servers to measure, in order: bare, library, idempotent, and for diagnosis\n"+
		"headers (bare, answering as the library does) and parse (cofidis.ParseRequest, then a bare 200);\n"+
		"flood and flood-unlimited for a flood of malformed requests with and without the log limit")
	logFile := flag.String("server-log", "", "internal: the file a server writes its log to")
	profile := flag.String("server-cpuprofile", "", "write each server's CPU profile to this prefix + mode + .prof")
	lifetime := flag.Duration("server-lifetime", 2*time.Minute, "a server process exits after this long, whatever happens")
	duration := flag.Duration("duration", 5*time.Second, "measured period per server and round")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up per server and round")
	conns := flag.Int("conns", 32, "concurrent keep-alive connections")
	maxRequests := flag.Int64("max-requests", 10_000_000, "stop a measured period after this many requests")
	rounds := flag.Int("rounds", 3, "how many times to measure each server; the order alternates")
	ids := flag.Int("ids", 0, "distinct merchantTransactionId values cycled through; 0 for a new one per request")
	serverProcs := flag.Int("server-procs", max(1, runtime.NumCPU()/2), "GOMAXPROCS of the server process")
	clientProcs := flag.Int("client-procs", max(1, runtime.NumCPU()-runtime.NumCPU()/2), "GOMAXPROCS of the load generator")
	pin := flag.Bool("pin", true, "pin the server to the first -server-procs CPUs and the load generator to the others, with taskset\n"+
		"(Linux, when taskset is installed and there are CPUs left for both)")
	flag.Parse()

	if *serve != "" {
		if err := runServer(*serve, *lifetime, *profile, *logFile); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen server:", err)
			os.Exit(1)
		}
		return
	}
	runtime.GOMAXPROCS(*clientProcs)
	cfg := loadConfig{
		duration: *duration, warmup: *warmup, conns: *conns, maxRequests: *maxRequests,
		ids: *ids, serverProcs: *serverProcs, lifetime: *lifetime, profile: *profile,
	}
	if *pin {
		cfg.serverCPUs = pinCPUs(*serverProcs)
	}
	if err := run(cfg, strings.Split(*modes, ","), *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type loadConfig struct {
	duration, warmup, lifetime time.Duration
	conns, ids, serverProcs    int
	maxRequests                int64
	profile                    string
	// serverCPUs is the taskset CPU list the servers run on, "" when
	// nothing is pinned.
	serverCPUs string
}

// pinCPUs pins this process (the load generator, all its threads) to the
// CPUs after the first serverProcs, and returns the list of those first
// ones for the servers; "" when it cannot: not Linux, no taskset, or no CPU
// left for the load generator. Pinned, each side keeps its own cores and
// their caches, so that a round measures the server rather than where the
// scheduler put it (rounds vary far less).
func pinCPUs(serverProcs int) string {
	n := runtime.NumCPU()
	if runtime.GOOS != "linux" || serverProcs < 1 || serverProcs >= n {
		return ""
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return ""
	}
	client := fmt.Sprintf("%d-%d", serverProcs, n-1)
	//nolint:gosec // taskset on this very process, with a CPU list built here
	if out, err := exec.CommandContext(context.Background(), "taskset", "-a", "-c", "-p", client, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: not pinned (taskset: %v: %s)\n", err, bytes.TrimSpace(out))
		return ""
	}
	return fmt.Sprintf("0-%d", serverProcs-1)
}

func run(cfg loadConfig, modes []string, rounds int) error {
	if rounds < 1 || cfg.conns < 1 || cfg.ids < 0 || cfg.duration <= 0 {
		return errors.New("-rounds, -conns and -duration must be positive, -ids not negative")
	}
	for _, m := range modes {
		if _, err := handler(m, io.Discard); err != nil {
			return err
		}
	}
	host, _ := os.Hostname()
	fmt.Printf("loadgen: %s, %s/%s, %d CPUs (%s); server GOMAXPROCS=%d, client GOMAXPROCS=%d\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), host, cfg.serverProcs, runtime.GOMAXPROCS(0))
	if cfg.serverCPUs != "" {
		fmt.Printf("loadgen: servers pinned to CPUs %s, the load generator to the others\n", cfg.serverCPUs)
	}
	distinct := "a new transaction per request"
	if cfg.ids > 0 {
		distinct = fmt.Sprintf("%d distinct transactions", cfg.ids)
	}
	fmt.Printf("loadgen: %d connections, warm-up %s, measured %s per server, %d round(s), %s\n\n",
		cfg.conns, cfg.warmup, cfg.duration, rounds, distinct)

	results := map[string][]result{}
	for round := 1; round <= rounds; round++ {
		order := slices.Clone(modes)
		if round%2 == 0 {
			slices.Reverse(order) // so that drift hurts every server alike
		}
		for _, mode := range order {
			res, err := measure(mode, cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			fmt.Printf("round %d  %-15s %s\n", round, mode, res)
			results[mode] = append(results[mode], res)
		}
	}
	fmt.Println("\nall rounds:")
	for _, mode := range modes {
		fmt.Printf("%-15s %s\n", mode, merge(results[mode]))
	}
	for _, c := range [...]struct {
		mode, base string
		target     float64
	}{
		{"library", "bare", 0.90},
		{"idempotent", "library", 0.85},
		{"flood", "flood-unlimited", 0},
	} {
		compare(results, c.mode, c.base, c.target)
	}
	return nil
}

// median returns the median of xs, which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// compare prints how mode fared against base, when both were measured:
// requests/s by round and overall against target (none when 0), latency,
// server CPU and log bytes per request.
func compare(results map[string][]result, mode, base string, target float64) {
	if len(results[mode]) == 0 || len(results[base]) == 0 {
		return
	}
	m, b := merge(results[mode]), merge(results[base])
	var (
		perRound []string
		ratios   []float64
	)
	for i := range results[base] {
		r := results[mode][i].rps() / results[base][i].rps()
		perRound, ratios = append(perRound, fmt.Sprintf("%.2f", r)), append(ratios, r)
	}
	// The median, as benchstat reports, is robust to a round that another
	// tenant of the host slowed down; the verdict below is on all rounds.
	fmt.Printf("\n%s/%s requests/s by round: %s (median %.2f)\n", mode, base, strings.Join(perRound, " "), median(ratios))
	ratio := m.rps() / b.rps()
	verdict := ""
	if target > 0 {
		verdict = fmt.Sprintf(" (meets the %.2f target)", target)
		if ratio < target {
			verdict = fmt.Sprintf(" (misses the %.2f target)", target)
		}
	}
	fmt.Printf("%s/%s requests/s: %.3f%s; p50 %.2fx, p99 %.2fx\n", mode, base, ratio, verdict,
		float64(m.hist.quantile(0.50))/float64(b.hist.quantile(0.50)),
		float64(m.hist.quantile(0.99))/float64(b.hist.quantile(0.99)))
	if b.cpuPerRequest() > 0 && m.cpuPerRequest() > 0 {
		fmt.Printf("%s/%s server CPU per request: %.3f\n", mode, base, float64(m.cpuPerRequest())/float64(b.cpuPerRequest()))
	}
	if m.logBytes > 0 || b.logBytes > 0 {
		fmt.Printf("%s: %.0f log bytes/s, %s: %.0f log bytes/s\n", mode, float64(m.logBytes)/m.elapsed.Seconds(),
			base, float64(b.logBytes)/b.elapsed.Seconds())
	}
}

// measure starts a server process in the given mode, warms it up, then
// measures it.
func measure(mode string, cfg loadConfig) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.lifetime)
	defer cancel()
	logs, err := os.CreateTemp("", "loadgen-"+mode+"-*.log")
	if err != nil {
		return result{}, err
	}
	defer os.Remove(logs.Name())
	defer logs.Close()
	args := []string{self, "-serve", mode,
		"-server-lifetime", cfg.lifetime.String(), "-server-cpuprofile", cfg.profile, "-server-log", logs.Name()}
	if cfg.serverCPUs != "" {
		// taskset execs the server: the process, its PID and its CPU
		// time are the server's.
		args = append([]string{"taskset", "-c", cfg.serverCPUs}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) //nolint:gosec // this very program, as a server
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cfg.serverProcs))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		// Only the process started here, by its handle: asked to stop (so
		// that it writes its profile), then killed if it lingers.
		_ = cmd.Process.Signal(os.Interrupt)
		t := time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
		_ = cmd.Wait()
		t.Stop()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return result{}, fmt.Errorf("server did not start: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		return result{}, fmt.Errorf("unexpected server output %q", line)
	}
	reqs, err := requests(addr, cfg.ids, mode)
	if err != nil {
		return result{}, err
	}
	want := wantStatus(mode)
	// With a new transaction per request, the warm-up's ids start at 0 and
	// the measured period's at measuredIDs, so that none repeats.
	if cfg.warmup > 0 {
		if _, err := load(addr, reqs, cfg.ids == 0, 0, want, cfg.conns, cfg.warmup, cfg.maxRequests); err != nil {
			return result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	log0, err := logSize(logs)
	if err != nil {
		return result{}, err
	}
	srv0, ok1 := cpuTime(strconv.Itoa(cmd.Process.Pid))
	cli0, ok2 := cpuTime("self")
	res, err := load(addr, reqs, cfg.ids == 0, measuredIDs, want, cfg.conns, cfg.duration, cfg.maxRequests)
	srv1, ok3 := cpuTime(strconv.Itoa(cmd.Process.Pid))
	cli1, ok4 := cpuTime("self")
	if ok1 && ok2 && ok3 && ok4 {
		res.serverCPU, res.clientCPU = srv1-srv0, cli1-cli0
	}
	log1, lerr := logSize(logs)
	res.logBytes = log1 - log0
	return res, errors.Join(err, lerr)
}

// logSize is the size of the server's log file so far.
func logSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// flooding reports whether mode measures a flood of malformed requests.
func flooding(mode string) bool { return strings.HasPrefix(mode, "flood") }

// wantStatus is the answer every request of mode must get.
func wantStatus(mode string) int {
	if flooding(mode) {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// cpuTime returns the user and system CPU time of a process from
// /proc/<pid>/stat (Linux), or false elsewhere.
func cpuTime(pid string) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat") //nolint:gosec // a pid or "self", from this program
	if err != nil {
		return 0, false
	}
	// The fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15, in clock ticks (USER_HZ, 100 on Linux).
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * (time.Second / 100), true
}

// idPrefix starts the merchantTransactionId of every request, followed by
// idDigits digits: a request's id is rewritten in place (see stamp). The
// measured period's ids start at measuredIDs, after the warm-up's.
const (
	idPrefix    = "LG"
	idDigits    = 8
	measuredIDs = 50_000_000
)

// requests builds the raw HTTP/1.1 requests: the documentation's example
// notification, n of them with their own merchantTransactionId, or one
// whose id each request rewrites when n is 0; in a flood, a malformed body
// (a bad percent-escape), the same every time.
func requests(addr string, n int, mode string) ([][]byte, error) {
	if n == 0 {
		n = 1
	}
	urls, err := cofidis.NewURLs(base)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(urls.Get(cofidis.EndpointNotificationPending))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	for i := range out {
		key := cofidistest.NewKey(cofidistest.KeyOptions{MerchantTransactionID: fmt.Sprintf("%s%0*d", idPrefix, idDigits, i)})
		key.MerchantTransactionDate = "20260227" // the documentation's example
		body := url.Values{
			cofidis.FieldTransactionKey:    {cofidistest.Request{Key: key, MultilineJSON: true}.KeyJSON()},
			cofidis.FieldTransactionStatus: {"pending"},
			cofidis.FieldSubState:          {"signed"},
		}.Encode()
		if flooding(mode) {
			body = "transactionKey=%zz&transactionStatus=to_confirm"
		}
		out[i] = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cofidis-loadgen\r\n"+
			"Content-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
			u.EscapedPath(), addr, cofidistest.ContentTypeForm, len(body), body)
	}
	return out, nil
}

// load drives addr with conns connections for d, or until maxRequests.
func load(addr string, reqs [][]byte, unique bool, firstID, want, conns int, d time.Duration, maxRequests int64) (result, error) {
	var (
		wg       sync.WaitGroup
		sent     atomic.Int64
		mu       sync.Mutex
		total    result
		firstErr error
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := worker(addr, reqs, unique, want, firstID+c, conns, deadline, &sent, maxRequests)
			mu.Lock()
			defer mu.Unlock()
			total.add(res)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	if firstErr != nil {
		return total, firstErr
	}
	if total.requests == 0 {
		return total, errors.New("no request completed")
	}
	return total, nil
}

// worker sends requests one at a time over one keep-alive connection. Any
// answer but want is an error: the harness must measure what it means to.
func worker(addr string, reqs [][]byte, unique bool, want, offset, stride int, deadline time.Time, sent *atomic.Int64, maxRequests int64) (result, error) {
	var res result
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline.Add(10 * time.Second)); err != nil {
		return res, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	var own []byte // this connection's copy of the request, when ids are unique
	at := -1
	if unique {
		own = slices.Clone(reqs[0])
		at = bytes.Index(own, []byte(idPrefix+strings.Repeat("0", idDigits)))
	}
	for i := offset; time.Now().Before(deadline) && sent.Add(1) <= maxRequests; i += stride {
		t0 := time.Now()
		req := reqs[i%len(reqs)]
		if at >= 0 {
			stamp(own[at+len(idPrefix):at+len(idPrefix)+idDigits], i)
			req = own
		}
		if _, err := conn.Write(req); err != nil {
			return res, err
		}
		status, err := readResponse(br)
		if err != nil {
			return res, err
		}
		if status != want {
			return res, fmt.Errorf("answer %d, want %d", status, want)
		}
		res.hist.record(time.Since(t0))
		res.requests++
	}
	return res, nil
}

// stamp writes n into digits, zero-padded: a new transaction id, without
// building a new request.
func stamp(digits []byte, n int) {
	for j := len(digits) - 1; j >= 0; j-- {
		digits[j] = byte('0' + n%10)
		n /= 10
	}
}

// readResponse reads one HTTP/1.1 response with a Content-Length and
// returns its status code.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil {
				return 0, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")), bytes.EqualFold(name, []byte("Connection")):
			return 0, fmt.Errorf("unsupported response header %q", line)
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	if _, err := br.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

// runServer serves one mode on 127.0.0.1 until killed or lifetime ends,
// writing its log to logFile (discarded when empty).
func runServer(mode string, lifetime time.Duration, profile, logFile string) error {
	logs := io.Discard
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND, 0) //nolint:gosec // the harness's own temp file
		if err != nil {
			return err
		}
		defer f.Close()
		logs = f
	}
	h, err := handler(mode, logs)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	time.AfterFunc(lifetime, func() { os.Exit(2) })
	if profile != "" {
		f, err := os.Create(profile + mode + ".prof") //nolint:gosec // the operator's -server-cpuprofile
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler returns the server of a mode; the library's modes log to logs.
func handler(mode string, logs io.Writer) (http.Handler, error) {
	switch mode {
	case "bare":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}), nil
	case "headers":
		// The bare handler answering with the library's headers and body.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			h := w.Header()
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "OK\n")
		}), nil
	case "parse":
		// The library's parse layer alone, answering as the bare handler.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := cofidis.ParseRequest(r); err != nil {
				w.WriteHeader(cofidis.HTTPStatus(err))
				return
			}
			w.WriteHeader(http.StatusOK)
		}), nil
	case "library", "idempotent", "flood", "flood-unlimited":
		urls, err := cofidis.NewURLs(base)
		if err != nil {
			return nil, err
		}
		opts := []cofidis.Option{
			cofidis.WithInsecureSkipVerify(), // no getStatus here: the cost of a Verifier is its remote call
			cofidis.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))),
		}
		if mode == "idempotent" {
			opts = append(opts, cofidis.WithIdempotency(cofidis.NewMemoryStore(cofidis.MemoryStoreOptions{})))
		}
		if mode == "flood-unlimited" {
			// Every rejection logged, as before the limit existed.
			opts = append(opts, cofidis.WithRejectionLogLimit(math.MaxInt, time.Hour))
		}
		return cofidis.NewRouter(urls,
			func(http.ResponseWriter, *http.Request, cofidis.Event) error { return nil },
			func(context.Context, cofidis.Event) error { return nil },
			opts...,
		)
	}
	return nil, fmt.Errorf("unknown mode %q: want bare, library, idempotent, headers, parse, flood or flood-unlimited", mode)
}

// result is what one or more load periods measured.
type result struct {
	requests int64
	elapsed  time.Duration
	hist     histogram
	// serverCPU and clientCPU are the CPU time (user and system) each
	// process used while measured; zero where /proc is unavailable.
	serverCPU, clientCPU time.Duration
	// logBytes is what the server logged while measured.
	logBytes int64
}

func (r *result) add(o result) {
	r.logBytes += o.logBytes
	r.requests += o.requests
	r.elapsed += o.elapsed
	r.serverCPU += o.serverCPU
	r.clientCPU += o.clientCPU
	r.hist.merge(&o.hist)
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cpuPerRequest is the server's CPU time per request, or 0 if unknown.
func (r result) cpuPerRequest() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(r.requests)
}

func (r result) String() string {
	cpu := "CPU n/a"
	if r.serverCPU > 0 {
		cpu = fmt.Sprintf("server %.2f CPUs, %5.1fµs CPU/req; client %.2f CPUs",
			r.serverCPU.Seconds()/r.elapsed.Seconds(), float64(r.cpuPerRequest())/1e3,
			r.clientCPU.Seconds()/r.elapsed.Seconds())
	}
	return fmt.Sprintf("%8.0f req/s  p50 %7s  p99 %7s  %s  log %.0f B/s  (%d requests in %s)",
		r.rps(), r.hist.quantile(0.50).Round(time.Microsecond), r.hist.quantile(0.99).Round(time.Microsecond),
		cpu, float64(r.logBytes)/r.elapsed.Seconds(), r.requests, r.elapsed.Round(time.Millisecond))
}

// merge sums rounds: requests over the total measured time.
func merge(rs []result) result {
	var m result
	for _, r := range rs {
		m.add(r)
	}
	return m
}

// histogram records latencies in buckets of 1/16 of a power of two (about
// 4% wide), so that memory stays fixed however long the run.
type histogram struct {
	counts [64 * subBuckets]int64
}

const subBuckets = 16

func bucketOf(ns int64) int {
	if ns < subBuckets {
		return int(max(ns, 0))
	}
	exp := bits.Len64(uint64(ns)) - 5 // keep the 5 leading bits: 1 + 4 for the sub-bucket
	return (exp+1)*subBuckets + int(ns>>exp) - subBuckets
}

// bucketUpper is the largest latency bucket b holds.
func bucketUpper(b int) time.Duration {
	if b < subBuckets {
		return time.Duration(b)
	}
	exp := b/subBuckets - 1
	mant := int64(b%subBuckets + subBuckets)
	return time.Duration((mant+1)<<exp - 1)
}

func (h *histogram) record(d time.Duration) { h.counts[bucketOf(int64(d))]++ }

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return bucketUpper(i)
		}
	}
	return bucketUpper(len(h.counts) - 1)
}
