package terraform_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// Finding is a deployment problem Trivy's misconfiguration checks do not
// report: wildcard grants, routes without an authorizer, public function
// URLs.
type Finding struct {
	Resource string
	Problem  string
}

type tfModule struct {
	Resources []struct {
		Address string         `json:"address"`
		Type    string         `json:"type"`
		Values  map[string]any `json:"values"`
	} `json:"resources"`
	ChildModules []tfModule `json:"child_modules"`
}

// checkPolicies inspects `terraform show -json` output (a plan's planned
// values, or the state) and reports every finding. Values still unknown in
// a plan are skipped, so run it on the applied state too.
func checkPolicies(showJSON []byte) ([]Finding, error) {
	var doc struct {
		PlannedValues *struct {
			RootModule tfModule `json:"root_module"`
		} `json:"planned_values"`
		Values *struct {
			RootModule tfModule `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal(showJSON, &doc); err != nil {
		return nil, err
	}
	var root tfModule
	switch {
	case doc.PlannedValues != nil:
		root = doc.PlannedValues.RootModule
	case doc.Values != nil:
		root = doc.Values.RootModule
	default:
		return nil, fmt.Errorf("neither planned_values nor values in the document")
	}
	var out []Finding
	var walk func(m tfModule)
	walk = func(m tfModule) {
		for _, r := range m.Resources {
			switch r.Type {
			case "aws_iam_role_policy", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy", "aws_s3_bucket_policy":
				if p, ok := r.Values["policy"].(string); ok {
					out = append(out, policyFindings(r.Address, p)...)
				}
			case "aws_apigatewayv2_route":
				// The console's assets are the one exception: static files,
				// no data (the API calls they make are authorized).
				if r.Values["authorization_type"] == "NONE" && !consoleAssetRoutes[fmt.Sprint(r.Values["route_key"])] {
					out = append(out, Finding{r.Address, fmt.Sprintf("route %v has no authorizer", r.Values["route_key"])})
				}
			case "aws_lambda_function_url":
				if r.Values["authorization_type"] == "NONE" {
					out = append(out, Finding{r.Address, "public function URL (authorization NONE)"})
				}
			case "aws_lambda_permission":
				if r.Values["principal"] == "*" {
					out = append(out, Finding{r.Address, "function invocable by any principal"})
				}
			}
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(root)
	return out, nil
}

// unscopable are actions that take no resource but "*" (IAM cannot scope
// them): a statement of only these is not a wildcard grant.
var unscopable = map[string]bool{"ecr:GetAuthorizationToken": true}

func policyFindings(addr, policy string) []Finding {
	var doc struct {
		Statement []struct {
			Effect   string `json:"Effect"`
			Action   any    `json:"Action"`
			Resource any    `json:"Resource"`
		} `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return []Finding{{addr, "policy is not JSON: " + err.Error()}}
	}
	strs := func(v any) []string {
		switch x := v.(type) {
		case string:
			return []string{x}
		case []any:
			var s []string
			for _, e := range x {
				if str, ok := e.(string); ok {
					s = append(s, str)
				}
			}
			return s
		}
		return nil
	}
	var out []Finding
	for _, st := range doc.Statement {
		if st.Effect != "Allow" {
			continue // a Deny with wildcards (e.g. TLS-only) narrows access
		}
		if slices.ContainsFunc(strs(st.Action), func(a string) bool { return a == "*" || strings.HasSuffix(a, ":*") }) {
			out = append(out, Finding{addr, fmt.Sprintf("allows wildcard actions %v", strs(st.Action))})
		}
		if slices.Contains(strs(st.Resource), "*") && slices.ContainsFunc(strs(st.Action), func(a string) bool { return !unscopable[a] }) {
			out = append(out, Finding{addr, "allows Resource \"*\""})
		}
	}
	return out
}

// TestPolicyCheckerFindsEachProblem: the checker must catch every kind of
// problem in a plan that has them all.
func TestPolicyCheckerFindsEachProblem(t *testing.T) {
	data, err := os.ReadFile("testdata/bad-plan.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := checkPolicies(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"wildcard actions", "Resource \"*\"", "has no authorizer", "public function URL", "any principal"}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(f Finding) bool { return strings.Contains(f.Problem, w) }) {
			t.Errorf("no finding about %q in %+v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d findings, want %d (the TLS-only Deny and the console's asset route must not count): %+v", len(got), len(want), got)
	}
}

// TestUnscopableActions: a statement of actions that take no resource but
// "*" is no wildcard grant; mixed with others, it is.
func TestUnscopableActions(t *testing.T) {
	if f := policyFindings("x", `{"Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`); len(f) != 0 {
		t.Errorf("registry token: %+v", f)
	}
	if f := policyFindings("x", `{"Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","s3:GetObject"],"Resource":"*"}]}`); len(f) != 1 {
		t.Errorf("mixed: %+v", f)
	}
}

// consoleAssetRoutes are the routes that serve the web console's files.
var consoleAssetRoutes = map[string]bool{"GET /": true, "GET /ui": true, "GET /ui/{proxy+}": true}
