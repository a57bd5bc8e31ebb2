package scan

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"

	"github.com/klauspost/compress/gzip"

	"github.com/socle-dev/socle/internal/order"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
	"github.com/socle-dev/socle/internal/zdict"
)

// An inventory is stored in two parts when it can be: the packages
// matched on become the store's package rows (binaries shared by every
// image holding them, each package's other fields stored once by
// content), and the blob keeps the rest (layers, OS, labels, the packages
// without a match key), compressed with a dictionary of what those are
// made of (zdict, inventorydict/1.json, hand-made: common OS releases,
// media types, label keys). StoredInventory puts them back together. At fleet
// scale this is most of an image's store size: its packages were held
// twice, once as rows and once in the blob.

// storedInventory is the blob: PackagesInStore says that the packages
// matched on were left out, and what the image's row holds (its digest,
// media type, config digest, platform and layer digests).
type storedInventory struct {
	*sbom.Inventory
	PackagesInStore bool `json:"packages_in_store,omitempty"`
}

// storedPackages returns the inventory's packages as the store keeps
// them, the others, and whether the inventory can be rebuilt from them: its packages
// are in their order with no two alike, and every stored package names
// its layer.
func storedPackages(inv *sbom.Inventory) ([]store.ImagePackage, []sbom.Package, bool) {
	rebuilt := true
	// Stored rows alike (name, version, type, purl, path, layer index),
	// found by a hash of theirs: two rows of one hash that are not alike
	// count as alike too, which at worst keeps an inventory's packages in
	// its blob.
	seen := make(map[uint64]struct{}, len(inv.Packages))
	pkgs := make([]store.ImagePackage, 0, len(inv.Packages))
	var unkeyed []sbom.Package
	for i := range inv.Packages {
		p := &inv.Packages[i]
		if i > 0 && !sbom.LessPackage(&inv.Packages[i-1], p) {
			rebuilt = false
		}
		key, ok := vuln.KeyOf(p)
		if !ok {
			unkeyed = append(unkeyed, *p)
			continue
		}
		if p.Layer == "" || p.RemovedBy != "" {
			rebuilt = false
		}
		if rebuilt {
			h := rowHash(p)
			if _, dup := seen[h]; dup {
				rebuilt = false
			}
			seen[h] = struct{}{}
		}
		pkgs = append(pkgs, store.ImagePackage{
			Key: key, Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL,
			Path: p.Path, Layer: p.Layer, LayerIndex: p.LayerIndex, Extra: packageExtra(p),
		})
	}
	return pkgs, unkeyed, rebuilt && len(pkgs) > 0
}

var rowSeed = maphash.MakeSeed()

// rowHash hashes what a package's store row is told apart by.
func rowHash(p *sbom.Package) uint64 {
	var h maphash.Hash
	h.SetSeed(rowSeed)
	for _, f := range [...]string{p.Name, p.Version, p.Type, p.PURL, p.Path} {
		h.WriteString(f)
		h.WriteByte(0)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(p.LayerIndex))
	h.Write(n[:])
	return h.Sum64()
}

// packageExtra is what a package has beyond its store row's columns: the
// JSON of the package with those left empty, byte for byte what
// encoding/json writes (the store keeps each distinct value once, by its
// hash), through sbom.AppendJSON: json.Marshal of every package of every
// image was a tenth of an ingest's CPU.
func packageExtra(p *sbom.Package) []byte {
	e := *p
	e.Name, e.Version, e.Type, e.PURL, e.Path, e.Layer, e.LayerIndex = "", "", "", "", "", "", 0
	return sbom.AppendJSON(make([]byte, 0, 160), &e)
}

// fromStored is a package rebuilt from its store row.
func fromStored(sp store.ImagePackage) (sbom.Package, error) {
	var p sbom.Package
	if len(sp.Extra) > 0 {
		if err := json.Unmarshal(sp.Extra, &p); err != nil {
			return p, fmt.Errorf("stored package %s %s: %w", sp.Name, sp.Version, err)
		}
	}
	p.Name, p.Version, p.Type, p.PURL, p.Path, p.Layer, p.LayerIndex = sp.Name, sp.Version, sp.Type, sp.PURL, sp.Path, sp.Layer, sp.LayerIndex
	return p, nil
}

