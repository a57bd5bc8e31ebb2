package zdict_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/zdict"
)

// Hand-made dictionary and documents.
var dict = []byte(`{"findings":[{"rule":"img-root-user","message":"the image runs as root"}]}`)

func TestRoundTripAndSize(t *testing.T) {
	c := zdict.New(7, dict, 1<<20)
	doc := []byte(`{"findings":[{"rule":"img-root-user","message":"the image runs as root (no USER)"}]}`)
	b, err := c.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !zdict.Is(b) || zdict.Is(doc) {
		t.Fatal("Is does not tell zstd from JSON")
	}
	plain, _ := zdict.New(8, []byte("unrelated"), 1<<20).Encode(doc)
	if len(b) >= len(plain) {
		t.Errorf("with the dictionary %d bytes, without %d", len(b), len(plain))
	}
	back, err := c.Decode(b)
	if err != nil || !bytes.Equal(back, doc) {
		t.Fatalf("decoded %q, %v", back, err)
	}
	// Another dictionary cannot read it.
	if _, err := zdict.New(8, []byte("unrelated"), 1<<20).Decode(b); err == nil {
		t.Fatal("decoded with the wrong dictionary")
	}
}

func TestDecodeBounds(t *testing.T) {
	big, err := zdict.New(7, dict, 1<<30).Encode([]byte(strings.Repeat("a", 4<<20)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zdict.New(7, dict, 1<<20).Decode(big); err == nil {
		t.Fatal("a document past the limit was decoded")
	}
	if _, err := zdict.New(7, dict, 1<<20).Decode([]byte("\x28\xb5\x2f\xfdgarbage")); err == nil {
		t.Fatal("garbage was decoded")
	}
}
