package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/bench"
)

// runBench is `ringd bench SCENARIO [flags]`: see docs/performance.md.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringd bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ringd bench SCENARIO [flags]\n\nScenarios: %s\n\nFlags:\n", strings.Join(bench.Scenarios, ", "))
		fs.PrintDefaults()
	}
	var o bench.Options
	fs.StringVar(&o.URL, "url", "", "target this ringd (http://127.0.0.1:PORT) instead of starting one; loopback only")
	fs.StringVar(&o.AdminToken, "admin-token", os.Getenv("RINGD_ADMIN_TOKEN"), "admin token of the --url ringd")
	fs.IntVar(&o.PID, "pid", 0, "pid of the --url ringd, for CPU and RSS from /proc")
	fs.StringVar(&o.SimURL, "sim-url", "", "control API of the simulator the --url ringd sends to (default: the ringd itself, as in --dev)")
	fs.BoolVar(&o.InProcessSim, "dev", false, "start ringd serve --dev (simulator inside ringd: its CPU counts as ringd's) instead of a separate ringd apns-sim")
	fs.StringVar(&o.ServerCPUs, "server-cpus", "", "pin the started ringd to these CPUs with taskset -c (e.g. 0)")
	fs.StringVar(&o.SimCPUs, "sim-cpus", "", "pin the started simulator to these CPUs with taskset -c (e.g. 1)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the started ringd over the measured phase to this file")
	serverArgs := fs.String("server-args", "", "more flags for the started ringd serve, space-separated")
	fs.IntVar(&o.Pushes, "pushes", 20000, "push: pushes to send; transport: requests to send")
	fs.IntVar(&o.Streams, "streams", 256, "transport: requests in flight")
	fs.StringVar(&o.Client, "client", "x/net", "transport: the HTTP/2 client, x/net (x/net/http2's Transport) or framer (ringd's own writer and reader on x/net's Framer and HPACK)")
	fs.IntVar(&o.Devices, "devices", 1000, "push: registered devices (one user each)")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "push: batch requests in flight")
	fs.IntVar(&o.Batch, "batch", 1000, "push: users per batch request (at most 1000)")
	fs.IntVar(&o.Rate, "rate", 500, "call-*: invites per second")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "call-*: how long to invite")
	fs.IntVar(&o.Callees, "callees", 200, "call-offline: callees with VoIP tokens; call-online: connected caller/callee pairs")
	fs.IntVar(&o.Conns, "conns", 10000, "connections: idle WebSocket connections")
	fs.DurationVar(&o.Hold, "hold", 30*time.Second, "connections: how long to hold them")
	fs.DurationVar(&o.Storm, "storm", 10*time.Second, "connections: the reconnect storm's spread")
	fs.IntVar(&o.SourceIPs, "source-ips", 0, "connections: 127.0.0.x source addresses (default: one per 10000 connections, so a storm's TIME_WAIT ports do not run out)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "bound of the whole run")
	runs := fs.Int("runs", 1, "run the scenario this many times, each against a fresh ringd, and report the median of each figure with every run's value")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return errors.New("bench: no scenario given")
	}
	scenario := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if *runs < 1 {
		return fmt.Errorf("bench: --runs %d: want at least 1", *runs)
	}
	if *runs > 1 && o.CPUProfile != "" {
		return errors.New("bench: --cpuprofile profiles one run: use it without --runs")
	}
	if *serverArgs != "" {
		o.ServerArgs = strings.Fields(*serverArgs)
	}
	if o.URL != "" {
		if err := bench.CheckLoopback(o.URL); err != nil {
			return err
		}
	} else {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		o.Binary = exe
	}
	if !*quiet {
		o.Progress = stderr
	}
	res, err := runMedian(ctx, scenario, o, *runs, stderr)
	if res != nil {
		if *asJSON {
			if jerr := res.WriteJSON(stdout); jerr != nil {
				return jerr
			}
		} else if terr := res.WriteTable(stdout); terr != nil {
			return terr
		}
	}
	return err
}

// runMedian runs the scenario n times and combines the runs with
// bench.Median; a failed run stops the series and is returned as is.
func runMedian(ctx context.Context, scenario string, o bench.Options, n int, stderr io.Writer) (*bench.Result, error) {
	if n == 1 {
		return bench.Run(ctx, scenario, o)
	}
	var results []*bench.Result
	for i := range n {
		res, err := bench.Run(ctx, scenario, o)
		if err != nil {
			return res, fmt.Errorf("run %d of %d: %w", i+1, n, err)
		}
		results = append(results, res)
		fmt.Fprintf(stderr, "\rrun %d of %d done\033[K\n", i+1, n)
	}
	return bench.Median(results)
}
