package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// failover times revocations on a three-node JetStream cluster while one
// node is down: the client's node, the watch consumer's node, the stream
// leader, the meta leader. The cluster, the server (internal/server, as the
// command runs it) and the timing live in the reliability test
// TestRevocationSurvivesNodeLoss, which this runs with the go command (it
// needs the module's source) and whose percentiles it prints.
func (e *env) failover(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout=0", "-run", "^TestRevocationSurvivesNodeLoss$", "-v", "./reliability")
	cmd.Env = append(os.Environ(), "FOOTSTEP_FAILOVER_TRIALS="+strconv.Itoa(e.o.failoverTrials))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("go test ./reliability: %w", err)
	}
	fmt.Printf("== failover: revocation enforced after its acknowledgement while one node of three is down, %d trials per case; target p99 ≤ 1s, max ≤ 2s\n", e.o.failoverTrials)
	sc := bufio.NewScanner(out)
	var failed []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.Contains(line, "trials, p50"):
			fmt.Println("  ", line[strings.Index(line, ": ")+2:])
		case strings.HasPrefix(line, "--- FAIL") || strings.Contains(line, "want at most"):
			failed = append(failed, line)
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("failover test failed: %v: %w", failed, err)
	}
	return nil
}
