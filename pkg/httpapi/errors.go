package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/segments"
)

var errNoCompactor = fmt.Errorf("%w: this server runs no compactor", offsets.ErrUnavailable)

// problemFor turns an error into a problem. write says whether the request
// could have changed state, which decides side_effect for failures whose
// outcome is unknown.
func problemFor(err error, write bool) *api.Problem {
	var p *api.Problem
	if errors.As(err, &p) {
		return p
	}
	var forbidden *forbiddenError
	if errors.As(err, &forbidden) {
		return api.NewProblem(api.CodeForbidden, forbidden.Error())
	}
	code := broker.CodeOf(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = api.CodeBodyTooLarge
	}
	detail := err.Error()
	if internalDetail[code] != "" {
		// Storage errors carry paths, hosts and SDK internals: the log
		// has them, under the request id; the caller gets the gist.
		detail = internalDetail[code]
	}
	p = api.NewProblem(code, detail)
	var fe *broker.FieldError
	var ie *offsets.InvalidError
	switch {
	case errors.As(err, &fe):
		p.Field, p.Detail = fe.Field, fe.Error()
	case errors.As(err, &ie):
		p.Field, p.Detail = ie.Field, ie.Error()
	}
	var oor *broker.OffsetOutOfRangeError
	if errors.As(err, &oor) {
		p.LogStartOffset, p.LogEndOffset = &oor.LogStart, &oor.LogEnd
	}
	var om *offsets.OffsetMismatchError
	if errors.As(err, &om) {
		p.LogEndOffset = &om.LogEnd
	}
	// Unknown outcomes of writes: a timeout or a store that gave up may have
	// committed. A failure known to have committed nothing never did.
	if write && (code == api.CodeTimeout || code == api.CodeUnavailable) && !errors.Is(err, broker.ErrNotCommitted) {
		p.SideEffect = api.SideEffectMaybe
	}
	return p
}

// internalDetail replaces the detail of errors whose text describes the
// server's insides.
var internalDetail = map[api.Code]string{
	api.CodeInternal:            "internal error",
	api.CodeUnavailable:         "storage is unavailable; see side_effect before retrying",
	api.CodeTimeout:             "no answer from storage before the request's deadline; see side_effect before retrying",
	api.CodeStorageRefused:      "storage refused the request (access, configuration or a limit); an operator must act",
	api.CodeInsufficientStorage: "the server's disk is full; retry once space is freed",
}

// errorRef is the short per-record / per-partition error form.
func errorRef(err error) *api.ErrorRef {
	p := problemFor(err, true)
	return &api.ErrorRef{Code: p.Code, Status: p.Status, Retryable: p.Retryable, Message: p.Detail}
}

// problem writes a problem+json response.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, p *api.Problem) {
	p.RequestID = requestID(r)
	if p.Status >= 500 {
		s.log.Warn("request failed", "request_id", p.RequestID, "code", p.Code, "detail", p.Detail)
	}
	b, _ := json.Marshal(p)
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}

// fail writes err as a problem, logging unexpected ones with their cause.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, write bool) {
	p := problemFor(err, write)
	if errors.Is(context.Cause(r.Context()), errRequestTimeout) && p.Code == api.CodeTimeout {
		p.Detail = fmt.Sprintf("no answer from storage within the request's %s deadline; see side_effect before retrying", s.opts.RequestTimeout)
	}
	if p.Status >= 500 && p.Code != api.CodeInternal {
		s.log.Warn("storage error", "request_id", requestID(r), "code", p.Code, "err", err)
	}
	if p.Code == api.CodeInternal {
		level := "internal error"
		if errors.Is(err, broker.ErrCorrupt) || errors.Is(err, segments.ErrChecksum) {
			level = "stored data is corrupt"
		}
		s.log.Error(level, "request_id", requestID(r), "err", err)
	}
	s.problem(w, r, p)
}
