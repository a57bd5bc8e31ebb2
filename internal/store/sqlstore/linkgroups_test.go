package sqlstore

import (
	"slices"
	"testing"
)

// groupSample is hand-made: sorted distinct IDs with small and large gaps.
var groupSample = []int64{1, 2, 130, 131, 1 << 20, 1<<40 + 7}

func TestGroupEncoding(t *testing.T) {
	got, err := decodeGroup(encodeGroup(groupSample))
	if err != nil || !slices.Equal(got, groupSample) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, bad := range [][]byte{
		{0x80},       // a varint cut short
		{0x00},       // ID 0
		{0x05, 0x00}, // the same ID twice
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // past the largest ID
	} {
		if ids, err := decodeGroup(bad); err == nil {
			t.Errorf("decodeGroup(%x) = %v, want an error", bad, ids)
		}
	}
	if groupHash(groupSample) == groupHash(groupSample[1:]) {
		t.Fatal("two groups share a hash")
	}
}

// FuzzDecodeGroup: a group's versions are socle's own, but a damaged
// database must give an error, never a panic, and no more IDs than
// bytes; what decodes is sorted and distinct and encodes back to it.
func FuzzDecodeGroup(f *testing.F) {
	f.Add(encodeGroup(groupSample))
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeGroup(b)
		if err != nil {
			return
		}
		if len(ids) > len(b) {
			t.Fatalf("%d IDs from %d bytes", len(ids), len(b))
		}
		for i := range ids {
			if ids[i] < 1 || i > 0 && ids[i] <= ids[i-1] {
				t.Fatalf("not sorted and distinct: %v", ids)
			}
		}
		if again, err := decodeGroup(encodeGroup(ids)); err != nil || !slices.Equal(again, ids) {
			t.Fatalf("re-encoding %v: %v, %v", ids, again, err)
		}
	})
}
