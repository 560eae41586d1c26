package cofidis

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// TransactionKey identifies a transaction in every Cofidis callback and API
// call. It arrives unsigned, as the JSON value of the transactionKey form
// field: read it with ParseTransactionKey, then check it with Validate.
//
// The fields are declared in the documented order, so json.Marshal emits
// them in that order; json.Unmarshal goes through ParseTransactionKey and is
// just as strict.
type TransactionKey struct {
	// MerchantCountry is the merchant's country, two letters ("fr").
	MerchantCountry string `json:"merchantCountry"`
	// ProviderID identifies the provider integrating for the merchant; its
	// meaning is not documented.
	ProviderID string `json:"providerId"`
	// ProviderTransactionID is the provider's transaction id, optional.
	// Cofidis sends null; absent, null and "" are kept apart.
	ProviderTransactionID NullString `json:"providerTransactionId,omitzero"`
	// MerchantID identifies the merchant at Cofidis: digits whose leading
	// zeros matter ("020280098"), so always a string.
	MerchantID string `json:"merchantId"`
	// MerchantTransactionID is the merchant's own id for the transaction.
	// Keep it ASCII: it comes back through the customer's browser, and a
	// journey page in a legacy charset posts a character it cannot encode
	// as "&#NNN;" text, silently, or as a byte that is not UTF-8.
	MerchantTransactionID string `json:"merchantTransactionId"`
	// MerchantTransactionDate is the day of the initialize call in Paris
	// time, as YYYYMMDD. Date turns it into a time.Time.
	MerchantTransactionDate string `json:"merchantTransactionDate"`
}

// NullString is a JSON string member that may be absent, null or a string,
// and remembers which: absent is the zero value, null is {Present: true},
// and "" is {Present: true, Valid: true}. Tag it `json:",omitzero"` so that
// an absent member stays absent when marshaled.
type NullString struct {
	// Value is the string; meaningful only when Valid.
	Value string
	// Valid reports that the member was a JSON string (possibly "").
	Valid bool
	// Present reports that the member was in the JSON object, even as null.
	// Valid implies Present: a value with Valid set counts as present.
	Present bool
}

// NullStringOf returns a present NullString holding s.
func NullStringOf(s string) NullString {
	return NullString{Value: s, Valid: true, Present: true}
}

// NullValue returns a NullString for a member that is present as JSON null.
func NullValue() NullString {
	return NullString{Present: true}
}

// IsZero reports whether the member is absent; json's omitzero uses it.
func (n NullString) IsZero() bool {
	return !n.Present && !n.Valid
}

// MarshalJSON encodes the member as a JSON string, or null when it is not
// Valid. An absent member also encodes as null: only omitzero can leave it
// out, since a marshaler cannot remove its own member.
func (n NullString) MarshalJSON() ([]byte, error) {
	if !n.Valid {
		return []byte("null"), nil
	}
	return json.Marshal(n.Value)
}

// UnmarshalJSON decodes a JSON string or null, as strictly as
// ParseTransactionKey decodes its members. It is not called for an absent
// member, which therefore stays the zero value.
func (n *NullString) UnmarshalJSON(data []byte) error {
	p := keyParser{s: string(data)}
	p.skipSpace()
	var v NullString
	var err *Error
	switch p.peek() {
	case 'n':
		v, err = NullValue(), p.literal("null")
	case '"':
		v.Value, err = p.stringValue("")
		v.Valid, v.Present = true, true
	default:
		return newError(ErrInvalidField, "", "want a JSON string or null")
	}
	if err == nil {
		if p.skipSpace(); p.i != len(p.s) {
			err = p.syntaxError("trailing data after the value")
		} else {
			err = p.deferred
		}
	}
	if err != nil {
		// The parser speaks of the transaction key; a lone NullString has
		// no field name of its own.
		return newError(ErrInvalidField, "", "want a JSON string or null: "+err.Reason)
	}
	*n = v
	return nil
}

// String shows the three states apart, for debugging: <absent>, null, or
// the quoted value.
func (n NullString) String() string {
	switch {
	case n.Valid:
		return strconv.Quote(n.Value)
	case n.Present:
		return "null"
	default:
		return "<absent>"
	}
}

