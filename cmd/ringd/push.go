package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ringd/ringd/client"
)

func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringd push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "ringd's address")
	dataDir := fs.String("data-dir", "./ringd-data", "where to find admin.token when $RINGD_ADMIN_TOKEN is not set")
	app := fs.Int64("app", 0, "SDKAppID")
	var p client.Push
	fs.StringVar(&p.User, "user", "", "user to push to")
	fs.StringVar(&p.Token, "token", "", "only this device token of the user")
	fs.StringVar(&p.Title, "title", "ringd test", "alert title")
	fs.StringVar(&p.Body, "body", "If you can read this, pushes work.", "alert body")
	fs.StringVar(&p.Ext, "ext", "", "ext string delivered beside aps")
	fs.StringVar(&p.Sound, "sound", "default", "sound")
	fs.BoolVar(&p.VoIP, "voip", false, "VoIP push (falls back to alert without a VoIP registration)")
	wait := fs.Duration("wait", 15*time.Second, "how long to wait for the outcome")
	asJSON := fs.Bool("json", false, "print the trace as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *app <= 0 || p.User == "" {
		return errors.New("push needs --app and --user")
	}
	token, err := adminTokenFor(*dataDir)
	if err != nil {
		return err
	}
	admin := client.NewAdmin(*url, token, nil)
	res, err := admin.Send(ctx, *app, p)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	trace, waitErr := admin.WaitTrace(wctx, *app, res.PushID, nil)
	if trace == nil {
		return fmt.Errorf("push %s: no trace yet: %w", res.PushID, waitErr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(trace); err != nil {
			return err
		}
	} else {
		printTrace(stdout, trace)
	}
	if !trace.Final() {
		return fmt.Errorf("push %s is still %s after --wait %s", res.PushID, trace.Status, *wait)
	}
	return nil
}

func adminTokenFor(dataDir string) (string, error) {
	if t := os.Getenv("RINGD_ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	path := os.Getenv("RINGD_ADMIN_TOKEN_FILE")
	if path == "" {
		path = filepath.Join(dataDir, "admin.token")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: set $RINGD_ADMIN_TOKEN or point --data-dir at ringd's data directory: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func printTrace(w io.Writer, t *client.Trace) {
	fmt.Fprintf(w, "push %s to %s: %s\n", t.PushID, t.UserID, t.Status)
	if t.Diagnosis != "" {
		fmt.Fprintf(w, "  %s\n", t.Diagnosis)
	}
	for _, d := range t.Devices {
		fmt.Fprintf(w, "  device %s (%s, certificate %d, %s): %s %s\n", mask(d.Token), d.Kind, d.CertificateID, d.Environment, d.State, d.Reason)
		for _, a := range d.Attempts {
			fmt.Fprintf(w, "    %s %s cert %d → %d %s [%s] %.1f ms\n", a.At.Format(time.TimeOnly), a.Environment, a.CertificateID, a.Status, a.Reason, a.Classification, a.LatencyMS)
			if a.Diagnosis != "" {
				fmt.Fprintf(w, "      %s\n", a.Diagnosis)
			}
		}
	}
}

func mask(t string) string {
	if len(t) <= 8 {
		return t
	}
	return t[:4] + "…" + t[len(t)-4:]
}
