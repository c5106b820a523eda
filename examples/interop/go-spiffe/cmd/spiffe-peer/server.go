package main

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// serve serves hello on listen with the SVID of source until killed.
func serve(source *identity, listen string) error {
	config := tlsconfig.MTLSServerConfig(source.svid, source.bundles, source.authorizer)
	listener, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	server := &http.Server{
		Handler:           http.HandlerFunc(hello),
		TLSConfig:         config,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(os.Stderr, "", 0),
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	_ = os.Stdout.Sync()

	err = server.ServeTLS(listener, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func hello(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		http.Error(w, "no peer certificate", http.StatusUnauthorized)
		return
	}
	peer, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(w, "hello %s\n", peer)
}
