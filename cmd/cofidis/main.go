// Command cofidis is a developer tool for the callbacks of the Cofidis
// Partner API:
//
//	cofidis urls -base URL [-query k=v]...       print and check the technicalData URLs
//	cofidis listen [-addr host:port] [-base URL] run a receiver, print each callback as JSON
//	cofidis listen -record DIR [-dedupe]         the same, keeping each request in DIR
//	cofidis send -url URL -status S [...]        post one callback as Cofidis would
//	cofidis send -from FILE -url URL             replay a request recorded by listen
//	cofidis simulate -base URL -journey NAME     play a whole journey against a receiver
//	cofidis version                              print the version and VCS revision
//
// Run "cofidis <command> -h" for a command's flags. URLs use https, or plain
// http for a loopback host; plain http to any other host needs -allow-http.
// The exit status is 0 on success, 1 when the command failed (invalid URLs,
// a callback refused, a network error) and 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const mainUsage = `cofidis is a developer tool for the callbacks of the Cofidis Partner API.

Usage:
  cofidis <command> [flags]

Commands:
  urls      print and validate the technicalData URLs for initialize
  listen    run a callback receiver and print each callback as a JSON line;
            -record keeps every request received, -dedupe shows duplicates
  send      post one callback exactly as Cofidis would, or replay one that
            listen recorded (-from)
  simulate  play a whole Cofidis journey against a running receiver
  version   print the version and the VCS revision this program was built from

Run 'cofidis <command> -h' for the flags of a command.
URLs use https, or plain http for a loopback host (localhost, 127.0.0.0/8,
::1); plain http to any other host needs -allow-http.
Exit status: 0 success, 1 failure, 2 usage error.
`

// env is what a command may touch besides its flags.
type env struct {
	stdout, stderr io.Writer
}

// command is one subcommand: setup declares its flags on fs and returns the
// function that runs it once they are parsed.
type command struct {
	name  string
	usage string // synopsis and description, printed before the flags
	setup func(fs *flag.FlagSet) func(ctx context.Context, e env) error
}

func commands() []command {
	return []command{urlsCommand(), listenCommand(), sendCommand(), simulateCommand(), versionCommand()}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run executes the command line args (without the program name) and returns
// the exit status. It is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	case "help":
		if len(args) == 1 {
			fmt.Fprint(stdout, mainUsage)
			return exitOK
		}
		c, ok := lookup(args[1])
		if !ok {
			fmt.Fprintf(stderr, "cofidis help: unknown command %q (run 'cofidis -h')\n", args[1])
			return exitUsage
		}
		fs, _ := newFlagSet(c)
		printUsage(stdout, c, fs)
		return exitOK
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "cofidis: unknown command %q (run 'cofidis -h')\n", args[0])
		return exitUsage
	}
	fs, exec := newFlagSet(c)
	err := fs.Parse(args[1:])
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		err = &usageError{msg: err.Error()} // unknown flag, bad value
	}
	if err == nil && fs.NArg() > 0 {
		err = usagef("unexpected argument %q", fs.Arg(0))
	}
	if err == nil {
		err = exec(ctx, env{stdout: stdout, stderr: stderr})
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, c, fs)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cofidis %s: %s (run 'cofidis %s -h' for usage)\n", c.name, oneLine(err), c.name)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "cofidis %s: %s\n", c.name, oneLine(err))
		return exitFailure
	}
}

// newFlagSet declares c's flags; errors are reported by run, in one line.
func newFlagSet(c command) (*flag.FlagSet, func(context.Context, env) error) {
	fs := flag.NewFlagSet("cofidis "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, c.setup(fs)
}

// printUsage writes c's help: its usage text, then its flags, if any.
func printUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprint(w, c.usage)
	flags := 0
	fs.VisitAll(func(*flag.Flag) { flags++ })
	if flags == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// oneLine keeps an error on one line (errors.Join and some wrapped errors
// span several) without the library's "cofidis: " prefix at the start of
// each, since run prints the command's own: "cofidis urls: invalid URL: …".
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimPrefix(strings.TrimSpace(l), "cofidis: "); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(strings.Fields(strings.Join(parts, "; ")), " ")
}
