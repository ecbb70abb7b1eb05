package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ringd/ringd/internal/httpapi"
)

// DemoBundleID is the bundle ID of the --dev demo app's credentials.
const DemoBundleID = "com.example.ringdemo"

// Demo is the app that --dev creates on first start, with credentials the
// simulator issued, so a newcomer can push within a minute.
type Demo struct {
	SDKAppID     int64             `json:"sdkappid"`
	BundleID     string            `json:"bundle_id"`
	SecretKey    string            `json:"-"`
	Certificates []DemoCertificate `json:"certificates"`
}

// DemoCertificate is one certificate ID of the demo app and what it is.
type DemoCertificate struct {
	ID          int64  `json:"id"`
	Label       string `json:"label"`
	Environment string `json:"environment"`
}

// ensureDemo loads the demo app recorded in the data directory, or makes
// it on first start.
func (s *Server) ensureDemo(ctx context.Context) (*Demo, error) {
	path := filepath.Join(s.cfg.DataDir, "demo.json")
	d, err := readDemo(path)
	if err == nil {
		if app, err := s.api.RevealSecret(ctx, d.SDKAppID); err == nil {
			d.SecretKey = app.SecretKey
			return d, nil
		}
		// The demo app was deleted: make a new one.
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	d, err = s.createDemo(ctx)
	if err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return d, nil
}

func readDemo(path string) (*Demo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Demo
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

func (s *Server) createDemo(ctx context.Context) (*Demo, error) {
	app, err := s.api.CreateApp(ctx, "demo")
	if err != nil {
		return nil, err
	}
	d := &Demo{SDKAppID: app.SDKAppID, BundleID: DemoBundleID, SecretKey: app.SecretKey}
	uploads := []struct {
		label, env string
		voip       bool
	}{
		{"APNs certificate (.p12), Debug builds", "development", false},
		{"APNs certificate (.p12), TestFlight/App Store builds", "production", false},
		{"VoIP Services certificate (.p12)", "both", true},
	}
	for _, u := range uploads {
		issued, err := s.sim.IssueCertificate(DemoBundleID, u.env, u.voip)
		if err != nil {
			return nil, fmt.Errorf("simulator certificate: %w", err)
		}
		if err := d.add(s.api.UploadCertificate(ctx, app.SDKAppID, httpapi.Upload{File: issued.P12, Password: issued.Password, Environment: u.env})); err != nil {
			return nil, err
		}
		d.label(u.label)
	}
	key, err := s.sim.IssueKey("both")
	if err != nil {
		return nil, fmt.Errorf("simulator key: %w", err)
	}
	up := httpapi.Upload{File: []byte(key.P8), KeyID: key.KeyID, TeamID: key.TeamID, BundleID: DemoBundleID, Environment: "both"}
	if err := d.add(s.api.UploadCertificate(ctx, app.SDKAppID, up)); err != nil {
		return nil, err
	}
	d.label("APNs auth key (.p8) " + key.KeyID)
	return d, nil
}

func (d *Demo) add(certs []httpapi.Certificate, err error) error {
	if err != nil {
		return fmt.Errorf("upload demo credential: %w", err)
	}
	for _, c := range certs {
		d.Certificates = append(d.Certificates, DemoCertificate{ID: c.ID, Environment: c.Environment})
	}
	return nil
}

// label names the certificates added last that have no label yet.
func (d *Demo) label(l string) {
	for i := range d.Certificates {
		if d.Certificates[i].Label == "" {
			d.Certificates[i].Label = l
		}
	}
}
