package server

import (
	"encoding/json"
	"net/http"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/store"
)

// apiRegistryGC collects the embedded registry's garbage, in the
// process that serves it (its locks are in memory), and audits it.
func (s *API) apiRegistryGC(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DryRun bool `json:"dry_run"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body); err != nil {
			s.apiError(w, r, err)
			return
		}
	}
	if s.registry == nil {
		s.apiError(w, r, errBadRequest("socle uses an external registry: collect its garbage there"))
		return
	}
	rep, err := s.registry.GC(r.Context(), registry.GCOptions{DryRun: body.DryRun, Grace: s.gcGrace})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if !body.DryRun {
		p, _ := auth.PrincipalFrom(r.Context())
		details, _ := json.Marshal(map[string]any{"removed": len(rep.Removed), "bytes": rep.Bytes, "manifests": rep.Manifests, "blobs": rep.Blobs})
		if _, err := s.st.AppendAudit(r.Context(), store.AuditEvent{At: s.now().UTC(), Actor: p.String(), Action: "registry.gc", Subject: "registry", Details: details}); err != nil {
			s.apiError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// apiCheckpoint signs the audit log's head now and writes it to the
// checkpoint sink.
func (s *API) apiCheckpoint(w http.ResponseWriter, r *http.Request) {
	if s.checkpoints == nil {
		s.apiError(w, r, errBadRequest("this server writes no audit checkpoints"))
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	c, err := s.checkpoints.Checkpoint(r.Context(), p.String())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"checkpoint": c, "sink": s.checkpoints.Sink.String()})
}
