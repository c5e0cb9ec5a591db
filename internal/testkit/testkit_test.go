package testkit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/internal/testkit"
)

func TestPoll(t *testing.T) {
	start := time.Now()
	n := 0
	if !testkit.Poll(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("Poll = false; want true once the condition holds")
	}
	if testkit.Poll(20*time.Millisecond, func() bool { return false }) {
		t.Error("Poll of a condition that never holds = true")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("Poll gave up after %v; want the whole 20ms", d)
	}
}

func TestLogBuffer(t *testing.T) {
	var b testkit.LogBuffer
	log := b.Logger(slog.LevelInfo)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { log.Info("line", "i", i); log.Debug("hidden") })
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines; want 8 (debug filtered out):\n%s", len(lines), b.String())
	}
	for _, l := range lines {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg != "line" {
			t.Errorf("line %q: %v; want JSON with msg line", l, err)
		}
	}
}

// TestNATSRestart: a stopped server refuses connections; started again it
// listens at the same URL with the same store.
func TestNATSRestart(t *testing.T) {
	n := testkit.StartNATS(t)
	url := n.URL()
	ctx := context.Background()
	put := func() jetstream.KeyValue {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatalf("connect %s: %v", url, err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	if _, err := put().Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	if n.Server() != nil {
		t.Error("Server() of a stopped server is not nil")
	}
	if nc, err := nats.Connect(url, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("connected to a stopped server")
	}
	n.Start()
	if n.URL() != url {
		t.Errorf("URL after restart = %s; want %s", n.URL(), url)
	}
	e, err := put().Get(ctx, "k")
	if err != nil || string(e.Value()) != "v" {
		t.Errorf("value after restart = %v, %v; want v from the same store", e, err)
	}
}

func TestNATSWithUser(t *testing.T) {
	n := testkit.StartNATS(t, testkit.WithUser("u", "p"))
	if nc, err := nats.Connect(n.URL()); err == nil {
		nc.Close()
		t.Error("connected without credentials")
	}
	nc, err := nats.Connect(n.URL(), nats.UserInfo("u", "p"))
	if err != nil {
		t.Fatalf("connect with credentials: %v", err)
	}
	nc.Close()
}

// TestProxyCut: a cut proxy closes what goes through it and refuses new
// connections; healed, it forwards again.
func TestProxyCut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = bufio.NewReader(c).WriteTo(c) }()
		}
	}()
	p := testkit.NewProxy(t, l.Addr().String())
	echo := func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			c.Close()
			return nil, err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			err = errors.New("echo " + line)
		}
		if err != nil {
			c.Close()
		}
		return c, err
	}
	c, err := echo()
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	defer c.Close()
	p.Cut(true)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a connection through a cut proxy still reads")
	}
	if c2, err := echo(); err == nil {
		c2.Close()
		t.Error("a new connection through a cut proxy echoed")
	}
	p.Cut(false)
	c3, err := echo()
	if err != nil {
		t.Fatalf("through the healed proxy: %v", err)
	}
	c3.Close()
}

func TestCheckRequest(t *testing.T) {
	r := testkit.CheckRequest("/mcp?x=1", map[string]string{"authorization": "Bearer k"}, testkit.Surface("mcp"))
	h := r.GetAttributes().GetRequest().GetHttp()
	if h.GetMethod() != "GET" || h.GetPath() != "/mcp?x=1" || h.GetHeaders()["authorization"] != "Bearer k" {
		t.Errorf("CheckRequest http = %v", h)
	}
	if got := r.GetAttributes().GetContextExtensions()["surface"]; got != "mcp" {
		t.Errorf("surface = %q; want mcp", got)
	}
	if ext := testkit.CheckRequest("/", nil, testkit.Surface("")).GetAttributes().GetContextExtensions(); ext != nil {
		t.Errorf("empty surface set extensions %v", ext)
	}
}
