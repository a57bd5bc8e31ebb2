package registry

import (
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxManifest bounds a manifest's size, as distribution does.
const maxManifest = 4 << 20

// manifestTypes are the media types a manifest may have.
var manifestTypes = map[types.MediaType]bool{
	types.OCIManifestSchema1:    true,
	types.OCIImageIndex:         true,
	types.DockerManifestSchema2: true,
	types.DockerManifestList:    true,
}

// Manifest is what the registry knows of a parsed manifest.
type parsedManifest struct {
	MediaType    types.MediaType
	ArtifactType string
	// Blobs are the config and layers of an image manifest, which must
	// be in the registry (unless a layer is foreign: it has URLs).
	Blobs []v1.Descriptor
	// Children are the manifests an index lists, which must be in the
	// same repository.
	Children    []v1.Descriptor
	Subject     *v1.Descriptor
	Annotations map[string]string
}

// manifestDoc is the union of the fields of the manifest types.
type manifestDoc struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// parseManifest checks that body is a manifest of a known media type,
// well formed, whose descriptors are valid; contentType is what the
// client sent.
func parseManifest(contentType string, body []byte) (*parsedManifest, error) {
	if len(body) > maxManifest {
		return nil, errorf(413, "SIZE_INVALID", "manifest larger than %d bytes", maxManifest)
	}
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errorf(400, "MANIFEST_INVALID", "not JSON: %v", err)
	}
	mt := types.MediaType(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch {
	case doc.MediaType != "" && mt != "" && doc.MediaType != mt:
		return nil, errorf(400, "MANIFEST_INVALID", "the body says %s, the Content-Type %s", doc.MediaType, mt)
	case mt == "":
		mt = doc.MediaType
	}
	if !manifestTypes[mt] {
		return nil, errorf(400, "MANIFEST_INVALID", "unsupported manifest media type %q", mt)
	}
	if doc.SchemaVersion != 2 {
		return nil, errorf(400, "MANIFEST_INVALID", "schemaVersion %d: want 2", doc.SchemaVersion)
	}
	m := &parsedManifest{MediaType: mt, ArtifactType: doc.ArtifactType, Subject: doc.Subject, Annotations: doc.Annotations}
	if mt.IsIndex() {
		if doc.Config != nil || len(doc.Layers) > 0 {
			return nil, errorf(400, "MANIFEST_INVALID", "an index has no config or layers")
		}
		for i, d := range doc.Manifests {
			if err := checkDescriptor(d); err != nil {
				return nil, errorf(400, "MANIFEST_INVALID", "manifests[%d]: %v", i, err)
			}
			m.Children = append(m.Children, d)
		}
	} else {
		if doc.Config == nil {
			return nil, errorf(400, "MANIFEST_INVALID", "an image manifest needs a config")
		}
		if len(doc.Manifests) > 0 {
			return nil, errorf(400, "MANIFEST_INVALID", "an image manifest lists no manifests")
		}
		if err := checkDescriptor(*doc.Config); err != nil {
			return nil, errorf(400, "MANIFEST_INVALID", "config: %v", err)
		}
		m.Blobs = append(m.Blobs, *doc.Config)
		for i, d := range doc.Layers {
			if err := checkDescriptor(d); err != nil {
				return nil, errorf(400, "MANIFEST_INVALID", "layers[%d]: %v", i, err)
			}
			if len(d.URLs) == 0 {
				m.Blobs = append(m.Blobs, d)
			}
		}
	}
	if doc.Subject != nil {
		if err := checkDescriptor(*doc.Subject); err != nil {
			return nil, errorf(400, "MANIFEST_INVALID", "subject: %v", err)
		}
	}
	return m, nil
}

// checkDescriptor checks a descriptor's digest and size.
func checkDescriptor(d v1.Descriptor) error {
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
		return fmt.Errorf("digest %q: want sha256 and 64 hex digits", d.Digest)
	}
	if d.Size < 0 {
		return fmt.Errorf("negative size %d", d.Size)
	}
	if d.MediaType == "" {
		return fmt.Errorf("no media type")
	}
	return nil
}
