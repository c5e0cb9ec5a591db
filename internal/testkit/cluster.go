package testkit

import (
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterSize is how many members StartCluster starts.
const ClusterSize = 3

// clusterName names the NATS cluster that StartCluster starts.
const clusterName = "footstep-test"

// ClusterOption changes how StartCluster builds the cluster.
type ClusterOption func(*clusterConfig)

type clusterConfig struct {
	proxies bool
}

// WithRouteProxies sends every route through a Proxy, and keeps members from
// learning each other's real addresses, so that Partition can cut a member
// off from the others while its clients stay connected to it.
func WithRouteProxies() ClusterOption {
	return func(c *clusterConfig) { c.proxies = true }
}

// Cluster is three nats-servers with JetStream routed to each other, on
// ports picked at start and kept across restarts, so that clients and routes
// find a restarted member where it was. Clients are not told of other
// members (NoAdvertise): a client stays with the member it was given.
type Cluster struct {
	tb    testing.TB
	nodes []*node
	// routes[i][j], with WithRouteProxies, is the proxy that member i's
	// route to member j goes through.
	routes [][]*Proxy
}

// StartCluster starts three members and waits until JetStream has a meta
// leader. They are stopped when the test ends.
func StartCluster(tb testing.TB, opts ...ClusterOption) *Cluster {
	tb.Helper()
	var cfg clusterConfig
	for _, o := range opts {
		o(&cfg)
	}
	c := &Cluster{tb: tb}
	dir := tb.TempDir()
	clusterPorts := make([]int, ClusterSize)
	for i := range ClusterSize {
		clusterPorts[i] = freePort(tb)
		c.nodes = append(c.nodes, &node{tb: tb, opts: &server.Options{
			ServerName: "n" + strconv.Itoa(i), Host: "127.0.0.1", Port: freePort(tb),
			JetStream: true, StoreDir: filepath.Join(dir, "n"+strconv.Itoa(i)), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: clusterName, Host: "127.0.0.1", Port: clusterPorts[i], NoAdvertise: true},
		}})
	}
	if cfg.proxies {
		c.proxyRoutes(clusterPorts)
	}
	for i, n := range c.nodes {
		for j := range c.nodes {
			if j != i {
				n.opts.Routes = append(n.opts.Routes, &url.URL{Scheme: "nats-route", Host: c.routeAddr(i, j, clusterPorts)})
			}
		}
	}
	tb.Cleanup(func() {
		for _, n := range c.nodes {
			n.stop()
		}
	})
	for i := range c.nodes {
		c.Start(i)
	}
	c.WaitJetStream()
	return c
}

func (c *Cluster) proxyRoutes(clusterPorts []int) {
	c.routes = make([][]*Proxy, ClusterSize)
	for i, n := range c.nodes {
		c.routes[i] = make([]*Proxy, ClusterSize)
		for j := range c.nodes {
			if j != i {
				c.routes[i][j] = NewProxy(c.tb, loopback(clusterPorts[j]))
			}
		}
		// Members must not learn each other's real addresses, or they would
		// route around the proxies.
		n.opts.Cluster.Advertise = "127.0.0.1:1"
		n.opts.Cluster.PoolSize = -1
	}
}

func (c *Cluster) routeAddr(i, j int, clusterPorts []int) string {
	if c.routes != nil {
		return c.routes[i][j].Addr()
	}
	return loopback(clusterPorts[j])
}

// Partition cuts (or heals) every route to and from member i; the cluster
// must have been started WithRouteProxies.
func (c *Cluster) Partition(i int, cut bool) {
	c.tb.Helper()
	if c.routes == nil {
		c.tb.Fatal("Partition needs a cluster started WithRouteProxies")
	}
	for j := range c.nodes {
		if j != i {
			c.routes[i][j].Cut(cut)
			c.routes[j][i].Cut(cut)
		}
	}
}

// Start starts member i (again) on its ports and store.
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	c.nodes[i].start()
}

// Stop kills member i and waits until it is down.
func (c *Cluster) Stop(i int) { c.nodes[i].stop() }

// URL is member i's client URL.
func (c *Cluster) URL(i int) string { return c.nodes[i].url() }

// URLs are the client URLs of every member.
func (c *Cluster) URLs() []string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url())
	}
	return urls
}

// Name is member i's server name, as stream and consumer infos report it.
func (c *Cluster) Name(i int) string { return c.nodes[i].opts.ServerName }

// Server is member i's nats-server, nil while it is stopped: for Connz and
// leader information.
func (c *Cluster) Server(i int) *server.Server { return c.nodes[i].srv }

// WaitJetStream waits until the running members agree on one JetStream meta
// leader.
func (c *Cluster) WaitJetStream() {
	c.tb.Helper()
	Eventually(c.tb, 20*time.Second, "jetstream meta leader", func() bool {
		leaders := 0
		for _, n := range c.nodes {
			if n.srv != nil && n.srv.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	})
}

// freePort returns a loopback port nothing listens on right now, below the
// kernel's ephemeral range where it can: a server restarted on its port
// (cluster members, restart tests) must find it free again, and every
// connection and port-0 listener of every process on the machine draws from
// the ephemeral range, so a port there can be taken while its server is
// down (seen with two test suites side by side).
func freePort(tb testing.TB) int {
	tb.Helper()
	if low, ok := ephemeralLow(); ok && low > fixedPortMin+1000 {
		for range 100 {
			port := fixedPortMin + rand.IntN(low-fixedPortMin)
			if l, err := net.Listen("tcp", loopback(port)); err == nil {
				l.Close()
				return port
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// fixedPortMin is the lowest port freePort picks outside the ephemeral range.
const fixedPortMin = 10000

// ephemeralLow returns the first port of the kernel's ephemeral range
// (Linux); ok is false where it cannot be read.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	low, err := strconv.Atoi(f[0])
	return low, err == nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// FreeAddr returns a loopback host:port that nothing listens on right now
// (freePort), for a process that must be told its address before it starts
// or that restarts on it; prefer port 0 wherever the listener's address can
// be read back and nothing restarts.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return loopback(freePort(tb))
}
