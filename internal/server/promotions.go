package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/web"
)

// actor is the principal a promotion acts as.
// actor is who acts in a promotion: the person (a token's user, or a
// signed-in user), so that approvals count people, not tokens.
func actor(r *http.Request) promote.Actor {
	p, _ := auth.PrincipalFrom(r.Context())
	return promote.Actor{Name: p.Actor(), Role: p.Role}
}

// promotionView is a promotion as the API shows it.
type promotionView struct {
	ID          int64           `json:"id"`
	Repository  string          `json:"repository"`
	Target      string          `json:"target"`
	Digest      string          `json:"digest"`
	Environment string          `json:"environment"`
	From        string          `json:"from,omitempty"`
	Tag         string          `json:"tag"`
	Previous    string          `json:"previous,omitempty"`
	State       string          `json:"state"`
	Kind        string          `json:"kind"`
	By          string          `json:"by"`
	Role        string          `json:"role"`
	Override    bool            `json:"override,omitempty"`
	Note        string          `json:"note,omitempty"`
	Evidence    json.RawMessage `json:"evidence"`
	Created     string          `json:"created"`
	Updated     string          `json:"updated"`
	Approvers   []string        `json:"approvers,omitempty"`
}

func viewPromotion(p store.Promotion, approvals []store.Approval) promotionView {
	v := promotionView{ID: p.ID, Repository: p.Repository, Target: p.Target, Digest: p.Digest, Environment: p.Environment,
		From: p.From, Tag: p.Tag, Previous: p.Previous, State: p.State, Kind: p.Kind, By: p.By, Role: p.Role,
		Override: p.Override, Note: p.Note, Evidence: json.RawMessage(p.Evidence),
		Created: p.CreatedAt.Format("2006-01-02T15:04:05Z"), Updated: p.UpdatedAt.Format("2006-01-02T15:04:05Z")}
	if len(v.Evidence) == 0 {
		v.Evidence = json.RawMessage("{}")
	}
	for _, a := range approvals {
		v.Approvers = append(v.Approvers, a.Approver)
	}
	return v
}

// writePromotion answers a promotion request: 201 done, 202 awaiting
// approval, 200 unchanged, 409 blocked (with the gates), and the error
// statuses.
func (s *API) writePromotion(w http.ResponseWriter, r *http.Request, res *promote.Result, err error) {
	if err != nil && res == nil {
		s.apiError(w, r, err)
		return
	}
	body := map[string]any{"promotion": viewPromotion(res.Promotion, nil), "gates": res.Gates, "unchanged": res.Unchanged}
	code := http.StatusCreated
	switch {
	case errors.Is(err, promote.ErrBlocked):
		code = http.StatusConflict
		body["error"] = map[string]any{"status": code, "message": err.Error()}
	case err != nil:
		s.apiError(w, r, err)
		return
	case res.Unchanged:
		code = http.StatusOK
	case res.Promotion.State == store.PromotionAwaitingApproval:
		code = http.StatusAccepted
	}
	writeJSON(w, code, body)
}

func (s *API) apiPromote(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Image    string `json:"image"`
		To       string `json:"to"`
		Override bool   `json:"override"`
		Note     string `json:"note"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if body.Image == "" || body.To == "" {
		s.apiError(w, r, errBadRequest("image (repository@digest) and to (environment) are required"))
		return
	}
	res, err := s.promoter.Promote(r.Context(), promote.Request{Image: body.Image, To: body.To, Actor: actor(r), Override: body.Override, Note: body.Note})
	s.writePromotion(w, r, res, err)
}

func (s *API) apiApprove(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.apiError(w, r, errBadRequest("promotion id must be a number"))
		return
	}
	res, err := s.promoter.Approve(r.Context(), id, actor(r))
	if err == nil && res.Promotion.State == store.PromotionDone {
		writeJSON(w, http.StatusOK, map[string]any{"promotion": viewPromotion(res.Promotion, nil), "gates": res.Gates})
		return
	}
	s.writePromotion(w, r, res, err)
}

func (s *API) apiRollback(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Image       string `json:"image"`
		Environment string `json:"environment"`
		Override    bool   `json:"override"`
		Note        string `json:"note"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if body.Image == "" || body.Environment == "" {
		s.apiError(w, r, errBadRequest("image (repository) and environment are required"))
		return
	}
	res, err := s.promoter.Rollback(r.Context(), body.Image, body.Environment, actor(r), body.Override, body.Note)
	s.writePromotion(w, r, res, err)
}

func (s *API) apiPromotions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if image := q.Get("image"); image != "" {
		limit, err := queryInt(r, "limit", 100, 1000)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		hist, err := s.promoter.History(r.Context(), image, limit)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writePromotions(w, hist)
		return
	}
	pq := store.PromotionQuery{Repository: q.Get("repository"), Target: q.Get("target"), Environment: q.Get("environment"), Digest: q.Get("digest")}
	if st := q.Get("state"); st != "" {
		pq.States = []string{st}
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= 1000 {
		pq.Limit = n
	}
	ps, err := s.st.ListPromotions(r.Context(), pq)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writePromotions(w, ps)
}

