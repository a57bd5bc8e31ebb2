package promote

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
)

// Errors a caller maps to statuses.
var (
	// ErrForbidden: the actor's role may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrBlocked: a gate failed; the result says which.
	ErrBlocked = errors.New("blocked by a gate")
	// ErrUnknownEnvironment: not in socle.yaml.
	ErrUnknownEnvironment = errors.New("unknown environment")
	// ErrInvalid: the request names no valid image.
	ErrInvalid = errors.New("invalid request")
)

// Kinds of promotion.
const (
	KindPromote  = "promote"
	KindRollback = "rollback"
)

// Actor is who acts: a token's name and role.
type Actor struct {
	Name string
	Role string
}

func (a Actor) String() string { return a.Name + " (" + a.Role + ")" }

// Store is what promotion reads and writes.
type Store interface {
	store.Promotions
	store.Findings
	store.ImageChecks
	Image(ctx context.Context, digest string) (store.Image, error)
	HasImage(ctx context.Context, digest string) (bool, error)
	// ImagePackages gives back the packages of a stored inventory.
	ImagePackages(ctx context.Context, digest string) ([]store.ImagePackage, error)
}

var _ Store = store.Store(nil)

// Promoter runs promotions.
type Promoter struct {
	Store Store
	Envs  []config.Environment
	// Dir resolves relative key and policy paths (socle.yaml's directory).
	Dir string
	// Remote are the registry options (credentials, transport).
	Remote   []remote.Option
	NameOpts []name.Option
	// Signer signs promotion attestations; nil records none.
	Signer *sign.Signer
	// Ensure makes sure the store knows the image (inventory and
	// findings) before the gates read it; nil assumes it does.
	Ensure func(ctx context.Context, ref name.Digest) error
	Now    func() time.Time
	Logger *slog.Logger
	// Pause, when set, is called at each stage of a tag move (moving,
	// copied, tagged): tests inject faults with it, such as a kill.
	Pause func(stage string)
}

// Options are what New needs beside socle.yaml and the store.
type Options struct {
	// NameOpts parse references (name.Insecure for plain HTTP).
	NameOpts []name.Option
	// Remote are the registry options; the default reads credentials
	// from the docker config, as docker, crane and cosign do, and puts a
	// deadline on every step of every call.
	Remote []remote.Option
	// Ensure makes sure the store knows an image before its gates run.
	Ensure func(ctx context.Context, ref name.Digest) error
	Logger *slog.Logger
}

// New returns the promoter of socle.yaml's environments: relative key
// and policy paths are read from socle.yaml's directory, and
// signing.key signs promotion attestations.
func New(cfg *config.File, st Store, o Options) (*Promoter, error) {
	if len(cfg.Environments) == 0 {
		return nil, fmt.Errorf("%s declares no environments: add an environments: section", cfg.Path())
	}
	p := &Promoter{
		Store: st, Envs: cfg.Environments, Dir: cfg.Dir(), Logger: o.Logger,
		Remote: o.Remote, NameOpts: o.NameOpts, Ensure: o.Ensure,
	}
	if p.Remote == nil {
		p.Remote = []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(source.NewTransport(source.Timeouts{}))}
	}
	if cfg.Signing.Key != "" {
		s, err := sign.LoadSignerFile(cfg.Resolve(cfg.Signing.Key))
		if err != nil {
			return nil, fmt.Errorf("signing.key: %w", err)
		}
		p.Signer = s
	}
	return p, nil
}

// ProtectedTags returns, for the embedded registry, the environment a
// tag belongs to: a tag named as an environment's tag is that
// environment's in every repository, and only the promoter moves it.
func ProtectedTags(envs []config.Environment) func(repository, tag string) string {
	byTag := map[string]string{}
	for _, e := range envs {
		byTag[e.EnvironmentTag()] = e.Name
	}
	return func(_, tag string) string { return byTag[tag] }
}

