package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/footstep/authz/authz"
	"github.com/footstep/authz/events"
	"github.com/spf13/cobra"
)

// importOpTimeout bounds the NATS work of one line.
const importOpTimeout = 10 * time.Second

// importStats counts what an import did.
type importStats struct {
	keysCreated, keysUpdated, keysUnchanged int
	accountsSet, accountsUnchanged          int
	refused                                 []string // "file:line: why", nothing written
}

func init() { register("", newImportCmd) }

func newImportCmd(e *cmdEnv) *cobra.Command {
	var file string
	var startLine int
	cmd := leaf{
		use:   "import",
		short: "Load keys and balances from a JSON Lines file (by hash; safe to run again)",
		long: `Load keys and balances from a JSON Lines file, one object per line:

  {"type":"key","key_hash":"<64 hex>","key_id":"key_1","account_id":"acct_1","state":"active"}
  {"type":"account","account_id":"acct_1","balance":"12.50"}

The whole file is checked first and nothing is written if a line is bad (the
error names the line and the field, never a value). Then lines are written in
order, skipping records already as in the file, so that running it again is
safe and resumes an interrupted import; --start-line skips the lines before
it. A key revoked in the bucket is never brought back: its line is refused.
The summary is one line of text unless -o asks for json, yaml or table.`,
		example: `  footstepctl import --file keys.jsonl
  footstepctl export --nats-url nats://old:4222 | footstepctl import --file -
  footstepctl import --file keys.jsonl --start-line 5001 -o json`,
	}.summaryCommand(func(cmd *cobra.Command, output string) error {
		return e.importKeys(cmd.Context(), file, startLine, output)
	})
	cmd.Flags().StringVar(&file, "file", "", "JSON Lines file of keys and accounts; - reads standard input (required)")
	cmd.Flags().IntVar(&startLine, "start-line", 1, "skip the lines before this one (resume an interrupted import)")
	return cmd
}

