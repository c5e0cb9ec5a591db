package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/footstep/authz/cache"
)

// CacheStats gives a cache's counters; *cache.Store implements it.
type CacheStats interface {
	Stats() cache.Stats
}

// cacheCounter is one counter of cache.TableStats, exported per table.
type cacheCounter struct {
	name, help string
	value      func(cache.TableStats) uint64
}

var cacheCounters = []cacheCounter{
	{"hits_total", "Reads answered from memory with a present or unreadable entry.", func(s cache.TableStats) uint64 { return s.Hits }},
	{"negative_hits_total", "Reads answered from memory with a remembered unknown (absent) entry.", func(s cache.TableStats) uint64 { return s.NegativeHits }},
	{"misses_total", "Reads that needed a key-value lookup.", func(s cache.TableStats) uint64 { return s.Misses }},
	{"loads_total", "Key-value lookups made by the cache, each attempt counted.", func(s cache.TableStats) uint64 { return s.Loads }},
	{"load_errors_total", "Key-value lookups that failed.", func(s cache.TableStats) uint64 { return s.LoadErrors }},
	{"throttled_total", "Misses not loaded because the lookup budget was spent; answered 503.", func(s cache.TableStats) uint64 { return s.Throttled }},
	{"stale_loads_total", "Lookups discarded because a newer change was applied meanwhile.", func(s cache.TableStats) uint64 { return s.StaleLoads }},
	{"overruns_total", "Lookups retried because a reset or a newer change came while they were in flight.", func(s cache.TableStats) uint64 { return s.Overruns }},
	{"unknown_total", "Misses answered invalid_api_key from the watcher's index of existing keys, without a lookup.", func(s cache.TableStats) uint64 { return s.Unknown }},
	{"withheld_total", "Changes applied as a removal only, because they could be older than a read (the next read loads).", func(s cache.TableStats) uint64 { return s.Withheld }},
	{"overflows_total", "Pins or floors that found their shard full (changes there are then withheld).", func(s cache.TableStats) uint64 { return s.Overflows }},
	{"drains_total", "Waits for ristretto to apply what was issued, so that pinned changes can be released.", func(s cache.TableStats) uint64 { return s.Drains }},
	{"changes_applied_total", "Changes from the watch applied to the cache, initial replay included.", func(s cache.TableStats) uint64 { return s.Applied }},
	{"stale_changes_total", "Changes ignored because a newer one was already applied.", func(s cache.TableStats) uint64 { return s.StaleChanges }},
	{"resets_total", "Full resets of the cache.", func(s cache.TableStats) uint64 { return s.Resets }},
	{"dropped_sets_total", "Cache fills that ristretto refused at once (a later read misses again).", func(s cache.TableStats) uint64 { return s.DroppedSets }},
	{"rejected_sets_total", "Cache fills ristretto did not store: turned down by its admission policy, or older than the entry it held.", func(s cache.TableStats) uint64 { return s.Rejected }},
	{"evictions_total", "Entries evicted to stay within --cache-size.", func(s cache.TableStats) uint64 { return s.Evicted }},
	{"expired_total", "Entries of unknown keys dropped once --negative-ttl ran out.", func(s cache.TableStats) uint64 { return s.Expired }},
}

// cacheGauges are the values of cache.TableStats that go up and down.
var cacheGauges = []cacheCounter{
	{"pins", "Changes held outside ristretto until it has applied them.", func(s cache.TableStats) uint64 { return s.Pins }},
	{"floors", "Revisions read ahead of the watch, held until the watch passes them.", func(s cache.TableStats) uint64 { return s.Floors }},
}

// cacheCollector reads the cache's counters at every scrape, labelled by
// table (key or account).
type cacheCollector struct {
	src   CacheStats
	descs []*prometheus.Desc
	gauge []*prometheus.Desc
}

func newCacheCollector(src CacheStats) *cacheCollector {
	c := &cacheCollector{src: src}
	for _, cc := range cacheCounters {
		c.descs = append(c.descs, prometheus.NewDesc(
			prometheus.BuildFQName(Namespace, "cache", cc.name), cc.help+" By table: key or account.", []string{"table"}, nil))
	}
	for _, g := range cacheGauges {
		c.gauge = append(c.gauge, prometheus.NewDesc(
			prometheus.BuildFQName(Namespace, "cache", g.name), g.help+" By table: key or account.", []string{"table"}, nil))
	}
	return c
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append(c.descs, c.gauge...) {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	for i, cc := range cacheCounters {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(cc.value(s.Keys)), KindKey)
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(cc.value(s.Accounts)), KindAccount)
	}
	for i, g := range cacheGauges {
		ch <- prometheus.MustNewConstMetric(c.gauge[i], prometheus.GaugeValue, float64(g.value(s.Keys)), KindKey)
		ch <- prometheus.MustNewConstMetric(c.gauge[i], prometheus.GaugeValue, float64(g.value(s.Accounts)), KindAccount)
	}
}
