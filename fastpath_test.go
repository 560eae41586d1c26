package cofidis

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// The optimised code must decide exactly as the straightforward code it
// replaced: the fast path of ParseRequest (parseFast) as url.ParseQuery then
// ParseValues, readLimited as io.Copy through io.LimitReader, daysIn as
// time.Date. These tests compare them.

// fastPathSeeds are bodies around the fast path's edges.
func fastPathSeeds(tb testing.TB) []string {
	key := readGolden(tb, "doc-example.json")
	enc := url.QueryEscape(key)
	return []string{
		"transactionKey=" + enc + "&transactionStatus=pending&subState=signed",
		"subState=signed&transactionStatus=pending&transactionKey=" + enc,
		"transactionKey=" + enc + "&transactionStatus=to_confirm",
		"transactionKey=" + enc + "&transactionStatus=TO_CONFIRM&subState=SIGNED",
		"transactionKey=" + enc + "&transactionStatus=approved&subState=",
		"transactionKey=" + enc + "&transactionStatus=to%5Fconfirm",
		"transactionKey=" + enc + "&transactionStatus=to+confirm",
		"transactionKey=" + enc + "&transactionStatus=pending&subState",
		"transactionKey=" + enc + "&transactionStatus=",
		"transactionKey=" + enc + "&transactionStatus",
		"transactionKey=" + enc,
		"transactionKey=" + enc + "&&transactionStatus=pending&",
		"transactionKey=" + enc + "&transactionStatus=pending&transactionStatus=pending",
		"transactionKey=" + enc + "&transactionKey=" + enc + "&transactionStatus=pending",
		"transactionKey=" + enc + "&transaction%53tatus=pending",
		"transactionKey=" + enc + "&transactionStatus=pending&transaction%53tatus=Refused",
		"transactionKey=" + enc + "&transactionStatus=pending&other=%zz",
		"transactionKey=" + enc + "&transactionStatus=pending&other=%4",
		"transactionKey=" + enc + "&transactionStatus=pending&o%zz=1",
		"transactionKey=" + enc + "&transactionStatus=pending&other=a;b",
		"transactionKey=" + enc + "&transactionStatus=pending%",
		"transactionKey=" + enc + "&transactionStatus=pending%2",
		"transactionKey=" + enc + "&transactionStatus=%70ending&subState=%73igned",
		"transactionKey=" + enc + "&transactionStatus=pending&=x&a=b&c",
		"transactionKey=" + enc + "&transactionStatus=pending" + strings.Repeat("&x=1", 20),
		"transactionKey=" + enc + "&transactionStatus=pend%00ing",
		"transactionKey=" + enc + "&transactionStatus=%FF",
		"transactionKey=" + strings.ReplaceAll(enc, "fr", "f%FF") + "&transactionStatus=pending",
		"transactionKey=" + strings.ReplaceAll(enc, "%22", `"`) + "&transactionStatus=pending",
		`transactionKey={"merchantCountry":"fr","providerId":"p","merchantId":"1","merchantTransactionId":"t","merchantTransactionDate":"20260227"}&transactionStatus=pending`,
		"transactionKey=%7B%7D&transactionStatus=pending",
		"transactionKey=&transactionStatus=pending",
		"transactionKey=" + enc[:len(enc)-1] + "%&transactionStatus=pending",
		"",
		"&",
		"=",
	}
}

// generalParse is the reference: url.ParseQuery, then ParseValues.
func generalParse(p *Parser, body string) (Callback, error) {
	values, err := parseForm(body)
	if err != nil {
		return Callback{}, err
	}
	return p.ParseValues(values)
}

func sameError(t *testing.T, want, got error) {
	t.Helper()
	if (want == nil) != (got == nil) {
		t.Fatalf("error: want %v, got %v", want, got)
	}
	if want == nil {
		return
	}
	var we, ge *Error
	if !errors.As(want, &we) || !errors.As(got, &ge) {
		t.Fatalf("want *Error values, got %T and %T", want, got)
	}
	if !errors.Is(ge.Err, we.Err) || we.Field != ge.Field || we.Reason != ge.Reason || we.HTTPStatus != ge.HTTPStatus {
		t.Fatalf("error: want %v (%d), got %v (%d)", we, we.HTTPStatus, ge, ge.HTTPStatus)
	}
}

