package cofidis

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/form/v4"
)

// The form fields Cofidis posts.
const (
	FieldTransactionKey    = "transactionKey"
	FieldTransactionStatus = "transactionStatus"
	FieldSubState          = "subState"
)

// DefaultMaxBodyBytes is the default limit on a callback's body. Cofidis'
// bodies are a few hundred bytes; the limit keeps hostile clients from making
// the receiver buffer megabytes.
const DefaultMaxBodyBytes = 16 << 10

// MaxStatusBytes bounds transactionStatus and subState. The longest
// documented status is 20 bytes; unknown ones are delivered, never dropped,
// so the bound is generous, while keeping a hostile value from bloating log
// lines and store keys. A longer value is rejected with ErrInvalidField (400).
const MaxStatusBytes = 256

// Callback is one decoded Cofidis callback, as posted to any of the five URLs.
// It says what the request claims; nothing in it is verified.
type Callback struct {
	// TransactionKey identifies the transaction.
	TransactionKey TransactionKey
	// Status is the transactionStatus, canonicalised when known
	// (see ParseStatus); an unknown status is kept verbatim.
	Status Status
	// RawStatus is transactionStatus exactly as it was posted.
	RawStatus string
	// SubState is the subState, canonicalised when known; empty when the
	// field was absent or empty (redirects carry none).
	SubState SubState
	// RawSubState is subState exactly as it was posted.
	RawSubState string
}

// wireForm is the shape go-playground/form decodes the body into. Only the
// key needs decoding: ParseValues takes the statuses raw from the values
// (and canonicalises them afterwards, so that the raw value survives), and
// each field costs the decoder reflection work on every request.
type wireForm struct {
	TransactionKey TransactionKey `form:"transactionKey"`
}

// Parser decodes Cofidis callbacks. It is safe for concurrent use; build one
// with NewParser and share it, since its form decoder caches type metadata.
type Parser struct {
	maxBody int64
	dec     *form.Decoder
	// scratch recycles ParseRequest's working memory (*scratch): the body
	// buffer.
	scratch sync.Pool
}

// NewParser returns a Parser whose request bodies are limited to maxBodyBytes
// (DefaultMaxBodyBytes when maxBodyBytes <= 0).
func NewParser(maxBodyBytes int64) *Parser {
	if maxBodyBytes <= 0 {
		maxBodyBytes = DefaultMaxBodyBytes
	}
	dec := form.NewDecoder()
	dec.SetMode(form.ModeExplicit) // only fields with a form tag; no guessing
	dec.SetMaxArraySize(1)
	dec.RegisterCustomTypeFunc(decodeTransactionKey, TransactionKey{})
	return &Parser{maxBody: maxBodyBytes, dec: dec}
}

// defaultParser backs the package-level Parse functions. It holds only the
// decoder's concurrency-safe type cache.
var defaultParser = sync.OnceValue(func() *Parser { return NewParser(0) })

// ParseRequest decodes a callback from r with the default body limit. See
// Parser.ParseRequest.
func ParseRequest(r *http.Request) (Callback, error) {
	return defaultParser().ParseRequest(r)
}

// ParseValues decodes a callback from already-parsed form values. See
// Parser.ParseValues.
func ParseValues(v url.Values) (Callback, error) {
	return defaultParser().ParseValues(v)
}

// ParseRequest checks the HTTP envelope of r (POST, form content type, body
// within the limit, well-formed encoding), reads the body once and decodes
// the callback. Errors are *Error values whose HTTPStatus fits the failure:
// 405, 415, 413 or 400.
func (p *Parser) ParseRequest(r *http.Request) (Callback, error) {
	sc, _ := p.scratch.Get().(*scratch)
	if sc == nil {
		sc = new(scratch)
	}
	defer p.release(sc)
	body, err := p.readBody(r, sc.buf[:0])
	if body != nil {
		sc.buf = body
	}
	if err != nil {
		return Callback{}, err
	}
	if cb, ok := parseFast(body); ok {
		return cb, nil
	}
	// Anything unusual, every error included, is judged by the general
	// path, so that both paths always agree.
	values, err := parseForm(string(body))
	if err != nil {
		return Callback{}, err
	}
	return p.ParseValues(values)
}

