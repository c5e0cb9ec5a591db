package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// change is one line of footstepctl watch.
type change struct {
	Op       string          `json:"op"` // PUT, DEL or PURGE
	Key      string          `json:"key"`
	Revision uint64          `json:"revision"`
	Value    json.RawMessage `json:"value"` // the record, a JSON string if it is not JSON, null for DEL and PURGE
}

// watch prints the latest value of every key, then each change, until ctx ends.
func (e *cmdEnv) watch(ctx context.Context, args []string) error {
	fs := newFlagSet("watch")
	if err := e.parse(fs, args); err != nil || helpAsked(args) {
		return err
	}
	openCtx, cancel := context.WithTimeout(ctx, opTimeout)
	conn, kv, err := e.open(openCtx, false)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	kw, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", kv.Bucket(), err)
	}
	defer stopWatch(kw)
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-kw.Updates():
			if !ok {
				return fmt.Errorf("watch bucket %s: updates closed", kv.Bucket())
			}
			if entry == nil {
				continue // end of the initial values
			}
			if err := writeJSON(e.stdout, toChange(entry)); err != nil {
				return err
			}
		}
	}
}

func toChange(entry jetstream.KeyValueEntry) change {
	c := change{Op: opName(entry.Operation()), Key: entry.Key(), Revision: entry.Revision(), Value: json.RawMessage("null")}
	if entry.Operation() == jetstream.KeyValuePut {
		c.Value = entry.Value()
		if !json.Valid(c.Value) {
			c.Value, _ = json.Marshal(string(entry.Value()))
		}
	}
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
