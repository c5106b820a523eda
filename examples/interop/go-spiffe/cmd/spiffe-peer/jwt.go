package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// runJWTValidate validates a JWT-SVID with jwtsvid.ParseAndValidate and
// prints {"spiffe_id": ..., "audience": [...], "expiry": ...} on success.
func runJWTValidate(args []string) error {
	fs := flag.NewFlagSet("jwt-validate", flag.ExitOnError)
	tokenFile := fs.String("token-file", "", "file holding the JWT-SVID (compact form)")
	var audiences, bundles multiFlag
	fs.Var(&audiences, "audience", "an audience the token must carry (repeatable)")
	fs.Var(&bundles, "jwt-bundle", "TD=FILE: a SPIFFE bundle (JWKS) with the trust domain's JWT keys (repeatable)")
	workloadAPI := fs.String("workload-api", "", "Workload API address to take the JWT bundles from")
	_ = fs.Parse(args)
	if *tokenFile == "" || len(audiences) == 0 {
		return fmt.Errorf("--token-file and --audience are required")
	}
	raw, err := os.ReadFile(*tokenFile)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(string(raw))

	var source jwtbundle.Source
	switch {
	case *workloadAPI != "" && len(bundles) == 0:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := workloadapi.NewJWTSource(ctx,
			workloadapi.WithClientOptions(workloadapi.WithAddr(*workloadAPI)))
		if err != nil {
			return fmt.Errorf("workload API %s: %w", *workloadAPI, err)
		}
		defer s.Close()
		source = s
	case *workloadAPI == "" && len(bundles) > 0:
		set := jwtbundle.NewSet()
		for _, spec := range bundles {
			trustDomain, path, err := bundleSpec("jwt-bundle", spec)
			if err != nil {
				return err
			}
			// A SPIFFE bundle (X.509 and JWT authorities, as SPIRE's
			// `bundle show -format spiffe` and mtls-ca's `bundle --format
			// jwks` print it): jwtbundle.Load would refuse its X.509
			// entries, which have no key ID; spiffebundle reads both kinds.
			b, err := spiffebundle.Load(trustDomain, path)
			if err != nil {
				return err
			}
			set.Add(b.JWTBundle())
		}
		source = set
	default:
		return fmt.Errorf("give either --workload-api or --jwt-bundle")
	}

	svid, err := jwtsvid.ParseAndValidate(token, source, audiences)
	if err != nil {
		return err
	}
	out, err := json.Marshal(map[string]any{
		"spiffe_id": svid.ID.String(),
		"audience":  svid.Audience,
		"expiry":    svid.Expiry.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