// readBody checks the envelope of r and reads its body into buf, which it
// grows as needed.
func (p *Parser) readBody(r *http.Request, buf []byte) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, newError(ErrMethodNotAllowed, "", "want POST")
	}
	cts := r.Header.Values("Content-Type")
	if len(cts) > 1 {
		// Ambiguous: a proxy or filter in front may have read the other one.
		return nil, newError(ErrUnsupportedMediaType, "Content-Type", "want a single Content-Type header")
	}
	ct := ""
	if len(cts) == 1 {
		ct = cts[0]
	}
	if err := checkContentType(ct); err != nil {
		return nil, err
	}
	if r.ContentLength > p.maxBody {
		return nil, newError(ErrBodyTooLarge, "", "body exceeds "+strconv.FormatInt(p.maxBody, 10)+" bytes")
	}
	return readLimited(r.Body, p.maxBody, r.ContentLength, buf)
}

// parseForm parses a body read by readBody.
func parseForm(body string) (url.Values, error) {
	values, err := url.ParseQuery(body)
	if err != nil {
		return nil, wrapError(ErrMalformedBody, "", "want application/x-www-form-urlencoded data", err)
	}
	return values, nil
}

// ParseValues decodes and validates a callback from form values: exactly one
// transactionKey (a JSON object, see ParseTransactionKey, that passes
// Validate), exactly one non-empty transactionStatus, at most one subState;
// both statuses at most MaxStatusBytes long, valid UTF-8 without control
// characters (ErrInvalidField). Unknown fields are ignored.
func (p *Parser) ParseValues(values url.Values) (Callback, error) {
	for _, f := range [...]string{FieldTransactionKey, FieldTransactionStatus, FieldSubState} {
		if len(values[f]) > 1 {
			return Callback{}, newError(ErrRepeatedField, f, "want the field once")
		}
	}
	rawStatus, rawSub := firstValue(values, FieldTransactionStatus), firstValue(values, FieldSubState)
	if err := checkFields(firstValue(values, FieldTransactionKey), rawStatus, rawSub); err != nil {
		return Callback{}, err
	}
	var w wireForm
	if err := p.dec.Decode(&w, values); err != nil {
		return Callback{}, formError(err)
	}
	return newCallback(w.TransactionKey, rawStatus, rawSub)
}

// checkFields checks the three fields' values, all but the key's decoding:
// a key present, a status present, both statuses well-formed.
func checkFields(rawKey, rawStatus, rawSub string) error {
	if rawKey == "" {
		return newError(ErrMissingField, FieldTransactionKey, "want a JSON object")
	}
	if strings.TrimSpace(rawStatus) == "" {
		// Blank is no status at all, not an unknown one to deliver.
		return newError(ErrMissingField, FieldTransactionStatus, "want a status")
	}
	if err := checkToken(FieldTransactionStatus, rawStatus); err != nil {
		return err
	}
	return checkToken(FieldSubState, rawSub)
}

// newCallback validates the decoded key and builds the callback.
func newCallback(key TransactionKey, rawStatus, rawSub string) (Callback, error) {
	if err := key.Validate(); err != nil {
		return Callback{}, err
	}
	return Callback{
		TransactionKey: key,
		Status:         ParseStatus(rawStatus),
		RawStatus:      rawStatus,
		SubState:       ParseSubState(rawSub),
		RawSubState:    rawSub,
	}, nil
}

// decodeTransactionKey is the go-playground/form type function for the JSON
// transactionKey field.
func decodeTransactionKey(vals []string) (any, error) {
	if len(vals) != 1 {
		return nil, newError(ErrRepeatedField, FieldTransactionKey, "want the field once")
	}
	return ParseTransactionKey(vals[0])
}

// formError turns go-playground/form's error map back into our typed error.
func formError(err error) error {
	var de form.DecodeErrors
	if errors.As(err, &de) {
		// transactionKey is the only field, and its type function the
		// only part that can fail.
		if e, ok := de[FieldTransactionKey]; ok {
			return e
		}
	}
	return wrapError(ErrMalformedBody, "", "the form could not be decoded", err)
}

