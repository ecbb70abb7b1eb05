// Package config holds ringd's one configuration struct: its defaults, how
// flags and RINGD_* environment variables fill it, and its validation.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultAddr            = ":8080"
	DefaultDataDir         = "./ringd-data"
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxDevices      = 10
	DefaultPushWorkers     = 64
	DefaultPushTTL         = 24 * time.Hour
	DefaultProductionURL   = "https://api.push.apple.com"
	DefaultSandboxURL      = "https://api.sandbox.push.apple.com"
)

// Config is everything `ringd serve` can be told.
type Config struct {
	Dev             bool
	Addr            string
	DataDir         string
	Database        string // "" = SQLite in DataDir; postgres://… selects PostgreSQL
	AdminToken      string // secret: from RINGD_ADMIN_TOKEN or RINGD_ADMIN_TOKEN_FILE only
	MasterKeyFile   string // "" = DataDir/master.key
	APNSProdURL     string
	APNSSandboxURL  string
	APNSCAFile      string
	LogFormat       string // text or json
	LogLevel        string // debug, info, warn, error
	ShutdownTimeout time.Duration
	MaxDevices      int
	PushWorkers     int
	PushTTL         time.Duration
}

// Default returns a Config with every default set.
func Default() Config {
	return Config{
		Addr:            DefaultAddr,
		DataDir:         DefaultDataDir,
		APNSProdURL:     DefaultProductionURL,
		APNSSandboxURL:  DefaultSandboxURL,
		LogFormat:       "text",
		LogLevel:        "info",
		ShutdownTimeout: DefaultShutdownTimeout,
		MaxDevices:      DefaultMaxDevices,
		PushWorkers:     DefaultPushWorkers,
		PushTTL:         DefaultPushTTL,
	}
}

// option declares one setting once: its flag, its environment variable
// and where it lands in Config.
type option struct {
	flag, env, usage string
	bind             func(fs *flag.FlagSet, c *Config, name, usage string)
}

func str(get func(*Config) *string) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, name, usage string) { fs.StringVar(get(c), name, *get(c), usage) }
}

func dur(get func(*Config) *time.Duration) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, name, usage string) { fs.DurationVar(get(c), name, *get(c), usage) }
}

func num(get func(*Config) *int) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, name, usage string) { fs.IntVar(get(c), name, *get(c), usage) }
}

var serveOptions = []option{
	{"dev", "RINGD_DEV", "run the APNs simulator in-process and send all APNs traffic to it; create a demo app", func(fs *flag.FlagSet, c *Config, n, u string) { fs.BoolVar(&c.Dev, n, c.Dev, u) }},
	{"addr", "RINGD_ADDR", "address to serve the API, WebSocket connections and metrics on", str(func(c *Config) *string { return &c.Addr })},
	{"data-dir", "RINGD_DATA_DIR", "directory for the SQLite database, generated keys and simulator state", str(func(c *Config) *string { return &c.DataDir })},
	{"database", "RINGD_DATABASE", "postgres://… to use PostgreSQL instead of SQLite in the data directory", str(func(c *Config) *string { return &c.Database })},
	{"master-key-file", "RINGD_MASTER_KEY_FILE", "file with the 32-byte key that encrypts secrets at rest (default: generated in the data directory)", str(func(c *Config) *string { return &c.MasterKeyFile })},
	{"apns-production-url", "RINGD_APNS_PRODUCTION_URL", "APNs production endpoint", str(func(c *Config) *string { return &c.APNSProdURL })},
	{"apns-sandbox-url", "RINGD_APNS_SANDBOX_URL", "APNs sandbox (development) endpoint", str(func(c *Config) *string { return &c.APNSSandboxURL })},
	{"apns-ca-file", "RINGD_APNS_CA_FILE", "PEM file of CAs to trust for the APNs endpoints instead of the system roots (tests, the simulator)", str(func(c *Config) *string { return &c.APNSCAFile })},
	{"log-format", "RINGD_LOG_FORMAT", "text or json", str(func(c *Config) *string { return &c.LogFormat })},
	{"log-level", "RINGD_LOG_LEVEL", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
	{"shutdown-timeout", "RINGD_SHUTDOWN_TIMEOUT", "how long a graceful shutdown may take", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"max-devices", "RINGD_MAX_DEVICES", "devices kept per user; the oldest is evicted beyond it", num(func(c *Config) *int { return &c.MaxDevices })},
	{"push-workers", "RINGD_PUSH_WORKERS", "concurrent APNs requests", num(func(c *Config) *int { return &c.PushWorkers })},
	{"push-ttl", "RINGD_PUSH_TTL", "how long a push without an expiration is retried (and its apns-expiration)", dur(func(c *Config) *time.Duration { return &c.PushTTL })},
}

// LoadServe fills a Config from defaults, then RINGD_* environment
// variables, then flags (flags win), then secrets from their files.
func LoadServe(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("ringd serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, o := range serveOptions {
		o.bind(fs, &c, o.flag, o.usage+" ($"+o.env+")")
	}
	if err := applyEnv(fs, getenv); err != nil {
		return Config{}, err
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	token, err := secret(getenv, "RINGD_ADMIN_TOKEN")
	if err != nil {
		return Config{}, err
	}
	c.AdminToken = token
	return c, c.Validate()
}

func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	for _, o := range serveOptions {
		v := getenv(o.env)
		if v == "" {
			continue
		}
		if err := fs.Set(o.flag, v); err != nil {
			return fmt.Errorf("%s=%q: %w", o.env, v, err)
		}
	}
	return nil
}

// secret reads NAME, or the file named by NAME_FILE; setting both is an error.
func secret(getenv func(string) string, name string) (string, error) {
	direct, file := getenv(name), getenv(name+"_FILE")
	if direct != "" && file != "" {
		return "", fmt.Errorf("set %s or %s_FILE, not both", name, name)
	}
	if file == "" {
		return direct, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s_FILE %s is empty", name, file)
	}
	return v, nil
}

// Validate says what is wrong with c, all problems at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: want host:port, e.g. :8080", c.Addr))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		errs = append(errs, fmt.Errorf("--database must be a postgres:// URL (leave it empty for SQLite)"))
	}
	for name, u := range map[string]string{"--apns-production-url": c.APNSProdURL, "--apns-sandbox-url": c.APNSSandboxURL} {
		if !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("%s %q: APNs needs an https:// URL", name, u))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	if _, ok := levels[c.LogLevel]; !ok {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("RINGD_ADMIN_TOKEN is too short: use at least 16 characters"))
	}
	errs = append(errs, positive("--shutdown-timeout", int64(c.ShutdownTimeout)), positive("--max-devices", int64(c.MaxDevices)),
		positive("--push-workers", int64(c.PushWorkers)), positive("--push-ttl", int64(c.PushTTL)))
	return errors.Join(errs...)
}

func positive(name string, v int64) error {
	if v <= 0 {
		return fmt.Errorf("%s must be positive, got %s", name, strconv.FormatInt(v, 10))
	}
	return nil
}

var levels = map[string]struct{}{"debug": {}, "info": {}, "warn": {}, "error": {}}
