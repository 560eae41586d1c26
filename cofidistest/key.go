package cofidistest

import (
	"cmp"
	"math/rand/v2"
	"time"
	_ "time/tzdata" // NewKey must date keys in Paris on any machine

	"github.com/cofidis-go/cofidis"
)

// The values of the documentation's example key, used by NewKey when
// KeyOptions leaves them empty.
const (
	DefaultMerchantCountry = "fr"
	DefaultProviderID      = "providrid"
	DefaultMerchantID      = "020280098"
)

// alphanumerics is the alphabet of generated merchantTransactionIds, as in the
// documentation's "2YgKoUd4DB".
const alphanumerics = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// TransactionIDLength is the length of a generated merchantTransactionId,
// that of the documentation's example.
const TransactionIDLength = 10

// KeyOptions tells NewKey what to put in a key. The zero value gives a key
// like the documentation's example with a fresh id and today's date.
type KeyOptions struct {
	// MerchantCountry defaults to DefaultMerchantCountry ("fr").
	MerchantCountry string
	// ProviderID defaults to DefaultProviderID ("providrid").
	ProviderID string
	// MerchantID defaults to DefaultMerchantID ("020280098").
	MerchantID string
	// MerchantTransactionID defaults to TransactionIDLength random
	// alphanumerics drawn from Rand.
	MerchantTransactionID string
	// Now is the moment of the (imaginary) initialize call; its day in
	// Paris becomes merchantTransactionDate. The zero value means
	// time.Now().
	Now time.Time
	// Rand draws the random merchantTransactionId. Seed it
	// (rand.New(rand.NewPCG(1, 2))) for reproducible ids; a *rand.Rand is
	// not safe for concurrent use, so give each goroutine its own. Nil uses
	// math/rand/v2's randomly seeded global source, which is.
	Rand *rand.Rand
}

// NewKey returns a transaction key as Cofidis would post it back: the
// documentation's example values unless opts says otherwise, a JSON null
// providerTransactionId, a random merchantTransactionId and today's date in
// Paris (cofidis.ParisDate). The key passes Validate. Set
// key.ProviderTransactionID to cofidis.NullString{} (absent) or to
// cofidis.NullStringOf(s) for the other documented shapes.
func NewKey(opts KeyOptions) cofidis.TransactionKey {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	date, err := cofidis.ParisDate(now)
	if err != nil {
		// Unreachable: time/tzdata is embedded.
		panic("cofidistest: " + err.Error())
	}
	id := opts.MerchantTransactionID
	if id == "" {
		id = randomID(opts.Rand)
	}
	return cofidis.TransactionKey{
		MerchantCountry:         cmp.Or(opts.MerchantCountry, DefaultMerchantCountry),
		ProviderID:              cmp.Or(opts.ProviderID, DefaultProviderID),
		ProviderTransactionID:   cofidis.NullValue(),
		MerchantID:              cmp.Or(opts.MerchantID, DefaultMerchantID),
		MerchantTransactionID:   id,
		MerchantTransactionDate: date,
	}
}

func randomID(r *rand.Rand) string {
	intN := rand.IntN
	if r != nil {
		intN = r.IntN
	}
	b := make([]byte, TransactionIDLength)
	for i := range b {
		b[i] = alphanumerics[intN(len(alphanumerics))]
	}
	return string(b)
}
