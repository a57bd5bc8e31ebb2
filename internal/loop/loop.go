// Package loop closes the loop unattended, up to the approvers: for the
// advisories a feed sync brought that opened fixable findings, it runs
// the remediation, promotes the fixed digests through each environment's
// gates up to the configured one, asks the next one's approvers, and
// records every step with its time as a fix run.
package loop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/store"
)

// Store is what the loop records.
type Store interface {
	store.FixRuns
	AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error)
	RunningImages(ctx context.Context, q store.RunningQuery) ([]store.Running, error)
}

// Promoter promotes digests (promote.Promoter).
type Promoter interface {
	Promote(ctx context.Context, req promote.Request) (*promote.Result, error)
}

// Remediate plans and applies the catalog's remediation, telling h of
// the plan once made and of each action as it completes.
type Remediate func(ctx context.Context, h Hooks) (*remediate.Plan, error)

// Hooks are how a remediation reports its progress to the run.
type Hooks struct {
	Planned func(ctx context.Context, p *remediate.Plan)
	Done    func(ctx context.Context, a *remediate.Action)
}

// Loop runs fix runs.
type Loop struct {
	Store    Store
	Promoter Promoter
	// Envs are the environments in promotion order; Through the last one
	// promoted to unattended ("" promotes nowhere).
	Envs    []config.Environment
	Through string
	Notify  func(ctx context.Context, event string, payload any)
	Now     func() time.Time
	Logger  *slog.Logger
}

// Actor is who the loop acts as in promotions and the audit log.
var Actor = promote.Actor{Name: "socle (fix run)", Role: "admin"}

func (l *Loop) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC()
	}
	return time.Now().UTC()
}

// Sync is what started a run: the advisories a feed sync changed, when
// it started and how long it took.
type Sync struct {
	Feed       string
	Advisories []string
	Started    time.Time
	Seconds    float64
}

// ErrStopped is returned when an admin paused or cancelled the run.
var ErrStopped = errors.New("the fix run was paused or cancelled")

// Run runs the loop for one sync and returns the run.
func (l *Loop) Run(ctx context.Context, s Sync, fix Remediate) (store.FixRun, error) {
	run := store.FixRun{Advisories: s.Advisories, Status: store.FixRunning, StartedAt: s.Started.UTC()}
	id, err := l.Store.CreateFixRun(ctx, run)
	if err != nil {
		return run, err
	}
	run.ID = id
	l.audit(ctx, "fixrun.start", id, map[string]any{"advisories": s.Advisories, "feed": s.Feed})
	synced := s.Started.Add(time.Duration(s.Seconds * float64(time.Second))).UTC()
	l.step(ctx, id, store.FixStep{At: s.Started.UTC(), Name: "sync", OK: true, Detail: "feed " + s.Feed})
	l.step(ctx, id, store.FixStep{At: synced, Name: "match", OK: true, Detail: fmt.Sprintf("%d advisories re-matched", len(s.Advisories))})

	fixed := map[string]string{}
	var actions []*remediate.Action
	_, err = fix(ctx, Hooks{
		Planned: func(ctx context.Context, p *remediate.Plan) {
			l.step(ctx, id, store.FixStep{At: l.now(), Name: "attribution", OK: true, Detail: fmt.Sprintf("%d images planned", len(p.Actions))})
		},
		Done: func(ctx context.Context, a *remediate.Action) {
			actions = append(actions, a)
			st := store.FixStep{At: l.now(), Name: a.Strategy, Image: a.Image, OK: a.Status == store.RemediationApplied,
				Detail: strings.TrimSpace(a.Status + " " + a.Detail)}
			l.step(ctx, id, st)
			if a.Status == store.RemediationApplied || a.Status == store.RemediationRejected {
				// The candidate was scanned before it was offered.
				l.step(ctx, id, store.FixStep{At: l.now(), Name: "verification", Image: a.Image, OK: len(a.Added) == 0 && len(a.Fixed) > 0,
					Detail: fmt.Sprintf("fixes %d findings, adds %d", len(a.Fixed), len(a.Added))})
			}
			if a.Status == store.RemediationApplied && a.To != "" {
				fixed[a.Image] = a.Repository + "@" + a.To
			}
		},
	})
	if err != nil {
		return l.finish(ctx, id, store.FixFailed, "remediation: "+err.Error(), fixed)
	}
	for _, a := range actions {
		// A remediation that fails or adds findings stops the run where it
		// failed, and says why; a candidate that fixes nothing is only
		// not offered.
		if a.Status == store.RemediationFailed || (a.Status == store.RemediationRejected && len(a.Added) > 0) {
			return l.finish(ctx, id, store.FixFailed, a.Image+": "+a.Status+": "+a.Detail, fixed)
		}
	}
	if len(fixed) == 0 {
		return l.finish(ctx, id, store.FixDone, "nothing to rebuild, rebase or bump", fixed)
	}
	if l.Through == "" {
		return l.finish(ctx, id, store.FixDone, "remediated; remediation.promote.through is not set", fixed)
	}
	evidence := map[string]Evidence{}
	for _, a := range actions {
		evidence[a.Image] = Evidence{Strategy: a.Strategy, From: a.From, Fixed: a.Fixed, Added: a.Added}
	}
	return l.promote(ctx, id, fixed, evidence)
}

