package reliability

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/footstep/authz/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		testkit.RemoveBinaries()
		os.Exit(code)
	}))
}