// ParseTransactionKey reads a transactionKey form value. The input is
// untrusted, so the scanner is strict: exactly one JSON object, any JSON
// whitespace, members in any order, no duplicates, nesting at most 32 levels.
// The six known members must be JSON strings (providerTransactionId may also
// be null) holding valid UTF-8 without control characters or lone surrogate
// escapes; member names also match ignoring ASCII case. Unknown members are
// checked for syntax and ignored.
//
// Every failure is an *Error with HTTP status 400. ErrInvalidTransactionKey
// means not a JSON object, or ambiguous: syntax error, trailing data, other
// JSON type, duplicate member, over-deep nesting, invalid UTF-8 outside a
// known member, or a member name that folds to a known one only through
// non-ASCII characters. ErrInvalidField names the known member whose value
// has the wrong type or content. A syntax error anywhere wins over content
// errors; among these the first in the input is returned.
//
// Members missing or empty are not errors here: call Validate. Strings
// without escapes are substrings of s, so the key keeps s alive.
func ParseTransactionKey(s string) (TransactionKey, error) {
	p := keyParser{s: s}
	if err := p.parse(); err != nil {
		return TransactionKey{}, err
	}
	return p.key, nil
}

// UnmarshalJSON parses data with ParseTransactionKey, so json.Unmarshal is
// as strict as the callback handler. A JSON null is rejected too: use a
// *TransactionKey where the key is optional.
func (k *TransactionKey) UnmarshalJSON(data []byte) error {
	key, err := ParseTransactionKey(string(data))
	if err != nil {
		return err
	}
	*k = key
	return nil
}

// Validate checks the members that Cofidis always sends: merchantCountry,
// providerId, merchantId, merchantTransactionId and merchantTransactionDate
// must be non-empty (ErrMissingField); no member, providerTransactionId
// included, may be longer than MaxKeyMemberBytes (ErrInvalidField); merchantCountry must be two ASCII
// letters in either case (case is not enforced because the documentation
// only shows an example, "fr"); merchantTransactionDate must be a real
// calendar day written YYYYMMDD; no member, providerTransactionId included,
// may hold invalid UTF-8 or control characters, since a TransactionKey can
// be built by hand (ErrInvalidField).
//
// It returns the first failure in the documented member order, as an
// *Error naming the member ("transactionKey.merchantId").
func (k TransactionKey) Validate() error {
	if err := checkKeyText(memberMerchantCountry, k.MerchantCountry, true); err != nil {
		return err
	}
	if !isCountryCode(k.MerchantCountry) {
		return newError(ErrInvalidField, memberField(memberMerchantCountry), "want two ASCII letters")
	}
	if err := checkKeyText(memberProviderID, k.ProviderID, true); err != nil {
		return err
	}
	if k.ProviderTransactionID.Valid {
		if err := checkKeyText(memberProviderTransactionID, k.ProviderTransactionID.Value, false); err != nil {
			return err
		}
	}
	if err := checkKeyText(memberMerchantID, k.MerchantID, true); err != nil {
		return err
	}
	if err := checkKeyText(memberMerchantTransactionID, k.MerchantTransactionID, true); err != nil {
		return err
	}
	if err := checkKeyText(memberMerchantTransactionDate, k.MerchantTransactionDate, true); err != nil {
		return err
	}
	if _, _, _, ok := parseKeyDate(k.MerchantTransactionDate); !ok {
		return newError(ErrInvalidField, memberField(memberMerchantTransactionDate), reasonBadDate)
	}
	return nil
}

// Date returns merchantTransactionDate as midnight of that day in
// Europe/Paris, the zone Cofidis dates transactions in. Midnight always
// exists there: DST changes happen at 02:00 and 03:00.
//
// It fails with an *Error (ErrMissingField or ErrInvalidField) for a bad
// date, and with an error wrapping ErrTimeZone if the time zone database is
// missing; import _ "time/tzdata" to embed it.
func (k TransactionKey) Date() (time.Time, error) {
	if k.MerchantTransactionDate == "" {
		return time.Time{}, newError(ErrMissingField, memberField(memberMerchantTransactionDate), reasonEmpty)
	}
	y, m, d, ok := parseKeyDate(k.MerchantTransactionDate)
	if !ok {
		return time.Time{}, newError(ErrInvalidField, memberField(memberMerchantTransactionDate), reasonBadDate)
	}
	paris, err := parisLocation()
	if err != nil {
		return time.Time{}, err
	}
	return time.Date(y, m, d, 0, 0, 0, 0, paris), nil
}

