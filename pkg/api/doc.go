// Package api holds the HTTP API's wire types and its error catalog: the
// contract shared by the server (pkg/httpapi) and the Go client
// (pkg/client). It imports nothing from either side, so the client never
// pulls server code in. Field names are the contract; the OpenAPI document
// (served at /v1/openapi.json, source pkg/httpapi/openapi.json) describes
// the same shapes.
package api