func firstValue(v url.Values, key string) string {
	if vs := v[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// checkToken rejects status values that no Cofidis status can be and that
// would be unsafe to log: too long, invalid UTF-8 or control characters.
func checkToken(field, s string) error {
	if len(s) > MaxStatusBytes {
		return newError(ErrInvalidField, field, "want at most "+strconv.Itoa(MaxStatusBytes)+" bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return newError(ErrInvalidField, field, reasonControl)
		}
		if c >= utf8.RuneSelf {
			if !utf8.ValidString(s) {
				return newError(ErrInvalidField, field, reasonBadUTF8)
			}
			// The rest, C1 controls (U+0080-U+009F) included.
			if strings.ContainsFunc(s[i:], unicode.IsControl) {
				return newError(ErrInvalidField, field, reasonControl)
			}
			break
		}
	}
	return nil
}

// checkContentType accepts application/x-www-form-urlencoded with no charset
// or a UTF-8/US-ASCII one: percent-encoded bytes in any other charset would be
// decoded into wrong strings.
func checkContentType(ct string) error {
	if ct == "" {
		return newError(ErrUnsupportedMediaType, "Content-Type", "want application/x-www-form-urlencoded")
	}
	// Fast path for what Cofidis sends.
	if ct == "application/x-www-form-urlencoded" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return newError(ErrUnsupportedMediaType, "Content-Type", "want application/x-www-form-urlencoded")
	}
	// ParseMediaType lower-cases parameter names.
	if v, ok := params["charset"]; ok &&
		!strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") && !strings.EqualFold(v, "us-ascii") {
		return newError(ErrUnsupportedMediaType, "Content-Type", "want charset UTF-8")
	}
	return nil
}

// readLimited reads at most limit bytes of body into buf[:0], growing it as
// needed from the request's declared length; one more byte tells "exactly at
// the limit" from "over it". Like io.Copy, it stops at io.EOF and reports any
// other error.
func readLimited(body io.Reader, limit, contentLength int64, buf []byte) ([]byte, error) {
	buf = buf[:0]
	if body == nil || body == http.NoBody {
		return buf, nil
	}
	if contentLength >= 0 && int64(cap(buf)) <= contentLength {
		// Room for the declared length and the EOF read after it.
		buf = slices.Grow(buf, int(min(contentLength, limit)+1))
	}
	for int64(len(buf)) <= limit {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(int64(max(512, cap(buf))), limit+1-int64(len(buf)))))
		}
		room := min(int64(cap(buf)), limit+1)
		n, err := body.Read(buf[len(buf):room])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return buf, wrapError(ErrBodyTooLarge, "", "body exceeds the server's limit", err)
			}
			return buf, wrapError(ErrBodyRead, "", "the body could not be read", err)
		}
	}
	if int64(len(buf)) > limit {
		return buf, newError(ErrBodyTooLarge, "", "body exceeds "+strconv.FormatInt(limit, 10)+" bytes")
	}
	return buf, nil
}

// scratch is ParseRequest's working memory, recycled through Parser.scratch:
// the body's buffer. Nothing a Callback keeps points into it.
type scratch struct {
	buf []byte
}

// maxPooledBody bounds the body buffers kept for reuse, so that a burst of
// large bodies (with WithMaxBodyBytes raised) is not held on to.
const maxPooledBody = 64 << 10

// release returns sc to the pool, without a buffer grown past
// maxPooledBody.
func (p *Parser) release(sc *scratch) {
	if cap(sc.buf) > maxPooledBody {
		sc.buf = nil
	}
	p.scratch.Put(sc)
}

// The fields parseFast extracts, as indexes of its arrays.
const (
	fieldIdxKey = iota
	fieldIdxStatus
	fieldIdxSubState
	fieldCount
)

// fieldIndex returns the index of a form field name as it appears in the
// body, or -1 for any other name.
func fieldIndex(name []byte) int {
	switch string(name) {
	case FieldTransactionKey:
		return fieldIdxKey
	case FieldTransactionStatus:
		return fieldIdxStatus
	case FieldSubState:
		return fieldIdxSubState
	}
	return -1
}

// maxFastParams bounds the parameters parseFast looks at: Cofidis sends
// three, and anything much longer goes to url.ParseQuery and its own limit.
const maxFastParams = 16

