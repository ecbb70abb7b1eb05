package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ringd/ringd/internal/config"
	"github.com/ringd/ringd/internal/credentials"
	"github.com/ringd/ringd/internal/httpapi"
	"github.com/ringd/ringd/internal/push"
	"github.com/ringd/ringd/internal/store"
)

// RotateResult is what RotateMasterKey did.
type RotateResult struct {
	Resealed   int    // sealed secrets now under the new key
	NewKeyFile string // the key to start the server with from now on
	Created    bool   // the new key file did not exist and was generated
}

// RotateMasterKey re-encrypts every sealed secret of the store (app
// secret keys, previous keys in their grace period, certificate and key
// material) from the current master key (cfg.MasterKeyFile, or the data
// directory's master.key) to the key in newKeyFile, generating it (0600)
// when the file does not exist. All secrets change in one transaction:
// if any does not open with the current key, nothing is written.
//
// Servers seal new secrets with the key they started with, so none may
// run meanwhile: the data directory's lock, which every server on this
// machine holds shared, is taken exclusively. Servers on other machines
// sharing a PostgreSQL database must be stopped by the operator
// (docs/security.md).
func RotateMasterKey(ctx context.Context, cfg config.Config, newKeyFile string) (RotateResult, error) {
	res := RotateResult{NewKeyFile: newKeyFile}
	if newKeyFile == "" {
		return res, errors.New("--new-key-file is required")
	}
	if _, err := os.Stat(cfg.DataDir); err != nil {
		return res, fmt.Errorf("data directory: %w", err)
	}
	unlock, err := LockDataDir(cfg.DataDir, true)
	if err != nil {
		return res, fmt.Errorf("%w: stop the server first", err)
	}
	defer func() { _ = unlock() }()

	oldFile := cfg.MasterKeyFile
	if oldFile == "" {
		oldFile = filepath.Join(cfg.DataDir, "master.key")
	}
	oldKey, err := credentials.ReadMasterKey(oldFile)
	if err != nil {
		return res, fmt.Errorf("current master key: %w", err)
	}
	if _, err := os.Stat(newKeyFile); errors.Is(err, os.ErrNotExist) {
		res.Created = true
	}
	newKey, err := credentials.LoadOrCreateMasterKey(newKeyFile)
	if err != nil {
		return res, fmt.Errorf("new master key: %w", err)
	}
	if bytes.Equal(oldKey, newKey) {
		return res, errors.New("the new master key is the current one")
	}
	oldSealer, err := credentials.NewSealer(oldKey)
	if err != nil {
		return res, err
	}
	newSealer, err := credentials.NewSealer(newKey)
	if err != nil {
		return res, err
	}

	st, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return res, err
	}
	defer func() { _ = st.Close() }()
	n, err := st.ResealSecrets(ctx, func(s store.SealedSecret) ([]byte, error) {
		aad := sealedAAD(s)
		plain, err := oldSealer.Open(s.Sealed, aad)
		if err != nil {
			return nil, fmt.Errorf("does not open with the current master key %s: %w", oldFile, err)
		}
		defer clear(plain)
		return newSealer.Seal(plain, aad)
	})
	if err != nil {
		return res, err
	}
	res.Resealed = n
	// Check what was written: every secret opens with the new key.
	list, err := st.SealedSecrets(ctx)
	if err != nil {
		return res, err
	}
	for _, s := range list {
		plain, err := newSealer.Open(s.Sealed, sealedAAD(s))
		if err != nil {
			return res, fmt.Errorf("after the rotation, %s %d does not open with the new key: %w", s.Kind, s.ID, err)
		}
		clear(plain)
	}
	return res, nil
}

// sealedAAD is the additional data each kind of secret is sealed with.
func sealedAAD(s store.SealedSecret) []byte {
	if s.Kind == store.SealedCertificate {
		return push.CertificateAAD(s.SDKAppID)
	}
	return httpapi.AppSecretAAD(s.SDKAppID)
}
