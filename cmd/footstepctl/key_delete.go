package main

func init() {
	register("key", newKeyChangeCmd(leaf{
		use:   "delete",
		short: "Delete a key (revoked or not, readable or not) and its revocation tombstone",
		long: `Delete a key's record, revoked or not and readable or not, then its revocation
tombstone, each only if unchanged since read; where no tombstone stands, a
delete marker is written in its place, so that a replica that knew a
revocation by the record alone sees it end even if the key is put again at
once. The key then answers 403 invalid_api_key. Deleting a key that does not
exist succeeds with revision 0.`,
		example: `  printf '%s\n' "$KEY" | footstepctl key delete --key -
  footstepctl key delete --hash 5e8f...`,
	}, func(b bucket) keyOp { return b.DeleteKey }))
}