// Evidence is what a remediation shows the approvers of an image: how it
// was made, the digest it replaces, the findings it fixes and the ones it
// adds (none, or it would not have been offered), as its scan found them.
type Evidence struct {
	Strategy string   `json:"strategy"`
	From     string   `json:"from,omitempty"`
	Fixed    []string `json:"fixed"`
	Added    []string `json:"added"`
}

// note is the promotion note of a fix run's request.
func (e Evidence) note(id int64) string {
	return fmt.Sprintf("fix run %d: %s; fixes %d findings (%s), adds %d", id, e.Strategy, len(e.Fixed), summarize(e.Fixed, 3), len(e.Added))
}

func summarize(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:n], ", ") + fmt.Sprintf(" and %d more", len(list)-n)
}

// promote carries the fixed digests through the environments up to
// Through, then asks the next environment's approvers, with the
// remediation's evidence when the run has it.
func (l *Loop) promote(ctx context.Context, id int64, fixed map[string]string, evidence map[string]Evidence) (store.FixRun, error) {
	if l.Promoter == nil || len(l.Envs) == 0 {
		return l.finish(ctx, id, store.FixDone, "remediated; no environments to promote through", fixed)
	}
	if err := l.Store.UpdateFixRun(ctx, id, store.FixRunning, "", fixed, l.now()); err != nil {
		return store.FixRun{}, err
	}
	images := make([]string, 0, len(fixed))
	for im := range fixed {
		images = append(images, im)
	}
	slices.Sort(images)
	last := -1
	for i, e := range l.Envs {
		if e.Name == l.Through {
			last = i
		}
	}
	for i, e := range l.Envs {
		// Unattended up to Through; past it, only a request for the next
		// environment's approvers.
		if i > last+1 || (i == last+1 && e.Gates.Approvals == 0) {
			break
		}
		if err := l.stopped(ctx, id); err != nil {
			return l.Store.FixRun(ctx, id)
		}
		awaiting := 0
		for _, im := range images {
			req := promote.Request{Image: fixed[im], To: e.Name, Actor: Actor, Kind: "remediation"}
			ev, hasEvidence := evidence[im]
			if hasEvidence {
				req.Note = ev.note(id)
			}
			res, err := l.Promoter.Promote(ctx, req)
			switch {
			case errors.Is(err, promote.ErrBlocked):
				l.step(ctx, id, store.FixStep{At: l.now(), Name: "promotion", Environment: e.Name, Image: im, Detail: gateSummary(res)})
				return l.finish(ctx, id, store.FixFailed, fmt.Sprintf("%s blocked in %s: %s", im, e.Name, gateSummary(res)), fixed)
			case err != nil:
				return l.finish(ctx, id, store.FixFailed, fmt.Sprintf("promoting %s to %s: %v", im, e.Name, err), fixed)
			case res.Promotion.State == store.PromotionAwaitingApproval:
				awaiting++
				l.step(ctx, id, store.FixStep{At: l.now(), Name: "awaiting approval", Environment: e.Name, Image: im, OK: true,
					Detail: fmt.Sprintf("promotion #%d", res.Promotion.ID)})
				if l.Notify != nil {
					payload := map[string]any{"fix_run": id, "image": im, "digest": fixed[im],
						"environment": e.Name, "promotion": res.Promotion.ID, "previous": res.Promotion.Previous, "evidence": json.RawMessage(res.Promotion.Evidence)}
					if hasEvidence {
						payload["remediation"] = ev
					}
					l.Notify(ctx, "remediation.awaiting_approval", payload)
				}
			default:
				l.step(ctx, id, store.FixStep{At: l.now(), Name: "promotion", Environment: e.Name, Image: im, OK: true,
					Detail: "previous " + cmpOr(res.Promotion.Previous, "none")})
			}
		}
		if awaiting > 0 {
			return l.finish(ctx, id, store.FixAwaitingApproval, fmt.Sprintf("%d images wait for %s's approvers", awaiting, e.Name), fixed)
		}
	}
	return l.finish(ctx, id, store.FixDone, "", fixed)
}

