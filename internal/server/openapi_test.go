package server_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIDescribesEveryRoute holds openapi.yaml and the API's routes
// together: every route is described, and every description is a route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Servers []struct{ URL string }
		Paths   map[string]map[string]any
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if len(spec.Servers) != 1 {
		t.Fatalf("servers: %+v", spec.Servers)
	}
	var described []string
	for path, ops := range spec.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			described = append(described, strings.ToUpper(method)+" "+spec.Servers[0].URL+path)
		}
	}
	s := newStack(t)
	served := s.server.APIRoutes()
	for _, r := range served {
		if !slices.Contains(described, r) {
			t.Errorf("openapi.yaml does not describe %s", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(served, d) {
			t.Errorf("openapi.yaml describes %s, which is not a route", d)
		}
	}
}