// ParisDate returns t's day in Europe/Paris as YYYYMMDD, the form of
// merchantTransactionDate: initialize refuses any other day than today in
// Paris (code 001), so build the key of a new transaction with
// ParisDate(time.Now()), whatever the server's own zone. It fails only if
// the time zone database is missing (import _ "time/tzdata"):
// an error rather than a panic or a guessed offset, because a date off by
// one day would silently break the key.
func ParisDate(t time.Time) (string, error) {
	paris, err := parisLocation()
	if err != nil {
		return "", err
	}
	return t.In(paris).Format("20060102"), nil
}

// parisLocation loads Europe/Paris once; the result never changes afterwards.
var parisLocation = sync.OnceValues(func() (*time.Location, error) {
	return loadParis(time.LoadLocation)
})

// loadParis takes the loader as a parameter so that tests can make it fail.
func loadParis(load func(string) (*time.Location, error)) (*time.Location, error) {
	loc, err := load("Europe/Paris")
	if err != nil {
		return nil, fmt.Errorf(`%w: Europe/Paris (import _ "time/tzdata" to embed the zone database): %w`, ErrTimeZone, err)
	}
	return loc, nil
}

// MaxKeyMemberBytes bounds each member of a transaction key. Cofidis
// publishes no lengths; its examples are ten characters or fewer, and the
// bound keeps a hostile key from carrying kilobytes into every log line,
// span and store key that names the transaction. A longer member fails
// Validate with ErrInvalidField (400).
const MaxKeyMemberBytes = 256

// TransactionID is the identity of a transaction: comparable, so it can key
// a map or an idempotency store. The documentation makes
// (merchantTransactionId, merchantTransactionDate) unique per merchant only,
// which is why merchantId is part of it.
type TransactionID struct {
	// MerchantID is the key's merchantId.
	MerchantID string
	// MerchantTransactionID is the key's merchantTransactionId.
	MerchantTransactionID string
	// MerchantTransactionDate is the key's merchantTransactionDate.
	MerchantTransactionDate string
}

// ID returns the key's identity.
func (k TransactionKey) ID() TransactionID {
	return TransactionID{
		MerchantID:              k.MerchantID,
		MerchantTransactionID:   k.MerchantTransactionID,
		MerchantTransactionDate: k.MerchantTransactionDate,
	}
}

// String returns the key's identity, ID().String(), for logs and errors.
// The key is not a secret, but the other members are left out to keep log
// lines short.
func (k TransactionKey) String() string {
	return k.ID().String()
}

// String returns a stable string key for stores: each part path-escaped and
// joined with "/", as in "020280098/2YgKoUd4DB/20260227". Escaping makes it
// injective (a "/" inside a part becomes %2F), and ParseTransactionID
// inverts it.
func (id TransactionID) String() string {
	return url.PathEscape(id.MerchantID) + "/" +
		url.PathEscape(id.MerchantTransactionID) + "/" +
		url.PathEscape(id.MerchantTransactionDate)
}

// ParseTransactionID is the inverse of TransactionID.String. It accepts only
// the canonical form String produces, so that one ID has one string: other
// escapings of the same ID ("%41" for "A", "%2f") fail with ErrInvalidField.
func ParseTransactionID(s string) (TransactionID, error) {
	var parts [3]string
	rest := s
	for i := range parts {
		part, after, found := strings.Cut(rest, "/")
		if found != (i < len(parts)-1) {
			return TransactionID{}, newError(ErrInvalidField, "", "transaction ID: want three parts joined by '/'")
		}
		v, err := url.PathUnescape(part)
		if err != nil || url.PathEscape(v) != part {
			return TransactionID{}, newError(ErrInvalidField, "", "transaction ID: want each part path-escaped in canonical form")
		}
		parts[i], rest = v, after
	}
	return TransactionID{MerchantID: parts[0], MerchantTransactionID: parts[1], MerchantTransactionDate: parts[2]}, nil
}

