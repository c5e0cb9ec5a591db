package events

import (
	"encoding/base64"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestParseMsgGet reads STREAM.MSG.GET answers as the server writes them:
// puts, delete and purge markers (from a client or from an expiry), a
// missing message, and JetStream errors.
func TestParseMsgGet(t *testing.T) {
	hdrs := func(h string) string {
		return base64.StdEncoding.EncodeToString([]byte("NATS/1.0\r\n" + h + "\r\n\r\n"))
	}
	val := base64.StdEncoding.EncodeToString([]byte(`{"balance":"1"}`))
	tests := []struct {
		name      string
		resp      string
		wantOp    jetstream.KeyValueOp
		wantFound bool
		wantErr   bool
	}{
		{"put", `{"message":{"subject":"$KV.b.k","seq":7,"data":"` + val + `","time":"2026-01-01T00:00:00Z"}}`, jetstream.KeyValuePut, true, false},
		{"delete", `{"message":{"seq":7,"hdrs":"` + hdrs("KV-Operation: DEL") + `"}}`, jetstream.KeyValueDelete, true, false},
		{"purge", `{"message":{"seq":7,"hdrs":"` + hdrs("KV-Operation: PURGE") + `"}}`, jetstream.KeyValuePurge, true, false},
		{"expired", `{"message":{"seq":7,"hdrs":"` + hdrs("Nats-Marker-Reason: MaxAge") + `"}}`, jetstream.KeyValuePurge, true, false},
		{"removed", `{"message":{"seq":7,"hdrs":"` + hdrs("Nats-Marker-Reason: Remove") + `"}}`, jetstream.KeyValueDelete, true, false},
		{"other header", `{"message":{"seq":7,"hdrs":"` + hdrs("X-Trace: 1") + `","data":"` + val + `"}}`, jetstream.KeyValuePut, true, false},
		{"not found", `{"error":{"code":404,"err_code":10037,"description":"no message found"}}`, 0, false, false},
		{"stream not found", `{"error":{"code":404,"err_code":10059,"description":"stream not found"}}`, 0, false, true},
		{"no message", `{}`, 0, false, true},
		{"not json", `nope`, 0, false, true},
	}
	for _, tt := range tests {
		e, found, err := parseMsgGet([]byte(tt.resp))
		if (err != nil) != tt.wantErr || found != tt.wantFound || found && (e.op != tt.wantOp || e.revision != 7) {
			t.Errorf("parseMsgGet(%s) = %+v, %v, %v; want op %v, found %v, error %v", tt.name, e, found, err, tt.wantOp, tt.wantFound, tt.wantErr)
		}
	}
}
