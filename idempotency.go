package cofidis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Cofidis sends the same decision several times by design (a to_confirm can
// reach the success redirect, the success notification and the pending
// notification), and merchants run several replicas. The idempotency layer
// turns those deliveries into one business action per decision, across
// processes, through a shared Store:
//
//	Claim    → Claimed     the callback runs; nil → Complete, error/panic → Release
//	         → InProgress  another delivery holds a live lease: 503, retried later
//	         → Done        already completed: 200 without calling the callback
//
// A claim carries a lease: a replica that crashes while holding one blocks
// the action only until the lease ends, then the next delivery processes it.
// Tokens keep a replica whose lease ran out from completing or releasing the
// claim another replica took since.

// DefaultLease is how long a claim is held while the callback runs, unless
// WithLease sets another. A delivery that finds a live lease is answered 503;
// one arriving after a crashed holder's lease ended processes the event.
const DefaultLease = 2 * time.Minute

// DefaultRetention is how long stores keep what they recorded about a
// transaction after its last write: the completed actions (duplicates
// arriving later run again) and the furthest status (older events are no
// longer recognised as stale).
const DefaultRetention = 7 * 24 * time.Hour

// ErrLeaseLost is returned by Store.Complete and Store.Release when the
// token no longer holds the claim: its lease ended and another delivery
// claimed (or completed) the action since.
var ErrLeaseLost = errors.New("cofidis: claim no longer held")

// ActionKey identifies one business action: a transaction reaching a status
// (and, for pending, a sub-state). Every delivery of the same decision has
// the same key, whichever URL or channel it came through; Event.ActionKey
// builds it.
type ActionKey struct {
	// Transaction is the transaction's identity, TransactionID.String().
	Transaction string
	// Action names the decision within the transaction: the canonical
	// status (lower-cased when unknown), path-escaped, followed for pending
	// and unknown statuses by "/" and the path-escaped sub-state (also
	// lower-cased when unknown), as in "to_confirm" or "pending/signed".
	Action string
	// Status is the event's canonical status (lower-cased when unknown).
	// Complete records it as the transaction's furthest status when Rank
	// exceeds the one recorded.
	Status Status
	// Rank is Status.Rank(), or 0 when completing the action must not move
	// the transaction's furthest status (unknown statuses, events the
	// merchant rejected as permanent failures, unverified redirects).
	Rank int
}

// String returns the key for log lines: the transaction and the action
// separated by a space (neither contains one: both are path-escaped).
func (k ActionKey) String() string { return k.Transaction + " " + k.Action }

// ActionKey returns the key that deduplicates this event: its transaction
// identity (merchantId, merchantTransactionId, merchantTransactionDate), its
// canonical status and, for pending and unknown statuses only, its sub-state.
// The channel is not part of it, so a redirect and a notification of the
// same decision share the key. The sub-state of a decision is left out
// because the documentation attaches sub-states to pending only: a
// to_confirm that follows a pending check may carry its last sub-state on
// one URL and none on another, and is still the same decision.
//
// An unknown status or sub-state is keyed by its case-folded form (the raw
// value stays in the event, for display): Cofidis' own pages spell known
// statuses with varying case, so "Partially_validated" and
// "PARTIALLY_VALIDATED" are one decision.
func (e Event) ActionKey() ActionKey {
	st := e.Status
	if !st.Known() {
		st = Status(strings.ToLower(string(st)))
	}
	action := url.PathEscape(string(st))
	if e.SubState != "" && (st == StatusPending || !st.Known()) {
		sub := string(e.SubState)
		if !e.SubState.Known() {
			sub = strings.ToLower(sub)
		}
		action += "/" + url.PathEscape(sub)
	}
	return ActionKey{Transaction: e.TransactionKey.ID().String(), Action: action, Status: st, Rank: st.Rank()}
}

// ClaimState is what a Store found for an action key.
type ClaimState uint8

const (
	// Unclaimed means nobody holds a live lease on the action and it was not
	// completed. Only Peek reports it; Claim takes the claim instead.
	Unclaimed ClaimState = iota
	// Claimed means the caller now holds the claim with ClaimResult.Token and
	// must Complete or Release it.
	Claimed
	// InProgress means another delivery holds a live lease on the action.
	InProgress
	// Done means the action was completed before.
	Done
)

// String returns the state's name.
func (s ClaimState) String() string {
	switch s {
	case Unclaimed:
		return "unclaimed"
	case Claimed:
		return "claimed"
	case InProgress:
		return "in_progress"
	case Done:
		return "done"
	}
	return "ClaimState(" + strconv.Itoa(int(s)) + ")"
}

// ClaimResult is a Store's answer to Claim or Peek.
type ClaimResult struct {
	// State says whether the caller got the claim, someone else holds it,
	// or the action is done.
	State ClaimState
	// Token proves the claim when State is Claimed; pass it to Complete or
	// Release. Empty otherwise.
	Token string
	// RetryAfter is, when State is InProgress, how long the holder's lease
	// still runs.
	RetryAfter time.Duration
	// Furthest is the furthest status the transaction has reached, as
	// recorded by completed actions (see ActionKey.Rank); empty when none.
	Furthest Status
}

// Store records, across every replica of the receiver, which business
// actions were claimed and completed and how far each transaction went.
// NewMemoryStore serves a single process; the redisstore module serves
// several. Implementations must be safe for concurrent use, and each method
// must be atomic: the contract suite in package storetest checks them.
//
// Keys are compared on Transaction and Action; a Store keeps one furthest
// status per Transaction. Everything a Store records may be forgotten
// DefaultRetention (or the store's own retention) after its last write.
type Store interface {
	// Claim takes the action for lease unless it is done (Done) or another
	// token's lease is still live (InProgress, with RetryAfter). An expired
	// lease is taken over with a new token. Every result reports the
	// transaction's Furthest status.
	Claim(ctx context.Context, key ActionKey, lease time.Duration) (ClaimResult, error)
	// Complete marks the action done for good and, when key.Rank exceeds
	// the recorded one, makes key.Status the transaction's furthest status.
	// It succeeds when token holds the claim (even after its lease ended, if
	// nobody claimed since), when the action is already done with the same
	// token, and when nothing is recorded for the action; it returns
	// ErrLeaseLost when another token claimed or completed it since.
	Complete(ctx context.Context, key ActionKey, token string) error
	// Release gives the claim up so that the next delivery processes the
	// action. Releasing an action with no record is a no-op; releasing one
	// that token does not hold (another claim, or done) returns
	// ErrLeaseLost and changes nothing.
	Release(ctx context.Context, key ActionKey, token string) error
	// Peek reports the action's state (Unclaimed, InProgress or Done) and
	// the transaction's Furthest status without claiming anything.
	Peek(ctx context.Context, key ActionKey) (ClaimResult, error)
}

// Outcome is what became of a delivery, as reported to the hook set with
// WithDeliveryHook: a label for metrics.
type Outcome uint8

const (
	// OutcomeProcessed means the callback returned nil (200).
	OutcomeProcessed Outcome = iota + 1
	// OutcomePermanent means the callback returned a Permanent error; the event
	// is acknowledged (200), recorded as done, and logged.
	OutcomePermanent
	// OutcomeFailed means the callback returned an error or panicked; the claim
	// was released and the notification answered 500 for a retry (a
	// redirect gets the error page).
	OutcomeFailed
	// OutcomeDuplicate means the action was completed by an earlier delivery; the
	// notification is acknowledged (200) without calling the callback.
	OutcomeDuplicate
	// OutcomeInProgress means another delivery holds a live claim on the action;
	// the notification is answered 503 with Retry-After so that it comes
	// back, and is processed then if the holder failed.
	OutcomeInProgress
	// OutcomeStale means the transaction already reached a further status; the
	// notification is acknowledged (200) without dispatch (see
	// WithStaleEvents).
	OutcomeStale
	// OutcomeStoreFailed means the store could not be asked; the event was not
	// dispatched and the notification answered 503 (a redirect in claim
	// mode gets the error page with 503).
	OutcomeStoreFailed
	// OutcomeUnrecorded means the callback succeeded but the store could not
	// record it (store down, or the callback outlived its lease and another
	// delivery claimed the action). The event is acknowledged (200), since
	// the action happened, and an error is logged: a later delivery of the
	// same decision may run the action again.
	OutcomeUnrecorded
	// OutcomeRejected means the event was refused before dispatch: the
	// Verifier did not confirm it (503) or could not be asked (503, or a
	// reconciliation to retry). An Observer also sees it for requests
	// refused before they could be decoded (400, 403, 404, 405, 413, 415),
	// with no event.
	OutcomeRejected
	// OutcomeDeferred means a reconciliation found the journey still
	// running at Cofidis (Initialized, Undefined): nothing is dispatched,
	// and the transaction is checked again later; or still pending past
	// ReconcileOptions.MaxTracking, when it is no longer tracked; or that
	// the reconciliation's context ended before getStatus answered, when
	// the transaction is handed back, due as before.
	OutcomeDeferred
)

// String returns the outcome as a metric label, such as "duplicate".
func (o Outcome) String() string {
	switch o {
	case OutcomeProcessed:
		return "processed"
	case OutcomePermanent:
		return "permanent"
	case OutcomeFailed:
		return "failed"
	case OutcomeDuplicate:
		return "duplicate"
	case OutcomeInProgress:
		return "in_progress"
	case OutcomeStale:
		return "stale"
	case OutcomeStoreFailed:
		return "store_failed"
	case OutcomeUnrecorded:
		return "unrecorded"
	case OutcomeRejected:
		return "rejected"
	case OutcomeDeferred:
		return "deferred"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// DeliveryHookFunc observes every decoded delivery with its outcome, for
// metrics: count duplicates, stale events, store failures, rejections by
// the Verifier. It runs before the answer is written and must not write to
// the response. For traces and call durations, see Observer.
type DeliveryHookFunc func(ctx context.Context, ev Event, outcome Outcome)

// WithIdempotency makes the Router deduplicate deliveries through s, so
// that each decision (Event.ActionKey) reaches the notification callback
// once, and recognise stale events. Share one Store between all the
// receivers that serve the same URLs (every replica): NewMemoryStore for a
// single process, the redisstore module for several.
//
// Notifications: a delivery claims the action before anything else (the
// Verifier included); nil or Permanent completes it, an error or panic
// releases it (500, the next delivery processes it). Duplicates of a
// completed action are answered 200 without calling the Verifier or the
// callback; a duplicate arriving while another delivery holds the claim is
// answered 503 with Retry-After; if the store cannot be asked, 503 and no
// dispatch.
//
// Redirects never consume the action by default: they answer a browser and
// prove nothing. Their callback always runs, with Event.Duplicate set when a
// notification has completed (or is processing) the decision. See
// WithRedirectClaims to let redirects claim it too.
func WithIdempotency(s Store) Option {
	return func(c *config) error {
		if s == nil {
			return optionError("WithIdempotency", "want a non-nil Store")
		}
		c.store = s
		return c.once("WithIdempotency")
	}
}

// WithLease sets how long a delivery holds its claim while the callback runs
// (default DefaultLease). The lease is timed from before the Claim request
// is sent, so it never ends later than the store's; the notification
// callback's context ends a margin before it (the Claim's own round trip,
// at least a twentieth of the lease), which leaves time to record the
// completion, so a callback that honours its context cannot run on while
// another delivery takes the action over. A failed completion is retried
// until the lease ends.
//
// Size it as the longest callback, plus the longest store stall to ride
// out (with Redis, a failover: the replica's promotion and the client's
// recovery), plus a Complete round trip: a delivery whose holder crashed
// waits that long. It needs WithIdempotency.
func WithLease(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return optionError("WithLease", "want a positive duration")
		}
		c.lease = d
		return c.once("WithLease")
	}
}

// WithStaleEvents decides what becomes of a notification whose transaction
// the store records as further along (Event.Stale: pending after to_confirm,
// to_confirm after validated). By default (deliver false) it is acknowledged
// with 200 without dispatch and reported to the delivery hooks as
// OutcomeStale; with deliver true it reaches the callback flagged Stale,
// once, like any other action. Redirects are always delivered, flagged. It
// needs WithIdempotency.
func WithStaleEvents(deliver bool) Option {
	return func(c *config) error {
		c.deliverStale = deliver
		return c.once("WithStaleEvents")
	}
}

// WithRedirectClaims makes redirects take part in deduplication (claim
// true): a redirect claims the action like a notification, the callback's
// nil completes it, and a notification of the same decision arriving later
// is a duplicate. Use it only when notifications are not enabled for the
// merchant, and with WithVerifier: a redirect comes from the browser. A
// redirect whose action is done or held elsewhere is still delivered (the
// browser needs a page), with Event.Duplicate set; if the store cannot be
// asked, the RedirectErrorFunc answers with a 503 error. It needs
// WithIdempotency.
func WithRedirectClaims(claim bool) Option {
	return func(c *config) error {
		c.redirectClaims = claim
		return c.once("WithRedirectClaims")
	}
}

// WithDeliveryHook adds a function called once for every decoded delivery
// with its Outcome, with or without WithIdempotency. Rejected requests go
// to the WithOnError hooks instead. Hooks given by several WithDeliveryHook
// options all run, in the order given.
func WithDeliveryHook(fn DeliveryHookFunc) Option {
	return func(c *config) error {
		if fn == nil {
			return optionError("WithDeliveryHook", "want a non-nil function")
		}
		c.hooks = append(c.hooks, fn)
		return nil
	}
}

// stale reports whether an event of status s arrives after the transaction
// reached furthest. Only the journey (ranks 1 to 4, up to the outcome) is
// strictly ordered: after it the merchant's own calls can legitimately go
// back (see Status.Rank), and unknown statuses cannot be ranked.
func stale(s, furthest Status) bool {
	r := s.Rank()
	return r > 0 && r <= StatusToConfirm.Rank() && furthest.Rank() > r
}

// conflicting reports whether s and furthest are two different outcomes of
// the journey (to_confirm and Refused, say): only getStatus can tell which
// one stands.
func conflicting(s, furthest Status) bool {
	r := StatusToConfirm.Rank()
	return s != furthest && s.Rank() == r && furthest.Rank() == r
}

// annotate copies what the store knows about the transaction into ev.
func annotate(ev *Event, cl ClaimResult) {
	ev.FurthestStatus = cl.Furthest
	ev.Stale = stale(ev.Status, cl.Furthest)
	ev.Conflict = conflicting(ev.Status, cl.Furthest)
}

// observe reports the outcome of a decoded notification or reconciliation
// to the delivery hooks and the observers; err is the callback's failure,
// if any.
func (rt *Router) observe(ctx context.Context, ev Event, o Outcome, err error) {
	status := 0 // a reconciliation answers nobody
	if ev.Channel == ChannelNotification {
		status = notificationStatus(o, err)
	}
	rt.observeAnswered(ctx, ev, o, err, status)
}

// observeAnswered is observe with the status the request was answered
// with.
func (rt *Router) observeAnswered(ctx context.Context, ev Event, o Outcome, err error, status int) {
	for _, fn := range rt.cfg.hooks {
		fn(ctx, ev, o)
	}
	rt.cfg.observers.endRequest(ctx, ev.Channel, &ev, o, err, status)
}

// settleTimeout bounds one call to the Store. Complete and Release run on a
// context detached from the request: a client that hung up must not leave
// the claim held until its lease ends.
const settleTimeout = 5 * time.Second

// Claim is the claim a delivery holds on an action while its callback runs,
// which the callback reads with ClaimFromContext. A store that keeps its
// records in the merchant's own database (the pgstore module) completes the
// claim in the same transaction as the callback's own writes, so that the
// business action and its record commit, or roll back, together; the
// Router then finds the action completed with its own token, which
// Store.Complete accepts as success.
type Claim struct {
	// Key is the action claimed. Its Rank is 0 when completing the action
	// must not move the transaction's furthest status (an unverified
	// redirect), as the Router's own completion would do.
	Key ActionKey
	// Token proves the claim: Store.Complete takes it.
	Token string
	// Deadline is when the callback's context ends: the end of the lease,
	// timed from before the claim was requested, minus a margin for
	// recording the completion (see WithLease).
	Deadline time.Time
}

// claimContextKey is the context key of the Claim.
type claimContextKey struct{}

// claimContext is the notification callback's context before its deadline:
// its parent with the hold's Claim as the value of claimContextKey, built
// only when asked for. It lives in the claimHold, so that making it costs
// no allocation. When detached, it drops the parent's cancellation, as
// context.WithoutCancel does; it is then only ever used as the parent of
// the callback's deadline context, whose own cancellation is what Value
// finds for context.Cause, so the parent's stays hidden.
type claimContext struct {
	context.Context
	hold     *claimHold
	detached bool
}

// Deadline implements context.Context.
func (c *claimContext) Deadline() (time.Time, bool) {
	if c.detached {
		return time.Time{}, false
	}
	return c.Context.Deadline()
}

// Done implements context.Context.
func (c *claimContext) Done() <-chan struct{} {
	if c.detached {
		return nil
	}
	return c.Context.Done()
}

// Err implements context.Context.
func (c *claimContext) Err() error {
	if c.detached {
		return nil
	}
	return c.Context.Err()
}

// Value implements context.Context.
func (c *claimContext) Value(key any) any {
	if _, ok := key.(claimContextKey); ok {
		return c.hold.claim()
	}
	return c.Context.Value(key)
}

// ClaimFromContext returns the claim the delivery holds, from the context
// the notification callback gets (and the redirect callback's request
// context with WithRedirectClaims); false without WithIdempotency.
func ClaimFromContext(ctx context.Context) (Claim, bool) {
	c, ok := ctx.Value(claimContextKey{}).(Claim)
	return c, ok
}

// claimHold is a claim taken for one delivery, until it is settled.
//
// Its arithmetic follows the store's: the store starts the lease when it
// executes the Claim, which is after start, the moment the request was
// sent, so start+lease is never later than the store's end of the lease.
// The callback must be done a margin before that, to leave time for
// recording the completion.
type claimHold struct {
	rt       *Router
	key      ActionKey
	token    string
	leaseEnd time.Time // start + lease: the store's lease ends no later
	deadline time.Time // the callback's: leaseEnd minus the completion margin
	overran  bool      // the callback returned after its deadline
	settled  bool
	cbCtx    claimContext // the callback's context, before its deadline
}

// claim asks the store for key's claim and, when granted, returns the hold.
// A claim granted too late to leave the callback any time is released and
// reported as a store failure: the store stalled for most of the lease.
func (rt *Router) claim(ctx context.Context, key ActionKey) (ClaimResult, *claimHold, error) {
	start := time.Now()
	cl, err := rt.cfg.store.Claim(ctx, key, rt.cfg.lease)
	if err == nil && (cl.State < Claimed || cl.State > Done || (cl.State == Claimed && cl.Token == "")) {
		err = errors.New("the store answered an invalid claim state " + cl.State.String())
	}
	if err != nil || cl.State != Claimed {
		return cl, nil, err
	}
	granted := time.Now()
	rtt := granted.Sub(start)
	lease := rt.cfg.lease
	h := &claimHold{rt: rt, key: key, token: cl.Token, leaseEnd: start.Add(lease)}
	h.deadline = h.leaseEnd.Add(-completionMargin(lease, rtt))
	if !granted.Before(h.deadline) {
		h.release(ctx)
		return cl, nil, fmt.Errorf("the claim took %s, which leaves the callback no time within the %s lease (raise WithLease)",
			rtt.Round(time.Millisecond), lease)
	}
	return cl, h, nil
}

// completionMargin is the time kept at the end of a lease for recording the
// completion: the claim's own round trip, which the store just took, and at
// least a twentieth of the lease; at most half of it.
func completionMargin(lease, claimRTT time.Duration) time.Duration {
	return min(max(claimRTT, lease/20), lease/2)
}

// claim is what the callback reads with ClaimFromContext.
func (h *claimHold) claim() Claim {
	return Claim{Key: h.key, Token: h.token, Deadline: h.deadline}
}

// callbackReturned records whether the callback ran past its deadline.
func (h *claimHold) callbackReturned() {
	if h != nil {
		h.overran = time.Now().After(h.deadline)
	}
}

// complete records the action as done; advance false leaves the
// transaction's furthest status as it is. Complete is idempotent for the
// same token, so a failed attempt is tried again, with backoff, until the
// lease ends: the claim is still held until then, and a later delivery
// would repeat an action whose completion was lost.
func (h *claimHold) complete(ctx context.Context, advance bool) error {
	h.settled = true
	key := h.key
	if !advance {
		key.Rank = 0
	}
	ctx = context.WithoutCancel(ctx)
	// The first attempt is made whatever the time: after the lease, the
	// store still accepts it if nobody claimed the action since.
	err := h.rt.cfg.store.Complete(ctx, key, h.token)
	if err == nil || errors.Is(err, ErrLeaseLost) {
		return err
	}
	retryCtx, cancel := context.WithDeadline(ctx, h.leaseEnd)
	defer cancel()
	for backoff := 10 * time.Millisecond; err != nil && !errors.Is(err, ErrLeaseLost); backoff = min(2*backoff, time.Second) {
		if time.Until(h.leaseEnd) < backoff {
			return err
		}
		time.Sleep(backoff)
		err = h.rt.cfg.store.Complete(retryCtx, key, h.token)
	}
	return err
}

// record completes the claim, if any, and logs a completion the store did
// not record; it reports whether the action is recorded.
func (h *claimHold) record(ctx context.Context, ev Event, advance bool) bool {
	if h == nil {
		return true
	}
	if err := h.complete(ctx, advance); err != nil {
		h.unrecorded(ctx, ev, err)
		return false
	}
	return true
}

// unrecorded logs a successful callback whose completion the store did not
// record, naming the cause: the callback ran past its lease, or the store
// could not be reached before the lease ended.
func (h *claimHold) unrecorded(ctx context.Context, ev Event, err error) {
	var msg string
	switch {
	case h.overran:
		msg = "cofidis: callback outlived its lease, and its completion was not recorded; a later delivery may repeat the action (callback too slow: raise WithLease)"
	case errors.Is(err, ErrLeaseLost):
		msg = "cofidis: the store recorded the completion too late, after another delivery claimed the action; it may have run twice (store stalled)"
	default:
		msg = "cofidis: callback succeeded but the store did not record it before the lease ended; a later delivery may repeat the action (store unavailable)"
	}
	h.rt.cfg.logger.LogAttrs(ctx, slog.LevelError, msg, slog.Any("event", ev), slog.String("error", err.Error()))
}

// recordStale completes the claim of a stale event, if any, without moving
// the furthest status: its copies are then duplicates, answered without a
// Verifier call. A failure is only logged, since the event is acknowledged
// all the same.
func (h *claimHold) recordStale(ctx context.Context, ev Event) {
	if h == nil {
		return
	}
	if err := h.complete(ctx, false); err != nil {
		h.rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: stale notification not recorded", slog.Any("event", ev), slog.String("error", err.Error()))
	}
}

// release gives the claim up, if any; a failure only delays the next
// delivery until the lease ends, so it is logged.
func (h *claimHold) release(ctx context.Context) {
	if h == nil {
		return
	}
	h.settled = true
	err := h.rt.cfg.store.Release(context.WithoutCancel(ctx), h.key, h.token)
	switch {
	case err == nil:
	case errors.Is(err, ErrLeaseLost):
		// Not an outage: the callback completed the claim in its own
		// transaction before failing, or its lease ended and another
		// delivery took the action over. The next delivery finds out.
		h.rt.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "cofidis: claim not released: already completed (by the callback's own transaction) or taken over",
			slog.String("action", h.key.String()))
	default:
		h.rt.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "cofidis: claim not released; the next delivery waits for the lease to end",
			slog.String("action", h.key.String()), slog.String("error", err.Error()))
	}
}

