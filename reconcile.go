package cofidis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Cofidis' integration guidelines give the merchant a duty: within 50
// minutes of sending the customer to the journey, a redirect should come
// back with its outcome; if not, call getStatus, which answers a decision or
// Aborted. Callbacks do get lost (a tab closed before the redirect,
// notifications not enabled yet, a merchant down for longer than Cofidis
// retries), and such a transaction would wait for ever. Reconciliation
// keeps that duty:
//
//	initialize OK ──Track──▶ tracked, due at sentAt + Deadline
//	    │  an outcome recorded in the store (a decision the callback
//	    │  processed, or a verified redirect) settles it: no getStatus
//	    ▼
//	due ──getStatus──▶ decision ─▶ delivered on ChannelReconciliation
//	                    running  ─▶ checked again later (backoff)
//	                    pending  ─▶ delivered, and checked again until decided
//	                    failure  ─▶ retried (backoff), never dropped

// DefaultReconcileDeadline is how long after the customer was sent to the
// journey a tracked transaction without an outcome is checked with
// getStatus: Cofidis' own 50-minute rule.
const DefaultReconcileDeadline = 50 * time.Minute

// The reconciliation's schedule after the first check.
const (
	// recheckBase and recheckCap bound the wait before checking again a
	// journey Cofidis reports as still running (Initialized, Undefined,
	// pending): 5 minutes, doubling up to an hour.
	recheckBase = 5 * time.Minute
	recheckCap  = time.Hour
	// retryBase and retryCap bound the wait after a failure (getStatus,
	// the store, the callback): a minute, doubling up to 15.
	retryBase = time.Minute
	retryCap  = 15 * time.Minute
	// runningBound is how long after the first check a journey reported
	// as Initialized or Undefined is checked again before that status is
	// delivered as Cofidis' answer (it should have answered a decision or
	// Aborted).
	runningBound = 24 * time.Hour
)

// settledRank is the Rank from which a status ends the journey: a decision
// (to_confirm, Refused, Aborted, Error, Abandonned) or anything after it.
var settledRank = StatusToConfirm.Rank()

// ReconcileOptions configures WithReconciliation. The zero value gives the
// defaults.
type ReconcileOptions struct {
	// Deadline is how long after the customer was sent to the journey a
	// tracked transaction with no outcome is checked with getStatus;
	// DefaultReconcileDeadline when zero.
	Deadline time.Duration
	// Concurrency bounds how many transactions one replica reconciles at
	// once (getStatus calls and callbacks); 4 when zero.
	Concurrency int
	// Interval is how often RunReconciler looks for due transactions; a
	// minute when zero.
	Interval time.Duration
	// MaxTracking is how long after the customer was sent to the journey a
	// transaction Cofidis still reports as pending stays tracked;
	// DefaultRetention (7 days) when zero. Keep it at or below the store's
	// retention: past it, the store forgets the pending it delivered, and a
	// re-check would deliver it again.
	MaxTracking time.Duration
}

