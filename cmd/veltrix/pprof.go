package main

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// pprofEnv names the environment variable that, when set to an address
// (127.0.0.1:6060), serves Go's profiling endpoints (/debug/pprof/...) there
// for the life of the process. It is meant for measuring the engine (see
// docs/benchmarks.md); keep it off in production, where it would expose
// internals to whoever reaches the address.
const pprofEnv = "VELTRIX_PPROF"

// startPprof serves the profiling endpoints when VELTRIX_PPROF is set.
func startPprof() {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", pprofEnv, err)
		}
	}()
}
