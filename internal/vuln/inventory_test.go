package vuln_test

import (
	"testing"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/source"
)

func inventoryOf(t *testing.T, ref string) *sbom.Inventory {
	t.Helper()
	r, err := oci.ParseImageRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := source.Open(ctx, r, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	a, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := a.Inventory(ctx, img, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}