// WithReconciliation makes the Router keep Cofidis' 50-minute rule for the
// transactions the merchant registers with Router.Track: one whose outcome
// has not been recorded by its deadline is checked with the Verifier
// (getStatus), and the answer is delivered to the notification callback as
// an Event of ChannelReconciliation, Verified, through the same pipeline as
// notifications (idempotency, ordering, hooks), so that one callback
// handles every way a decision can arrive. Run the checks with
// RunReconciler (a background loop) or ReconcileDue (one pass, for a cron
// job).
//
// What counts as an outcome: the store's furthest status for the
// transaction reaching a decision (to_confirm, Refused, Aborted, Error…),
// which only a decision the notification callback processed records, or,
// with WithRedirectClaims, a verified redirect. A redirect proves nothing,
// so an unverified one never settles a transaction; and by default
// redirects take no part in deduplication, so even a verified one leaves
// the decision to the notification callback, where money decisions are
// made: if every notification was lost, reconciliation brings it there.
// Nor does pending settle a transaction: its decision comes only as a
// notification on notificationUrlPending, and if that one is lost, only
// reconciliation brings it.
//
// What getStatus may answer:
//   - a decision or any later status: delivered; tracking ends once the
//     callback processed it (or it was a duplicate);
//   - Initialized, Undefined (the journey still running): checked again 5
//     minutes later, doubling up to an hour; a day after the first check,
//     delivered as Cofidis' answer, and tracking ends;
//   - pending: delivered (once, as deduplication makes every copy of a
//     decision), and checked again on the same schedule until a decision,
//     or until MaxTracking (the store's retention by default: a pending
//     manual check still undecided after a week is logged and left to the
//     merchant);
//   - an unknown status: delivered, never dropped; tracking ends;
//   - a failure (getStatus, the store, the callback): retried a minute
//     later, doubling up to 15, never dropped; logged, reported to the
//     delivery hooks (OutcomeRejected, OutcomeFailed…) and to observers.
//
// It needs WithVerifier (getStatus is the check) and WithIdempotency with a
// Store that also implements Tracker (NewMemoryStore, the redisstore and
// pgstore modules): the due list lives there, so that with several
// replicas each due transaction is checked by one replica at a time, and a
// replica that dies while reconciling hands over when its lease ends.
func WithReconciliation(opts ReconcileOptions) Option {
	return func(c *config) error {
		switch {
		case opts.Deadline < 0, opts.Concurrency < 0, opts.Interval < 0, opts.MaxTracking < 0:
			return optionError("WithReconciliation", "want no negative value")
		}
		if opts.Deadline == 0 {
			opts.Deadline = DefaultReconcileDeadline
		}
		if opts.Concurrency == 0 {
			opts.Concurrency = 4
		}
		if opts.Interval == 0 {
			opts.Interval = time.Minute
		}
		if opts.MaxTracking == 0 {
			opts.MaxTracking = DefaultRetention
		}
		c.reconcile = &opts
		return c.once("WithReconciliation")
	}
}

// Tracker keeps, in the store every replica shares, the transactions
// awaiting their journey's outcome, and hands each due one to one replica
// at a time. NewMemoryStore implements it, as do the redisstore and pgstore
// modules; storetest.Run checks it for any Store that does. Times are the
// caller's (the Router's clock, WithClock), so that tests can skip the 50
// minutes. Methods must be safe for concurrent use and atomic.
type Tracker interface {
	// Track records t as awaiting its outcome, due at t.Due. A
	// transaction already tracked is left as it is.
	Track(ctx context.Context, t Tracked) error
	// TakeDue returns up to limit tracked transactions due at now or
	// before, earliest first, each with a new Token. A transaction taken
	// is not returned again until now+lease, when another replica may
	// take it over, unless Reschedule or Untrack settle it first.
	TakeDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Tracked, error)
	// Reschedule makes a taken transaction due again at t.Due, recording
	// t.Attempts, if t.Token still holds it; otherwise it returns
	// ErrLeaseLost and changes nothing.
	Reschedule(ctx context.Context, t Tracked) error
	// Untrack stops tracking a taken transaction, if t.Token still holds
	// it; otherwise it returns ErrLeaseLost and changes nothing.
	Untrack(ctx context.Context, t Tracked) error
}

// Tracked is a transaction awaiting its journey's outcome, as a Tracker
// keeps it. Stores identify it by Key.ID().
type Tracked struct {
	// Key is the transaction's key, as initialize got it: getStatus needs
	// it whole.
	Key TransactionKey
	// Since is when the customer was sent to the journey.
	Since time.Time
	// Due is when the transaction is next to be checked.
	Due time.Time
	// Attempts counts the getStatus checks made so far.
	Attempts int
	// Token proves that a replica took the transaction (TakeDue); empty
	// otherwise.
	Token string
}

