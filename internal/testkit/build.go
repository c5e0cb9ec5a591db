package testkit

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// built holds what BuildBinary built in this test process.
var built struct {
	mu   sync.Mutex
	dir  string            // made at the first build
	bins map[string]string // import path -> binary
}

// BuildBinary builds the command with import path pkg (such as
// "github.com/footstep/authz/cmd/footstepctl") once per test process and
// returns the path of its binary; later calls return the same binary.
// A package's TestMain calls RemoveBinaries after m.Run to delete what was
// built; without it the binaries stay in the system's temporary directory.
func BuildBinary(tb testing.TB, pkg string) string {
	tb.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if bin, ok := built.bins[pkg]; ok {
		return bin
	}
	if built.dir == "" {
		dir, err := os.MkdirTemp("", "footstep-testkit-bin-")
		if err != nil {
			tb.Fatalf("build %s: %v", pkg, err)
		}
		built.dir, built.bins = dir, map[string]string{}
	}
	// A directory per package, so that two commands with one name do not collide.
	dir := filepath.Join(built.dir, strconv.Itoa(len(built.bins)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatalf("build %s: %v", pkg, err)
	}
	bin := filepath.Join(dir, path.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built.bins[pkg] = bin
	return bin
}

// RemoveBinaries deletes every binary BuildBinary built in this process.
func RemoveBinaries() {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
		built.dir, built.bins = "", nil
	}
}

// Main runs the tests of m, removes what BuildBinary built, and exits with
// their result: a TestMain of one line for packages that build binaries.
func Main(m *testing.M) {
	code := m.Run()
	RemoveBinaries()
	os.Exit(code)
}
