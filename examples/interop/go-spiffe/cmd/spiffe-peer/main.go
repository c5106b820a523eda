// Command spiffe-peer is an independent SPIFFE peer built on go-spiffe, the
// reference SDK, for the interop tests of the mtls crates. It is never a
// part of those crates: it judges them.
//
//	spiffe-peer server  --listen ADDR  IDENTITY  --authorize RULE
//	spiffe-peer client  --url URL      IDENTITY  --authorize RULE
//	spiffe-peer jwt-validate --token-file F --audience A (--jwt-bundle TD=F... | --workload-api ADDR)
//
// IDENTITY is either --workload-api unix:///path/agent.sock (SPIRE, or any
// Workload API) or --cert F --key F --bundle TD=F [--bundle TD=F]... (files,
// PEM; a bundle file ending in .json is read as a SPIFFE bundle).
//
// RULE is any, id:<SPIFFE ID>, or member-of:<trust domain>.
//
// The server prints "listening on HOST:PORT" on stdout once it accepts
// connections, answers every request with "hello <peer ID>", and logs
// refused handshakes on stderr until it is killed. The client prints the response
// body on stdout, or the error on stderr with exit status 1.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runWithIdentity("server", os.Args[2:], "listen", "127.0.0.1:0", "address to listen on", serve)
	case "client":
		err = runWithIdentity("client", os.Args[2:], "url", "", "https URL to GET", get)
	case "jwt-validate":
		err = runJWTValidate(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "spiffe-peer %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: spiffe-peer server|client|jwt-validate [flags] (see the package comment)")
	os.Exit(2)
}
