package cofidis_test

import (
	"fmt"
	"time"
	_ "time/tzdata" // Date and ParisDate need Europe/Paris on any host

	"github.com/cofidis-go/cofidis"
)

func ExampleParseTransactionKey() {
	// The transactionKey form field, as the documentation prints it.
	const field = `{
"merchantCountry": "fr",
"providerId": "providrid",
"providerTransactionId": null,
"merchantId": "020280098",
"merchantTransactionId": "2YgKoUd4DB",
"merchantTransactionDate": "20260227"
}`
	key, err := cofidis.ParseTransactionKey(field)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := key.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("merchantCountry:", key.MerchantCountry)
	fmt.Println("providerId:", key.ProviderID)
	fmt.Println("providerTransactionId:", key.ProviderTransactionID)
	fmt.Println("merchantId:", key.MerchantID)
	fmt.Println("merchantTransactionId:", key.MerchantTransactionID)
	fmt.Println("merchantTransactionDate:", key.MerchantTransactionDate)
	fmt.Println("id:", key.ID())

	day, err := key.Date()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("day starts:", day.Format(time.RFC3339))

	_, err = cofidis.ParseTransactionKey(`{"merchantId": 20280098}`)
	fmt.Println(err)
	// Output:
	// merchantCountry: fr
	// providerId: providrid
	// providerTransactionId: null
	// merchantId: 020280098
	// merchantTransactionId: 2YgKoUd4DB
	// merchantTransactionDate: 20260227
	// id: 020280098/2YgKoUd4DB/20260227
	// day starts: 2026-02-27T00:00:00+01:00
	// cofidis: invalid field: transactionKey.merchantId: want a JSON string, got a number
}

func ExampleTransactionKey_ID() {
	// A redirect and a notification for one transaction share one ID, so it
	// can key an idempotency store.
	redirect, _ := cofidis.ParseTransactionKey(`{"merchantCountry":"fr","providerId":"providrid","providerTransactionId":null,"merchantId":"020280098","merchantTransactionId":"2YgKoUd4DB","merchantTransactionDate":"20260227"}`)
	notification, _ := cofidis.ParseTransactionKey(`{"merchantTransactionDate":"20260227","merchantTransactionId":"2YgKoUd4DB","merchantId":"020280098","providerId":"providrid","merchantCountry":"fr"}`)

	handled := map[cofidis.TransactionID]bool{redirect.ID(): true}
	fmt.Println("already handled:", handled[notification.ID()])

	// String is a stable store key; a "/" inside a part is escaped.
	id := cofidis.TransactionID{MerchantID: "020280098", MerchantTransactionID: "order/42", MerchantTransactionDate: "20260227"}
	fmt.Println(id)
	back, err := cofidis.ParseTransactionID(id.String())
	fmt.Println(back == id, err)
	// Output:
	// already handled: true
	// 020280098/order%2F42/20260227
	// true <nil>
}

func ExampleParisDate() {
	// 23:30 UTC on 28 March 2026 is already 29 March in Paris.
	day, err := cofidis.ParisDate(time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC))
	fmt.Println(day, err)
	// Output: 20260329 <nil>
}
