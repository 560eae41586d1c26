package cofidis

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
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

// maxStatusBytes bounds transactionStatus and subState: the longest documented
// value is 20 bytes, and an unknown one must stay printable in a log line.
const maxStatusBytes = 64

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

// wireForm is the shape go-playground/form decodes the body into. Statuses are
// kept raw here and canonicalised afterwards so that the raw value survives.
type wireForm struct {
	TransactionKey    TransactionKey `form:"transactionKey"`
	TransactionStatus string         `form:"transactionStatus"`
	SubState          string         `form:"subState"`
}

// Parser decodes Cofidis callbacks. It is safe for concurrent use; build one
// with NewParser and share it, since its form decoder caches type metadata.
type Parser struct {
	maxBody int64
	dec     *form.Decoder
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
	values, err := p.ReadForm(r)
	if err != nil {
		return Callback{}, err
	}
	return p.ParseValues(values)
}

// ReadForm checks the envelope of r and returns its body's form values,
// without looking at their content. The request's URL query is not merged in:
// it carries the merchant's own elements, not Cofidis' fields.
func (p *Parser) ReadForm(r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return nil, newError(ErrMethodNotAllowed, "", "want POST")
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	if r.ContentLength > p.maxBody {
		return nil, newError(ErrBodyTooLarge, "", "body exceeds "+strconv.FormatInt(p.maxBody, 10)+" bytes")
	}
	body, err := readLimited(r.Body, p.maxBody)
	if err != nil {
		return nil, err
	}
	values, err := url.ParseQuery(body)
	if err != nil {
		return nil, wrapError(ErrMalformedBody, "", "want application/x-www-form-urlencoded data", err)
	}
	return values, nil
}

// ParseValues decodes and validates a callback from form values: exactly one
// transactionKey (a JSON object, see ParseTransactionKey, that passes
// Validate), exactly one non-empty transactionStatus, at most one subState.
// Unknown fields are ignored.
func (p *Parser) ParseValues(values url.Values) (Callback, error) {
	for _, f := range [...]string{FieldTransactionKey, FieldTransactionStatus, FieldSubState} {
		if len(values[f]) > 1 {
			return Callback{}, newError(ErrRepeatedField, f, "want the field once")
		}
	}
	if firstValue(values, FieldTransactionKey) == "" {
		return Callback{}, newError(ErrMissingField, FieldTransactionKey, "want a JSON object")
	}
	rawStatus := firstValue(values, FieldTransactionStatus)
	if rawStatus == "" {
		return Callback{}, newError(ErrMissingField, FieldTransactionStatus, "want a status")
	}
	if err := checkToken(FieldTransactionStatus, rawStatus); err != nil {
		return Callback{}, err
	}
	rawSub := firstValue(values, FieldSubState)
	if err := checkToken(FieldSubState, rawSub); err != nil {
		return Callback{}, err
	}

	var w wireForm
	if err := p.dec.Decode(&w, values); err != nil {
		return Callback{}, formError(err)
	}
	if err := w.TransactionKey.Validate(); err != nil {
		return Callback{}, err
	}
	return Callback{
		TransactionKey: w.TransactionKey,
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
		// Only transactionKey has a type function that can fail; report
		// its error when present, else the first one in a stable order.
		if e, ok := de[FieldTransactionKey]; ok {
			return e
		}
		for _, f := range [...]string{FieldTransactionStatus, FieldSubState} {
			if e, ok := de[f]; ok {
				return wrapError(ErrInvalidField, f, "want a string", e)
			}
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
	if len(s) > maxStatusBytes {
		return newError(ErrInvalidField, field, "want at most "+strconv.Itoa(maxStatusBytes)+" bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return newError(ErrInvalidField, field, "want no control characters")
		}
		if c >= utf8.RuneSelf {
			if !utf8.ValidString(s) {
				return newError(ErrInvalidField, field, "want valid UTF-8")
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
	for k, v := range params {
		if k != "charset" {
			continue
		}
		if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") && !strings.EqualFold(v, "us-ascii") {
			return newError(ErrUnsupportedMediaType, "Content-Type", "want charset UTF-8")
		}
	}
	return nil
}

// readLimited reads at most limit bytes of body; one more byte tells "exactly
// at the limit" from "over it".
func readLimited(body io.Reader, limit int64) (string, error) {
	if body == nil || body == http.NoBody {
		return "", nil
	}
	var b strings.Builder
	n, err := io.Copy(&b, io.LimitReader(body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", wrapError(ErrBodyTooLarge, "", "body exceeds the server's limit", err)
		}
		return "", wrapError(ErrBodyRead, "", "the body could not be read", err)
	}
	if n > limit {
		return "", newError(ErrBodyTooLarge, "", "body exceeds "+strconv.FormatInt(limit, 10)+" bytes")
	}
	return b.String(), nil
}