// abandon releases a claim left unsettled by a callback that aborted the
// response (panic(http.ErrAbortHandler) is not recovered).
func (h *claimHold) abandon() {
	if h != nil && !h.settled {
		h.release(context.Background())
	}
}

// storeFailed wraps a store error into the *Error that rejects the request.
func storeFailed(err error) error {
	return trustedError(ErrStoreUnavailable, "", err)
}

// retryAfter formats a lease's remaining time as a Retry-After value: whole
// seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// recoveringStore turns a panic in a Store method into an error, logged with
// its stack, and shows each call to the observers. A Store is code around a
// remote call, like a Verifier: its crash must get the answer a store
// failure gets (503 before dispatch), not a dropped connection.
// http.ErrAbortHandler is re-panicked.
type recoveringStore struct {
	Store
	logger    *slog.Logger
	observers observers
	// inMemory is set for a store that answers from memory under a mutex
	// (MemoryStore): its calls cannot hang, and a timer each would only
	// cost.
	inMemory bool
}

// newRecoveringStore wraps s for a Router.
func newRecoveringStore(s Store, logger *slog.Logger, os observers) recoveringStore {
	_, inMemory := s.(interface{ inMemory() })
	return recoveringStore{Store: s, logger: logger, observers: os, inMemory: inMemory}
}

