package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/jobs"
	"github.com/socle-dev/socle/internal/loop"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
)

// The App does the API's work: plans, builds and remediations of its
// catalog, and feed syncs, as jobs.
var _ Work = (*App)(nil)

// Plan is socle plan of the server's catalog.
func (a *App) Plan(r *http.Request, names []string) (*catalog.Plan, error) {
	c, asm, err := a.catalog()
	if err != nil {
		return nil, err
	}
	pl := &catalog.Planner{Catalog: c, Store: a.st, Target: a.target()}
	if asm != nil {
		pl.Packages = asm
	}
	return pl.Plan(r.Context(), catalog.PlanOptions{Names: names})
}

// Enqueue queues a job and wakes the workers.
func (a *App) Enqueue(r *http.Request, kind, key string, payload any) (int64, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return 0, err
	}
	id, _, err := a.st.EnqueueJob(r.Context(), kind, key, b)
	if err == nil {
		a.runner.Wake()
	}
	return id, err
}

// Feeds are the names of socle.yaml's feeds.
func (a *App) Feeds() []string {
	var out []string
	for _, f := range a.cfg.File.Feeds {
		out = append(out, f.Name)
	}
	return out
}

func (a *App) target() catalog.Target {
	return catalog.TargetFor(a.cfg.File, a.buildRegistry, false)
}

// catalog reads the catalog of socle.yaml, with the assembler when it
// assembles images.
func (a *App) catalog() (*catalog.Catalog, *assemble.Assembler, error) {
	c, err := catalog.New(a.cfg.File)
	if err != nil {
		return nil, nil, err
	}
	if len(c.Images) == 0 {
		return nil, nil, errBadRequest("the server's socle.yaml has no images: catalog")
	}
	if !c.Assembles() {
		return c, nil, nil
	}
	asm, err := assemble.New(assemble.Options{Cache: assemble.CacheDir(a.cfg.DataDir), Logger: a.log})
	return c, asm, err
}

// buildJob runs socle build: progress counts the images done, and the
// message is the latest event or build log line (the Jobs page shows it).
func (a *App) buildJob(ctx context.Context, j *store.Job, progress jobs.Progress) error {
	var p BuildPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Permanent(fmt.Errorf("build job payload: %w", err))
	}
	c, asm, err := a.catalog()
	if err != nil {
		return jobs.Permanent(err)
	}
	pl := &catalog.Planner{Catalog: c, Store: a.st, Target: a.target()}
	if asm != nil {
		pl.Packages = asm
	}
	plan, err := pl.Plan(ctx, catalog.PlanOptions{Names: p.Names})
	if err != nil {
		return err
	}
	total := len(plan.Steps)
	if total == 0 {
		progress(0, 0, "everything is up to date")
		return nil
	}
	signer, _, err := sign.OwnKey(a.cfg.File.Resolve(a.cfg.File.Signing.Key), sign.OwnKeyDir(a.cfg.DataDir))
	if err != nil {
		return err
	}
	var mu sync.Mutex
	done := 0
	b := &catalog.Builder{Catalog: c, Store: a.st, Target: a.target(), Indexer: catalog.ImageIndexer{Scanner: a.scanner, Tags: a.st},
		Provenance: signer, BuildahRoot: filepath.Join(a.cfg.DataDir, "buildah"), By: p.By, Logger: a.log.With("component", "build"),
		Progress: func(e catalog.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Phase {
			case catalog.PhasePushed, catalog.PhaseFailed, catalog.PhaseSkipped, catalog.PhaseUnchanged:
				done++
			}
			msg := e.Name + " " + e.Phase + ": " + e.Message
			if e.Phase == catalog.PhaseLog {
				msg = e.Name + " | " + e.Message
			}
			progress(done, total, msg)
		}}
	if asm != nil {
		b.Assembler = asm
	}
	out, err := b.Run(ctx, plan)
	var summary []string
	for _, o := range out {
		summary = append(summary, o.Name+" "+o.Status)
	}
	progress(total, total, strings.Join(summary, ", "))
	if errors.Is(err, catalog.ErrBuildsFailed) {
		return jobs.Permanent(err)
	}
	return err
}

// remediateJob runs socle remediate.
func (a *App) remediateJob(ctx context.Context, j *store.Job, progress jobs.Progress) error {
	var p RemediatePayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return jobs.Permanent(fmt.Errorf("remediation job payload: %w", err))
	}
	progress(0, 1, "planning")
	plan, err := a.remediate(ctx, p.DryRun, p.By)
	if err != nil {
		return jobs.Permanent(err)
	}
	var summary []string
	for _, act := range plan.Actions {
		summary = append(summary, fmt.Sprintf("%s %s: %s", act.Image, act.Strategy, act.Status))
	}
	if len(summary) == 0 {
		summary = []string{"nothing to remediate"}
	}
	progress(1, 1, strings.Join(summary, "; "))
	return nil
}

// remediate plans and applies the catalog's remediation, one at a time.
func (a *App) remediate(ctx context.Context, dryRun bool, by string) (*remediate.Plan, error) {
	return a.remediateWith(ctx, dryRun, by, loop.Hooks{})
}

// remediateWith is remediate, telling a fix run's hooks of its progress.
func (a *App) remediateWith(ctx context.Context, dryRun bool, by string, h loop.Hooks) (*remediate.Plan, error) {
	a.remediating.Lock()
	defer a.remediating.Unlock()
	cfg := a.cfg.File
	c, err := catalog.New(cfg)
	if err != nil {
		return nil, err
	}
	signer, _, err := sign.OwnKey(cfg.Resolve(cfg.Signing.Key), sign.OwnKeyDir(a.cfg.DataDir))
	if err != nil {
		return nil, err
	}
	r, err := remediate.New(remediate.Deps{Config: cfg, Catalog: c, Store: a.st, Scanner: a.scanner,
		Target: a.target(), AptCache: assemble.CacheDir(a.cfg.DataDir),
		BuildahRoot: filepath.Join(a.cfg.DataDir, "buildah"), Provenance: signer, By: by, Logger: a.log})
	if err != nil {
		return nil, err
	}
	r.OnAction = h.Done
	plan, err := r.Plan(ctx)
	if err != nil {
		return nil, err
	}
	if h.Planned != nil {
		h.Planned(ctx, plan)
	}
	return plan, r.Apply(ctx, plan, dryRun)
}
