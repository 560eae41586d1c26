module github.com/cofidis-go/cofidis/e2e

go 1.25.0

require (
	github.com/chromedp/chromedp v0.23.1
	github.com/cofidis-go/cofidis v0.1.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/text v0.41.0
)

require (
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/go-playground/form/v4 v4.2.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.58.0 // indirect
)

replace github.com/cofidis-go/cofidis => ../