func (s recoveringStore) recovered(ctx context.Context, method string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	repanicAbort(v)
	s.logger.LogAttrs(ctx, slog.LevelError, "cofidis: store panicked",
		slog.String("method", method), slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
	*err = fmt.Errorf("store %s panicked: %v", method, v)
}

// guard runs fn, the store's method, as call: observed, its panic turned
// into an error, and bounded by settleTimeout unless the store answers from
// memory. Claim and Peek run before dispatch, on the request's context, and
// a hung store must not hold the request (and the sender) until the client
// gives up: the deadline turns into the 503 of a store failure. Complete,
// Release, Reschedule and Untrack run detached from the request (their
// callers detach them).
func guard[T any](s recoveringStore, ctx context.Context, call Call, method string, fn func(context.Context) (T, error)) (res T, err error) {
	err = s.observers.call(ctx, call, func(ctx context.Context) (err error) {
		defer s.recovered(ctx, method, &err)
		if !s.inMemory {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, settleTimeout)
			defer cancel()
		}
		res, err = fn(ctx)
		return err
	})
	return res, err
}

// none is the result of the store methods that return only an error.
type none struct{}

func (s recoveringStore) Claim(ctx context.Context, key ActionKey, lease time.Duration) (ClaimResult, error) {
	return guard(s, ctx, CallStoreClaim, "Claim", func(ctx context.Context) (ClaimResult, error) {
		return s.Store.Claim(ctx, key, lease)
	})
}

