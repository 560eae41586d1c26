package cofidistest_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// shop is a merchant's code under test, as in the README: it must call
// confirm once per accepted transaction, however often to_confirm arrives.
type shop struct {
	mu       sync.Mutex
	confirms map[cofidis.TransactionID]int
}

func newShop() *shop { return &shop{confirms: map[cofidis.TransactionID]int{}} }

func (s *shop) OnRedirect(w http.ResponseWriter, r *http.Request, ev cofidis.Event) error {
	return cofidis.SeeOther(w, r, "/orders/"+ev.TransactionKey.MerchantTransactionID)
}

func (s *shop) OnNotification(_ context.Context, ev cofidis.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Status.IsAccepted() && s.confirms[ev.TransactionKey.ID()] == 0 {
		s.confirms[ev.TransactionKey.ID()]++ // the confirm call
	}
	return nil
}

func (s *shop) ConfirmCalls(id cofidis.TransactionID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirms[id]
}

// The README's "test your handler with cofidistest" example, kept compiling.
func TestConfirmsOnce(t *testing.T) {
	shop := newShop() // your code, with its two callbacks
	urls, _ := cofidis.NewURLs("https://shop.example/pay")
	var getStatus cofidistest.Ledger // the fake Cofidis' getStatus
	rt, err := cofidis.NewRouter(urls, shop.OnRedirect, shop.OnNotification, cofidis.WithVerifier(&getStatus))
	if err != nil {
		t.Fatal(err)
	}
	fake := cofidistest.Fake{URLs: urls, Handler: rt, Ledger: &getStatus, RepeatNotifications: 2}
	key := cofidistest.NewKey(cofidistest.KeyOptions{})
	if _, err := fake.Play(t.Context(), cofidistest.PendingAccepted(key)); err != nil {
		t.Fatal(err)
	}
	if n := shop.ConfirmCalls(key.ID()); n != 1 {
		t.Errorf("confirm called %d times, want 1", n)
	}
}
