package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// profileStart starts a CPU profile of the started ringd (--cpuprofile)
// through its debug listener. It is a no-op without --cpuprofile.
func (e *env) profileStart(ctx context.Context) error {
	if e.o.CPUProfile == "" {
		return nil
	}
	_, err := e.debugPost(ctx, "/debug/cpuprofile/start")
	return err
}

// profileStop stops the profile and writes it to --cpuprofile, noting the
// command that reads it.
func (e *env) profileStop(ctx context.Context, r *Result) error {
	if e.o.CPUProfile == "" {
		return nil
	}
	b, err := e.debugPost(ctx, "/debug/cpuprofile/stop")
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.o.CPUProfile, b, 0o644); err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	r.note("CPU profile of ringd over the measured phase: go tool pprof -top %s", e.o.CPUProfile)
	return nil
}

func (e *env) debugPost(ctx context.Context, path string) ([]byte, error) {
	if e.debugURL == "" {
		return nil, errors.New("--cpuprofile needs a ringd the bench starts (not --url)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.debugURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("profile: POST %s: %s: %s", path, resp.Status, b)
	}
	return b, nil
}
