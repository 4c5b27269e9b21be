package httpapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/auth"
)

type identityKey struct{}

// guard authenticates a route's callers and checks the route's operation
// on the topic or group in its path; operations on resources named in the
// body are checked by the handler (may). Both happen before any lookup, so
// 401 and 403 answer the same whether or not the resource exists.
func (s *Server) guard(rt Route) http.HandlerFunc {
	return s.withDeadline(rt, s.authorize(rt, s.withBodyBudget(rt.Handler)))
}

// withBodyBudget holds a request's body bytes (its Content-Length, or the
// body limit when unknown) against the server's in-flight budget while
// the handler runs: waiting up to 2 s for room, then 429.
func (s *Server) withBodyBudget(next http.HandlerFunc) http.HandlerFunc {
	if s.inflight == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next(w, r)
			return
		}
		n := int64(s.opts.MaxBodyBytes)
		if r.ContentLength > 0 && r.ContentLength < n {
			n = r.ContentLength
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := s.inflight.Acquire(ctx, n)
		cancel()
		if err != nil {
			p := api.NewProblem(api.CodeThrottled, "the server is holding as many request bytes as it allows; retry shortly")
			p.RetryAfter = 1
			s.problem(w, r, p)
			return
		}
		defer s.inflight.Release(n)
		next(w, r)
	}
}

// longPolls are the routes whose answer may wait for records.
var longPolls = map[string]bool{
	"GET /v1/topics/{topic}/partitions/{partition}/records": true,
	"POST /v1/fetch":               true,
	"POST /v1/groups/{group}/poll": true,
}

// withDeadline gives a request its server-side deadline: RequestTimeout,
// plus the longest wait for a long poll; an SSE stream none (it applies
// one to each read).
func (s *Server) withDeadline(rt Route, next http.HandlerFunc) http.HandlerFunc {
	if s.opts.RequestTimeout < 0 {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		d := s.opts.RequestTimeout
		if longPolls[rt.Method+" "+rt.Path] {
			if wants(r, "text/event-stream") {
				next(w, r)
				return
			}
			d += s.b.Limits().MaxWait
		}
		ctx, cancel := context.WithTimeoutCause(r.Context(), d, errRequestTimeout)
		defer cancel()
		next(w, r.WithContext(ctx))
	}
}

func (s *Server) authorize(rt Route, next http.HandlerFunc) http.HandlerFunc {
	a := s.opts.Auth
	if a == nil || rt.Op == "public" {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="streambed"`)
			s.problem(w, r, api.NewProblem(api.CodeUnauthenticated, err.Error()))
			return
		}
		if d := a.Throttle(id.Principal); d > 0 {
			p := api.NewProblem(api.CodeThrottled, fmt.Sprintf("principal %s is over its request rate; retry in %s", id.Principal, d.Round(time.Millisecond)))
			p.RetryAfter = int(math.Ceil(d.Seconds()))
			s.problem(w, r, p)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		op, kind, name, anyOfKind := routeResource(rt, r)
		ok := false
		switch {
		case anyOfKind:
			ok = a.AllowedAny(id, op, kind)
		case kind == "":
			ok = true // lists: filtered by the handler
		default:
			ok = a.Allowed(id, op, kind, name)
		}
		if !ok {
			s.forbid(w, r, id, op, kind, name)
			return
		}
		next(w, r)
	}
}

// routeResource maps a route to the permission it needs: an operation on
// the topic or group in the path, on the cluster, on some resource of a
// kind (any), or nothing beyond authentication (a list).
func routeResource(rt Route, r *http.Request) (op auth.Op, kind auth.Kind, name string, anyOfKind bool) {
	topic, group := r.PathValue("topic"), r.PathValue("group")
	op = auth.Op(rt.Op)
	switch {
	case strings.HasPrefix(rt.Path, "/v1/admin/"):
		return auth.Admin, auth.Cluster, "", false
	case group != "":
		return op, auth.Group, group, false
	case topic != "":
		return op, auth.Topic, topic, false
	case op == auth.Read:
		return op, "", "", false
	default: // create topic, producer ids, multi-partition fetch: the body names the topics
		return op, auth.Topic, "", true
	}
}

// may checks op on a resource named in a request body, answering 403 if
// it is not allowed. Always true when auth is off.
func (s *Server) may(w http.ResponseWriter, r *http.Request, op auth.Op, kind auth.Kind, name string) bool {
	if s.opts.Auth == nil {
		return true
	}
	id, _ := r.Context().Value(identityKey{}).(auth.Identity)
	if s.opts.Auth.Allowed(id, op, kind, name) {
		return true
	}
	s.forbid(w, r, id, op, kind, name)
	return false
}

// visible filters list results to what the caller may read.
func (s *Server) visible(r *http.Request, kind auth.Kind, name string) bool {
	if s.opts.Auth == nil {
		return true
	}
	id, _ := r.Context().Value(identityKey{}).(auth.Identity)
	return s.opts.Auth.Allowed(id, auth.Read, kind, name)
}

func (s *Server) forbid(w http.ResponseWriter, r *http.Request, id auth.Identity, op auth.Op, kind auth.Kind, name string) {
	what := string(kind)
	if name != "" {
		what += " " + name
	}
	if kind == "" || name == "" && kind != auth.Cluster {
		what = "any " + string(kind)
	}
	s.problem(w, r, api.NewProblem(api.CodeForbidden, fmt.Sprintf("principal %s may not %s on %s", id.Principal, op, what)))
}

// principal names the authenticated caller ("" without authentication).
func principal(r *http.Request) string {
	id, _ := r.Context().Value(identityKey{}).(auth.Identity)
	return id.Principal
}
