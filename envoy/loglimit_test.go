package envoy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/footstep/authz/envoy"
	"github.com/footstep/authz/internal/testkit"
)

// throttledStates fails every lookup, as a store over its lookup budget does.
func throttledStates() *testkit.States {
	s := testkit.NewStates()
	s.Fail(errors.New("lookup budget exhausted"))
	return s
}

// newTestClock returns a clock that moves only when told to.
func newTestClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// logLine is what the tests read of a JSON log line.
type logLine struct {
	Msg        string `json:"msg"`
	Level      string `json:"level"`
	Code       string `json:"code"`
	Suppressed int    `json:"suppressed"`
}

// newLimitedServer returns a Server over states whose lines, at debug level
// and up, go to the returned buffer as JSON, with the clock injected.
func newLimitedServer(tb testing.TB, states envoy.States, clock *testkit.Clock) (*envoy.Server, *envoy.Engine, *testkit.LogBuffer) {
	tb.Helper()
	var out testkit.LogBuffer
	log := out.Logger(slog.LevelDebug)
	srv, engine := newEngineServer(tb, envoy.EngineConfig{States: states, Logger: log, Now: clock.Now}, log)
	return srv, engine, &out
}

// readLines parses the buffer's JSON lines.
func readLines(tb testing.TB, out string) []logLine {
	tb.Helper()
	var lines []logLine
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			tb.Fatalf("log line %q: %v", s, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// TestLogsRateLimited sends 10,000 requests in a tight loop, each with a
// fresh well-formed key, while the clock moves 1 ms per request: ten
// seconds of a client spraying keys. The log gets about one line per code
// per second, and the lines' counts (one for itself plus "suppressed") add
// up to 10,000 once FlushLogs reports what was held back last.
func TestLogsRateLimited(t *testing.T) {
	const n = 10_000
	tests := []struct {
		name   string
		states envoy.States
		msg    string
		level  string
		code   string
	}{
		{"throttled lookups", throttledStates(), "key state unreadable", "WARN", "authz_unavailable"},
		{"unknown keys", newStates(t), "denied", "DEBUG", "invalid_api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			srv, engine, out := newLimitedServer(t, tt.states, clock)
			ctx := context.Background()
			var keys []string
			for i := range n {
				key := fmt.Sprintf("sk_live_spray%08d", i)
				keys = append(keys, key)
				resp, err := srv.Check(ctx, request("api", "/v1", map[string]string{"x-api-key": key}))
				if err != nil {
					t.Fatal(err)
				}
				if code, _ := decision(t, resp); code != tt.code {
					t.Fatalf("Check(%s) = %s; want %s", key, code, tt.code)
				}
				clock.Advance(time.Millisecond)
			}
			before := len(readLines(t, out.String()))
			engine.FlushLogs(ctx)
			lines := readLines(t, out.String())
			total := 0
			for i, l := range lines {
				if l.Level != tt.level || !strings.HasPrefix(l.Msg, tt.msg) || l.Code != tt.code {
					t.Errorf("line %d = %+v; want %s %q code %s", i, l, tt.level, tt.msg, tt.code)
				}
				total += l.Suppressed
				if i < before {
					total++ // a line written for a request stands for it too
				}
			}
			t.Logf("%d requests: %d lines, then %d from FlushLogs", n, before, len(lines)-before)
			if before < 9 || before > 11 {
				t.Errorf("%d requests over 10 s wrote %d lines; want about 10", n, before)
			}
			if total != n {
				t.Errorf("lines account for %d requests; want %d", total, n)
			}
			logged := out.String()
			for _, key := range keys[:100] {
				if strings.Contains(logged, key) {
					t.Fatalf("log holds the credential %s", key)
				}
			}
		})
	}
}

// TestLogsRateLimitedConcurrently has four goroutines send 2,500 requests
// each while the clock moves: every request is written or counted once.
func TestLogsRateLimitedConcurrently(t *testing.T) {
	clock := newTestClock()
	srv, engine, out := newLimitedServer(t, throttledStates(), clock)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2500 {
				req := request("api", "/v1", map[string]string{"x-api-key": fmt.Sprintf("sk_live_g%d_%d", g, i)})
				if _, err := srv.Check(ctx, req); err != nil {
					t.Error(err)
					return
				}
				clock.Advance(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	before := len(readLines(t, out.String()))
	engine.FlushLogs(ctx)
	total := before
	for _, l := range readLines(t, out.String()) {
		total += l.Suppressed
	}
	if total != 10_000 || before > 12 {
		t.Errorf("%d lines accounting for %d requests; want at most 12 for 10000", before, total)
	}
}

// TestLogsPerCode shows that one code's flood does not hold back another
// code's line, and that a quiet second lets the next line through.
func TestLogsPerCode(t *testing.T) {
	clock := newTestClock()
	srv, _, out := newLimitedServer(t, newStates(t), clock)
	ctx := context.Background()
	check := func(key string) {
		t.Helper()
		if _, err := srv.Check(ctx, request("api", "/v1", map[string]string{"x-api-key": key})); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		check("sk_live_nobody")
	}
	check(keyRevoked)
	check("nope")
	clock.Advance(envoy.DefaultLogInterval)
	check("sk_live_nobody")
	var got []string
	for _, l := range readLines(t, out.String()) {
		got = append(got, fmt.Sprintf("%s/%d", l.Code, l.Suppressed))
	}
	want := "invalid_api_key/0 key_revoked/0 invalid_key_format/0 invalid_api_key/99"
	if strings.Join(got, " ") != want {
		t.Errorf("lines %v; want %s", got, want)
	}
}

func TestEngineRejectsNegativeLogInterval(t *testing.T) {
	if _, err := envoy.NewEngine(envoy.EngineConfig{States: newStates(t), LogInterval: -time.Second}); err == nil {
		t.Error("NewEngine(LogInterval: -1s) = nil error; want one")
	}
}
