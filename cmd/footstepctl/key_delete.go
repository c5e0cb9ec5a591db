package main

import (
	"github.com/footstep/authz/events"
	"github.com/spf13/cobra"
)

func init() { register("key", newKeyDeleteCmd) }

func newKeyDeleteCmd(e *cmdEnv) *cobra.Command {
	var k keyFlags
	var output string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a key (revoked or not, readable or not) and its revocation tombstone",
		Long: `Delete a key's record, revoked or not and readable or not, then its revocation
tombstone, each only if unchanged since read. The key then answers 403
invalid_api_key. Deleting a key that does not exist succeeds with revision 0.`,
		Example: `  printf '%s\n' "$KEY" | footstepctl key delete --key -
  footstepctl key delete --hash 5e8f...`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeyChange(cmd.Context(), e, "delete", &k, output,
				func(p *events.Publisher) keyOp { return p.DeleteKey })
		},
	}
	k.register(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}
