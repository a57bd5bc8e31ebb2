package sqlstore

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// layerListSample is hand-made: real-looking sha256 digests, one in
// uppercase (kept as text, so that it reads back the same), another
// algorithm, a malformed digest and an empty one.
var layerListSample = []string{
	"sha256:" + strings.Repeat("0123456789abcdef", 4),
	"sha256:" + strings.Repeat("fedcba9876543210", 4),
	"sha256:" + strings.Repeat("0123456789ABCDEF", 4),
	"sha512:" + strings.Repeat("ab", 64),
	"sha256:abc",
	"",
}

func TestLayerListRoundTrip(t *testing.T) {
	for _, layers := range [][]string{nil, {}, layerListSample[:1], layerListSample} {
		b := encodeLayerList(layers)
		got, err := decodeLayerList(b)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || !slices.Equal(got, layers) {
			t.Fatalf("round trip of %q = %q", layers, got)
		}
	}
	// Two sha256 layers: a format byte, and a kind byte and 32 bytes each.
	if n := len(encodeLayerList(layerListSample[:2])); n != 67 {
		t.Fatalf("two sha256 layers take %d bytes", n)
	}
}

func TestLayerListRefusesCorruption(t *testing.T) {
	good := encodeLayerList(layerListSample)
	for name, b := range map[string][]byte{
		"format":          append([]byte{9}, good[1:]...),
		"cut digest":      good[:20],
		"unknown kind":    append(slices.Clone(good), 7),
		"text past end":   {layerListFormat, layerText, 40, 'a'},
		"bad text length": {layerListFormat, layerText, 0xff},
	} {
		if got, err := decodeLayerList(b); !errors.Is(err, errLayerList) {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

func FuzzDecodeLayerList(f *testing.F) {
	f.Add(encodeLayerList(layerListSample))
	f.Add(encodeLayerList(nil))
	f.Add([]byte{layerListFormat, layerText, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		layers, err := decodeLayerList(b)
		if err != nil {
			return
		}
		if len(layers) > len(b) {
			t.Fatalf("%d layers from %d bytes", len(layers), len(b))
		}
		if again, err := decodeLayerList(encodeLayerList(layers)); err != nil || !slices.Equal(again, layers) {
			t.Fatalf("re-encoding %q: %q, %v", layers, again, err)
		}
	})
}
