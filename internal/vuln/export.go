package vuln

import (
	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
)

// WriteEcosystemZips writes records the way osv.dev exports them:
// DIR/ECOSYSTEM/all.zip, one member ID.json per record, in every
// ecosystem (without its release: "Alpine" for "Alpine:v3.10") one of
// its packages names. Other OSV tools read these offline (osv-scanner's
// local database), so they can be compared with socle on the same
// records.
func WriteEcosystemZips(dir string, records []*osvpb.Vulnerability) error {
	byEco := map[string][]*osvpb.Vulnerability{}
	for _, v := range records {
		seen := map[string]bool{}
		for _, a := range v.GetAffected() {
			eco, _, _ := strings.Cut(a.GetPackage().GetEcosystem(), ":")
			if eco == "" || seen[eco] || strings.ContainsAny(eco, `/\`) || eco == ".." {
				continue
			}
			seen[eco] = true
			byEco[eco] = append(byEco[eco], v)
		}
	}
	for eco, vs := range byEco {
		sort.Slice(vs, func(i, j int) bool { return vs[i].GetId() < vs[j].GetId() })
		if err := writeZip(filepath.Join(dir, eco, "all.zip"), vs); err != nil {
			return fmt.Errorf("%s: %w", eco, err)
		}
	}
	return nil
}

func writeZip(path string, vs []*osvpb.Vulnerability) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, v := range vs {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(v)
		if err != nil {
			f.Close()
			return err
		}
		w, err := zw.Create(v.GetId() + ".json")
		if err != nil {
			f.Close()
			return err
		}
		if _, err := w.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
