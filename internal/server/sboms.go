package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
)

// Importer indexes SBOMs made elsewhere (scan.Scanner is one).
type Importer interface {
	ImportSBOM(ctx context.Context, st scan.ImportStore, data []byte, image string, now time.Time) (*scan.Imported, error)
}

// apiImportSBOM takes an SBOM made elsewhere (socle scan --upload, syft,
// trivy...) for an image the server never pulls: it indexes its
// packages, matches them, keeps watching them, and answers with the
// findings. Audited as sbom.import.
func (s *API) apiImportSBOM(w http.ResponseWriter, r *http.Request) {
	if s.importer == nil {
		s.apiError(w, r, errBadRequest("this server does not index SBOMs"))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sbom.MaxImport))
	if err != nil {
		s.apiError(w, r, errBadRequest(fmt.Sprintf("the SBOM: %v (at most %d bytes)", err, sbom.MaxImport)))
		return
	}
	res, err := s.importer.ImportSBOM(r.Context(), s.st, data, r.URL.Query().Get("image"), s.now())
	if err != nil {
		s.apiError(w, r, errBadRequest(err.Error()))
		return
	}
	// Ranked where the image runs, as the image's findings are.
	if err := s.rank(r, res.Digest, res.Findings); err != nil {
		s.apiError(w, r, err)
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	details, _ := json.Marshal(map[string]any{"format": res.Format, "tools": res.Tools, "packages": len(res.Inventory.Packages), "unmapped": len(res.Unmapped)})
	if _, err := s.st.AppendAudit(r.Context(), store.AuditEvent{At: time.Now().UTC(), Actor: p.String(), Action: "sbom.import",
		Subject: res.Repository + "@" + res.Digest, Details: details}); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"digest": res.Digest, "repository": res.Repository, "format": res.Format, "tools": res.Tools,
		"packages": len(res.Inventory.Packages), "ecosystems": res.Ecosystems, "unmapped": res.Unmapped, "problems": res.Problems, "findings": res.Findings})
}
