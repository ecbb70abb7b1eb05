// Package config holds ringd's one configuration struct: its defaults, how
// flags and RINGD_* environment variables fill it, and its validation.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
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
	DefaultPushWorkers     = 256
	DefaultPushTTL         = 24 * time.Hour
	DefaultMaxOutbox       = 1_000_000
	DefaultProductionURL   = "https://api.push.apple.com"
	DefaultSandboxURL      = "https://api.sandbox.push.apple.com"

	// Abuse limits (docs/security.md).
	DefaultAuthFailuresPerIP  = 20  // failed authentications per minute per client IP
	DefaultAuthFailuresPerApp = 100 // UserSigs with a bad signature per minute per app
	DefaultMaxConnsPerIP      = 512 // concurrent TCP connections per client IP
	DefaultMaxWebSocketsPerIP = 256 // concurrent WebSocket sessions per client IP
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultSecretGrace        = 24 * time.Hour
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
	MaxOutbox       int    // pending deliveries above which pushes and calls get 503 outbox_full
	DebugAddr       string // "" = off; a loopback host:port serving /debug/pprof/

	// Abuse limits and secrets; docs/security.md explains each.
	TrustedProxies     string // comma-separated IPs or CIDRs whose X-Forwarded-For is believed
	AuthFailuresPerIP  int    // per minute; 0 = no limit
	AuthFailuresPerApp int    // per minute; 0 = no limit
	MaxConnsPerIP      int    // 0 = no limit
	MaxWebSocketsPerIP int    // 0 = no limit
	ReadHeaderTimeout  time.Duration
	SecretGrace        time.Duration // old UserSigs stay valid this long after a secret rotation; 0 = none
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
		MaxOutbox:       DefaultMaxOutbox,

		AuthFailuresPerIP:  DefaultAuthFailuresPerIP,
		AuthFailuresPerApp: DefaultAuthFailuresPerApp,
		MaxConnsPerIP:      DefaultMaxConnsPerIP,
		MaxWebSocketsPerIP: DefaultMaxWebSocketsPerIP,
		ReadHeaderTimeout:  DefaultReadHeaderTimeout,
		SecretGrace:        DefaultSecretGrace,
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
	{"trusted-proxies", "RINGD_TRUSTED_PROXIES", "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client (default: none, the peer address is the client)", str(func(c *Config) *string { return &c.TrustedProxies })},
	{"auth-failures-per-ip", "RINGD_AUTH_FAILURES_PER_IP", "failed authentications per minute from one client IP before it gets 429 auth_rate_limited (0: no limit)", num(func(c *Config) *int { return &c.AuthFailuresPerIP })},
	{"auth-failures-per-app", "RINGD_AUTH_FAILURES_PER_APP", "UserSigs with a wrong signature per minute for one app before its UserSigs get 429 auth_rate_limited (0: no limit)", num(func(c *Config) *int { return &c.AuthFailuresPerApp })},
	{"max-conns-per-ip", "RINGD_MAX_CONNS_PER_IP", "concurrent TCP connections from one IP; trusted proxies are exempt (0: no limit)", num(func(c *Config) *int { return &c.MaxConnsPerIP })},
	{"max-websockets-per-ip", "RINGD_MAX_WEBSOCKETS_PER_IP", "concurrent WebSocket sessions from one client IP (0: no limit)", num(func(c *Config) *int { return &c.MaxWebSocketsPerIP })},
	{"read-header-timeout", "RINGD_READ_HEADER_TIMEOUT", "time a client has to send a request's headers (slowloris protection)", dur(func(c *Config) *time.Duration { return &c.ReadHeaderTimeout })},
	{"secret-grace", "RINGD_SECRET_GRACE", "how long UserSigs made with an app's previous secret key stay valid after it is rotated (0: refused at once)", dur(func(c *Config) *time.Duration { return &c.SecretGrace })},
	{"debug-addr", "RINGD_DEBUG_ADDR", "loopback host:port to serve Go's /debug/pprof/ profiles on, apart from the API (default: off)", str(func(c *Config) *string { return &c.DebugAddr })},
	{"max-outbox", "RINGD_MAX_OUTBOX", "pending deliveries above which the push and call APIs answer 503 outbox_full with Retry-After", num(func(c *Config) *int { return &c.MaxOutbox })},
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
		positive("--push-workers", int64(c.PushWorkers)), positive("--push-ttl", int64(c.PushTTL)), positive("--max-outbox", int64(c.MaxOutbox)))
	errs = append(errs, positive("--read-header-timeout", int64(c.ReadHeaderTimeout)),
		notNegative("--auth-failures-per-ip", int64(c.AuthFailuresPerIP)), notNegative("--auth-failures-per-app", int64(c.AuthFailuresPerApp)),
		notNegative("--max-conns-per-ip", int64(c.MaxConnsPerIP)), notNegative("--max-websockets-per-ip", int64(c.MaxWebSocketsPerIP)),
		notNegative("--secret-grace", int64(c.SecretGrace)))
	if _, err := ParsePrefixes(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	if err := validateDebugAddr(c.DebugAddr); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParsePrefixes reads a comma-separated list of IPs and CIDRs (an IP is
// a prefix of its full length).
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP nor a CIDR", item)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func notNegative(name string, v int64) error {
	if v < 0 {
		return fmt.Errorf("%s must not be negative, got %s", name, strconv.FormatInt(v, 10))
	}
	return nil
}

func positive(name string, v int64) error {
	if v <= 0 {
		return fmt.Errorf("%s must be positive, got %s", name, strconv.FormatInt(v, 10))
	}
	return nil
}

var levels = map[string]struct{}{"debug": {}, "info": {}, "warn": {}, "error": {}}

// validateDebugAddr keeps profiles off the network: they expose memory
// contents and cost CPU, so only a loopback address may serve them.
func validateDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--debug-addr %q: want host:port, e.g. 127.0.0.1:6060", addr)
	}
	ip, err := netip.ParseAddr(host)
	if host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return fmt.Errorf("--debug-addr %q: profiles are served on a loopback address only, e.g. 127.0.0.1:6060", addr)
	}
	return nil
}