// ReconcileResult counts what one ReconcileDue pass did.
type ReconcileResult struct {
	// Settled counts transactions whose outcome had arrived meanwhile:
	// dropped without a getStatus call.
	Settled int
	// Checked counts getStatus calls.
	Checked int
	// Delivered counts decisions the callback processed.
	Delivered int
	// Rescheduled counts transactions left tracked, to be checked again:
	// still running, pending, after a failure, or handed back, due as
	// before, when ctx ended before their check did.
	Rescheduled int
	// Failed counts checks that failed (getStatus, the store, the
	// callback), to be retried.
	Failed int
}

func (r *ReconcileResult) add(o ReconcileResult) {
	r.Settled += o.Settled
	r.Checked += o.Checked
	r.Delivered += o.Delivered
	r.Rescheduled += o.Rescheduled
	r.Failed += o.Failed
}

// errNoReconciliation is what the reconciliation methods return on a
// Router built without WithReconciliation.
var errNoReconciliation = fmt.Errorf("%w: the Router was built without WithReconciliation", ErrInvalidOption)

// Track registers a transaction for reconciliation once initialize
// succeeded: key is the transaction's key and sentAt when the customer was
// sent to the journey. If no outcome is recorded by sentAt plus the
// deadline, the reconciliation asks getStatus. Tracking a transaction twice
// changes nothing; one whose outcome arrives first is settled without a
// getStatus call.
func (rt *Router) Track(ctx context.Context, key TransactionKey, sentAt time.Time) error {
	if rt.tracker == nil {
		return errNoReconciliation
	}
	if err := key.Validate(); err != nil {
		return err
	}
	return rt.tracker.Track(ctx, Tracked{Key: key, Since: sentAt, Due: sentAt.Add(rt.cfg.reconcile.Deadline)})
}

