package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// identityFlags are the flags that say where a peer's SVID and bundles come from.
type identityFlags struct {
	workloadAPI string
	cert, key   string
	bundles     multiFlag
	authorize   string
}

// runWithIdentity runs a command that takes IDENTITY, --authorize and one
// flag of its own, --name (default value, required when that is empty):
// it parses args, loads the identity, and calls run with it and the
// flag's value, closing the identity when run returns.
func runWithIdentity(command string, args []string, name, value, usage string, run func(*identity, string) error) error {
	fs := flag.NewFlagSet(command, flag.ExitOnError)
	id := &identityFlags{}
	id.register(fs)
	own := fs.String(name, value, usage)
	_ = fs.Parse(args)
	if value == "" && *own == "" {
		return fmt.Errorf("--%s is required", name)
	}

	source, err := id.load(context.Background())
	if err != nil {
		return err
	}
	defer source.close()
	return run(source, *own)
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.workloadAPI, "workload-api", "", "Workload API address (unix:///path)")
	fs.StringVar(&f.cert, "cert", "", "X.509-SVID chain, PEM")
	fs.StringVar(&f.key, "key", "", "private key of the SVID, PEM (PKCS#8)")
	fs.Var(&f.bundles, "bundle", "TD=FILE: the trust bundle of a trust domain (repeatable)")
	fs.StringVar(&f.authorize, "authorize", "", "any | id:<SPIFFE ID> | member-of:<trust domain>")
}

// identity is what the TLS configs are built from.
type identity struct {
	svid       x509svid.Source
	bundles    x509bundle.Source
	authorizer tlsconfig.Authorizer
	close      func()
}

// load checks --authorize, then loads the SVID and bundles.
func (f *identityFlags) load(ctx context.Context) (*identity, error) {
	authorizer, err := f.authorizer()
	if err != nil {
		return nil, err
	}
	if f.workloadAPI != "" {
		if f.cert != "" || f.key != "" || len(f.bundles) > 0 {
			return nil, fmt.Errorf("--workload-api excludes --cert, --key and --bundle")
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		source, err := workloadapi.NewX509Source(ctx,
			workloadapi.WithClientOptions(workloadapi.WithAddr(f.workloadAPI)))
		if err != nil {
			return nil, fmt.Errorf("workload API %s: %w", f.workloadAPI, err)
		}
		return &identity{svid: source, bundles: source, authorizer: authorizer, close: func() { _ = source.Close() }}, nil
	}
	if f.cert == "" || f.key == "" || len(f.bundles) == 0 {
		return nil, fmt.Errorf("give --workload-api, or --cert, --key and at least one --bundle")
	}
	svid, err := x509svid.Load(f.cert, f.key)
	if err != nil {
		return nil, err
	}
	set := x509bundle.NewSet()
	for _, spec := range f.bundles {
		trustDomain, path, err := bundleSpec("bundle", spec)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(path, ".json") {
			b, err := spiffebundle.Load(trustDomain, path)
			if err != nil {
				return nil, err
			}
			set.Add(x509bundle.FromX509Authorities(trustDomain, b.X509Authorities()))
		} else {
			b, err := x509bundle.Load(trustDomain, path)
			if err != nil {
				return nil, err
			}
			set.Add(b)
		}
	}
	return &identity{svid: svid, bundles: set, authorizer: authorizer, close: func() {}}, nil
}

// bundleSpec splits the TD=FILE value of the flag --name.
func bundleSpec(name, spec string) (spiffeid.TrustDomain, string, error) {
	td, path, ok := strings.Cut(spec, "=")
	if !ok {
		return spiffeid.TrustDomain{}, "", fmt.Errorf("--%s %q: want TD=FILE", name, spec)
	}
	trustDomain, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return spiffeid.TrustDomain{}, "", fmt.Errorf("--%s %q: %w", name, spec, err)
	}
	return trustDomain, path, nil
}

func (f *identityFlags) authorizer() (tlsconfig.Authorizer, error) {
	switch {
	case f.authorize == "any":
		return tlsconfig.AuthorizeAny(), nil
	case strings.HasPrefix(f.authorize, "id:"):
		id, err := spiffeid.FromString(strings.TrimPrefix(f.authorize, "id:"))
		if err != nil {
			return nil, fmt.Errorf("--authorize: %w", err)
		}
		return tlsconfig.AuthorizeID(id), nil
	case strings.HasPrefix(f.authorize, "member-of:"):
		td, err := spiffeid.TrustDomainFromString(strings.TrimPrefix(f.authorize, "member-of:"))
		if err != nil {
			return nil, fmt.Errorf("--authorize: %w", err)
		}
		return tlsconfig.AuthorizeMemberOf(td), nil
	default:
		return nil, fmt.Errorf("--authorize %q: want any, id:<ID> or member-of:<TD>", f.authorize)
	}
}