// checkFastPath compares parseFast, and ParseRequest with the body buffers
// of earlier requests, with the general path on one body.
func checkFastPath(t *testing.T, p *Parser, body string) {
	t.Helper()
	want, wantErr := generalParse(p, body)

	buf := []byte(body)
	cb, ok := parseFast(buf)
	if ok {
		if wantErr != nil {
			t.Fatalf("fast path accepted a body the general path rejects: %v", wantErr)
		}
		if cb != want {
			t.Fatalf("fast path: got %+v, want %+v", cb, want)
		}
		// Nothing kept may point into the (reused) body buffer.
		for i := range buf {
			buf[i] = 'X'
		}
		if cb != want {
			t.Fatalf("fast path result changed with the body buffer: %+v", cb)
		}
	}

	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	got, err := p.ParseRequest(r)
	sameError(t, wantErr, err)
	if got != want {
		t.Fatalf("ParseRequest: got %+v, want %+v", got, want)
	}
}

func TestParseRequest_fastPathAgreesWithGeneralPath(t *testing.T) {
	t.Parallel()
	p := NewParser(0)
	seeds := fastPathSeeds(t)
	// Every body, in both orders, through one Parser: its pool hands a
	// request's body buffer to the next.
	reversed := slices.Clone(seeds)
	slices.Reverse(reversed)
	for _, body := range slices.Concat(seeds, reversed) {
		t.Run(body, func(t *testing.T) {
			checkFastPath(t, p, body)
		})
	}
}

func TestParseRequest_fastPathTakesTheDocumentedBody(t *testing.T) {
	t.Parallel()
	body := fastPathSeeds(t)[0]
	if _, ok := parseFast([]byte(body)); !ok {
		t.Fatal("the documentation's example should take the fast path")
	}
}

func FuzzParseRequestFastPath(f *testing.F) {
	for _, body := range fastPathSeeds(f) {
		f.Add(body)
	}
	p := NewParser(0)
	f.Fuzz(func(t *testing.T, body string) {
		checkFastPath(t, p, body)
	})
}

func TestReadLimited(t *testing.T) {
	t.Parallel()
	const limit = 1000
	for _, n := range []int{0, 1, 511, 512, 513, 999, 1000, 1001, 1500} {
		body := bytes.Repeat([]byte{'a'}, n)
		for _, cl := range []int64{-1, int64(n), 0, 10} {
			for _, name := range []string{"whole", "one byte at a time", "data with EOF"} {
				var src io.Reader = bytes.NewReader(body)
				switch name {
				case "one byte at a time":
					src = iotest.OneByteReader(src)
				case "data with EOF":
					src = iotest.DataErrReader(src)
				}
				got, err := readLimited(src, limit, cl, nil)
				if n > limit {
					if !errors.Is(err, ErrBodyTooLarge) {
						t.Fatalf("n=%d cl=%d %s: want ErrBodyTooLarge, got %v", n, cl, name, err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("n=%d cl=%d %s: got %d bytes, %v", n, cl, name, len(got), err)
				}
			}
		}
	}
	t.Run("read error", func(t *testing.T) {
		t.Parallel()
		// The first read fills 512 bytes, the second one fails.
		_, err := readLimited(iotest.TimeoutReader(strings.NewReader(strings.Repeat("a", 600))), limit, -1, nil)
		if !errors.Is(err, ErrBodyRead) {
			t.Fatalf("want ErrBodyRead, got %v", err)
		}
	})
	t.Run("MaxBytesReader", func(t *testing.T) {
		t.Parallel()
		rd := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(strings.Repeat("a", 2000))), 100)
		if _, err := readLimited(rd, limit, -1, nil); !errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("want ErrBodyTooLarge, got %v", err)
		}
	})
}

func TestDaysIn_matchesTimeDate(t *testing.T) {
	for y := 0; y <= 9999; y++ {
		for m := time.January; m <= time.December; m++ {
			if got, want := daysIn(y, m), time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day(); got != want {
				t.Fatalf("%d-%d: %d want %d", y, m, got, want)
			}
		}
	}
}

func FuzzQueryUnescape(f *testing.F) {
	for _, s := range []string{"", "a", "%", "%4", "%41", "a%41b+c", "pending%", "%%%", "%zz", "+%2B+", "%e2%82%ac", url.QueryEscape(`{"a": "b\n"}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := url.QueryUnescape(s)
		got, ok := queryUnescape([]byte(s))
		if ok != (err == nil) || got != want {
			t.Fatalf("queryUnescape(%q) = %q, %v; url.QueryUnescape gives %q, %v", s, got, ok, want, err)
		}
		if valid := validEscapes([]byte(s)); valid != (err == nil) {
			t.Fatalf("validEscapes(%q) = %v, url.QueryUnescape error %v", s, valid, err)
		}
	})
}
