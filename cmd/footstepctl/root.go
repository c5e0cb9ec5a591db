package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// commandFactory builds one command, with its flags, for one run.
type commandFactory func(*cmdEnv) *cobra.Command

// registry maps a parent command's path below the root ("" for the root,
// "key" for the subcommands of key) to the constructors of its commands.
// Each command's file adds its constructor from an init function, so that a
// new subcommand is one new file; the registry holds constructors only, is
// complete before main runs and is only read afterwards.
var registry = map[string][]commandFactory{}

// register adds a command under parent ("" for the root, "key", "account").
func register(parent string, f commandFactory) {
	registry[parent] = append(registry[parent], f)
}

// run parses args and runs one command. Help and --version print to stdout
// and return nil. The error names the command: "key get: key not found".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	e := &cmdEnv{g: &globals{}, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.SetArgs(longFlagsWithTwoDashes(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if cmd == nil || cmd == root {
		return err
	}
	return fmt.Errorf("%s: %w", commandName(cmd), err)
}

const rootLong = `footstepctl publishes key and account changes to the NATS key-value bucket that
footstep-authz replicas watch, reads records back, watches changes, and imports
and exports records. Keys travel as SHA-256 hashes only: the plaintext key
never leaves this process.

Name a key with --key - (the key on standard input), with the FOOTSTEP_API_KEY
environment variable, or by hash with --hash. A key typed after --key stays in
your shell history and shows in ps output; footstepctl warns when you do so.

Connection flags are those of footstep-authz, each also read from the
environment: --nats-url from FOOTSTEP_NATS_URL, then NATS_URL; --kv-bucket from
FOOTSTEP_KV_BUCKET; --nats-creds from FOOTSTEP_NATS_CREDS, and so on.`

const rootExample = `  read -rs KEY && printf '%s\n' "$KEY" | footstepctl key put --key - --account acct_9
  footstepctl account set-balance --account acct_9 --balance 12.50
  FOOTSTEP_API_KEY=... footstepctl key get -o yaml
  footstepctl --nats-url nats://nats.internal:4222 watch --updates-only`

// exitStatusHelp ends every command's help.
const exitStatusHelp = `
Exit status:
  0  success (watch: also when stopped by Ctrl-C or SIGTERM)
  1  any error: bad flags or arguments, a refused change, a record not found
     or unreadable, NATS unreachable; one line on standard error:
     footstepctl: <command>: <what went wrong>
`

func newRoot(e *cmdEnv) *cobra.Command {
	root := &cobra.Command{
		Use:               "footstepctl",
		Short:             "Publish API key and account changes for footstep-authz",
		Long:              rootLong,
		Example:           rootExample,
		Version:           version(),
		Args:              commandArgs,
		RunE:              missingCommand(e),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetVersionTemplate("footstepctl {{.Version}}\n")
	root.SetUsageTemplate(root.UsageTemplate() + exitStatusHelp)
	root.SetFlagErrorFunc(flagError)
	root.SetHelpCommand(newHelpCmd())
	e.g.register(root.PersistentFlags())
	addChildren(e, root, "")
	root.SetGlobalNormalizationFunc(aliasFlags)
	e.root = root
	return root
}

// addChildren adds the registered commands under path, recursively.
func addChildren(e *cmdEnv, parent *cobra.Command, path string) {
	for _, f := range registry[path] {
		c := f(e)
		parent.AddCommand(c)
		addChildren(e, c, strings.TrimSpace(path+" "+c.Name()))
	}
}

// registerGroup registers a command under the root that only holds
// subcommands, such as key.
func registerGroup(name, short, example string) {
	register("", func(e *cmdEnv) *cobra.Command {
		return &cobra.Command{
			Use: name, Short: short, Example: example,
			Args: commandArgs, RunE: missingCommand(e),
		}
	})
}

// leaf is the help of a command that takes flags only, never positional
// arguments, and prints its result in the format of -o/--output.
type leaf struct{ use, short, long, example string }

// command returns the command with -o/--output; run gets the format asked
// for.
func (l leaf) command(run func(cmd *cobra.Command, output string) error) *cobra.Command {
	return l.build(addOutputFlag, run)
}

// summaryCommand is command for a command that prints a summary: one line
// of text unless -o asks for a format.
func (l leaf) summaryCommand(run func(cmd *cobra.Command, output string) error) *cobra.Command {
	return l.build(addSummaryOutputFlag, run)
}

func (l leaf) build(addOutput func(*cobra.Command, *string), run func(*cobra.Command, string) error) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: l.use, Short: l.short, Long: l.long, Example: l.example,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, output) },
	}
	addOutput(cmd, &output)
	return cmd
}

// missingCommand prints the usage of a group run without a subcommand on
// standard error, and fails.
func missingCommand(e *cmdEnv) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		fmt.Fprint(e.stderr, cmd.UsageString())
		return fmt.Errorf("missing command: see %s --help", cmd.CommandPath())
	}
}

// commandArgs refuses an unknown subcommand without quoting it: a word
// typed there may be a key.
func commandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := ""
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return fmt.Errorf("unknown command%s: see %s --help", hint, cmd.CommandPath())
}

// noArgs refuses positional arguments without quoting them.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument (values go after their flags): see %s --help", cmd.CommandPath())
	}
	return nil
}

// commandName is a command's path without "footstepctl ".
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "help [command]",
		Short:   "Help about any command",
		Example: "  footstepctl help key put\n  footstepctl key put --help",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				return errors.New("unknown command: see footstepctl --help")
			}
			return cmd.Help()
		},
	}
}
