package envoy

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"

	"github.com/footstep/authz/authz"
)

// BenchmarkAnswerEncode is what encoding an allowed answer for the wire
// costs: with gRPC's proto codec (at each call, as before answers were
// kept) and with the server's codec (a kept answer).
func BenchmarkAnswerEncode(b *testing.B) {
	r := &Result{Code: authz.CodeOK, Key: authz.KeyRecord{KeyID: "key_01JBZ8Q4W2", AccountID: "acct_01JBZ8Q4"}}
	kept := newOKAnswers().response(r, nil)
	for name, c := range map[string]encoding.CodecV2{
		"grpc":   encoding.GetCodecV2(grpcproto.Name),
		"server": codec{encoding.GetCodecV2(grpcproto.Name)},
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				data, err := c.Marshal(kept)
				if err != nil {
					b.Fatal(err)
				}
				data.Free()
			}
		})
	}
}

// TestHotAnswersAreKept: 1,000 hot keys, each asked for again after all the
// others, find their kept answer nearly every time. With one slot a key,
// the keys that share a slot with another (a fifth of them in 4,096 slots)
// rebuilt theirs at every use.
func TestHotAnswersAreKept(t *testing.T) {
	const keys = 1000
	o := newOKAnswers()
	results := make([]*Result, keys)
	for i := range results {
		results[i] = &Result{Code: authz.CodeOK, Key: authz.KeyRecord{KeyID: fmt.Sprintf("key_hot_%d", i), AccountID: "acct_hot"}}
	}
	answers := make([]*answer, keys)
	for range 3 { // settle: a key evicted by a later one finds a slot again
		for i, r := range results {
			answers[i] = o.response(r, nil)
		}
	}
	kept := 0
	for i, r := range results {
		a := o.response(r, nil)
		if a == answers[i] {
			kept++
		}
		if a.GetOkResponse() == nil || a.wire == nil {
			t.Fatalf("answer for %s: %v, wire %d bytes", r.Key.KeyID, a.CheckResponse, len(a.wire))
		}
	}
	t.Logf("%d of %d hot keys found their answer kept", kept, keys)
	if kept < keys*95/100 {
		t.Errorf("%d of %d hot keys found their answer kept; want at least 95%%", kept, keys)
	}
}
