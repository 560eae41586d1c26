package cofidis_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/cofidis-go/cofidis"
)

// NewURLs derives the five technicalData URLs from one base; WithQuery adds
// the merchant's own elements to all of them.
func ExampleNewURLs() {
	urls, err := cofidis.NewURLs("https://shop.example/pay?shop=fr")
	if err != nil {
		fmt.Println(err)
		return
	}
	urls = urls.WithQuery(url.Values{"order": {"A-42"}})

	technicalData, err := json.MarshalIndent(urls, "", "  ")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(technicalData))
	// Output:
	// {
	//   "returnUrlSuccess": "https://shop.example/pay/cofidis/return/success?shop=fr\u0026order=A-42",
	//   "returnUrlOther": "https://shop.example/pay/cofidis/return/other?shop=fr\u0026order=A-42",
	//   "notificationUrlSuccess": "https://shop.example/pay/cofidis/notify/success?shop=fr\u0026order=A-42",
	//   "notificationUrlPending": "https://shop.example/pay/cofidis/notify/pending?shop=fr\u0026order=A-42",
	//   "notificationUrlOther": "https://shop.example/pay/cofidis/notify/other?shop=fr\u0026order=A-42"
	// }
}

// Validate reports every URL that Cofidis would not accept, each as an
// *Error naming its technicalData field.
func ExampleURLs_Validate() {
	urls := cofidis.URLs{
		ReturnURLSuccess:       "https://shop.example/cofidis/return/success",
		ReturnURLOther:         "https://Shop.Example./cofidis/return/other", // same host
		NotificationURLSuccess: "https://www.shop.example/cofidis/notify",    // another host
		NotificationURLPending: "http://shop.example/cofidis/notify",         // not https
		NotificationURLOther:   "",                                           // missing
	}
	err := urls.Validate()
	fmt.Println(err)

	var e *cofidis.Error
	if errors.As(err, &e) {
		fmt.Println("first field at fault:", e.Field)
	}
	fmt.Println("missing field:", errors.Is(err, cofidis.ErrMissingField))
	// Output:
	// cofidis: URLs do not share one domain: notificationUrlSuccess: host differs from returnUrlSuccess's
	// cofidis: invalid URL: notificationUrlPending: must use the https scheme (http only with AllowHTTP)
	// cofidis: missing field: notificationUrlOther: URL is empty: all five are required
	// first field at fault: notificationUrlSuccess
	// missing field: true
}
