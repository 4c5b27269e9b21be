package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/streambed/streambed/pkg/api"
)

// ProblemListener wraps a listener so that the errors Go's HTTP server
// answers itself, before any handler runs (a malformed request line or
// header, a bad escape in the path, headers over the limit, an unknown
// HTTP version or transfer coding), are application/problem+json like
// every other error, instead of net/http's text/plain.
//
// Those answers are written straight to the connection in one piece,
// with exactly these headers, which no handler's response has (every one
// carries Date), so they are recognized on the way out and rewritten.
func ProblemListener(ln net.Listener) net.Listener { return &problemListener{ln} }

type problemListener struct{ net.Listener }

func (l *problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return &problemConn{Conn: c}, nil
}

type problemConn struct{ net.Conn }

const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *problemConn) Write(p []byte) (int, error) {
	if out, ok := rewriteCanned(p); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// rewriteCanned turns net/http's own error answer into a problem.
func rewriteCanned(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return nil, false
	}
	i := bytes.Index(p, []byte(cannedHeaders))
	if i < 0 || bytes.IndexByte(p[:i], '\n') >= 0 {
		return nil, false // the status line must run straight into those headers
	}
	status := string(p[len("HTTP/1.1 "):i])
	code, err := strconv.Atoi(strings.SplitN(status, " ", 2)[0])
	if err != nil || code < 400 {
		return nil, false
	}
	var pc api.Code
	switch code {
	case 431:
		pc = api.CodeHeadersTooLarge
	case 501:
		pc = api.CodeNotImplemented
	case 505:
		pc = api.CodeHTTPVersion
	default:
		pc = api.CodeInvalidRequest
	}
	prob := api.NewProblem(pc, "the HTTP request is malformed: "+strings.TrimSpace(string(p[i+len(cannedHeaders):])))
	prob.Status = code
	body, _ := json.Marshal(prob)
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 ")
	out.WriteString(strconv.Itoa(code) + " " + http.StatusText(code))
	out.WriteString("\r\nContent-Type: " + api.ProblemContentType + "\r\nContent-Length: " + strconv.Itoa(len(body)+1) + "\r\nConnection: close\r\n\r\n")
	out.Write(body)
	out.WriteByte('\n')
	return out.Bytes(), true
}
