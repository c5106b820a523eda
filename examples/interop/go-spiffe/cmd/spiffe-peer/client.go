package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

func runClient(args []string) error {
	fs, id := identityFlagSet("client")
	url := fs.String("url", "", "https URL to GET")
	_ = fs.Parse(args)
	if *url == "" {
		return fmt.Errorf("--url is required")
	}

	source, err := id.load(context.Background())
	if err != nil {
		return err
	}
	defer source.close()

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: tlsconfig.MTLSClientConfig(source.svid, source.bundles, source.authorizer),
		},
	}
	response, err := client.Get(*url)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", response.Status, body)
	}
	_, err = os.Stdout.Write(body)
	return err
}
