// Package console is Streambed's web console: static HTML, CSS and
// JavaScript (no build step) embedded in the binary and served by
// `streambed serve` at /ui/. The same files work when deployed anywhere
// as static files: ?api=https://endpoint points them at a Streambed API
// (which must then allow the console's origin, see serve --cors-origin).
//
// The console only calls the public HTTP API, with the bearer token the
// user enters when the API answers 401, kept in the tab's sessionStorage.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Files are the console's static assets (index.html at the root).
func Files() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Handler serves the console under prefix (e.g. "/ui/"). Assets are
// revalidated on every load (they change with the binary) and framing by
// other sites is refused.
func Handler(prefix string) http.Handler {
	fsrv := http.StripPrefix(prefix, http.FileServerFS(Files()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src *; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		fsrv.ServeHTTP(w, r)
	})
}