func gateSummary(res *promote.Result) string {
	if res == nil {
		return ""
	}
	var out []string
	for _, g := range res.Gates {
		if !g.Passed && !g.Pending {
			out = append(out, g.Gate+": "+g.Detail)
		}
	}
	return strings.Join(out, "; ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// stopped reports ErrStopped when an admin paused or cancelled the run.
func (l *Loop) stopped(ctx context.Context, id int64) error {
	r, err := l.Store.FixRun(ctx, id)
	if err != nil {
		return err
	}
	if r.Status == store.FixPaused || r.Status == store.FixCancelled {
		return ErrStopped
	}
	return nil
}

func (l *Loop) step(ctx context.Context, id int64, s store.FixStep) {
	if err := l.Store.AppendFixStep(ctx, id, s); err != nil && l.Logger != nil {
		l.Logger.Warn("recording a fix run step", "run", id, "err", err)
	}
}

func (l *Loop) finish(ctx context.Context, id int64, status, detail string, fixed map[string]string) (store.FixRun, error) {
	if err := l.Store.UpdateFixRun(ctx, id, status, detail, fixed, l.now()); err != nil {
		return store.FixRun{}, err
	}
	l.audit(ctx, "fixrun."+status, id, map[string]any{"detail": detail, "fixed": fixed})
	return l.Store.FixRun(ctx, id)
}

func (l *Loop) audit(ctx context.Context, action string, id int64, details map[string]any) {
	b, _ := json.Marshal(details)
	if _, err := l.Store.AppendAudit(ctx, store.AuditEvent{At: l.now(), Actor: Actor.String(), Action: action,
		Subject: fmt.Sprintf("fix run %d", id), Details: b}); err != nil && l.Logger != nil {
		l.Logger.Warn("auditing a fix run", "run", id, "err", err)
	}
}

// Control pauses, resumes or cancels a run (an admin's decision,
// audited). Resuming carries the run's fixed digests on through the
// environments.
func (l *Loop) Control(ctx context.Context, id int64, action string, by string) (store.FixRun, error) {
	r, err := l.Store.FixRun(ctx, id)
	if err != nil {
		return r, err
	}
	var status string
	switch action {
	case "pause":
		if r.Status != store.FixRunning && r.Status != store.FixAwaitingApproval {
			return r, fmt.Errorf("%w: fix run %d is %s: only a running one pauses", store.ErrConflict, id, r.Status)
		}
		status = store.FixPaused
	case "cancel":
		if r.Status == store.FixDone || r.Status == store.FixCancelled {
			return r, fmt.Errorf("%w: fix run %d is %s", store.ErrConflict, id, r.Status)
		}
		status = store.FixCancelled
	case "resume":
		if r.Status != store.FixPaused {
			return r, fmt.Errorf("%w: fix run %d is %s: only a paused one resumes", store.ErrConflict, id, r.Status)
		}
		status = store.FixRunning
	default:
		return r, fmt.Errorf("%w: unknown action %q (pause, resume, cancel)", store.ErrConflict, action)
	}
	if err := l.Store.UpdateFixRun(ctx, id, status, "by "+by, r.Fixed, l.now()); err != nil {
		return r, err
	}
	b, _ := json.Marshal(map[string]any{"action": action})
	if _, err := l.Store.AppendAudit(ctx, store.AuditEvent{At: l.now(), Actor: by, Action: "fixrun." + action,
		Subject: fmt.Sprintf("fix run %d", id), Details: b}); err != nil {
		return r, err
	}
	l.step(ctx, id, store.FixStep{At: l.now(), Name: action, OK: true, Detail: "by " + by})
	if action == "resume" && len(r.Fixed) > 0 {
		return l.promote(ctx, id, r.Fixed, nil)
	}
	return l.Store.FixRun(ctx, id)
}