// The known members, in documented order; the index is a bit in keyParser.seen.
const (
	memberMerchantCountry = iota
	memberProviderID
	memberProviderTransactionID
	memberMerchantID
	memberMerchantTransactionID
	memberMerchantTransactionDate
	memberCount
)

// maxKeyDepth bounds nesting, the transaction key object included, so that
// hostile input cannot make the scanner recurse without limit.
const maxKeyDepth = 32

const (
	reasonEmpty     = "want a non-empty string"
	reasonBadUTF8   = "want valid UTF-8"
	reasonControl   = "want no control characters"
	reasonSurrogate = "want no lone UTF-16 surrogate in \\u escapes"
	reasonBadDate   = "want a real calendar day as YYYYMMDD (8 ASCII digits)"
)

// memberFields holds the Error.Field of each member, indexed by member:
// constants, so that naming a field never allocates.
var memberFields = [memberCount]string{
	FieldTransactionKey + ".merchantCountry",
	FieldTransactionKey + ".providerId",
	FieldTransactionKey + ".providerTransactionId",
	FieldTransactionKey + ".merchantId",
	FieldTransactionKey + ".merchantTransactionId",
	FieldTransactionKey + ".merchantTransactionDate",
}

// memberField returns the Error.Field of member m.
func memberField(m int) string { return memberFields[m] }

// memberName returns the documented spelling of member m.
func memberName(m int) string { return memberFields[m][len(FieldTransactionKey)+1:] }

// lookupMember returns the known member a name designates, or -1. Besides
// exact names it folds case like encoding/json does (the prose spells
// merchantTransactionID), so that the two parsers never disagree on which
// member a name is. A name that matches only through non-ASCII folds
// ("merchantİd" with U+0130, "merchantTranſactionId" with U+017F) is
// reported as a look-alike, to be rejected rather than silently matched.
func lookupMember(name string) (m int, lookalike bool) {
	switch name {
	case "merchantCountry":
		return memberMerchantCountry, false
	case "providerId":
		return memberProviderID, false
	case "providerTransactionId":
		return memberProviderTransactionID, false
	case "merchantId":
		return memberMerchantID, false
	case "merchantTransactionId":
		return memberMerchantTransactionID, false
	case "merchantTransactionDate":
		return memberMerchantTransactionDate, false
	}
	for m := range memberCount {
		if equal, ascii := foldEqual(name, memberName(m)); equal {
			return m, !ascii
		}
	}
	return -1, false
}

// foldEqual reports whether name equals the ASCII string known under
// encoding/json's case folding (upper(lower(r)) rune by rune), and whether
// name was pure ASCII.
func foldEqual(name, known string) (equal, ascii bool) {
	ascii = true
	j := 0
	for _, r := range name {
		if r >= utf8.RuneSelf {
			ascii = false
			r = unicode.ToUpper(unicode.ToLower(r))
		} else {
			r = rune(upperASCII(byte(r))) //nolint:gosec // r < utf8.RuneSelf here
		}
		if j == len(known) || r != rune(upperASCII(known[j])) {
			return false, ascii
		}
		j++
	}
	return j == len(known), ascii
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// keyParser is a hand-written scanner over the input string: encoding/json
// would allocate and copy every string, and hides duplicates and types.
type keyParser struct {
	s   string
	i   int
	key TransactionKey
	// seen has bit m set once member m was read, to reject duplicates.
	seen uint8
	// deferred is the first content error; it is returned only if the whole
	// input turns out to be well-formed JSON, so a syntax error always wins
	// (encoding/json also checks syntax first).
	deferred *Error
}

func (p *keyParser) parse() *Error {
	p.skipSpace()
	if p.i == len(p.s) {
		return newError(ErrInvalidTransactionKey, FieldTransactionKey, "empty input: want a JSON object")
	}
	if p.s[p.i] != '{' {
		return p.notAnObject()
	}
	if err := p.object(); err != nil {
		return err
	}
	if p.skipSpace(); p.i != len(p.s) {
		return p.syntaxError("trailing data after the object")
	}
	return p.deferred
}

// notAnObject reports the JSON type found instead of an object, once the
// value is known to be well-formed (otherwise the syntax error is reported).
func (p *keyParser) notAnObject() *Error {
	start := p.i
	if err := p.skipValue(0); err != nil {
		return err
	}
	if p.skipSpace(); p.i != len(p.s) {
		return p.syntaxError("trailing data after the value")
	}
	return newError(ErrInvalidTransactionKey, FieldTransactionKey, "want a JSON object, got "+jsonKind(p.s[start]))
}

func (p *keyParser) object() *Error {
	p.i++ // '{'
	if p.skipSpace(); p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		if p.peek() != '"' {
			return p.syntaxError("want a member name")
		}
		m, err := p.memberName()
		if err != nil {
			return err
		}
		if p.skipSpace(); p.peek() != ':' {
			return p.syntaxError("want ':' after a member name")
		}
		p.i++
		p.skipSpace()
		if m < 0 {
			err = p.skipValue(1)
		} else {
			err = p.memberValue(m)
		}
		if err != nil {
			return err
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.i++
			p.skipSpace()
		case '}':
			p.i++
			return nil
		default:
			return p.syntaxError("want ',' or '}' after a member value")
		}
	}
}

