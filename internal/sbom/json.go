package sbom

import "github.com/socle-dev/socle/internal/jsonw"

// AppendJSON appends p as encoding/json marshals it, byte for byte,
// following Package's fields and their JSON tags in order: what an
// image's findings answer shows of each package, and what the store keeps
// of a package beyond its row (scan.packageExtra), without reflection.
func AppendJSON(b []byte, p *Package) []byte {
	b = jsonw.String(jsonw.Key(append(b, '{'), "name"), p.Name)
	b = jsonw.String(jsonw.Key(b, "version"), p.Version)
	b = jsonw.String(jsonw.Key(b, "type"), p.Type)
	b = jsonw.OmitEmpty(b, "source_name", p.SourceName)
	b = jsonw.OmitEmpty(b, "source_version", p.SourceVersion)
	if p.Epoch != 0 {
		b = jsonw.Int(jsonw.Key(b, "epoch"), int64(p.Epoch))
	}
	b = jsonw.OmitEmpty(b, "arch", p.Arch)
	b = jsonw.OmitEmpty(b, "namespace", p.Namespace)
	if len(p.Licenses) > 0 {
		b = jsonw.Strings(jsonw.Key(b, "licenses"), p.Licenses)
	}
	b = jsonw.String(jsonw.Key(b, "path"), p.Path)
	b = jsonw.String(jsonw.Key(b, "extractor"), p.Extractor)
	b = jsonw.OmitEmpty(b, "ecosystem", p.Ecosystem)
	b = jsonw.OmitEmpty(b, "purl", p.PURL)
	b = jsonw.OmitEmpty(b, "layer", p.Layer)
	b = jsonw.Int(jsonw.Key(b, "layer_index"), int64(p.LayerIndex))
	b = jsonw.OmitEmpty(b, "removed_by", p.RemovedBy)
	return append(b, '}')
}