// RunReconciler reconciles the transactions due, every Interval
// (ReconcileOptions), until ctx ends; it then waits for the reconciliations
// under way and returns ctx's error. A transaction whose check the end of
// ctx interrupts before getStatus answers is handed back, due as before,
// for the next pass on any replica; a callback under way sees ctx end, and
// an error it returns is retried as any callback failure is. Failures are
// logged and retried, so it never stops on its own. Run it in one
// goroutine per replica: the store hands each due transaction to one
// replica at a time.
func (rt *Router) RunReconciler(ctx context.Context) error {
	if rt.tracker == nil {
		return errNoReconciliation
	}
	t := time.NewTicker(rt.cfg.reconcile.Interval)
	defer t.Stop()
	for {
		if _, err := rt.ReconcileDue(ctx); err != nil && ctx.Err() == nil {
			rt.cfg.logger.LogAttrs(ctx, slog.LevelError, "cofidis: reconciliation pass failed; trying again at the next interval",
				slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ReconcileDue reconciles, once, every tracked transaction due (by the
// Router's clock), at most Concurrency at a time, and returns what it did.
// It takes transactions from the store only as slots free up, each under a
// lease timed from the moment it is taken, so that none waits in a queue
// while its lease runs out and another replica takes it over.
// Transactions it reschedules are due later, so it returns when the due
// list is empty; its error is the store's, when the due list could not be
// read (what was taken before is reconciled all the same).
func (rt *Router) ReconcileDue(ctx context.Context) (ReconcileResult, error) {
	if rt.tracker == nil {
		return ReconcileResult{}, errNoReconciliation
	}
	// A taken transaction is handed over if its replica dies: after a
	// getStatus call, a callback within its lease, and a margin.
	lease := rt.cfg.verifyTimeout + rt.cfg.lease + 30*time.Second
	concurrency := rt.cfg.reconcile.Concurrency
	free := make(chan struct{}, concurrency) // one token per free slot
	for range concurrency {
		free <- struct{}{}
	}
	var (
		mu    sync.Mutex
		total ReconcileResult
		wg    sync.WaitGroup
	)
	for ctx.Err() == nil {
		n := takeFree(free)
		batch, err := rt.tracker.TakeDue(ctx, rt.cfg.now(), n, lease)
		for range n - len(batch) {
			free <- struct{}{}
		}
		if err != nil {
			wg.Wait()
			return total, err
		}
		for _, t := range batch {
			wg.Go(func() {
				defer func() { free <- struct{}{} }()
				r := rt.reconcile(ctx, t)
				mu.Lock()
				total.add(r)
				mu.Unlock()
			})
		}
		if len(batch) < n {
			break // nothing more is due now
		}
	}
	wg.Wait()
	return total, ctx.Err()
}

// takeFree waits for a free slot and takes it, with every other slot free
// right now: how many transactions to take from the store.
func takeFree(free chan struct{}) int {
	<-free
	n := 1
	for {
		select {
		case <-free:
			n++
		default:
			return n
		}
	}
}

// reconcileAction is the action Peek asks about to read a transaction's
// furthest status.
const reconcileAction = "reconcile"

// reconcile checks one taken transaction: settled if its outcome was
// recorded meanwhile, otherwise getStatus and, for a decision, delivery.
// Times are read from the Router's clock as it goes, so that a slow
// getStatus call delays what follows from it.
func (rt *Router) reconcile(ctx context.Context, t Tracked) ReconcileResult {
	id := t.Key.ID().String()
	if cl, err := rt.cfg.store.Peek(ctx, ActionKey{Transaction: id, Action: reconcileAction}); err == nil && cl.Furthest.Rank() >= settledRank {
		rt.untrack(ctx, t)
		return ReconcileResult{Settled: 1}
	}
	if ctx.Err() != nil {
		rt.handBack(ctx, t)
		return ReconcileResult{Rescheduled: 1}
	}

	ev := Event{Callback: Callback{TransactionKey: t.Key}, Channel: ChannelReconciliation, ReceivedAt: rt.cfg.now()}
	// The delivery is observed as a request; settling the tracking comes
	// after it ended, on the pass's own context.
	pass, taken := ctx, t
	ctx = rt.cfg.observers.startContext(ctx, ChannelReconciliation)
	t.Attempts++
	raw, err := rt.verifications.do(ctx, t.Key, rt.currentStatus)
	if err == nil && raw == "" {
		err = errors.New("the verifier answered an empty status")
	}
	now := rt.cfg.now() // after getStatus, which may take its time
	if err != nil && pass.Err() != nil {
		// The pass was cancelled under getStatus: not getStatus' failure.
		rt.observe(ctx, ev, OutcomeDeferred, err)
		rt.handBack(pass, taken)
		return ReconcileResult{Checked: 1, Rescheduled: 1}
	}
	if err != nil {
		rt.refused(ctx, nil, ChannelReconciliation, &ev, trustedError(ErrVerifierUnavailable, "", err), nil)
		rt.reschedule(pass, t, now.Add(backoff(retryBase, retryCap, t.Attempts)))
		return ReconcileResult{Checked: 1, Failed: 1}
	}
	st := ParseStatus(string(raw))
	ev.Status, ev.RawStatus = st, string(raw)
	ev.Verified, ev.VerifiedStatus = true, st
	firstCheck := t.Since.Add(rt.cfg.reconcile.Deadline)

	// Before pending in the flow (Initialized, its to_retry, Undefined).
	if rank := st.Rank(); rank > 0 && rank < StatusPending.Rank() && now.Before(firstCheck.Add(runningBound)) {
		// The journey is still running at Cofidis: not a decision yet.
		next := now.Add(backoff(recheckBase, recheckCap, t.Attempts))
		rt.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "cofidis: journey still running at Cofidis; checking again later",
			slog.Any("event", ev), slog.Time("next", next))
		rt.observe(ctx, ev, OutcomeDeferred, nil)
		rt.reschedule(pass, t, next)
		return ReconcileResult{Checked: 1, Rescheduled: 1}
	}

	if st == StatusPending && t.Attempts > 1 && now.After(t.Since.Add(rt.cfg.reconcile.MaxTracking)) {
		// Delivered when first seen; past MaxTracking the store may have
		// forgotten it, and delivering it again would be a second time.
		rt.observe(ctx, ev, OutcomeDeferred, nil)
		rt.giveUpPending(ctx, pass, t, ev)
		return ReconcileResult{Checked: 1}
	}

	d := rt.deliver(ctx, nil, ev)
	now = rt.cfg.now() // after the callback
	res := ReconcileResult{Checked: 1}
	switch d.outcome {
	case OutcomeProcessed, OutcomePermanent, OutcomeUnrecorded:
		res.Delivered = 1
		rt.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "cofidis: decision recovered by reconciliation",
			slog.Any("event", ev), slog.String("outcome", d.outcome.String()))
	case OutcomeDuplicate, OutcomeStale:
	default: // failed, in progress, store failed
		res.Failed = 1
		wait := backoff(retryBase, retryCap, t.Attempts)
		if d.outcome == OutcomeInProgress {
			wait = max(d.retryAfter, time.Second)
		}
		rt.reschedule(pass, t, now.Add(wait))
		return res
	}
	if st != StatusPending {
		rt.untrack(pass, t)
		return res
	}
	// Pending: the decision comes as one notification, or from here.
	if now.After(t.Since.Add(rt.cfg.reconcile.MaxTracking)) {
		rt.giveUpPending(ctx, pass, t, ev)
		return res
	}
	res.Rescheduled = 1
	rt.reschedule(pass, t, now.Add(backoff(recheckBase, recheckCap, t.Attempts)))
	return res
}

// giveUpPending ends the tracking of t, still pending at Cofidis past
// MaxTracking: logged for the merchant, on ctx, untracked on pass.
func (rt *Router) giveUpPending(ctx, pass context.Context, t Tracked, ev Event) {
	rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: transaction still pending at Cofidis; no longer tracked (ReconcileOptions.MaxTracking)",
		slog.Any("event", ev))
	rt.untrack(pass, t)
}

// handBack returns t, taken by a pass that was cancelled before its check
// ended (the reconciler stopping), to the due list as it was taken: due
// when it was and without an attempt more, so that the next pass, on this
// replica or another, checks it at once rather than after the take's
// lease.
func (rt *Router) handBack(pass context.Context, t Tracked) {
	rt.cfg.logger.LogAttrs(pass, slog.LevelInfo, "cofidis: reconciliation stopped; transaction handed back, due as before",
		slog.String("transaction", t.Key.ID().String()))
	rt.reschedule(pass, t, t.Due)
}

// reschedule puts t back in the due list at due. A failure only delays the
// check until the lease of the take ends, so it is logged.
func (rt *Router) reschedule(ctx context.Context, t Tracked, due time.Time) {
	t.Due = due
	if err := rt.tracker.Reschedule(ctx, t); err != nil {
		rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: tracked transaction not rescheduled; checked again when its lease ends",
			slog.String("transaction", t.Key.ID().String()), slog.String("error", err.Error()))
	}
}

// untrack ends the tracking of t. A failure means another check later,
// which finds the outcome recorded, so it is logged.
func (rt *Router) untrack(ctx context.Context, t Tracked) {
	if err := rt.tracker.Untrack(ctx, t); err != nil {
		rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: tracked transaction not untracked; checked again when its lease ends",
			slog.String("transaction", t.Key.ID().String()), slog.String("error", err.Error()))
	}
}

// backoff is base doubled attempts-1 times, at most maxWait.
func backoff(base, maxWait time.Duration, attempts int) time.Duration {
	d := base
	for i := 1; i < attempts && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}
