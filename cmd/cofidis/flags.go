package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/cofidis-go/cofidis"
	"github.com/cofidis-go/cofidis/cofidistest"
)

// queryFlag collects repeated -query k=v flags.
type queryFlag struct{ values url.Values }

func (q *queryFlag) String() string {
	if q == nil || q.values == nil {
		return ""
	}
	return q.values.Encode()
}

func (q *queryFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	if q.values == nil {
		q.values = url.Values{}
	}
	q.values.Add(k, v)
	return nil
}

// keyFlags are the transaction key's members, for send and simulate.
type keyFlags struct {
	country, providerID, merchantID, id, date string
	providerTxID                              string
	providerTxIDSet, omitProviderTxID         bool
}

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.country, "merchant-country", cofidistest.DefaultMerchantCountry, "transactionKey merchantCountry")
	fs.StringVar(&k.providerID, "provider-id", cofidistest.DefaultProviderID, "transactionKey providerId")
	fs.Func("provider-transaction-id", "transactionKey providerTransactionId, a string `id` (default null)", func(s string) error {
		k.providerTxID, k.providerTxIDSet = s, true
		return nil
	})
	fs.BoolVar(&k.omitProviderTxID, "omit-provider-transaction-id", false, "leave providerTransactionId out of the key instead of sending null")
	fs.StringVar(&k.merchantID, "merchant-id", cofidistest.DefaultMerchantID, "transactionKey merchantId")
	fs.StringVar(&k.id, "merchant-transaction-id", "", "transactionKey merchantTransactionId (default 10 random alphanumerics)")
	fs.StringVar(&k.date, "merchant-transaction-date", "", "transactionKey merchantTransactionDate, YYYYMMDD (default today in Paris)")
}

// key builds the transaction key. Invalid members are sent as given: the
// point may be to see the receiver reject them.
func (k *keyFlags) key(now time.Time) (cofidis.TransactionKey, error) {
	if k.providerTxIDSet && k.omitProviderTxID {
		return cofidis.TransactionKey{}, usagef("-provider-transaction-id and -omit-provider-transaction-id exclude each other")
	}
	key := cofidistest.NewKey(cofidistest.KeyOptions{MerchantTransactionID: k.id, Now: now})
	// Empty flags are sent empty, not replaced by NewKey's defaults.
	key.MerchantCountry, key.ProviderID, key.MerchantID = k.country, k.providerID, k.merchantID
	if k.date != "" {
		key.MerchantTransactionDate = k.date
	}
	switch {
	case k.omitProviderTxID:
		key.ProviderTransactionID = cofidis.NullString{}
	case k.providerTxIDSet:
		key.ProviderTransactionID = cofidis.NullStringOf(k.providerTxID)
	}
	return key, nil
}

// allowHTTPUsage is the help of -allow-http, the same in every command.
const allowHTTPUsage = "accept plain http for a host other than loopback (localhost, 127.0.0.0/8, ::1): for development only, the callbacks carry transaction keys"

// httpRule is the scheme rule of every command, for their -h texts.
const httpRule = `URLs use https, or plain http for a loopback host (localhost, 127.0.0.0/8,
::1); plain http to any other host needs -allow-http.`

// checkHTTP applies the scheme rule to the URL of the flag called name: https
// always, http for a loopback host, http for any other host only with
// -allow-http (allowHTTP). Other defects are left to the URL checks that
// follow, which report them better.
func checkHTTP(name, raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err == nil && u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		return fmt.Errorf("-%s: plain http to a host other than loopback needs -allow-http (callbacks would cross the network in clear)", name)
	}
	return nil
}

// isLoopback reports whether host, a URL's hostname, names this machine:
// localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
