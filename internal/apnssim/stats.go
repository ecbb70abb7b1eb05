package apnssim

import (
	"cmp"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of what the simulator has answered, for tests of the
// client (did it reconnect, how often did it change its JWT).
type Stats struct {
	Requests         int64            `json:"requests"`
	Accepted         int64            `json:"accepted"`
	ByStatus         map[int]int64    `json:"by_status"`
	ByReason         map[string]int64 `json:"by_reason"`
	OpenConnections  int64            `json:"open_connections"`
	TotalConnections int64            `json:"total_connections"`
	JWTChanges       int64            `json:"jwt_changes"` // over all connections
	Resets           int64            `json:"resets"`
	GoAways          int64            `json:"goaways"`
	Restarts         int64            `json:"restarts"`
	Connections      []ConnStats      `json:"connections"` // open ones, oldest first
}

// ConnStats describes one open connection.
type ConnStats struct {
	ID          uint64    `json:"id"`
	Environment string    `json:"environment"`
	Remote      string    `json:"remote"`
	Auth        string    `json:"auth,omitempty"` // "certificate", "token" or "" before the first push
	KeyID       string    `json:"key_id,omitempty"`
	Requests    int64     `json:"requests"`
	JWTChanges  int64     `json:"jwt_changes"`
	OpenedAt    time.Time `json:"opened_at"`
}

// counters are lock-free: one atomic per status and per reason, laid out
// once, so recording an answer never takes a lock.
type counters struct {
	requests, accepted, connsTotal, jwtChanges, resets, goaways, restarts atomic.Int64

	byStatus map[int]*atomic.Int64
	byReason map[string]*atomic.Int64
}

func (c *counters) init() {
	c.byStatus = map[int]*atomic.Int64{http.StatusOK: new(atomic.Int64)}
	c.byReason = make(map[string]*atomic.Int64)
	for reason, rej := range rejections {
		c.byReason[reason] = new(atomic.Int64)
		if c.byStatus[rej.status] == nil {
			c.byStatus[rej.status] = new(atomic.Int64)
		}
	}
}

func (c *counters) record(status int, reason string) {
	if n := c.byStatus[status]; n != nil {
		n.Add(1)
	}
	if n := c.byReason[reason]; n != nil {
		n.Add(1)
	}
}

// Stats returns counters since New, and the open connections.
func (s *Simulator) Stats() Stats {
	st := Stats{
		Requests: s.stats.requests.Load(), Accepted: s.stats.accepted.Load(),
		ByStatus: make(map[int]int64), ByReason: make(map[string]int64),
		OpenConnections: s.conns.count.Load(), TotalConnections: s.stats.connsTotal.Load(),
		JWTChanges: s.stats.jwtChanges.Load(), Resets: s.stats.resets.Load(), GoAways: s.stats.goaways.Load(),
		Restarts: s.stats.restarts.Load(),
	}
	for k, v := range s.stats.byStatus {
		if n := v.Load(); n > 0 {
			st.ByStatus[k] = n
		}
	}
	for k, v := range s.stats.byReason {
		if n := v.Load(); n > 0 {
			st.ByReason[k] = n
		}
	}
	for _, cs := range s.conns.snapshot() {
		st.Connections = append(st.Connections, cs.stats())
	}
	slices.SortFunc(st.Connections, func(a, b ConnStats) int { return cmp.Compare(a.ID, b.ID) })
	return st
}

func (cs *connState) stats() ConnStats {
	auth := cs.authKind()
	cs.mu.Lock()
	keyID := cs.token.keyID
	cs.mu.Unlock()
	return ConnStats{ID: cs.id, Environment: cs.env, Remote: cs.remote, Auth: auth, KeyID: keyID,
		Requests: cs.requests.Load(), JWTChanges: cs.jwtChanges.Load(), OpenedAt: cs.opened}
}
