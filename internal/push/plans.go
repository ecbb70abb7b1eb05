package push

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ringd/ringd/internal/store"
)

// planCacheSize bounds the decoded pushes kept in memory. A fan-out sends
// one push to a few devices close together in time, so a small cache turns
// one store read and one JSON decode per delivery into one per push.
const planCacheSize = 1024

// pushPlan is a stored push decoded for sending.
type pushPlan struct {
	push store.Push
	*requestPlan
}

// requestPlan is a decoded request with its payloads built once per push
// type. The pushes of one batch share it: they store the same request.
type requestPlan struct {
	req Request

	mu       sync.Mutex
	payloads map[string][]byte
	errs     map[string]error
}

func newRequestPlan(req Request) *requestPlan {
	return &requestPlan{req: req, payloads: map[string][]byte{}, errs: map[string]error{}}
}

func decodeRequest(b []byte) (*requestPlan, error) {
	var req Request
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, err
	}
	return newRequestPlan(req), nil
}

func (p *requestPlan) payload(pushType string) ([]byte, error) {
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
	rp, err := decodeRequest(push.Request)
	if err != nil {
		return nil, fmt.Errorf("push: decode request of push %s: %w", d.PushID, err)
	}
	return s.plans.add(&pushPlan{push: *push, requestPlan: rp}), nil
}

// preload caches the plans of a claim's deliveries with one store read for
// all the pushes not cached yet, and one JSON decode per distinct request.
// What it cannot load, plan loads again for its delivery, and reports.
func (s *Service) preload(ctx context.Context, ds []store.Delivery) {
	appOf := make(map[string]int64, len(ds))
	var missing []string
	for i := range ds {
		id := ds[i].PushID
		if _, seen := appOf[id]; seen || s.plans.get(id) != nil {
			continue
		}
		appOf[id] = ds[i].SDKAppID
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return
	}
	pushes, err := s.st.PushesByID(ctx, missing)
	if err != nil {
		s.log.Debug("push: preload plans", slog.Any("err", err))
		return
	}
	decoded := map[string]*requestPlan{}
	for id, push := range pushes {
		if push.SDKAppID != appOf[id] {
			continue // never another app's push, whatever the IDs say
		}
		rp, ok := decoded[string(push.Request)]
		if !ok {
			if rp, err = decodeRequest(push.Request); err != nil {
				continue
			}
			decoded[string(push.Request)] = rp
		}
		s.plans.add(&pushPlan{push: *push, requestPlan: rp})
	}
}