// parseFast decodes a well-formed callback straight from the body: it finds
// the three fields without url.ParseQuery's map, slices and copies, and
// decodes the key as the form decoder would (decodeTransactionKey), without
// the decoder's reflection. It returns false for
// anything it does not judge itself (every error, a repeated field, an
// escaped field name, a semicolon, many parameters): ParseRequest then takes
// the general path (url.ParseQuery, then ParseValues), which judges it.
//
// url.ParseQuery, then ParseValues, would see the same three fields with the
// same values; the other fields only matter to them through the errors
// checked here, and ParseValues and the decoder look at nothing else.
func parseFast(body []byte) (Callback, bool) {
	if bytes.IndexByte(body, ';') >= 0 || bytes.Count(body, []byte{'&'}) >= maxFastParams {
		return Callback{}, false
	}
	var raw [fieldCount][]byte
	var present [fieldCount]bool
	for len(body) > 0 {
		seg := body
		if i := bytes.IndexByte(body, '&'); i >= 0 {
			seg, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(seg) == 0 {
			continue
		}
		name, value, _ := bytes.Cut(seg, []byte{'='})
		if bytes.IndexByte(name, '%') >= 0 || bytes.IndexByte(name, '+') >= 0 {
			return Callback{}, false
		}
		i := fieldIndex(name)
		if i < 0 {
			if !validEscapes(value) {
				return Callback{}, false
			}
			continue
		}
		if present[i] {
			return Callback{}, false
		}
		present[i], raw[i] = true, value
	}
	var vals [fieldCount]string
	for i := range fieldCount {
		if !present[i] {
			continue
		}
		v, ok := fieldValue(i, raw[i])
		if !ok {
			return Callback{}, false
		}
		vals[i] = v
	}
	rawKey, rawStatus, rawSub := vals[fieldIdxKey], vals[fieldIdxStatus], vals[fieldIdxSubState]
	if checkFields(rawKey, rawStatus, rawSub) != nil {
		return Callback{}, false
	}
	// What the form decoder does with the one transactionKey value
	// (decodeTransactionKey), without its reflection.
	key, err := ParseTransactionKey(rawKey)
	if err != nil {
		return Callback{}, false
	}
	cb, err := newCallback(key, rawStatus, rawSub)
	if err != nil {
		return Callback{}, false
	}
	return cb, true
}

// fieldValue unescapes the value of field i into a string that does not
// share the body's memory: a new string, or the constant of a known status
// or sub-state spelled canonically.
func fieldValue(i int, raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '%') >= 0 || bytes.IndexByte(raw, '+') >= 0 {
		return queryUnescape(raw)
	}
	switch i {
	case fieldIdxStatus:
		for j := range statusTable {
			if s := string(statusTable[j].status); string(raw) == s {
				return s, true
			}
		}
	case fieldIdxSubState:
		if string(raw) == string(SubStateSigned) {
			return string(SubStateSigned), true
		}
	}
	return string(raw), true
}

// queryUnescape is url.QueryUnescape for a byte slice, always into a new
// string. A transactionKey has an escape every few bytes, so it decodes byte
// by byte into a buffer of the exact size; the buffer is on the stack when
// small enough, and the string conversion copies it once.
func queryUnescape(b []byte) (string, bool) {
	var stack [512]byte
	n := max(0, len(b)-2*bytes.Count(b, []byte{'%'}))
	var out []byte
	if n <= len(stack) {
		out = stack[:n]
	} else {
		out = make([]byte, n)
	}
	j := 0
	for i := 0; i < len(b); i++ {
		if j == len(out) {
			// The size assumed that every '%' starts an escape; more
			// input means that one does not.
			return "", false
		}
		c := b[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			hi, ok1 := unhex(b, i+1)
			lo, ok2 := unhex(b, i+2)
			if !ok1 || !ok2 {
				return "", false
			}
			c = hi<<4 | lo
			i += 2
		}
		out[j] = c
		j++
	}
	return string(out[:j]), true
}

// validEscapes reports whether url.QueryUnescape would accept b.
func validEscapes(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '%')
		if i < 0 {
			return true
		}
		_, ok1 := unhex(b, i+1)
		_, ok2 := unhex(b, i+2)
		if !ok1 || !ok2 {
			return false
		}
		b = b[i+3:]
	}
}

// unhex decodes the hex digit b[i], if there is one.
func unhex(b []byte, i int) (byte, bool) {
	if i >= len(b) {
		return 0, false
	}
	return hexDigit(b[i])
}

// hexDigit decodes one hex digit of either case.
func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
