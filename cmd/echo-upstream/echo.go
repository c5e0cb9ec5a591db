package main

import (
	"encoding/json"
	"net/http"
	"strings"
)

// request is what echo answers: the request as the upstream received it.
type request struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
}

// echo writes the received method, URI, host and headers as indented JSON. Header
// names are lowercased, as Envoy sends them over HTTP/2 and as DESIGN.md names them.
func echo(w http.ResponseWriter, r *http.Request) {
	headers := make(map[string][]string, len(r.Header))
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = v
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(request{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Headers: headers})
}