// encodeInventory serialises an inventory for the store; with
// packagesInStore, its packages are only unkeyed, those the store's rows
// do not give back, and what the image's row holds is left out too: the
// few hundred bytes left are compressed with a dictionary of what
// inventory headers are made of. A whole inventory is gzip JSON.
func encodeInventory(inv *sbom.Inventory, unkeyed []sbom.Package, packagesInStore bool) ([]byte, error) {
	if packagesInStore {
		slim := *inv
		slim.Digest, slim.MediaType, slim.Config, slim.Platform = "", "", "", ""
		slim.Layers = slices.Clone(inv.Layers)
		for i := range slim.Layers {
			slim.Layers[i].Digest = ""
		}
		slim.Packages = unkeyed
		b, err := json.Marshal(storedInventory{Inventory: &slim, PackagesInStore: true})
		if err != nil {
			return nil, err
		}
		return headerCodec.Encode(b)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(storedInventory{Inventory: inv}); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// EncodeInventory serialises a whole inventory for the store.
func EncodeInventory(inv *sbom.Inventory) ([]byte, error) { return encodeInventory(inv, nil, false) }

// maxInventory bounds what a stored inventory inflates to.
const maxInventory = 1 << 30

//go:embed inventorydict/1.json
var headerDict1 []byte

var headerCodec = zdict.New(1, headerDict1, maxInventory)

func decodeInventory(b []byte) (storedInventory, error) {
	out := storedInventory{Inventory: &sbom.Inventory{}}
	if zdict.Is(b) {
		raw, err := headerCodec.Decode(b)
		if err != nil {
			return out, fmt.Errorf("decoding inventory: %w", err)
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return out, fmt.Errorf("decoding inventory: %w", err)
		}
		return out, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return out, fmt.Errorf("decoding inventory: %w", err)
	}
	defer zr.Close()
	if err := json.NewDecoder(io.LimitReader(zr, maxInventory)).Decode(&out); err != nil {
		return out, fmt.Errorf("decoding inventory: %w", err)
	}
	return out, nil
}

// errPackagesInStore is DecodeInventory's answer for an inventory whose
// packages are the store's rows.
var errPackagesInStore = errors.New("the inventory's packages are in the store: read it with StoredInventory")

// DecodeInventory reads an inventory stored whole.
func DecodeInventory(b []byte) (*sbom.Inventory, error) {
	si, err := decodeInventory(b)
	if err != nil {
		return nil, err
	}
	if si.PackagesInStore {
		return nil, errPackagesInStore
	}
	return si.Inventory, nil
}

// InventoryDiffIDs reads the layer diff IDs of a stored inventory,
// bottom-up.
func InventoryDiffIDs(b []byte) ([]string, error) {
	si, err := decodeInventory(b)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(si.Layers))
	for i, l := range si.Layers {
		out[i] = l.DiffID
	}
	return out, nil
}

// PackageReader reads an image's stored packages.
type PackageReader interface {
	ImagePackages(ctx context.Context, digest string) ([]store.ImagePackage, error)
}

// StoredInventory returns the inventory of a stored image, its packages
// read back from the store when the blob left them out.
func StoredInventory(ctx context.Context, st PackageReader, img store.Image) (*sbom.Inventory, error) {
	si, err := decodeInventory(img.Inventory)
	if err != nil || !si.PackagesInStore {
		return si.Inventory, err
	}
	rows, err := st.ImagePackages(ctx, img.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading the packages of %s: %w", img.Digest, err)
	}
	inv := si.Inventory
	if len(img.Layers) != len(inv.Layers) {
		return nil, fmt.Errorf("the stored inventory of %s lists %d layers, its image %d", img.Digest, len(inv.Layers), len(img.Layers))
	}
	inv.Digest, inv.MediaType, inv.Config, inv.Platform = img.Digest, img.MediaType, img.Config, img.Platform
	for i := range inv.Layers {
		inv.Layers[i].Digest = img.Layers[i]
	}
	for _, r := range rows {
		p, err := fromStored(r)
		if err != nil {
			return nil, err
		}
		inv.Packages = append(inv.Packages, p)
	}
	order.Stable(inv.Packages, sbom.ComparePackages)
	return inv, nil
}