func writePromotions(w http.ResponseWriter, ps []store.Promotion) {
	out := make([]promotionView, 0, len(ps))
	for _, p := range ps {
		out = append(out, viewPromotion(p, nil))
	}
	writeJSON(w, http.StatusOK, map[string]any{"promotions": out})
}

func (s *API) apiPromotion(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.apiError(w, r, errBadRequest("promotion id must be a number"))
		return
	}
	p, err := s.st.Promotion(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	as, err := s.st.Approvals(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewPromotion(p, as))
}

func (s *API) apiDrift(w http.ResponseWriter, r *http.Request) {
	ds, err := s.promoter.Drifts(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if ds == nil {
		ds = []promote.Drift{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"drift": ds})
}

func (s *API) apiAudit(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	evs, err := s.st.AuditEvents(r.Context(), after, limit)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(evs))
	for _, e := range evs {
		// details_text is the details' exact bytes, which the hash covers
		// (details is the same document, re-encoded).
		out = append(out, map[string]any{"seq": e.Seq, "at": e.At, "actor": e.Actor, "action": e.Action, "subject": e.Subject,
			"details": json.RawMessage(e.Details), "details_text": string(e.Details), "prev_hash": e.PrevHash, "hash": e.Hash})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

// promotionsPage lists promotions, with approve buttons for those that
// wait, and a form to promote.
func (s *API) promotionsPage(w http.ResponseWriter, r *http.Request) {
	ps, err := s.st.ListPromotions(r.Context(), store.PromotionQuery{Limit: 200})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := web.PromotionsPage{Message: r.URL.Query().Get("msg")}
	drifts, err := s.promoter.Drifts(r.Context())
	if err != nil {
		// The registry may be unreachable: the page still shows the records.
		s.log.Warn("checking drift", "err", err)
		data.DriftError = "drift could not be checked: the registry did not answer"
	}
	for _, d := range drifts {
		data.Drift = append(data.Drift, web.DriftRow{Environment: d.Environment, Repository: d.Repository, Tag: d.Tag, Recorded: d.Recorded, Actual: d.Actual})
	}
	for _, e := range s.promoter.Envs {
		data.Environments = append(data.Environments, e.Name)
	}
	for _, p := range ps {
		var ev promote.Evidence
		_ = json.Unmarshal(p.Evidence, &ev)
		row := web.PromotionRow{ID: p.ID, Repository: p.Target, Digest: p.Digest, Environment: p.Environment, From: p.From,
			State: p.State, Kind: p.Kind, By: p.By, Override: p.Override, Note: p.Note, Updated: p.UpdatedAt}
		var approvers []string
		if p.State == store.PromotionAwaitingApproval {
			as, err := s.st.Approvals(r.Context(), p.ID)
			if err != nil {
				s.pageError(w, r, err)
				return
			}
			for _, a := range as {
				approvers = append(approvers, a.Approver)
			}
		}
		for _, g := range ev.Gates {
			if g.Gate == promote.GateApprovals && g.Pending {
				// The record holds the gate as it was requested; the
				// approvals so far are in their own table.
				g.Detail = promote.ApprovalDetail(approvers, g.Detail)
			}
			row.Gates = append(row.Gates, web.GateRow{Gate: g.Gate, Passed: g.Passed, Pending: g.Pending, Detail: g.Detail})
		}
		data.Promotions = append(data.Promotions, row)
	}
	s.render(w, r, http.StatusOK, "promotions", "Promotions", data)
}

// promoteForm and approveForm are the dashboard's forms; they answer
// with a redirect to the promotions page and a message.
func (s *API) promoteForm(w http.ResponseWriter, r *http.Request) {
	res, err := s.promoter.Promote(r.Context(), promote.Request{Image: r.PostFormValue("image"), To: r.PostFormValue("to"), Actor: actor(r)})
	s.formAnswer(w, r, res, err)
}

func (s *API) approveForm(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.pageError(w, r, errBadRequest("promotion id must be a number"))
		return
	}
	res, err := s.promoter.Approve(r.Context(), id, actor(r))
	s.formAnswer(w, r, res, err)
}

func (s *API) formAnswer(w http.ResponseWriter, r *http.Request, res *promote.Result, err error) {
	var msg string
	switch {
	case err != nil && res == nil:
		code, m := status(promoteStatus(err))
		if code == http.StatusInternalServerError {
			s.log.Error("promotion failed", "err", err)
		}
		msg = m
	case err != nil:
		msg = err.Error()
	default:
		msg = "promotion " + strconv.FormatInt(res.Promotion.ID, 10) + ": " + res.Promotion.State
	}
	http.Redirect(w, r, "/promotions?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}

// promoteStatus maps the promoter's errors onto the server's.
func promoteStatus(err error) error {
	switch {
	case errors.Is(err, promote.ErrForbidden):
		return errors.Join(auth.ErrForbidden, err)
	case errors.Is(err, promote.ErrUnknownEnvironment), errors.Is(err, promote.ErrInvalid):
		return errBadRequest(err.Error())
	}
	return err
}
