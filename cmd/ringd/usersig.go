package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ringd/ringd/internal/auth"
)

func runUserSig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ringd usersig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	app := fs.Int64("app", 0, "SDKAppID")
	secret := fs.String("secret", "", "the app's secret key (or $RINGD_SECRET_KEY, or --secret-file)")
	secretFile := fs.String("secret-file", "", "file holding the app's secret key")
	user := fs.String("user", "", "user ID the UserSig is for")
	expire := fs.Int64("expire", 86400, "validity in seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := secretKey(*secret, *secretFile)
	if err != nil {
		return err
	}
	if *app <= 0 || *user == "" || *expire <= 0 {
		return errors.New("usersig needs --app, --user and a positive --expire")
	}
	sig, err := auth.GenUserSig(*app, key, *user, time.Duration(*expire)*time.Second, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, sig)
	return nil
}

func secretKey(flagValue, file string) (string, error) {
	switch {
	case flagValue != "":
		return flagValue, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--secret-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case os.Getenv("RINGD_SECRET_KEY") != "":
		return os.Getenv("RINGD_SECRET_KEY"), nil
	}
	return "", errors.New("give the app's secret key with --secret, --secret-file or $RINGD_SECRET_KEY")
}