// memberName scans a member name and returns the known member it designates
// and has not seen yet, or -1 for a value to skip.
func (p *keyParser) memberName() (int, *Error) {
	start := p.i + 1
	f, err := p.scanString()
	if err != nil {
		return -1, err
	}
	if f.badUTF8 {
		p.deferError(newError(ErrInvalidTransactionKey, FieldTransactionKey, "member name: "+reasonBadUTF8))
		return -1, nil
	}
	name := p.s[start : p.i-1]
	if f.escaped {
		// Names are matched as encoding/json sees them: decoded, with lone
		// surrogates replaced by U+FFFD (they then match nothing).
		name, _ = decodeEscapes(name, false)
	}
	m, lookalike := lookupMember(name)
	switch {
	case m < 0:
		return -1, nil
	case lookalike:
		p.deferError(newError(ErrInvalidTransactionKey, memberField(m), "member name matches a known member only through non-ASCII case folding"))
		return -1, nil
	case p.seen&(1<<m) != 0:
		p.deferError(newError(ErrInvalidTransactionKey, memberField(m), "duplicate member (ambiguous)"))
		return -1, nil
	}
	p.seen |= 1 << m
	return m, nil
}

// memberValue reads the value of known member m.
func (p *keyParser) memberValue(m int) *Error {
	switch c := p.peek(); {
	case c == '"':
		v, err := p.stringValue(memberField(m))
		if err != nil {
			return err
		}
		p.set(m, v)
	case c == 'n' && m == memberProviderTransactionID:
		if err := p.literal("null"); err != nil {
			return err
		}
		p.key.ProviderTransactionID = NullValue()
	default:
		// Skipped first so that a syntax error (such as the number
		// 020280098) is reported as one.
		start := p.i
		if err := p.skipValue(1); err != nil {
			return err
		}
		want := "want a JSON string, got "
		if m == memberProviderTransactionID {
			want = "want a JSON string or null, got "
		}
		p.deferError(newError(ErrInvalidField, memberField(m), want+jsonKind(p.s[start])))
	}
	return nil
}

func (p *keyParser) set(m int, v string) {
	switch m {
	case memberMerchantCountry:
		p.key.MerchantCountry = v
	case memberProviderID:
		p.key.ProviderID = v
	case memberProviderTransactionID:
		p.key.ProviderTransactionID = NullStringOf(v)
	case memberMerchantID:
		p.key.MerchantID = v
	case memberMerchantTransactionID:
		p.key.MerchantTransactionID = v
	default:
		p.key.MerchantTransactionDate = v
	}
}