// Stages of a tag move, for Pause.
const (
	StageMoving = "moving"
	StageCopied = "copied"
	StageTagged = "tagged"
)

func (p *Promoter) pause(stage string) {
	if p.Pause != nil {
		p.Pause(stage)
	}
}

// Request asks for a digest in an environment.
type Request struct {
	// Image is repository@sha256:... (a tag is resolved to its digest).
	Image    string
	To       string
	Actor    Actor
	Kind     string
	Override bool
	Note     string
}

// Gate is the outcome of one gate.
type Gate struct {
	Gate   string `json:"gate"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
	// Pending marks the approval gate while approvals are missing.
	Pending bool `json:"pending,omitempty"`
}

// Evidence is what a promotion record keeps of its gates.
type Evidence struct {
	Gates []Gate `json:"gates"`
	// Approvers who approved, when the gate asks for approvals.
	Approvers []string `json:"approvers,omitempty"`
	// Copied says the digest was copied into the environment's repository.
	Copied      bool   `json:"copied,omitempty"`
	Attestation string `json:"attestation,omitempty"`
}

// Result is a promotion's record and the gates it went through.
type Result struct {
	Promotion store.Promotion `json:"promotion"`
	Gates     []Gate          `json:"gates"`
	// Unchanged: the environment already ran this digest.
	Unchanged bool `json:"unchanged,omitempty"`
}

func (p *Promoter) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Promoter) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Promoter) opts(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, p.Remote...)
}

// env returns an environment and its index.
func (p *Promoter) env(name string) (config.Environment, int, error) {
	for i, e := range p.Envs {
		if e.Name == name {
			return e, i, nil
		}
	}
	var names []string
	for _, e := range p.Envs {
		names = append(names, e.Name)
	}
	return config.Environment{}, -1, fmt.Errorf("%w %q (socle.yaml has: %s)", ErrUnknownEnvironment, name, strings.Join(names, ", "))
}

// mayPromote checks the actor's role against the environment.
func mayPromote(e config.Environment, a Actor) error {
	roles := e.Roles
	if len(roles) == 0 {
		roles = []string{store.RoleDeveloper, store.RoleApprover, store.RoleAdmin}
	}
	if !slices.Contains(roles, a.Role) {
		return fmt.Errorf("%w: %s may not promote to %s (roles allowed: %s)", ErrForbidden, a, e.Name, strings.Join(roles, ", "))
	}
	return nil
}

// Target returns the repository holding env's tag for a source repository.
func (p *Promoter) Target(e config.Environment, src name.Repository) (name.Repository, error) {
	if e.Repository == "" {
		return src, nil
	}
	t, err := template.New(e.Name).Option("missingkey=error").Parse(e.Repository)
	if err != nil {
		return name.Repository{}, err
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]string{"Repository": src.Name(), "Registry": src.RegistryStr(), "Path": src.RepositoryStr()})
	if err != nil {
		return name.Repository{}, fmt.Errorf("environment %s repository: %w", e.Name, err)
	}
	return name.NewRepository(b.String(), p.NameOpts...)
}

// parseRef parses a reference that names its registry: socle never
// picks a default registry for a promotion.
func (p *Promoter) parseRef(image string) (name.Reference, error) {
	first, _, ok := strings.Cut(image, "/")
	if !ok || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return nil, fmt.Errorf("%w: %q names no registry (want host/repository@sha256:...)", ErrInvalid, image)
	}
	ref, err := name.ParseReference(image, p.NameOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return ref, nil
}

// resolve turns the request's image into a digest reference, checking
// that the registry has it.
func (p *Promoter) resolve(ctx context.Context, image string) (name.Digest, error) {
	ref, err := p.parseRef(image)
	if err != nil {
		return name.Digest{}, err
	}
	desc, err := remote.Head(ref, p.opts(ctx)...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == 404 {
			return name.Digest{}, fmt.Errorf("%s: %w", ref, store.ErrNotFound)
		}
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// tagDigest is where a tag points, "" when nowhere.
func (p *Promoter) tagDigest(ctx context.Context, t name.Tag) (string, error) {
	desc, err := remote.Head(t, p.opts(ctx)...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == 404 {
			return "", nil
		}
		return "", err
	}
	return desc.Digest.String(), nil
}

// Promote evaluates the gates and, when they pass, moves the tag. A
// blocked promotion is recorded and returned with ErrBlocked; one that
// needs approvals is recorded as awaiting approval.
func (p *Promoter) Promote(ctx context.Context, req Request) (*Result, error) {
	e, idx, err := p.env(req.To)
	if err != nil {
		return nil, err
	}
	if err := mayPromote(e, req.Actor); err != nil {
		return nil, err
	}
	if req.Override && req.Actor.Role != store.RoleAdmin {
		return nil, fmt.Errorf("%w: only an admin may override the gates", ErrForbidden)
	}
	if req.Kind == "" {
		req.Kind = KindPromote
	}
	ref, err := p.resolve(ctx, req.Image)
	if err != nil {
		return nil, err
	}
	target, err := p.Target(e, ref.Context())
	if err != nil {
		return nil, err
	}
	tag := target.Tag(e.EnvironmentTag())
	current, err := p.tagDigest(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	rec := store.Promotion{
		Repository: ref.Context().Name(), Target: target.Name(), Digest: ref.DigestStr(), Environment: e.Name,
		Tag: tag.TagStr(), Previous: current, Kind: req.Kind, By: req.Actor.Name, Role: req.Actor.Role,
		Override: req.Override, Note: req.Note, CreatedAt: p.now(),
	}
	if idx > 0 {
		rec.From = p.Envs[idx-1].Name
	}
	if current == rec.Digest {
		last, err := p.Store.ListPromotions(ctx, store.PromotionQuery{Target: rec.Target, Environment: e.Name, States: []string{store.PromotionDone}, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(last) == 1 && last[0].Digest == rec.Digest {
			return &Result{Promotion: last[0], Unchanged: true}, nil
		}
	}
	var gates []Gate
	if req.Override {
		gates = []Gate{{Gate: "override", Passed: true, Detail: "gates skipped by admin " + req.Actor.Name}}
	} else {
		gates, err = p.Evaluate(ctx, e, idx, ref, rec)
		if err != nil {
			return nil, err
		}
	}
	ev := Evidence{Gates: gates}
	subject := rec.Repository + "@" + rec.Digest
	details := func(extra map[string]any) []byte {
		m := map[string]any{"environment": e.Name, "from": rec.From, "kind": rec.Kind, "target": rec.Target, "tag": rec.Tag}
		if req.Override {
			m["override"] = true
		}
		for k, v := range extra {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	// The gates decide the state the request is recorded in, with its
	// audit event; only a moving one goes on to move the tag.
	state, action, extra := store.PromotionMoving, "promotion.moving", map[string]any(nil)
	switch {
	case failed(gates):
		state, action, extra = store.PromotionBlocked, "promotion.blocked", map[string]any{"failed": failedNames(gates)}
	case pending(gates):
		state, action, extra = store.PromotionAwaitingApproval, "promotion.requested", map[string]any{"approvals": e.Gates.Approvals}
	}
	rec.State = state
	rec.Evidence = mustJSON(ev)
	id, err := p.Store.CreatePromotion(ctx, rec, store.AuditEvent{At: rec.CreatedAt, Actor: req.Actor.String(),
		Action: action, Subject: subject, Details: details(extra)})
	if err != nil {
		return nil, err
	}
	rec.ID = id
	switch state {
	case store.PromotionBlocked:
		return &Result{Promotion: rec, Gates: gates}, fmt.Errorf("%w: %s", ErrBlocked, strings.Join(failedNames(gates), ", "))
	case store.PromotionAwaitingApproval:
		return &Result{Promotion: rec, Gates: gates}, nil
	}
	return p.move(ctx, rec, ev, req.Actor)
}

// move copies, attests and tags a promotion recorded as moving, then
// records it done (or failed).
func (p *Promoter) move(ctx context.Context, rec store.Promotion, ev Evidence, actor Actor) (*Result, error) {
	fail := func(err error) (*Result, error) {
		at := p.now()
		terr := p.Store.TransitionPromotion(context.WithoutCancel(ctx), rec.ID, store.PromotionMoving, store.PromotionFailed, nil, err.Error(), at,
			store.AuditEvent{At: at, Actor: actor.String(), Action: "promotion.failed", Subject: rec.Repository + "@" + rec.Digest,
				Details: mustJSON(map[string]string{"error": err.Error()})})
		if terr != nil {
			p.log().Error("recording a failed promotion", "id", rec.ID, "err", terr)
		}
		rec.State, rec.Note = store.PromotionFailed, err.Error()
		return &Result{Promotion: rec, Gates: ev.Gates}, err
	}
	p.pause(StageMoving)
	src, err := name.NewRepository(rec.Repository, p.NameOpts...)
	if err != nil {
		return fail(err)
	}
	target, err := name.NewRepository(rec.Target, p.NameOpts...)
	if err != nil {
		return fail(err)
	}
	desc, err := remote.Get(src.Digest(rec.Digest), p.opts(ctx)...)
	if err != nil {
		return fail(fmt.Errorf("reading %s@%s: %w", src, rec.Digest, err))
	}
	if target.Name() != src.Name() {
		if err := p.copyDigest(ctx, desc, src, target); err != nil {
			return fail(err)
		}
		ev.Copied = true
	}
	if p.Signer != nil {
		stmt := map[string]any{"environment": rec.Environment, "from": rec.From, "promotion": rec.ID, "by": rec.By,
			"kind": rec.Kind, "at": rec.CreatedAt.Format(time.RFC3339), "gates": ev.Gates, "override": rec.Override}
		if err := p.Signer.Attest(ctx, target.Digest(rec.Digest), sign.PredicatePromotion, mustJSON(stmt), p.now(), p.Remote...); err != nil {
			return fail(fmt.Errorf("signing the promotion attestation: %w", err))
		}
		ev.Attestation = sign.PredicatePromotion
	}
	p.pause(StageCopied)
	if err := remote.Tag(target.Tag(rec.Tag), desc, p.opts(ctx)...); err != nil {
		return fail(fmt.Errorf("moving %s:%s: %w", target, rec.Tag, err))
	}
	p.pause(StageTagged)
	// The tag has moved: from here on, only recording is left, and a
	// crash is settled by Reconcile.
	at := p.now()
	if err := p.Store.TransitionPromotion(context.WithoutCancel(ctx), rec.ID, store.PromotionMoving, store.PromotionDone, mustJSON(ev), "", at,
		store.AuditEvent{At: at, Actor: actor.String(), Action: "promotion.done", Subject: rec.Repository + "@" + rec.Digest,
			Details: mustJSON(map[string]string{"environment": rec.Environment, "tag": rec.Target + ":" + rec.Tag, "previous": rec.Previous})}); err != nil {
		return nil, fmt.Errorf("the tag moved but recording it failed (Reconcile will settle it): %w", err)
	}
	rec.State, rec.UpdatedAt, rec.Evidence = store.PromotionDone, at, mustJSON(ev)
	p.log().Info("promoted", "id", rec.ID, "image", rec.Repository+"@"+rec.Digest, "environment", rec.Environment, "by", actor.Name)
	return &Result{Promotion: rec, Gates: ev.Gates}, nil
}

// copyDigest copies the manifest, and the cosign signatures and
// attestations, to another repository of the registry. go-containerregistry
// mounts each blob from the source repository: no layer is downloaded.
func (p *Promoter) copyDigest(ctx context.Context, desc *remote.Descriptor, src, dst name.Repository) error {
	if err := p.copyOne(ctx, desc, dst.Digest(desc.Digest.String())); err != nil {
		return err
	}
	// Signatures and attestations travel with the digest.
	for _, suffix := range []string{".sig", ".att"} {
		t := strings.Replace(desc.Digest.String(), ":", "-", 1) + suffix
		d, err := remote.Get(src.Tag(t), p.opts(ctx)...)
		if err != nil {
			var te *transport.Error
			if errors.As(err, &te) && te.StatusCode == 404 {
				continue
			}
			return fmt.Errorf("reading %s:%s: %w", src, t, err)
		}
		if err := p.copyOne(ctx, d, dst.Tag(t)); err != nil {
			return err
		}
	}
	return nil
}

func (p *Promoter) copyOne(ctx context.Context, desc *remote.Descriptor, to name.Reference) error {
	opts := p.opts(ctx)
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		return remote.WriteIndex(to, idx, opts...)
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	if err := remote.Write(to, img, opts...); err != nil {
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	return nil
}

// Approve adds actor's approval; when enough distinct approvers have
// approved, the gates are evaluated again and the tag moves.
func (p *Promoter) Approve(ctx context.Context, id int64, actor Actor) (*Result, error) {
	if actor.Role != store.RoleApprover && actor.Role != store.RoleAdmin {
		return nil, fmt.Errorf("%w: %s may not approve (approver or admin needed)", ErrForbidden, actor)
	}
	rec, err := p.Store.Promotion(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.State != store.PromotionAwaitingApproval {
		return nil, fmt.Errorf("promotion %d is %s, not awaiting approval: %w", id, rec.State, store.ErrConflict)
	}
	if actor.Name == rec.By {
		return nil, fmt.Errorf("%w: %s requested promotion %d and may not approve it", ErrForbidden, actor.Name, id)
	}
	e, idx, err := p.env(rec.Environment)
	if err != nil {
		return nil, err
	}
	approvals, err := p.Store.AddApproval(ctx, store.Approval{PromotionID: id, Approver: actor.Name, Role: actor.Role, At: p.now()},
		store.AuditEvent{At: p.now(), Actor: actor.String(), Action: "promotion.approved", Subject: rec.Repository + "@" + rec.Digest,
			Details: mustJSON(map[string]string{"environment": rec.Environment})})
	if err != nil {
		return nil, err
	}
	var approvers []string
	for _, a := range approvals {
		approvers = append(approvers, a.Approver)
	}
	if len(approvals) < e.Gates.Approvals {
		var ev Evidence
		_ = json.Unmarshal(rec.Evidence, &ev)
		return &Result{Promotion: rec, Gates: approvalGate(ev.Gates, approvers, e.Gates.Approvals)}, nil
	}
	// Enough approvals: the other gates again, as conditions may have
	// changed while waiting.
	src, err := name.NewRepository(rec.Repository, p.NameOpts...)
	if err != nil {
		return nil, err
	}
	gates, err := p.Evaluate(ctx, e, idx, src.Digest(rec.Digest), rec)
	if err != nil {
		return nil, err
	}
	ev := Evidence{Gates: gates, Approvers: approvers}
	at := p.now()
	if failed(gates) {
		err := p.Store.TransitionPromotion(ctx, id, store.PromotionAwaitingApproval, store.PromotionBlocked, mustJSON(ev), "", at,
			store.AuditEvent{At: at, Actor: actor.String(), Action: "promotion.blocked", Subject: rec.Repository + "@" + rec.Digest,
				Details: mustJSON(map[string]any{"failed": failedNames(gates)})})
		if err != nil {
			return nil, err
		}
		rec.State = store.PromotionBlocked
		return &Result{Promotion: rec, Gates: gates}, fmt.Errorf("%w: %s", ErrBlocked, strings.Join(failedNames(gates), ", "))
	}
	if err := p.Store.TransitionPromotion(ctx, id, store.PromotionAwaitingApproval, store.PromotionMoving, mustJSON(ev), "", at,
		store.AuditEvent{At: at, Actor: actor.String(), Action: "promotion.moving", Subject: rec.Repository + "@" + rec.Digest,
			Details: mustJSON(map[string]any{"approvers": approvers})}); err != nil {
		return nil, err
	}
	rec.State = store.PromotionMoving
	return p.move(ctx, rec, ev, actor)
}

// StaleMoving is how long a promotion may stay moving before another
// process settles it: far longer than a promotion takes.
const StaleMoving = 2 * time.Minute

// ReconcileEvery settles, at once and then every interval until ctx
// ends, the promotions an interrupted process left moving.
func (p *Promoter) ReconcileEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, _, err := p.Reconcile(ctx, StaleMoving); err != nil && ctx.Err() == nil {
			p.log().Warn("reconciling promotions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile settles promotions a crash left moving for longer than
// stale: done when the tag points at the digest, aborted otherwise.
func (p *Promoter) Reconcile(ctx context.Context, stale time.Duration) (done, aborted int, err error) {
	moving, err := p.Store.ListPromotions(ctx, store.PromotionQuery{States: []string{store.PromotionMoving}, Limit: 10000})
	if err != nil {
		return 0, 0, err
	}
	now := p.now()
	for _, rec := range moving {
		if now.Sub(rec.UpdatedAt) < stale {
			continue
		}
		target, err := name.NewRepository(rec.Target, p.NameOpts...)
		if err != nil {
			return done, aborted, err
		}
		cur, err := p.tagDigest(ctx, target.Tag(rec.Tag))
		if err != nil {
			return done, aborted, fmt.Errorf("promotion %d: %w", rec.ID, err)
		}
		to, note := store.PromotionAborted, "interrupted before the tag moved"
		if cur == rec.Digest {
			to, note = store.PromotionDone, "interrupted after the tag moved; settled by reconciliation"
		}
		err = p.Store.TransitionPromotion(ctx, rec.ID, store.PromotionMoving, to, nil, note, now,
			store.AuditEvent{At: now, Actor: "socle (reconciliation)", Action: "promotion." + to, Subject: rec.Repository + "@" + rec.Digest,
				Details: mustJSON(map[string]string{"environment": rec.Environment, "tag_digest": cur})})
		if errors.Is(err, store.ErrConflict) {
			continue // settled meanwhile
		}
		if err != nil {
			return done, aborted, err
		}
		if to == store.PromotionDone {
			done++
		} else {
			aborted++
		}
	}
	return done, aborted, nil
}

// Rollback promotes, to env, the digest the environment ran before its
// current one, through the same gates unless an admin overrides them.
func (p *Promoter) Rollback(ctx context.Context, image, env string, actor Actor, override bool, note string) (*Result, error) {
	e, _, err := p.env(env)
	if err != nil {
		return nil, err
	}
	ref, err := p.parseRef(image)
	if err != nil {
		return nil, err
	}
	target, err := p.Target(e, ref.Context())
	if err != nil {
		return nil, err
	}
	hist, err := p.Store.ListPromotions(ctx, store.PromotionQuery{Target: target.Name(), Environment: env, States: []string{store.PromotionDone}, Limit: 1000})
	if err != nil {
		return nil, err
	}
	if len(hist) == 0 {
		return nil, fmt.Errorf("%s has never been promoted to %s: %w", target, env, store.ErrNotFound)
	}
	cur := hist[0]
	for _, h := range hist[1:] {
		if h.Digest != cur.Digest {
			return p.Promote(ctx, Request{Image: h.Repository + "@" + h.Digest, To: env, Actor: actor, Kind: KindRollback,
				Override: override, Note: cmp.Or(note, "rollback from "+cur.Digest)})
		}
	}
	return nil, fmt.Errorf("%s has had only one digest in %s, nothing to roll back to: %w", target, env, store.ErrConflict)
}

// Drift is an environment tag that points elsewhere than socle's record.
type Drift struct {
	Environment string `json:"environment"`
	Repository  string `json:"repository"`
	Tag         string `json:"tag"`
	Recorded    string `json:"recorded"`
	// Actual is where the tag points ("" if it is gone).
	Actual string `json:"actual"`
}

// Drifts compares every environment tag socle moved with its record.
func (p *Promoter) Drifts(ctx context.Context) ([]Drift, error) {
	done, err := p.Store.ListPromotions(ctx, store.PromotionQuery{States: []string{store.PromotionDone}, Limit: store.All})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Drift
	for _, rec := range done { // newest first: the first of each is the record
		k := rec.Target + "\x00" + rec.Environment
		if seen[k] {
			continue
		}
		seen[k] = true
		target, err := name.NewRepository(rec.Target, p.NameOpts...)
		if err != nil {
			return nil, err
		}
		cur, err := p.tagDigest(ctx, target.Tag(rec.Tag))
		if err != nil {
			return nil, err
		}
		if cur != rec.Digest {
			out = append(out, Drift{Environment: rec.Environment, Repository: rec.Target, Tag: rec.Tag, Recorded: rec.Digest, Actual: cur})
		}
	}
	return out, nil
}

// History returns the promotions of a repository (source or target),
// newest first.
func (p *Promoter) History(ctx context.Context, repo string, limit int) ([]store.Promotion, error) {
	r, err := name.NewRepository(repo, p.NameOpts...)
	if err != nil {
		ref, rerr := name.ParseReference(repo, p.NameOpts...)
		if rerr != nil {
			return nil, err
		}
		r = ref.Context()
	}
	bySource, err := p.Store.ListPromotions(ctx, store.PromotionQuery{Repository: r.Name(), Limit: limit})
	if err != nil {
		return nil, err
	}
	byTarget, err := p.Store.ListPromotions(ctx, store.PromotionQuery{Target: r.Name(), Limit: limit})
	if err != nil {
		return nil, err
	}
	seen := map[int64]bool{}
	var out []store.Promotion
	for _, x := range append(bySource, byTarget...) {
		if !seen[x.ID] {
			seen[x.ID] = true
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b store.Promotion) int { return int(b.ID - a.ID) })
	return out, nil
}

func (p *Promoter) path(f string) string {
	if filepath.IsAbs(f) || p.Dir == "" {
		return f
	}
	return filepath.Join(p.Dir, f)
}

func failed(gs []Gate) bool {
	for _, g := range gs {
		if !g.Passed && !g.Pending {
			return true
		}
	}
	return false
}

func pending(gs []Gate) bool {
	for _, g := range gs {
		if g.Pending {
			return true
		}
	}
	return false
}

func failedNames(gs []Gate) []string {
	var out []string
	for _, g := range gs {
		if !g.Passed && !g.Pending {
			out = append(out, g.Gate)
		}
	}
	return out
}

func approvalGate(gs []Gate, approvers []string, need int) []Gate {
	out := slices.Clone(gs)
	for i := range out {
		if out[i].Gate == GateApprovals {
			out[i].Detail = approvalDetail(approvers, need)
		}
	}
	return out
}

func approvalDetail(approvers []string, need int) string {
	d := fmt.Sprintf("%d of %d approvals", len(approvers), need)
	if len(approvers) > 0 {
		d += " (" + strings.Join(approvers, ", ") + ")"
	}
	return d
}

// ApprovalDetail rewrites a recorded approval gate's detail ("0 of N
// approvals") with the approvers so far.
func ApprovalDetail(approvers []string, recorded string) string {
	var have, need int
	if _, err := fmt.Sscanf(recorded, "%d of %d approvals", &have, &need); err != nil {
		return recorded
	}
	return approvalDetail(approvers, need)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values are marshalled
	}
	return b
}
