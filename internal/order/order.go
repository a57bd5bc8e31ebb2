// Package order sorts slices of large values (packages, findings) by
// index: the comparisons run on the values in place, and each value is
// moved once, where sort.SliceStable would swap whole structs through
// reflection O(n log n) times.
package order

import (
	"cmp"
	"slices"
)

// Indices returns the positions of s in the order cmp sorts them, equal
// values in the order they have in s.
func Indices[T any](s []T, compare func(a, b *T) int) []int {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		return cmp.Or(compare(&s[i], &s[j]), cmp.Compare(i, j))
	})
	return idx
}

// Stable sorts s by compare, keeping equal values in their order.
func Stable[T any](s []T, compare func(a, b *T) int) {
	if len(s) < 2 {
		return
	}
	idx := Indices(s, compare)
	// Position j takes the value at idx[j]: each cycle of the permutation
	// is followed once, with one value held aside.
	for start := range idx {
		if idx[start] == start {
			continue
		}
		held, j := s[start], start
		for {
			k := idx[j]
			idx[j] = j
			if k == start {
				s[j] = held
				break
			}
			s[j] = s[k]
			j = k
		}
	}
}
