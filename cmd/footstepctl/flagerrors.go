package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagError rewrites a flag parsing error in footstepctl's style, without
// the text typed: an unknown flag name or a bad value may be a key.
func flagError(cmd *cobra.Command, err error) error {
	help := fmt.Sprintf("see %s --help", cmd.CommandPath())
	var notExist *pflag.NotExistError
	var needsValue *pflag.ValueRequiredError
	var invalid *pflag.InvalidValueError
	var syntax *pflag.InvalidSyntaxError
	switch {
	case errors.As(err, &notExist):
		if notExist.GetSpecifiedShortnames() != "" {
			return fmt.Errorf("unknown shorthand flag: %s", help)
		}
		return fmt.Errorf("unknown flag%s: %s", suggestFlag(cmd, notExist.GetSpecifiedName()), help)
	case errors.As(err, &needsValue):
		return fmt.Errorf("--%s: needs a value", needsValue.GetFlag().Name)
	case errors.As(err, &invalid):
		return fmt.Errorf("--%s: %s", invalid.GetFlag().Name, wantOf(invalid))
	case errors.As(err, &syntax):
		return fmt.Errorf("bad flag syntax: %s", help)
	}
	return fmt.Errorf("bad flags: %s", help)
}

// wantOf says what a flag wants, without the value it got.
func wantOf(err *pflag.InvalidValueError) string {
	switch err.GetFlag().Value.Type() {
	case "int", "int64", "uint", "uint64":
		return "want a whole number"
	case "bool":
		return "want true or false"
	case "duration":
		return "want a duration such as 90s or 24h"
	}
	if cause := err.Unwrap(); cause != nil {
		return cause.Error() // footstepctl's own flag types say what they want
	}
	return "bad value"
}

// withoutPath drops the file name from a file system error: it was typed
// by the user, and may be a key pasted in the wrong place.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot %s the file: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("cannot %s the file: %w", le.Op, le.Err)
	}
	return err
}

// suggestFlag names the flags of cmd close to the unknown name typed, which
// is not shown itself.
func suggestFlag(cmd *cobra.Command, typed string) string {
	var near []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && editDistance(typed, f.Name) <= 2 {
			near = append(near, "--"+f.Name)
		}
	})
	if len(near) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(near, " or ") + "?)"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// longFlagsWithTwoDashes rewrites "-name" and "-name=value" as
// "--name...", for every long flag name footstepctl knows (old aliases
// included): the Go flag package footstepctl used before accepted both.
// Nothing after "--" is touched.
func longFlagsWithTwoDashes(root *cobra.Command, args []string) []string {
	known := map[string]bool{"help": true, "version": true}
	for old := range flagAliases {
		known[old] = true
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if len(name) > 1 && a[0] == '-' && a[1] != '-' && known[name] {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}
