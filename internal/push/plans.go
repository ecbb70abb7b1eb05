package push

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ringd/ringd/internal/store"
)

// planCacheSize bounds the decoded pushes kept in memory. A fan-out sends
// one push to a few devices close together in time, so a small cache turns
// one store read and one JSON decode per delivery into one per push.
const planCacheSize = 1024

// pushPlan is a stored push decoded for sending, with its payloads built
// once per push type.
type pushPlan struct {
	push store.Push
	req  Request

	mu       sync.Mutex
	payloads map[string][]byte
	errs     map[string]error
}

func (p *pushPlan) payload(pushType string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b, ok := p.payloads[pushType]; ok {
		return b, p.errs[pushType]
	}
	b, err := BuildPayload(p.req, pushType)
	p.payloads[pushType], p.errs[pushType] = b, err
	return b, err
}

// planCache is a small LRU of pushPlans by push ID.
type planCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *pushPlan, most recent first
	byID  map[string]*list.Element
}

func newPlanCache(maxEntries int) *planCache {
	return &planCache{max: maxEntries, order: list.New(), byID: map[string]*list.Element{}}
}

func (c *planCache) get(id string) *pushPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*pushPlan)
	}
	return nil
}

func (c *planCache) add(p *pushPlan) *pushPlan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[p.push.ID]; ok { // another worker loaded it first: share its payloads
		c.order.MoveToFront(e)
		return e.Value.(*pushPlan)
	}
	c.byID[p.push.ID] = c.order.PushFront(p)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*pushPlan).push.ID)
	}
	return p
}

// plan returns the decoded push of a delivery.
func (s *Service) plan(ctx context.Context, d *store.Delivery) (*pushPlan, error) {
	if p := s.plans.get(d.PushID); p != nil {
		return p, nil
	}
	push, err := s.st.Push(ctx, d.SDKAppID, d.PushID)
	if err != nil {
		return nil, fmt.Errorf("push: load push %s: %w", d.PushID, err)
	}
	p := &pushPlan{push: *push, payloads: map[string][]byte{}, errs: map[string]error{}}
	if err := json.Unmarshal(push.Request, &p.req); err != nil {
		return nil, fmt.Errorf("push: decode request of push %s: %w", d.PushID, err)
	}
	return s.plans.add(p), nil
}
