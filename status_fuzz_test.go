package cofidis_test

import (
	"strings"
	"testing"

	"github.com/cofidis-go/cofidis"
)

func FuzzParseStatus(f *testing.F) {
	for _, s := range cofidis.Statuses() {
		f.Add(string(s))
		f.Add(strings.ToUpper(string(s)))
		f.Add(swapCase(string(s)))
	}
	for _, s := range []string{
		"", " ", "approved", " pending", "pending ", "pending\x00", "refusé",
		"Refu\u017fed", "\u212a", "pend\xffing", "to confirm", "Abandoned", "_failed", "to_retry",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		got := cofidis.ParseStatus(raw)

		if got.Known() {
			// A known result is the canonical constant of a case variant
			// of the input, and ASCII folding never changes the length.
			if len(got) != len(raw) || !strings.EqualFold(string(got), raw) {
				t.Fatalf("ParseStatus(%q) = %q: not a case variant", raw, got)
			}
		} else if got != cofidis.Status(raw) {
			t.Fatalf("ParseStatus(%q) = %q: unknown value altered", raw, got)
		}

		// Every ASCII case variant of a known status is recognised.
		for _, s := range cofidis.Statuses() {
			if len(s) == len(raw) && strings.EqualFold(string(s), raw) && got != s {
				t.Fatalf("ParseStatus(%q) = %q, want %q", raw, got, s)
			}
		}

		if again := cofidis.ParseStatus(string(got)); again != got {
			t.Fatalf("ParseStatus not idempotent on %q: %q then %q", raw, got, again)
		}

		var decoded cofidis.Status
		if err := decoded.UnmarshalText([]byte(raw)); err != nil || decoded != got {
			t.Fatalf("UnmarshalText(%q) = %q, %v; want %q", raw, decoded, err, got)
		}

		if !got.Known() && (got.Rank() != 0 || got.API() != "" || got.IsFinal() || got.IsRunning() ||
			got.IsAccepted() || got.IsAuthorized() || got.IsFinanced() || got.IsReversed() ||
			got.IsFailed() || got.NeedsRetry() || got.NeedsSupport()) {
			t.Fatalf("unknown %q is classified", got)
		}
	})
}

func FuzzParseSubState(f *testing.F) {
	for _, s := range []string{"signed", "SIGNED", "Signed", "", " signed", "signed\x00", "\u017figned", "signé", "scoring"} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		got := cofidis.ParseSubState(raw)

		switch {
		case got.Known():
			if len(raw) != len(got) || !strings.EqualFold(raw, string(got)) {
				t.Fatalf("ParseSubState(%q) = %q: not a case variant", raw, got)
			}
		case got != cofidis.SubState(raw):
			t.Fatalf("ParseSubState(%q) = %q: unknown value altered", raw, got)
		case len(raw) == len(cofidis.SubStateSigned) && strings.EqualFold(raw, string(cofidis.SubStateSigned)):
			t.Fatalf("ParseSubState(%q) = %q: variant of signed not recognised", raw, got)
		}

		if again := cofidis.ParseSubState(string(got)); again != got {
			t.Fatalf("ParseSubState not idempotent on %q: %q then %q", raw, got, again)
		}

		var decoded cofidis.SubState
		if err := decoded.UnmarshalText([]byte(raw)); err != nil || decoded != got {
			t.Fatalf("UnmarshalText(%q) = %q, %v; want %q", raw, decoded, err, got)
		}
	})
}
