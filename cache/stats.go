package cache

import "sync/atomic"

// Stats counts what a Store did since New.
type Stats struct {
	Keys     TableStats
	Accounts TableStats
}

// TableStats counts the activity of one kind of entry.
type TableStats struct {
	Hits         uint64 // reads answered from memory with a present or unreadable entry
	NegativeHits uint64 // reads answered from memory with an absent entry
	Misses       uint64 // reads that needed a load
	Loads        uint64 // loads from the Loader, each attempt counted
	LoadErrors   uint64 // loads that failed
	Throttled    uint64 // misses not loaded because the lookup budget was spent (answered Unreadable)
	Unknown      uint64 // misses answered absent from Config.Membership, without a load
	StaleLoads   uint64 // loads that lost to a newer change applied meanwhile
	Overruns     uint64 // loads retried because a Reset or a newer change that was not shown came meanwhile
	Applied      uint64 // changes applied from the watch
	StaleChanges uint64 // changes ignored because a newer revision was already held
	Withheld     uint64 // changes applied as a removal only, not shown: they could be older than a read
	Overflows    uint64 // pins or floors that found their shard full (changes there may then be withheld)
	Drains       uint64 // waits for ristretto to apply what was issued, so that pins can be released
	Pins         uint64 // changes held outside ristretto until it has caught up (a gauge)
	Floors       uint64 // revisions read ahead of the watch, held until the watch passes them (a gauge)
	// Forgets is always zero: shards no longer forget their entries.
	//
	// Deprecated: kept for source compatibility; Overflows counts the
	// nearest event.
	Forgets     uint64
	Resets      uint64 // full resets
	Forgotten   uint64 // keys removed by ForgetKeys, so that their next read loads them
	DroppedSets uint64 // Sets that ristretto refused at once, or entries it cannot hold (a later read misses)
	Rejected    uint64 // Sets ristretto did not store: turned down by its admission policy, or older than the entry held
	Evicted     uint64 // entries ristretto evicted to stay in budget
	Expired     uint64 // negative entries dropped once their time to live (Config.NegativeTTL) ran out
}

type counters struct {
	hits, negativeHits, misses, loads, loadErrors, staleLoads, overruns atomic.Uint64
	applied, staleChanges, withheld, overflows, drains                  atomic.Uint64
	resets, droppedSets, throttled, unknownHits, forgotten              atomic.Uint64
	rejected, evicted, expired                                          atomic.Uint64
}

func (c *counters) hit(absent bool) {
	if absent {
		c.negativeHits.Add(1)
		return
	}
	c.hits.Add(1)
}

func (t *table[K, V, S]) stats() TableStats {
	c := &t.counts
	return TableStats{
		Hits: c.hits.Load(), NegativeHits: c.negativeHits.Load(), Misses: c.misses.Load(),
		Loads: c.loads.Load(), LoadErrors: c.loadErrors.Load(), Throttled: c.throttled.Load(), Unknown: c.unknownHits.Load(), StaleLoads: c.staleLoads.Load(),
		Overruns: c.overruns.Load(), Applied: c.applied.Load(), StaleChanges: c.staleChanges.Load(),
		Withheld: c.withheld.Load(), Overflows: c.overflows.Load(), Drains: c.drains.Load(),
		Pins: uint64(max(0, t.pinned.Load())), Floors: uint64(max(0, t.floored.Load())), Resets: c.resets.Load(), Forgotten: c.forgotten.Load(), DroppedSets: c.droppedSets.Load(),
		Rejected: c.rejected.Load(), Evicted: c.evicted.Load(), Expired: c.expired.Load(),
	}
}
