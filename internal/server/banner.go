package server

import (
	"fmt"
	"path/filepath"
	"strings"
)

// printBanner tells a newcomer where everything is; in --dev it also shows
// the demo app and the first commands to try.
func (s *Server) printBanner() {
	w := s.opts.Stdout
	base := s.URL()
	if strings.HasPrefix(s.cfg.Addr, ":") {
		base = "http://127.0.0.1" + s.cfg.Addr
	}
	fmt.Fprintf(w, "ringd is listening on %s (API %s/v1/, metrics %s/metrics)\n", s.Addr(), base, base)
	if s.cfg.AdminToken == "" {
		fmt.Fprintf(w, "admin token: %s  (kept in %s)\n", s.adminToken, filepath.Join(s.cfg.DataDir, "admin.token"))
	}
	if s.demo == nil {
		return
	}
	d := s.demo
	fmt.Fprintf(w, "\n--dev: APNs traffic goes to the built-in simulator (control API %s/sim/v1/)\n", base)
	fmt.Fprintf(w, "demo app: SDKAppID %d, secret key %s, bundle ID %s\n", d.SDKAppID, d.SecretKey, d.BundleID)
	fmt.Fprintln(w, "certificate IDs (the businessID your app sends with its device token):")
	for _, c := range d.Certificates {
		fmt.Fprintf(w, "  %6d  %-12s %s\n", c.ID, c.Environment, c.Label)
	}
	fmt.Fprintf(w, "\nTry it: see README.md, \"A push in one minute\".\n")
}
