package cofidis

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// The default rejection log limit: per class of failure (ErrorClass), at
// most DefaultRejectionLogLines lines every DefaultRejectionLogInterval.
// A flood of one malformed request then writes a line every two seconds
// instead of one per request, and every class an attacker can reach
// together stays within a few lines per second.
const (
	DefaultRejectionLogLines    = 5
	DefaultRejectionLogInterval = 10 * time.Second
)

// logLimit is the rejection log limit: lines per interval, per class.
type logLimit struct {
	lines int
	per   time.Duration
}

// WithRejectionLogLimit sets how many log lines each class of rejected
// request may write per interval (default DefaultRejectionLogLines every
// DefaultRejectionLogInterval). Anyone on the internet can post to the
// callback URLs, and a line per rejection lets them fill the merchant's
// disks; beyond the limit, lines of that class are counted instead of
// written, and the count is logged ("cofidis: log lines suppressed") with
// the next line of the class after the interval.
//
// The limit applies to what a request can cause: rejections of the request
// itself, duplicates, stale and unverified events. It never applies to
// accepted events or to failures of the merchant's own code (callbacks, the
// Verifier, the Store), and never to the OnError and delivery hooks, which
// see every request.
func WithRejectionLogLimit(lines int, per time.Duration) Option {
	return func(c *config) error {
		if lines < 1 || per <= 0 {
			return optionError("WithRejectionLogLimit", "want at least one line per positive interval")
		}
		c.logLimit = logLimit{lines: lines, per: per}
		return c.once("WithRejectionLogLimit")
	}
}

// The classes a logLimiter counts: one per sentinel (sentinelIndex), then
// the errors that wrap none, then the acknowledgements a replayed request
// can repeat at will.
const (
	logClassOther = len(sentinels) + iota
	logClassDuplicate
	logClassInProgress
	logClassStale
	logClassUnverified
	logClassCount
)

// logClassNames names the classes that are not sentinels.
var logClassNames = [...]string{classOther, "duplicate", "in_progress", "stale", "unverified_redirect"}

func logClassName(class int) string {
	if class < len(sentinels) {
		return sentinels[class].class
	}
	return logClassNames[class-len(sentinels)]
}

// logLimiter rate-limits log lines per class, in fixed windows.
type logLimiter struct {
	logger  *slog.Logger
	limit   logLimit
	now     func() time.Time
	classes [logClassCount]logWindow
}

// logWindow is one class's current window.
type logWindow struct {
	mu         sync.Mutex
	end        time.Time
	logged     int
	suppressed int
}

// log writes a line of class unless the class is over its limit; the first
// line after a window in which lines were suppressed is preceded by their
// count.
func (l *logLimiter) log(ctx context.Context, class int, level slog.Level, msg string, attrs ...slog.Attr) {
	ok, suppressed := l.allow(class)
	if suppressed > 0 {
		l.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: log lines suppressed",
			slog.String("class", logClassName(class)),
			slog.Int("suppressed", suppressed),
			slog.Duration("interval", l.limit.per))
	}
	if ok {
		l.logger.LogAttrs(ctx, level, msg, attrs...)
	}
}

// logCaused writes a line that err caused: rate-limited in class, unless
// err is a failure of the merchant's own code (ownCodeFailed), which a
// request cannot cause at will and whose lines are never suppressed.
func (l *logLimiter) logCaused(ctx context.Context, class int, err error, level slog.Level, msg string, attrs ...slog.Attr) {
	if ownCodeFailed(err) {
		l.logger.LogAttrs(ctx, level, msg, attrs...)
		return
	}
	l.log(ctx, class, level, msg, attrs...)
}

// allow reports whether a line of class may be written now, and how many
// lines of the class the window that just ended suppressed.
func (l *logLimiter) allow(class int) (ok bool, suppressed int) {
	now := l.now()
	w := &l.classes[class]
	w.mu.Lock()
	defer w.mu.Unlock()
	if !now.Before(w.end) {
		suppressed = w.suppressed
		w.end, w.logged, w.suppressed = now.Add(l.limit.per), 0, 0
	}
	if w.logged < l.limit.lines {
		w.logged++
		return true, suppressed
	}
	w.suppressed++
	return false, suppressed
}
