package sqlstore

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// packRowsSample is hand-made: IDs that rise and fall, a row whose layer
// the image's list does not give, a negative layer index (a package no
// layer holds), and times and extras that change between rows.
var packRowsSample = []packRow{
	{bin: 1_000_001, pkg: 500_000, layerIndex: 0, since: 1_733_000_000_000_000},
	{bin: 1_000_002, pkg: 499_998, layerIndex: 0, since: 1_733_000_000_000_000, extra: 77},
	{bin: 12, pkg: 3, layer: "sha256:" + string(bytes.Repeat([]byte("ab"), 32)), layerIndex: 3, since: 1_733_000_000_000_001, extra: 76},
	{bin: math.MaxInt64, pkg: 1, layerIndex: -1, since: 0},
}

func TestPackRowsRoundTrip(t *testing.T) {
	for _, rows := range [][]packRow{nil, {}, packRowsSample[:1], packRowsSample} {
		got, err := decodePackRows(encodePackRows(rows))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, rows) && len(got)+len(rows) > 0 {
			t.Fatalf("round trip of %+v = %+v", rows, got)
		}
	}
	// The common case: one image's rows of one time, IDs close together.
	var rows []packRow
	for i := range 200 {
		rows = append(rows, packRow{bin: int64(4_000_000 + i), pkg: int64(900_000 + 2*i), since: 1_733_000_000_000_000, extra: int64(30_000 + i)})
	}
	if b := encodePackRows(rows); len(b) > 200*8 {
		t.Fatalf("200 close rows take %d bytes", len(b))
	}
}

func TestPackRowsRefusesCorruption(t *testing.T) {
	good := encodePackRows(packRowsSample)
	for name, b := range map[string][]byte{
		"unknown format":  append([]byte{9}, good[1:]...),
		"truncated":       good[:len(good)-3],
		"trailing bytes":  append(slices.Clone(good), 0),
		"count past data": {packRowsFormat, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"string past end": {packRowsFormat, 1, 2, 2, 0, 0, 0, 0x7f},
		"bad varint":      {packRowsFormat, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := decodePackRows(b); !errors.Is(err, errPackRows) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// FuzzDecodePackRows: what is stored is socle's own, but a damaged
// database must give an error, never a panic or an allocation beyond the
// value's size; what decodes encodes back to the same bytes.
func FuzzDecodePackRows(f *testing.F) {
	f.Add(encodePackRows(packRowsSample))
	f.Add(encodePackRows(nil))
	f.Add([]byte{packRowsFormat, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := decodePackRows(b)
		if err != nil || len(b) == 0 {
			return
		}
		if len(rows) > len(b)/minPackRow {
			t.Fatalf("%d rows from %d bytes", len(rows), len(b))
		}
		if again, err := decodePackRows(encodePackRows(rows)); err != nil || !slices.Equal(again, rows) {
			t.Fatalf("re-encoding %+v: %+v, %v", rows, again, err)
		}
	})
}

func TestPadded(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 0}, {1, 1}, {3, 4}, {4, 4}, {200, 256}, {500, 512}} {
		values := make([]int64, c.n)
		for i := range values {
			values[i] = int64(i + 1)
		}
		in, args := padded(values)
		if len(args) != c.want || (c.n > 0 && strings.Count(in, "?") != c.want) {
			t.Fatalf("padded(%d values) = %q, %d args", c.n, in, len(args))
		}
		for i, a := range args {
			if want := values[min(i, c.n-1)]; a != want {
				t.Fatalf("padded(%d values): argument %d = %v, want %d", c.n, i, a, want)
			}
		}
	}
}

// BenchmarkPackRows encodes and decodes one image's 200 rows (IDs close
// together, one time, as ingest writes them): every image findings
// answer and every re-ingest decodes them.
func BenchmarkPackRows(b *testing.B) {
	rows := make([]packRow, 200)
	for i := range rows {
		rows[i] = packRow{bin: int64(4_000_000 + i), pkg: int64(900_000 + 2*i), since: 1_733_000_000_000_000, extra: int64(30_000 + i)}
	}
	data := encodePackRows(rows)
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			encodePackRows(rows)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := decodePackRows(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