// stringValue reads a string whose content matters: without escapes it is a
// substring of the input (no allocation); content errors are deferred with
// the given field.
func (p *keyParser) stringValue(field string) (string, *Error) {
	start := p.i + 1
	f, err := p.scanString()
	if err != nil {
		return "", err
	}
	raw := p.s[start : p.i-1]
	switch {
	case f.badUTF8:
		p.deferError(newError(ErrInvalidField, field, reasonBadUTF8))
	case f.control:
		p.deferError(newError(ErrInvalidField, field, reasonControl))
	case f.escaped:
		v, reason := decodeEscapes(raw, true)
		if reason != "" {
			p.deferError(newError(ErrInvalidField, field, reason))
			return "", nil
		}
		return v, nil
	}
	return raw, nil
}

// stringFlags describes a scanned string.
type stringFlags struct {
	escaped bool // contains backslash escapes: must be decoded
	badUTF8 bool // contains bytes that are not UTF-8
	control bool // contains DEL or a C1 control character (raw; valid JSON)
}

// scanString checks the syntax of the string at p.i (a '"') and moves past
// it. Raw C0 control characters and malformed escapes are syntax errors.
func (p *keyParser) scanString() (stringFlags, *Error) {
	var f stringFlags
	i := p.i + 1
	for i < len(p.s) {
		switch c := p.s[i]; {
		case c == '"':
			p.i = i + 1
			return f, nil
		case c == '\\':
			n := escapeLen(p.s[i:])
			if n == 0 {
				p.i = i
				return f, p.syntaxError("invalid escape in a string")
			}
			f.escaped = true
			i += n
		case c < 0x20:
			p.i = i
			return f, p.syntaxError("control character in a string")
		case c < utf8.RuneSelf:
			f.control = f.control || c == 0x7f
			i++
		default:
			r, size := utf8.DecodeRuneInString(p.s[i:])
			if r == utf8.RuneError && size == 1 {
				f.badUTF8 = true
			} else if r <= 0x9f {
				f.control = true
			}
			i += size
		}
	}
	p.i = i
	return f, p.syntaxError("unterminated string")
}

// escapeLen returns the length of the escape sequence at the start of s, or
// 0 if it is not a valid JSON escape.
func escapeLen(s string) int {
	if len(s) < 2 {
		return 0
	}
	switch s[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if len(s) >= 6 && hex4(s[2:6]) >= 0 {
			return 6
		}
	}
	return 0
}

// hex4 decodes four hex digits, or returns -1.
func hex4(s string) rune {
	var r rune
	for i := range 4 {
		v, ok := hexDigit(s[i])
		if !ok {
			return -1
		}
		r = r<<4 | rune(v)
	}
	return r
}

// decodeEscapes decodes the content of a string already checked by
// scanString. Strictly, an escaped control character or a lone surrogate is
// refused (reason non-empty): encoding/json would turn the surrogate into
// U+FFFD, so two different inputs would give the same identifier. Leniently
// (member names) it does what encoding/json does.
func decodeEscapes(raw string, strict bool) (v, reason string) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		j := strings.IndexByte(raw[i:], '\\')
		if j < 0 {
			b.WriteString(raw[i:])
			break
		}
		b.WriteString(raw[i : i+j])
		i += j
		c := raw[i+1]
		if c != 'u' {
			i += 2
			switch c {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			}
			if strict && c < 0x20 {
				return "", reasonControl
			}
			b.WriteByte(c)
			continue
		}
		r := hex4(raw[i+2 : i+6])
		i += 6
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				r2 = hex4(raw[i+2 : i+6])
			}
			if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
				r = pair
				i += 6
			} else if strict {
				return "", reasonSurrogate
			} else {
				r = utf8.RuneError
			}
		}
		if strict && unicode.IsControl(r) {
			return "", reasonControl
		}
		b.WriteRune(r)
	}
	return b.String(), ""
}

// skipValue checks the syntax of the value at p.i and moves past it; depth
// is the number of enclosing objects and arrays.
func (p *keyParser) skipValue(depth int) *Error {
	switch c := p.peek(); {
	case c == '{' || c == '[':
		if depth >= maxKeyDepth {
			return newError(ErrInvalidTransactionKey, FieldTransactionKey, "want at most 32 levels of nesting")
		}
		return p.skipContainer(depth + 1)
	case c == '"':
		f, err := p.scanString()
		if err == nil && f.badUTF8 {
			p.deferError(newError(ErrInvalidTransactionKey, FieldTransactionKey, "string in an unknown member: "+reasonBadUTF8))
		}
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	default:
		return p.syntaxError("want a JSON value")
	}
}

