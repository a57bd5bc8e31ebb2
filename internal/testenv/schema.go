package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// CompileSchema compiles the schema at main, with resources (URL → file)
// for the references it makes.
func CompileSchema(t testing.TB, resources map[string]string, main string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	for url, path := range resources {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(main)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Validate checks a JSON document against a schema.
func Validate(s *jsonschema.Schema, doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// CycloneDXSchema is the official CycloneDX schema of a version ("1.6"),
// from the shared data, with the SPDX licence and JSF schemas it refers to.
func CycloneDXSchema(t testing.TB, version string) *jsonschema.Schema {
	t.Helper()
	dir := SharedData(t, "sbom-interop", "cyclonedx", "schema")
	id := "http://cyclonedx.org/schema/bom-" + version + ".schema.json"
	if version == "1.2" {
		id = "http://cyclonedx.org/schema/bom-1.2b.schema.json" // sic: its $id
	}
	return CompileSchema(t, map[string]string{
		id: filepath.Join(dir, "bom-"+version+".schema.json"),
		"http://cyclonedx.org/schema/spdx.schema.json":     filepath.Join(dir, "spdx.schema.json"),
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": filepath.Join(dir, "jsf-0.82.schema.json"),
	}, id)
}

// SPDXSchema is an official SPDX JSON schema of the shared data
// ("spdx-schema-v2.3.json", "spdx-schema-support-2.3.1.json").
func SPDXSchema(t testing.TB, file string) *jsonschema.Schema {
	t.Helper()
	p := SharedData(t, "sbom-interop", "spdx", "schema", file)
	return CompileSchema(t, map[string]string{"file:///" + file: p}, "file:///"+file)
}

// SARIFSchema is the path of the official SARIF 2.1.0 schema;
// .ci/fetch-test-data.sh takes it from Microsoft's SARIF SDK package on
// the npm registry.
func SARIFSchema(t testing.TB) string {
	t.Helper()
	p := os.Getenv("SOCLE_SARIF_SCHEMA")
	if p == "" {
		p = filepath.Join(RepoRoot(t), ".ci", "cache", "sarif-2.1.0.json")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("SARIF 2.1.0 schema not found at %s: run .ci/fetch-test-data.sh (or set SOCLE_SARIF_SCHEMA)", p)
	}
	return p
}
