package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/footstep/authz/authz"
)

// Sizes of BenchmarkBalanceChurn.
const (
	churnAccounts = 100000 // accounts whose balances change
	warmAccounts  = 20000  // accounts the readers read, among the churned ones
	warmKeys      = 5000
)

// churnLoader is the bucket of BenchmarkBalanceChurn: keys as benchLoader,
// and accounts at the revision of their last balance change. It counts the
// loads of accounts that never changed: each is a miss the churn caused.
type churnLoader struct {
	benchLoader
	revs           []atomic.Uint64
	changed        []atomic.Bool
	unchangedLoads atomic.Int64
}

func (l *churnLoader) LoadAccount(_ context.Context, id string) (authz.AccountEntry, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "acct_"))
	if err != nil || i < 0 || i >= len(l.revs) {
		return authz.AccountEntry{Presence: authz.Absent}, nil
	}
	if !l.changed[i].Load() {
		l.unchangedLoads.Add(1)
	}
	return authz.AccountEntry{Revision: l.revs[i].Load(), Presence: authz.Present}, nil
}

// BenchmarkBalanceChurn reads warm keys and accounts from every P while a
// goroutine changes balances of 100,000 accounts at 5,000 (and 20,000) a
// second, the watch applying each change. It reports the hit ratio of
// accounts that never changed and of keys (none change), and the misses
// answered ErrLoadBudget under the default budget of 10,000 loads a second.
func BenchmarkBalanceChurn(b *testing.B) {
	for _, rate := range []int{5000, 20000} {
		b.Run(fmt.Sprintf("changes=%d/s", rate), func(b *testing.B) { balanceChurn(b, rate) })
	}
}

func balanceChurn(b *testing.B, rate int) {
	l := &churnLoader{revs: make([]atomic.Uint64, churnAccounts), changed: make([]atomic.Bool, churnAccounts)}
	s, err := New(Config{Loader: l, MaxBytes: 64 << 20, MaxLoadsPerSecond: 10000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	ids := make([]string, churnAccounts)
	rev := uint64(0)
	for i := range ids {
		ids[i] = "acct_" + strconv.Itoa(i)
		rev++
		l.revs[i].Store(rev)
		s.ApplyAccount(ids[i], authz.AccountEntry{Revision: rev, Presence: authz.Present}) // the watch's first sync
	}
	hashes := benchHashes(warmKeys)
	warmChurn(b, s, hashes, ids[:warmAccounts])
	before, unchangedBefore := s.Stats(), l.unchangedLoads.Load()
	var unchangedReads, keyReads atomic.Int64
	stop, done := make(chan struct{}), make(chan int)
	go churn(s, l, ids, rev, rate, stop, done)
	start := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := rand.IntN(warmAccounts)
			unchanged := !l.changed[i].Load()
			if _, err := s.Account(ctx, ids[i]); err == nil && unchanged {
				unchangedReads.Add(1)
			}
			s.Key(ctx, hashes[rand.IntN(warmKeys)])
			keyReads.Add(1)
		}
	})
	b.StopTimer()
	close(stop)
	changes := <-done
	after := s.Stats()
	unchangedLoads := l.unchangedLoads.Load() - unchangedBefore
	keyLoads := after.Keys.Loads - before.Keys.Loads
	b.ReportMetric(100*(1-float64(unchangedLoads)/float64(max(1, unchangedReads.Load()))), "unchanged-acct-hit-%")
	b.ReportMetric(100*(1-float64(keyLoads)/float64(max(1, keyReads.Load()))), "key-hit-%")
	b.ReportMetric(float64(unchangedLoads), "unchanged-acct-loads")
	b.ReportMetric(float64(int64(after.Accounts.Loads-before.Accounts.Loads)-unchangedLoads), "changed-acct-loads")
	b.ReportMetric(float64(after.Keys.Throttled+after.Accounts.Throttled-before.Keys.Throttled-before.Accounts.Throttled), "throttled")
	b.ReportMetric(float64(changes)/time.Since(start).Seconds(), "changes/s")
}

// warmChurn reads every warm key and account until all are cached, pacing
// itself to the load budget.
func warmChurn(b *testing.B, s *Store, hashes []authz.KeyHash, ids []string) {
	b.Helper()
	ctx := context.Background()
	for range 2 {
		for i, id := range ids {
			for _, err := s.Account(ctx, id); errors.Is(err, ErrLoadBudget); _, err = s.Account(ctx, id) {
				time.Sleep(time.Millisecond) // the budget refills
			}
			if i < len(hashes) {
				for _, err := s.Key(ctx, hashes[i]); errors.Is(err, ErrLoadBudget); _, err = s.Key(ctx, hashes[i]) {
					time.Sleep(time.Millisecond)
				}
			}
			if i%1000 == 999 {
				s.accounts.rc.Wait()
				s.keys.rc.Wait()
			}
		}
	}
}

// churn changes random balances at rate a second until stop closes, writing the
// bucket first and then applying the change as the watch would. It sends the
// number of changes on done.
func churn(s *Store, l *churnLoader, ids []string, rev uint64, rate int, stop <-chan struct{}, done chan<- int) {
	start := time.Now()
	n := 0
	for {
		select {
		case <-stop:
			done <- n
			return
		default:
		}
		for due := int(time.Since(start).Seconds() * float64(rate)); n < due; n++ {
			i := rand.IntN(len(ids))
			rev++
			l.revs[i].Store(rev)
			l.changed[i].Store(true)
			s.ApplyAccount(ids[i], authz.AccountEntry{Revision: rev, Presence: authz.Present})
		}
		time.Sleep(time.Millisecond) // pace to the rate
	}
}
