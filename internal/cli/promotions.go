package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/store"
)

// promotions is what the promotion commands do, through the server's API
// or, on the host of socle serve, with the promoter and the database.
type promotions interface {
	Promote(ctx context.Context, req promote.Request) (*promote.Result, error)
	Approve(ctx context.Context, id int64) (*promote.Result, error)
	Rollback(ctx context.Context, image, env string, override bool, note string) (*promote.Result, error)
	History(ctx context.Context, image string, limit int) ([]store.Promotion, error)
	List(ctx context.Context, q store.PromotionQuery) ([]store.Promotion, error)
	Drifts(ctx context.Context) ([]promote.Drift, error)
}

// localPromotions acts with the promoter, as the actor of a token.
type localPromotions struct {
	p     *promote.Promoter
	st    store.Store
	actor func(ctx context.Context) (promote.Actor, error)
}

func (l *localPromotions) Promote(ctx context.Context, req promote.Request) (*promote.Result, error) {
	a, err := l.actor(ctx)
	if err != nil {
		return nil, err
	}
	req.Actor = a
	return l.p.Promote(ctx, req)
}

func (l *localPromotions) Approve(ctx context.Context, id int64) (*promote.Result, error) {
	a, err := l.actor(ctx)
	if err != nil {
		return nil, err
	}
	return l.p.Approve(ctx, id, a)
}

func (l *localPromotions) Rollback(ctx context.Context, image, env string, override bool, note string) (*promote.Result, error) {
	a, err := l.actor(ctx)
	if err != nil {
		return nil, err
	}
	return l.p.Rollback(ctx, image, env, a, override, note)
}

func (l *localPromotions) History(ctx context.Context, image string, limit int) ([]store.Promotion, error) {
	return l.p.History(ctx, image, limit)
}

func (l *localPromotions) List(ctx context.Context, q store.PromotionQuery) ([]store.Promotion, error) {
	return l.st.ListPromotions(ctx, q)
}

func (l *localPromotions) Drifts(ctx context.Context) ([]promote.Drift, error) {
	return l.p.Drifts(ctx)
}

// remotePromotions acts through the API, as the client's token.
type remotePromotions struct{ c *client.Client }

// promotionJSON is a promotion as the API shows it.
type promotionJSON struct {
	ID          int64           `json:"id"`
	Repository  string          `json:"repository"`
	Target      string          `json:"target"`
	Digest      string          `json:"digest"`
	Environment string          `json:"environment"`
	From        string          `json:"from"`
	Tag         string          `json:"tag"`
	Previous    string          `json:"previous"`
	State       string          `json:"state"`
	Kind        string          `json:"kind"`
	By          string          `json:"by"`
	Role        string          `json:"role"`
	Override    bool            `json:"override"`
	Note        string          `json:"note"`
	Evidence    json.RawMessage `json:"evidence"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

func (p promotionJSON) record() store.Promotion {
	return store.Promotion{ID: p.ID, Repository: p.Repository, Target: p.Target, Digest: p.Digest, Environment: p.Environment,
		From: p.From, Tag: p.Tag, Previous: p.Previous, State: p.State, Kind: p.Kind, By: p.By, Role: p.Role,
		Override: p.Override, Note: p.Note, Evidence: p.Evidence, CreatedAt: p.Created, UpdatedAt: p.Updated}
}

// result sends a promotion request: a blocked one (409) still carries
// its gates.
func (r *remotePromotions) result(ctx context.Context, method, path string, in any) (*promote.Result, error) {
	var body struct {
		Promotion promotionJSON  `json:"promotion"`
		Gates     []promote.Gate `json:"gates"`
		Unchanged bool           `json:"unchanged"`
	}
	err := r.c.Do(ctx, method, path, in, &body)
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Status == 409 && json.Unmarshal(apiErr.Body, &body) == nil && body.Promotion.ID != 0 {
		return &promote.Result{Promotion: body.Promotion.record(), Gates: body.Gates}, fmt.Errorf("%w: %s", promote.ErrBlocked, apiErr.Message)
	}
	if err != nil {
		return nil, err
	}
	return &promote.Result{Promotion: body.Promotion.record(), Gates: body.Gates, Unchanged: body.Unchanged}, nil
}

func (r *remotePromotions) Promote(ctx context.Context, req promote.Request) (*promote.Result, error) {
	return r.result(ctx, "POST", "/api/v1/promotions", map[string]any{"image": req.Image, "to": req.To, "override": req.Override, "note": req.Note})
}

func (r *remotePromotions) Approve(ctx context.Context, id int64) (*promote.Result, error) {
	return r.result(ctx, "POST", "/api/v1/promotions/"+strconv.FormatInt(id, 10)+"/approve", nil)
}

func (r *remotePromotions) Rollback(ctx context.Context, image, env string, override bool, note string) (*promote.Result, error) {
	return r.result(ctx, "POST", "/api/v1/rollback", map[string]any{"image": image, "environment": env, "override": override, "note": note})
}

func (r *remotePromotions) list(ctx context.Context, q url.Values) ([]store.Promotion, error) {
	var body struct {
		Promotions []promotionJSON `json:"promotions"`
	}
	if err := r.c.Do(ctx, "GET", "/api/v1/promotions?"+q.Encode(), nil, &body); err != nil {
		return nil, err
	}
	out := make([]store.Promotion, 0, len(body.Promotions))
	for _, p := range body.Promotions {
		out = append(out, p.record())
	}
	return out, nil
}

func (r *remotePromotions) History(ctx context.Context, image string, limit int) ([]store.Promotion, error) {
	return r.list(ctx, url.Values{"image": {image}, "limit": {strconv.Itoa(limit)}})
}

func (r *remotePromotions) List(ctx context.Context, q store.PromotionQuery) ([]store.Promotion, error) {
	v := url.Values{"limit": {strconv.Itoa(q.Limit)}}
	if q.Environment != "" {
		v.Set("environment", q.Environment)
	}
	if len(q.States) == 1 {
		v.Set("state", q.States[0])
	}
	return r.list(ctx, v)
}

func (r *remotePromotions) Drifts(ctx context.Context) ([]promote.Drift, error) {
	var body struct {
		Drift []promote.Drift `json:"drift"`
	}
	err := r.c.Do(ctx, "GET", "/api/v1/drift", nil, &body)
	return body.Drift, err
}
