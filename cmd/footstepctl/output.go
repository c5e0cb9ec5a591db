package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	formatJSON  = "json"
	formatYAML  = "yaml"
	formatTable = "table"
)

// tabular is a value that -o table can show: a header and one row.
type tabular interface {
	header() []string
	row() []string
}

// formatValue is the -o flag: json, yaml or table.
type formatValue struct{ dst *string }

func (f formatValue) String() string { return *f.dst }
func (f formatValue) Type() string   { return "format" }

func (f formatValue) Set(s string) error {
	switch s {
	case formatJSON, formatYAML, formatTable:
		*f.dst = s
		return nil
	}
	return errors.New("want json, yaml or table")
}

// addOutputFlag adds -o/--output to cmd, json by default.
func addOutputFlag(cmd *cobra.Command, dst *string) {
	*dst = formatJSON
	cmd.Flags().VarP(formatValue{dst}, "output", "o", "output format: json (one object per line), yaml or table")
	completeFormats(cmd)
}

// completeFormats offers the formats to shell completion of -o.
func completeFormats(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{formatJSON, formatYAML, formatTable}, cobra.ShellCompDirectiveNoFileComp))
}

// printOne writes v in format: one JSON line, a YAML document, or a table
// of a header and one row.
func printOne(w io.Writer, format string, v tabular) error {
	switch format {
	case formatYAML:
		return writeYAML(w, v)
	case formatTable:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(v.header(), "\t"))
		fmt.Fprintln(tw, strings.Join(v.row(), "\t"))
		return tw.Flush()
	}
	return writeJSON(w, v)
}

// streamPrinter writes a sequence of values: JSON lines, YAML documents
// separated by "---", or table rows under one header, in columns as wide as
// the widest value each can hold (a stream cannot be measured first).
type streamPrinter struct {
	w       io.Writer
	format  string
	widths  []int
	started bool
}

func (p *streamPrinter) print(v tabular) error {
	switch p.format {
	case formatYAML:
		if _, err := io.WriteString(p.w, "---\n"); err != nil {
			return err
		}
		return writeYAML(p.w, v)
	case formatTable:
		if !p.started {
			p.started = true
			if err := p.line(v.header()); err != nil {
				return err
			}
		}
		return p.line(v.row())
	}
	return writeJSON(p.w, v)
}

// note writes a line that is not a value (table output only).
func (p *streamPrinter) note(s string) error {
	_, err := fmt.Fprintf(p.w, "# %s\n", s)
	return err
}

func (p *streamPrinter) line(cells []string) error {
	var b strings.Builder
	for i, c := range cells {
		if i < len(cells)-1 && i < len(p.widths) {
			fmt.Fprintf(&b, "%-*s  ", p.widths[i], c)
		} else {
			b.WriteString(c)
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(p.w, b.String())
	return err
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func writeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// summaryValue is a summary printed as one line of text by default.
type summaryValue interface {
	tabular
	fmt.Stringer
}

// addSummaryOutputFlag adds -o/--output to a command whose output is a
// summary: one line of text unless -o is given.
func addSummaryOutputFlag(cmd *cobra.Command, dst *string) {
	*dst = ""
	cmd.Flags().VarP(formatValue{dst}, "output", "o", "output format of the summary: json, yaml or table (default one line of text)")
	completeFormats(cmd)
}

// printSummary writes s as one line of text, or in format when one was given.
func printSummary(w io.Writer, format string, s summaryValue) error {
	if format == "" {
		_, err := fmt.Fprintln(w, s.String())
		return err
	}
	return printOne(w, format, s)
}
