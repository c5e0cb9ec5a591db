package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func init() { register("", newWatchCmd) }

// change is one change that watch prints.
type change struct {
	Op       string          `json:"op"` // PUT, DEL or PURGE
	Key      string          `json:"key"`
	Revision uint64          `json:"revision"`
	Value    json.RawMessage `json:"value"` // the record; null for DEL, PURGE and a value that does not decode
	// Unreadable says why a value does not decode (it is not shown: it may
	// hold a key written there by mistake).
	Unreadable string `json:"unreadable,omitempty"`
}

func (c change) header() []string { return []string{"OP", "REVISION", "KEY", "VALUE"} }
func (c change) row() []string {
	v := string(c.Value)
	if c.Unreadable != "" {
		v = "unreadable: " + c.Unreadable
	}
	return []string{c.Op, strconv.FormatUint(c.Revision, 10), c.Key, v}
}

// replayDone is the record watch prints between the latest values it
// replays and the live changes that follow.
type replayDone struct {
	Type    string `json:"type"` // always "replay_done"
	Entries int    `json:"entries"`
}

func (r replayDone) header() []string { return []string{"TYPE", "ENTRIES"} }
func (r replayDone) row() []string    { return []string{r.Type, strconv.Itoa(r.Entries)} }

// watchWidths are the table columns of watch: op, revision, KV key.
var watchWidths = []int{5, 8, 72}

func newWatchCmd(e *cmdEnv) *cobra.Command {
	var updatesOnly bool
	cmd := leaf{
		use:   "watch",
		short: "Print the latest value of every record, then each change as it happens",
		long: `Print the latest value of every record of the bucket (deletions included), then
a marker, {"type":"replay_done","entries":N} (in table output a line starting
with #), then each change as it happens, until Ctrl-C or SIGTERM.
With --updates-only, print the marker at once and only the changes made from
then on. A value that does not decode, or a KV key outside the schema, is not
shown (it might hold a key written there by mistake): "unreadable" says why.`,
		example: `  footstepctl watch
  footstepctl watch --updates-only -o table
  footstepctl watch | jq -c 'select(.op == "DEL")'`,
	}.command(func(cmd *cobra.Command, output string) error {
		return e.watch(cmd.Context(), updatesOnly, &streamPrinter{w: e.stdout, format: output, widths: watchWidths})
	})
	cmd.Flags().BoolVar(&updatesOnly, "updates-only", false, "print only changes made from now on, no replay")
	return cmd
}

// watch prints the latest value of every key, the marker, then each change,
// until ctx ends.
func (e *cmdEnv) watch(ctx context.Context, updatesOnly bool, p *streamPrinter) error {
	openCtx, cancel := context.WithTimeout(ctx, opTimeout)
	conn, kv, err := e.open(openCtx, false)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	var opts []jetstream.WatchOpt
	if updatesOnly {
		opts = append(opts, jetstream.UpdatesOnly()) // the client then sends no end-of-replay nil
	}
	kw, err := kv.WatchAll(ctx, opts...)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", kv.Bucket(), err)
	}
	defer stopWatch(kw)
	if updatesOnly {
		if err := p.marker(0); err != nil {
			return err
		}
	}
	replayed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-kw.Updates():
			if !ok {
				return fmt.Errorf("watch bucket %s: updates closed", kv.Bucket())
			}
			if entry == nil {
				err = p.marker(replayed)
			} else {
				replayed++
				err = p.print(toChange(entry))
			}
			if err != nil {
				return err
			}
		}
	}
}

// marker prints the end of the replay.
func (p *streamPrinter) marker(entries int) error {
	if p.format == formatTable {
		return p.note(fmt.Sprintf("replay_done: %d entries; live changes follow", entries))
	}
	return p.print(replayDone{Type: "replay_done", Entries: entries})
}

func toChange(entry jetstream.KeyValueEntry) change {
	c := change{Op: opName(entry.Operation()), Key: safeKVKey(entry.Key()), Revision: entry.Revision(), Value: json.RawMessage("null")}
	if entry.Operation() != jetstream.KeyValuePut {
		return c
	}
	if err := decodeValue(entry.Key(), entry.Value()); err != nil {
		c.Unreadable = problem(err)
		return c
	}
	c.Value = entry.Value()
	return c
}

func opName(op jetstream.KeyValueOp) string {
	switch op {
	case jetstream.KeyValuePut:
		return "PUT"
	case jetstream.KeyValueDelete:
		return "DEL"
	case jetstream.KeyValuePurge:
		return "PURGE"
	}
	return "UNKNOWN"
}

// stopWatch stops the watch and drains what is left, so that the NATS client
// is never blocked delivering to it.
func stopWatch(kw jetstream.KeyWatcher) {
	_ = kw.Stop()
	for range kw.Updates() {
	}
}
