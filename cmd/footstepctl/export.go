package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
)

func init() { register("", newExportCmd) }

func newExportCmd(e *cmdEnv) *cobra.Command {
	var file string
	cmd := leaf{
		use:   "export",
		short: "Write every key and balance as JSON Lines, the import format",
		long: `Write every key and account record of the bucket in the import format (JSON
Lines): keys by hash, then accounts by id. A key with a revocation tombstone is
exported revoked, as it is answered. A record that does not decode is named on
standard error (by KV key, never its value) and skipped, and the command fails
at the end. With --file the records go to that file, written atomically, and a
summary is printed: one line of text unless -o asks for json, yaml or table.`,
		example: `  footstepctl export > keys.jsonl
  footstepctl export --file keys.jsonl -o json
  footstepctl export --nats-url nats://old:4222 | footstepctl import --file -`,
	}.summaryCommand(func(cmd *cobra.Command, output string) error {
		if output != "" && file == "" {
			return errors.New("--output: formats the summary printed with --file; the records themselves are always JSON Lines")
		}
		return e.exportRecords(cmd.Context(), file, output)
	})
	cmd.Flags().StringVar(&file, "file", "", "write to this file (atomically) instead of standard output")
	return cmd
}

// exportSummary is what an export with --file wrote.
type exportSummary struct {
	File       string `json:"file"`
	Keys       int    `json:"keys"`
	Accounts   int    `json:"accounts"`
	Unreadable int    `json:"unreadable_skipped"`
}

func (s exportSummary) String() string {
	return fmt.Sprintf("export %s: %d keys, %d accounts written; %d unreadable records skipped", s.File, s.Keys, s.Accounts, s.Unreadable)
}

func (s exportSummary) header() []string {
	return []string{"FILE", "KEYS", "ACCOUNTS", "UNREADABLE_SKIPPED"}
}
func (s exportSummary) row() []string {
	return []string{s.File, strconv.Itoa(s.Keys), strconv.Itoa(s.Accounts), strconv.Itoa(s.Unreadable)}
}

// exportRecords writes every key and account record of the bucket in the
// import format: keys by hash, then accounts by id; a key with a tombstone is
// exported revoked, as it is answered. Unreadable records are
// reported on stderr and skipped, and make the command fail at the end.
func (e *cmdEnv) exportRecords(ctx context.Context, file, output string) error {
	recs, bad, err := e.readBucket(ctx)
	if err != nil {
		return err
	}
	if file == "" {
		err = writeRecords(e.stdout, recs)
	} else {
		if err = writeFileAtomic(file, func(w io.Writer) error { return writeRecords(w, recs) }); err != nil {
			err = fmt.Errorf("--file: %w", withoutPath(err))
		}
	}
	if err != nil {
		return err
	}
	if file != "" {
		sum := exportSummary{File: file, Unreadable: bad}
		for _, r := range recs {
			if r.isKey {
				sum.Keys++
			} else {
				sum.Accounts++
			}
		}
		if err := printSummary(e.stdout, output, sum); err != nil {
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d unreadable records skipped (named above); %d records written", bad, len(recs))
	}
	return nil
}

// readBucket connects and reads the latest value of every record, in sorted
// order. Unreadable records are named on stderr and counted.
func (e *cmdEnv) readBucket(ctx context.Context) ([]record, int, error) {
	conn, kv, err := e.open(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	kw, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, 0, fmt.Errorf("watch bucket %s: %w", kv.Bucket(), err)
	}
	defer kw.Stop()
	var recs []record
	bad := 0
	revoked := map[authz.KeyHash]bool{} // keys with a tombstone: revoked whatever their record says
	for {
		var entry jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case next, ok := <-kw.Updates():
			if !ok {
				return nil, 0, errors.New("watch closed before the end of the bucket")
			}
			entry = next
		}
		if entry == nil { // every record delivered
			break
		}
		if k := events.ParseKVKey(entry.Key()); k.Kind == events.KindTombstone {
			revoked[k.Hash] = true
			continue
		}
		rec, err := decodeEntry(entry)
		if err != nil {
			fmt.Fprintf(e.stderr, "footstepctl: export: %s: %s\n", safeKVKey(entry.Key()), problem(err))
			bad++
			continue
		}
		recs = append(recs, rec)
	}
	for i := range recs {
		if recs[i].isKey && revoked[recs[i].hash] {
			recs[i].key.State = authz.StateRevoked
		}
	}
	slices.SortFunc(recs, compareRecords)
	return recs, bad, nil
}

func decodeEntry(e jetstream.KeyValueEntry) (record, error) {
	k := events.ParseKVKey(e.Key())
	switch k.Kind {
	case events.KindKey:
		rec, err := events.DecodeKey(e.Value())
		return record{isKey: true, hash: k.Hash, key: rec}, err
	case events.KindAccount:
		acct, err := events.DecodeAccount(e.Value())
		return record{account: k.AccountID, balance: acct.Balance}, err
	}
	return record{}, errors.New("not a key or account record")
}

// compareRecords orders keys (by hash) before accounts (by id).
func compareRecords(a, b record) int {
	if a.isKey != b.isKey {
		if a.isKey {
			return -1
		}
		return 1
	}
	if a.isKey {
		return cmp.Compare(a.hash.String(), b.hash.String())
	}
	return cmp.Compare(a.account, b.account)
}

func writeRecords(w io.Writer, recs []record) error {
	bw := bufio.NewWriter(w)
	for _, r := range recs {
		if err := writeLine(bw, r); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writeFileAtomic writes name through a temporary file in the same
// directory, renamed over name only when everything was written.
func writeFileAtomic(name string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing to remove
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
