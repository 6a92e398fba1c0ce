package httpapi

import (
	"net"
	"testing"
	"time"
)

func TestServerLimits(t *testing.T) {
	srv := newServer(nil)
	for name, v := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if v <= 0 {
			t.Errorf("%s = %v, want a bound", name, v)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d, want a bound under 1 MiB", srv.MaxHeaderBytes)
	}
	if srv.WriteTimeout <= 5*time.Second {
		t.Errorf("WriteTimeout %v must exceed the default query timeout", srv.WriteTimeout)
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 1).(*limitListener)
	defer ln.Close()
	for range 2 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	c1, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(second)
			return
		}
		second <- c
	}()
	select {
	case <-second:
		t.Fatal("a second connection was accepted while the first is open")
	default:
	}
	if n := len(ln.sem); n != 1 {
		t.Fatalf("%d slots taken, want 1", n)
	}
	_ = c1.Close()
	_ = c1.Close() // a second Close releases nothing more
	select {
	case c2, ok := <-second:
		if !ok {
			t.Fatal("second Accept failed")
		}
		if n := len(ln.sem); n != 1 {
			t.Errorf("%d slots taken after the swap, want 1", n)
		}
		_ = c2.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the second connection was not accepted after the first closed")
	}
	if n := len(ln.sem); n != 0 {
		t.Errorf("%d slots taken after both closed, want 0", n)
	}
	// Accept after Close returns at once.
	_ = ln.Close()
	if _, err := ln.Accept(); err == nil {
		t.Error("Accept after Close succeeded")
	}
}
