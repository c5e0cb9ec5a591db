package testkit

import (
	"io"
	"net/http"
	"testing"
)

// Fetch adds headers (name, value pairs; a name may repeat) to req, sends it
// with client, and returns the status, the headers and the whole body of the
// response. Failing to send or to read is fatal.
func Fetch(tb testing.TB, client *http.Client, req *http.Request, headers ...string) (int, http.Header, string) {
	tb.Helper()
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}
