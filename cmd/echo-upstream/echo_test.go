package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestEcho(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/v1/things?x=1", nil)
	req.Header.Set("X-Footstep-Account-Id", "acct_9")
	rec := httptest.NewRecorder()
	echo(rec, req)

	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
	var got request
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Path != "/v1/things?x=1" || got.Method != http.MethodGet {
		t.Errorf("echo = %s %s; want GET /v1/things?x=1", got.Method, got.Path)
	}
	if v := got.Headers["x-footstep-account-id"]; len(v) != 1 || v[0] != "acct_9" {
		t.Errorf("headers[x-footstep-account-id] = %v; want [acct_9]", v)
	}
}

func TestServeStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET / = %d; want 200", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel = %v; want nil", err)
	}
}

func TestRunBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"--nope"}, io.Discard); err == nil {
		t.Error("run(--nope) = nil; want an error")
	}
}
