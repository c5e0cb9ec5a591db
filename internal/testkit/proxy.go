package testkit

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from a loopback port to a target until it
// is cut: cutting closes every connection through it and refuses new ones,
// which is how a test partitions NATS routes while leaving client
// connections alone. Held, it forwards only what the target sends: what a
// client sends waits, and is lost if the proxy is cut before it is released.
// It is safe for concurrent use.
type Proxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	held    chan struct{} // closed when the hold is released; nil when not held
	waiting int           // chunks a hold keeps back
	conns   map[net.Conn]struct{}
}

// NewProxy starts a proxy to target on 127.0.0.1 and a random port; it is
// closed when the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy to %s: %v", target, err)
	}
	p := &Proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	tb.Cleanup(func() {
		l.Close()
		p.Cut(true)
	})
	go p.accept()
	return p
}

// Addr is the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Cut cuts the proxy, closing what goes through it, or heals it. A cut
// drops what a hold kept back and ends the hold.
func (p *Proxy) Cut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if !cut {
		return
	}
	p.release()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Hold stops forwarding what clients send, leaving what the target sends
// flowing, or releases what it kept back.
func (p *Proxy) Hold(hold bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !hold {
		p.release()
		return
	}
	if p.held == nil {
		p.held = make(chan struct{})
	}
}

func (p *Proxy) release() {
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// Holding reports whether a hold keeps back something a client sent.
func (p *Proxy) Holding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting > 0
}

// wait blocks while the proxy holds what clients send; it reports false if
// the proxy was cut meanwhile.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	held := p.held
	if held != nil {
		p.waiting++
	}
	p.mu.Unlock()
	if held != nil {
		<-held
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if held != nil {
		p.waiting--
	}
	return !p.cut
}

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(in net.Conn) {
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	if !p.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		p.send(out, in)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(in, out)
		done <- struct{}{}
	}()
	<-done
	in.Close()
	out.Close()
	<-done
	p.untrack(in, out)
}

// send copies what the client sends to the target, chunk by chunk, each
// chunk waiting out a hold.
func (p *Proxy) send(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}
