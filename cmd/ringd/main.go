// Command ringd is the ringd server and its tools: serve, apns-sim,
// usersig and push.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

const usage = `ringd — makes an iPhone ring for an incoming call, even when the app is killed.

Usage:
  ringd serve [flags]      run the server (--dev: with the APNs simulator and a demo app)
  ringd apns-sim [flags]   run the APNs simulator alone
  ringd usersig [flags]    print a UserSig (Tencent TLSSigAPIv2-compatible)
  ringd push [flags]       send a test push and print its trace
  ringd call [flags]       place or answer calls from a terminal (interactive, or scripted with JSON lines)
  ringd bench SCENARIO     load-test ringd on loopback: push, call-offline, call-online, connections
  ringd rotate-master-key  re-encrypt the secrets at rest under a new master key (server stopped)
  ringd version            print the version

Run "ringd COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ringd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "apns-sim":
		return runSim(ctx, rest, stdout, stderr)
	case "usersig":
		return runUserSig(rest, stdout, stderr)
	case "push":
		return runPush(ctx, rest, stdout, stderr)
	case "call":
		return runCall(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "rotate-master-key":
		return runRotate(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "ringd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
