package order

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// item is hand-made: a key with many ties and the position it started
// at, so that a sort that loses the order of equal keys is seen.
type item struct {
	key, pos int
	pad      [8]string
}

func TestStableAsSliceStable(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for n := range 300 {
		s := make([]item, n)
		for i := range s {
			s[i] = item{key: rnd.IntN(1 + n/4), pos: i}
		}
		want := slices.Clone(s)
		sort.SliceStable(want, func(i, j int) bool { return want[i].key < want[j].key })
		Stable(s, func(a, b *item) int { return a.key - b.key })
		if !slices.Equal(s, want) {
			t.Fatalf("%d items: got %v, want %v", n, s, want)
		}
	}
}

func TestIndicesLeavesTheSliceAlone(t *testing.T) {
	s := []item{{key: 3}, {key: 1}, {key: 2}, {key: 1, pos: 1}}
	before := slices.Clone(s)
	idx := Indices(s, func(a, b *item) int { return a.key - b.key })
	if !slices.Equal(idx, []int{1, 3, 2, 0}) || !slices.Equal(s, before) {
		t.Fatalf("Indices = %v, slice %v", idx, s)
	}
}

func BenchmarkStable(b *testing.B) {
	rnd := rand.New(rand.NewPCG(5, 6))
	src := make([]item, 300)
	for i := range src {
		src[i] = item{key: rnd.IntN(100), pos: i}
	}
	s := make([]item, len(src))
	b.Run("order.Stable", func(b *testing.B) {
		for b.Loop() {
			copy(s, src)
			Stable(s, func(a, b *item) int { return a.key - b.key })
		}
	})
	b.Run("sort.SliceStable", func(b *testing.B) {
		for b.Loop() {
			copy(s, src)
			sort.SliceStable(s, func(i, j int) bool { return s[i].key < s[j].key })
		}
	})
}
