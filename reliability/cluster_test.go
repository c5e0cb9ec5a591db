package reliability

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/footstep/authz/events"
)

// cluster is three nats-servers with JetStream, routed to each other, on
// ports picked at start and kept across restarts so that clients and routes
// find a restarted member where it was.
type cluster struct {
	tb      testing.TB
	name    string
	nodes   []*node
	noDisco bool
	// routes[i][j], when set, is the proxy that node i's route to node j
	// goes through (startPartitionableCluster).
	routes [][]*proxy
}

type node struct {
	name        string
	dir         string
	clientPort  int
	clusterPort int
	srv         *server.Server // nil while stopped
}

// startCluster starts three members and waits until JetStream has a leader.
// Clients are not told of other members (NoAdvertise), so a client stays with
// the member it was given: killing that member cuts it off until the restart.
func startCluster(tb testing.TB) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, name: "footstep-test"}
	dir := tb.TempDir()
	for i := range 3 {
		c.nodes = append(c.nodes, &node{
			name:        "n" + strconv.Itoa(i),
			dir:         filepath.Join(dir, "n"+strconv.Itoa(i)),
			clientPort:  freePort(tb),
			clusterPort: freePort(tb),
		})
	}
	for i := range c.nodes {
		c.start(i)
	}
	tb.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.waitJetStream()
	return c
}

// startPartitionableCluster is startCluster with every route going through
// a proxy, and no route learned by gossip, so that partition can cut a node
// off from the others while its clients stay connected to it.
func startPartitionableCluster(tb testing.TB) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, name: "footstep-test"}
	dir := tb.TempDir()
	for i := range 3 {
		c.nodes = append(c.nodes, &node{
			name: "n" + strconv.Itoa(i), dir: filepath.Join(dir, "n"+strconv.Itoa(i)),
			clientPort: freePort(tb), clusterPort: freePort(tb),
		})
	}
	c.routes = make([][]*proxy, 3)
	for i := range c.nodes {
		c.routes[i] = make([]*proxy, 3)
		for j, o := range c.nodes {
			if j != i {
				c.routes[i][j] = newProxy(tb, net.JoinHostPort("127.0.0.1", strconv.Itoa(o.clusterPort)))
			}
		}
	}
	for i := range c.nodes {
		c.start(i)
	}
	tb.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	c.waitJetStream()
	return c
}

// partition cuts (or heals) every route to and from node i.
func (c *cluster) partition(i int, cut bool) {
	for j := range c.nodes {
		if j != i {
			c.routes[i][j].setCut(cut)
			c.routes[j][i].setCut(cut)
		}
	}
}

// freePort returns a port nothing listens on right now.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *cluster) options(i int) *server.Options {
	n := c.nodes[i]
	var routes []*url.URL
	for j, o := range c.nodes {
		switch {
		case j == i:
		case c.routes != nil:
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: c.routes[i][j].addr()})
		default:
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.clusterPort))})
		}
	}
	opts := &server.Options{
		ServerName: n.name,
		Host:       "127.0.0.1",
		Port:       n.clientPort,
		JetStream:  true,
		StoreDir:   n.dir,
		NoLog:      true,
		NoSigs:     true,
		Cluster: server.ClusterOpts{
			Name: c.name, Host: "127.0.0.1", Port: n.clusterPort, NoAdvertise: true,
		},
		Routes: routes,
	}
	if c.routes != nil {
		// Nodes must not learn each other's real addresses, or they would
		// route around the proxies.
		opts.Cluster.Advertise = "127.0.0.1:1"
		opts.Cluster.PoolSize = -1
	}
	return opts
}

// start starts member i (again) on its ports and store.
func (c *cluster) start(i int) {
	c.tb.Helper()
	srv, err := server.NewServer(c.options(i))
	if err != nil {
		c.tb.Fatalf("member %d: %v", i, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		c.tb.Fatalf("member %d not ready", i)
	}
	c.nodes[i].srv = srv
}

// stop kills member i and waits until it is down.
func (c *cluster) stop(i int) {
	if srv := c.nodes[i].srv; srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		c.nodes[i].srv = nil
	}
}

func (c *cluster) url(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].clientPort)
}

// waitJetStream waits until the members agree on a JetStream meta leader.
func (c *cluster) waitJetStream() {
	c.tb.Helper()
	eventually(c.tb, 20*time.Second, "jetstream meta leader", func() bool {
		leaders := 0
		for _, n := range c.nodes {
			if n.srv != nil && n.srv.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	})
}

// connect connects to member i with the production connection settings.
func (c *cluster) connect(i int) *events.Conn {
	c.tb.Helper()
	conn, err := events.Connect(context.Background(), events.ConnConfig{URLs: []string{c.url(i)}, Name: "test-" + c.nodes[i].name})
	if err != nil {
		c.tb.Fatalf("connect to member %d: %v", i, err)
	}
	c.tb.Cleanup(conn.Close)
	return conn
}

// openBucket opens (creating, replicated three times) the bucket through conn,
// retrying while the cluster settles.
func openBucket(tb testing.TB, conn *events.Conn, replicas int) jetstream.KeyValue {
	tb.Helper()
	var kv jetstream.KeyValue
	var last error
	eventually(tb, 20*time.Second, "open bucket", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		kv, last = events.OpenBucket(ctx, conn.JetStream(), events.BucketConfig{Replicas: replicas})
		return last == nil
	})
	return kv
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !poll(within, cond) {
		tb.Fatalf("not within %s: %s", within, what)
	}
}

// poll reports whether cond held before the deadline.
func poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