// importKeys loads a JSON Lines file of keys and balances into the bucket.
// It checks the whole file first and writes nothing if a line is bad. Then
// it writes line by line, skipping records already as in the file, so that
// running it again is safe and resumes an interrupted import.
func (e *cmdEnv) importKeys(ctx context.Context, file string, startLine int, output string) error {
	if file == "" {
		return errors.New("missing --file")
	}
	recs, lines, err := e.readImport(file)
	if err != nil {
		return err
	}
	conn, kv, err := e.open(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	im := &importer{p: events.NewPublisher(conn.JetStream(), kv), name: file, lines: lines,
		progress: newProgress(e.stderr, lines)}
	err = im.run(ctx, recs, startLine)
	im.progress.done()
	if perr := printSummary(e.stdout, output, im.summary()); perr != nil && err == nil {
		err = perr
	}
	return err
}

func (e *cmdEnv) readImport(file string) ([]record, int, error) {
	if file == "-" {
		return readRecords(e.stdin, "stdin")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, fmt.Errorf("--file: %w", withoutPath(err))
	}
	defer f.Close()
	return readRecords(f, file)
}

// importer writes validated records.
type importer struct {
	p        *events.Publisher
	name     string
	lines    int
	progress *progress
	stats    importStats
}

func (im *importer) run(ctx context.Context, recs []record, startLine int) error {
	for _, rec := range recs {
		if rec.line < startLine {
			continue
		}
		if err := im.write(ctx, rec); err != nil {
			return fmt.Errorf("%s:%d: %w; lines before it are written: rerun, or add --start-line %d to resume",
				im.name, rec.line, err, rec.line)
		}
		im.progress.update(rec.line, &im.stats)
	}
	if n := len(im.stats.refused); n > 0 {
		return fmt.Errorf("%d lines refused, the others written: %s", n, listClipped(im.stats.refused))
	}
	return nil
}

func (im *importer) write(ctx context.Context, rec record) error {
	ctx, cancel := context.WithTimeout(ctx, importOpTimeout)
	defer cancel()
	if rec.isKey {
		return im.writeKey(ctx, rec)
	}
	return im.writeAccount(ctx, rec)
}

func (im *importer) writeKey(ctx context.Context, rec record) error {
	cur, err := im.p.GetKey(ctx, rec.hash)
	found := err == nil
	switch {
	case errors.Is(err, events.ErrBadRecord):
		im.refuse(rec, "the bucket holds an unreadable record for this key_hash; delete it first")
		return nil
	case err != nil && !errors.Is(err, events.ErrNotFound):
		return err
	case found && sameRecord(cur.Record, rec.key):
		im.stats.keysUnchanged++
		return nil
	case found && cur.Record.State == authz.StateRevoked:
		im.refuse(rec, "the key is revoked in the bucket; revoked is terminal")
		return nil
	}
	if _, err := im.p.PutKey(ctx, rec.hash, rec.key); err != nil {
		if errors.Is(err, authz.ErrRevokedTerminal) {
			im.refuse(rec, "the key is revoked in the bucket; revoked is terminal")
			return nil
		}
		return err
	}
	if found {
		im.stats.keysUpdated++
	} else {
		im.stats.keysCreated++
	}
	return nil
}

func (im *importer) writeAccount(ctx context.Context, rec record) error {
	cur, err := im.p.GetAccount(ctx, rec.account)
	switch {
	case err == nil && cur.Account.Balance.String() == rec.balance.String():
		im.stats.accountsUnchanged++
		return nil
	case err != nil && !errors.Is(err, events.ErrNotFound) && !errors.Is(err, events.ErrBadRecord):
		return err
	}
	if _, err := im.p.SetBalance(ctx, rec.account, rec.balance); err != nil {
		return err
	}
	im.stats.accountsSet++
	return nil
}

func (im *importer) refuse(rec record, why string) {
	im.stats.refused = append(im.stats.refused, fmt.Sprintf("%s:%d: %s", im.name, rec.line, why))
}

// importSummary is what an import did.
type importSummary struct {
	File              string   `json:"file"`
	Lines             int      `json:"lines"`
	KeysCreated       int      `json:"keys_created"`
	KeysUpdated       int      `json:"keys_updated"`
	KeysUnchanged     int      `json:"keys_unchanged"`
	AccountsSet       int      `json:"accounts_set"`
	AccountsUnchanged int      `json:"accounts_unchanged"`
	Refused           []string `json:"refused"` // "file:line: why"
}

func (im *importer) summary() importSummary {
	s := &im.stats
	return importSummary{File: im.name, Lines: im.lines, KeysCreated: s.keysCreated, KeysUpdated: s.keysUpdated,
		KeysUnchanged: s.keysUnchanged, AccountsSet: s.accountsSet, AccountsUnchanged: s.accountsUnchanged,
		Refused: append([]string{}, s.refused...)}
}

// String is the summary as one line of text.
func (s importSummary) String() string {
	return fmt.Sprintf("import %s: %d lines; keys: %d created, %d updated, %d unchanged; accounts: %d set, %d unchanged; %d refused",
		s.File, s.Lines, s.KeysCreated, s.KeysUpdated, s.KeysUnchanged, s.AccountsSet, s.AccountsUnchanged, len(s.Refused))
}

func (s importSummary) header() []string {
	return []string{"FILE", "LINES", "KEYS_CREATED", "KEYS_UPDATED", "KEYS_UNCHANGED", "ACCOUNTS_SET", "ACCOUNTS_UNCHANGED", "REFUSED"}
}

func (s importSummary) row() []string {
	return []string{s.File, strconv.Itoa(s.Lines), strconv.Itoa(s.KeysCreated), strconv.Itoa(s.KeysUpdated),
		strconv.Itoa(s.KeysUnchanged), strconv.Itoa(s.AccountsSet), strconv.Itoa(s.AccountsUnchanged), strconv.Itoa(len(s.Refused))}
}

// progress shows a one-line progress report on a terminal, at most ten
// times a second; elsewhere it stays silent.
type progress struct {
	w     io.Writer // nil when not a terminal
	total int
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return &progress{w: w, total: total}
		}
	}
	return &progress{}
}

func (p *progress) update(line int, s *importStats) {
	if p.w == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\rimport: line %d of %d (%3.0f%%), %d written, %d unchanged   ", line, p.total,
		100*float64(line)/float64(max(p.total, 1)), s.keysCreated+s.keysUpdated+s.accountsSet, s.keysUnchanged+s.accountsUnchanged)
}

func (p *progress) done() {
	if p.w != nil && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// sameRecord reports whether two key records say the same.
func sameRecord(a, b authz.KeyRecord) bool {
	return a.KeyID == b.KeyID && a.AccountID == b.AccountID && a.State == b.State && a.ExpiresAt.Equal(b.ExpiresAt)
}
