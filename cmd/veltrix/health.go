package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultHealthAddr is http.listen's default.
const defaultHealthAddr = "127.0.0.1:8080"

func newHealthCmd() *cobra.Command {
	var addr, path string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Ask a running instance's /readyz (or --path /livez); exit 0 on 200, else 1: a container health check for images without a shell",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				addr = healthAddr(os.Getenv("VELTRIX_HTTP_LISTEN"))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			status, body, err := probe(ctx, addr, path)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("health: %w", err)}
			}
			if status != http.StatusOK {
				return &exitError{code: 1, err: fmt.Errorf("health: %s: %d %s", path, status, body)}
			}
			fmt.Fprintln(cmd.OutOrStdout(), body)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "host:port of the instance's HTTP server (default: VELTRIX_HTTP_LISTEN, a wildcard host as 127.0.0.1, else "+defaultHealthAddr+")")
	cmd.Flags().StringVar(&path, "path", "/readyz", "endpoint to ask: /readyz (ready), /livez (processing loop not stuck) or /healthz (process up)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long (exit 1)")
	return cmd
}

// healthAddr is the address to probe for an http.listen value: the
// loopback address for a wildcard or empty host, the default for an empty
// value.
func healthAddr(listen string) string {
	if listen == "" {
		return defaultHealthAddr
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// probe GETs path on addr, following no redirect, and returns the status
// and the first line of the body.
func probe(ctx context.Context, addr, path string) (int, string, error) {
	if !strings.HasPrefix(path, "/") {
		return 0, "", fmt.Errorf("--path %q: want an absolute path such as /readyz", path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	cl := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirect not followed") },
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return resp.StatusCode, line, nil
}
