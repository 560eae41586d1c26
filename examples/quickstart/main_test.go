package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestQuickstartPrintsEveryEventAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !regexp.MustCompile(`^receiver listening on http://127\.0\.0\.1:\d+/shop/cofidis/$`).MatchString(lines[0]) {
		t.Errorf("first line = %q, want the loopback address", lines[0])
	}
	// Spaces are collapsed so that the column widths may change, and the
	// transaction ids (seeded, but the generator is not promised stable
	// across Go releases) are replaced by the journey's letter.
	ids := map[string]string{}
	txID := regexp.MustCompile(`tx=([0-9A-Za-z]{10}) `)
	var got []string
	for _, l := range lines[1:] {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" {
			continue
		}
		l = txID.ReplaceAllStringFunc(l, func(m string) string {
			id := txID.FindStringSubmatch(m)[1]
			if _, ok := ids[id]; !ok {
				ids[id] = string(rune('A' + len(ids)))
			}
			return "tx=" + ids[id] + " "
		})
		got = append(got, l)
	}
	want := []string{
		"journey accepted:",
		"redirect returnUrlSuccess to_confirm - tx=A verified=true -> show the order page",
		"notification notificationUrlSuccess to_confirm - tx=A verified=true -> call confirm (once)",
		"journey pending-accepted:",
		"redirect returnUrlOther pending - tx=B verified=true -> show the order page",
		"notification notificationUrlPending pending - tx=B verified=true -> wait for the decision",
		"notification notificationUrlPending pending signed tx=B verified=true -> wait for the decision",
		"notification notificationUrlPending to_confirm - tx=B verified=true -> call confirm (once)",
		"journey refused:",
		"redirect returnUrlOther Refused - tx=C verified=true -> show the order page",
		"notification notificationUrlOther Refused - tx=C verified=true -> release the order",
		"journey callbacks lost (accepted at Cofidis; none of its callbacks arrives, so getStatus is asked after 2s instead of 50 minutes):",
		"reconciliation - to_confirm - tx=D verified=true -> call confirm (once)",
		"9 events received; receiver stopped",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("output:\n%s\nwant (spaces collapsed, ids lettered):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestQuickstartStopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err == nil {
		t.Fatalf("run with a canceled context succeeded:\n%s", out.String())
	}
}