// skipContainer skips the object or array at p.i, whose elements are at
// the given depth.
func (p *keyParser) skipContainer(depth int) *Error {
	isObject := p.s[p.i] == '{'
	end := byte(']')
	if isObject {
		end = '}'
	}
	p.i++
	if p.skipSpace(); p.peek() == end {
		p.i++
		return nil
	}
	for {
		if isObject {
			if p.peek() != '"' {
				return p.syntaxError("want a member name")
			}
			if err := p.skipValue(depth); err != nil { // the name, a string
				return err
			}
			if p.skipSpace(); p.peek() != ':' {
				return p.syntaxError("want ':' after a member name")
			}
			p.i++
			p.skipSpace()
		}
		if err := p.skipValue(depth); err != nil {
			return err
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.i++
			p.skipSpace()
		case end:
			p.i++
			return nil
		default:
			return p.syntaxError("want ',' or a closing bracket")
		}
	}
}

func (p *keyParser) literal(lit string) *Error {
	if strings.HasPrefix(p.s[p.i:], lit) {
		p.i += len(lit)
		return nil
	}
	if strings.HasPrefix(lit, p.s[p.i:]) {
		p.i = len(p.s) // truncated: report the end of input
	}
	return p.syntaxError("invalid literal")
}

// number skips a number as RFC 8259 spells it: no leading zeros, no "+",
// no bare ".".
func (p *keyParser) number() *Error {
	s, i := p.s, p.i
	digits := func() bool {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		p.i = i
		return p.syntaxError("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		if i++; !digits() {
			p.i = i
			return p.syntaxError("invalid number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		if i++; i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			p.i = i
			return p.syntaxError("invalid number")
		}
	}
	p.i = i
	return nil
}

func (p *keyParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the byte at p.i, or 0 at the end of the input (0 is never
// valid there, so callers report it as a syntax error).
func (p *keyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// syntaxError reports invalid JSON at p.i; the offset helps debugging
// without showing the (untrusted) input.
func (p *keyParser) syntaxError(what string) *Error {
	if p.i >= len(p.s) {
		return newError(ErrInvalidTransactionKey, FieldTransactionKey, "invalid JSON: unexpected end of input")
	}
	return newError(ErrInvalidTransactionKey, FieldTransactionKey, "invalid JSON: "+what+" at byte "+strconv.Itoa(p.i))
}

func (p *keyParser) deferError(err *Error) {
	if p.deferred == nil {
		p.deferred = err
	}
}

// jsonKind names the JSON type of a value from its first byte, for reasons.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// checkKeyText checks member m's value for Validate.
func checkKeyText(m int, v string, required bool) error {
	switch {
	case len(v) > MaxKeyMemberBytes:
		return newError(ErrInvalidField, memberField(m), "want at most "+strconv.Itoa(MaxKeyMemberBytes)+" bytes")
	case v == "":
		if required {
			return newError(ErrMissingField, memberField(m), reasonEmpty)
		}
	case printableASCII(v):
		// The common case, and fine on both counts below.
	case !utf8.ValidString(v):
		return newError(ErrInvalidField, memberField(m), reasonBadUTF8)
	case strings.ContainsFunc(v, unicode.IsControl):
		return newError(ErrInvalidField, memberField(m), reasonControl)
	}
	return nil
}

// printableASCII reports whether s holds only bytes 0x20 to 0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func isCountryCode(s string) bool {
	isLetter := func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	return len(s) == 2 && isLetter(s[0]) && isLetter(s[1])
}

// parseKeyDate splits a YYYYMMDD date and checks that the day exists.
func parseKeyDate(s string) (y int, m time.Month, d int, ok bool) {
	if len(s) != 8 {
		return 0, 0, 0, false
	}
	n := 0
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, 0, false
		}
		n = n*10 + int(c-'0')
	}
	y, m, d = n/10000, time.Month(n/100%100), n%100
	if m < time.January || m > time.December || d < 1 || d > daysIn(y, m) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// daysIn follows the proleptic Gregorian calendar, as time.Date does, without
// its cost on every callback.
func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
