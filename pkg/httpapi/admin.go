package httpapi

import (
	"net/http"

	"github.com/streambed/streambed/pkg/compactor"
)

// compact runs one compaction pass now (POST /v1/admin/compact).
func (s *Server) compact(w http.ResponseWriter, r *http.Request) {
	if s.opts.Compactor == nil {
		s.fail(w, r, errNoCompactor, false)
		return
	}
	stats, err := s.opts.Compactor.Run(r.Context())
	if err != nil {
		s.fail(w, r, err, true)
		return
	}
	s.writeJSON(w, http.StatusOK, stats)
}

// fsck checks the deployment's invariants (GET /v1/admin/fsck?strict=true).
func (s *Server) fsck(w http.ResponseWriter, r *http.Request) {
	rep, err := compactor.Fsck(r.Context(), s.b.Store(), s.b.Bucket(), compactor.FsckOptions{Strict: r.URL.Query().Get("strict") == "true", Footers: r.URL.Query().Get("footers") == "true"})
	if err != nil {
		s.fail(w, r, err, false)
		return
	}
	s.writeJSON(w, http.StatusOK, rep)
}
