package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func init() { register("", newCompletionCmd) }

func newCompletionCmd(e *cmdEnv) *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish|powershell",
		Short:     "Print a shell completion script",
		Long:      "Print the completion script of footstepctl for a shell, to be loaded by that shell.",
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Example: `  source <(footstepctl completion bash)
  footstepctl completion zsh > "${fpath[1]}/_footstepctl"
  footstepctl completion fish > ~/.config/fish/completions/footstepctl.fish`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("want one shell: bash, zsh, fish or powershell")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(e.stdout, true)
			case "zsh":
				return root.GenZshCompletion(e.stdout)
			case "fish":
				return root.GenFishCompletion(e.stdout, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(e.stdout)
			}
			return errors.New("want one shell: bash, zsh, fish or powershell")
		},
	}
}