func (s recoveringStore) Complete(ctx context.Context, key ActionKey, token string) error {
	_, err := guard(s, ctx, CallStoreComplete, "Complete", func(ctx context.Context) (none, error) {
		return none{}, s.Store.Complete(ctx, key, token)
	})
	return err
}

func (s recoveringStore) Release(ctx context.Context, key ActionKey, token string) error {
	_, err := guard(s, ctx, CallStoreRelease, "Release", func(ctx context.Context) (none, error) {
		return none{}, s.Store.Release(ctx, key, token)
	})
	return err
}

func (s recoveringStore) Peek(ctx context.Context, key ActionKey) (ClaimResult, error) {
	return guard(s, ctx, CallStorePeek, "Peek", func(ctx context.Context) (ClaimResult, error) {
		return s.Store.Peek(ctx, key)
	})
}

// recoveringTracker is recoveringStore for the Tracker methods.
type recoveringTracker struct {
	Tracker
	rs recoveringStore
}

func (t recoveringTracker) Track(ctx context.Context, tr Tracked) error {
	_, err := guard(t.rs, ctx, CallStoreTrack, "Track", func(ctx context.Context) (none, error) {
		return none{}, t.Tracker.Track(ctx, tr)
	})
	return err
}

func (t recoveringTracker) TakeDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Tracked, error) {
	return guard(t.rs, ctx, CallStoreTakeDue, "TakeDue", func(ctx context.Context) ([]Tracked, error) {
		return t.Tracker.TakeDue(ctx, now, limit, lease)
	})
}

func (t recoveringTracker) Reschedule(ctx context.Context, tr Tracked) error {
	_, err := guard(t.rs, context.WithoutCancel(ctx), CallStoreReschedule, "Reschedule", func(ctx context.Context) (none, error) {
		return none{}, t.Tracker.Reschedule(ctx, tr)
	})
	return err
}

func (t recoveringTracker) Untrack(ctx context.Context, tr Tracked) error {
	_, err := guard(t.rs, context.WithoutCancel(ctx), CallStoreUntrack, "Untrack", func(ctx context.Context) (none, error) {
		return none{}, t.Tracker.Untrack(ctx, tr)
	})
	return err
}
