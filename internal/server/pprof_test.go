package server

import (
	"net/http"
	"testing"
)

// TestPprof: the runtime's profiles are on the admin port only when asked.
func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := startServer(t, func(c *Config) { c.Pprof = on })
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if got := getStatus("http://" + s.addr("admin") + "/debug/pprof/allocs"); got != want {
			t.Errorf("Pprof=%v: GET /debug/pprof/allocs = %d; want %d", on, got, want)
		}
	}
}
