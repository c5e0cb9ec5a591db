package envoy

import (
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
