package jsonw

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// Hand-made strings: every escape encoding/json writes, HTML characters,
// the JavaScript line separators, bytes that are not UTF-8.
var stringSeeds = []string{"", "plain", `q"b\s`, "\b\f\n\r\t\x00\x1f\x7f", "<a href='x'>&amp;</a>", "\u2028\u2029", "é漢字😀",
	"\xff\xfe", "a\xc3", "\xed\xa0\x80", "€\u2027\u202a"}

func sameAsStd(t *testing.T, what any, got []byte) {
	t.Helper()
	want, err := json.Marshal(what)
	if err != nil {
		t.Fatalf("%#v: encoding/json: %v", what, err)
	}
	if string(got) != string(want) {
		t.Fatalf("%#v: %s, encoding/json %s", what, got, want)
	}
}

func TestStringAsEncodingJSON(t *testing.T) {
	for _, s := range stringSeeds {
		sameAsStd(t, s, String(nil, s))
	}
	sameAsStd(t, stringSeeds, Strings(nil, stringSeeds))
	sameAsStd(t, []string(nil), Strings(nil, nil))
	sameAsStd(t, []string{}, Strings(nil, []string{}))
}

func TestFloatAsEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 7.25, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-9, 1e20, 1e21, 1.5e300,
		-2.5e-10, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.123} {
		got, ok := Float(nil, f)
		if !ok {
			t.Fatalf("%v refused", f)
		}
		sameAsStd(t, f, got)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, ok := Float(nil, f); ok {
			t.Fatalf("%v accepted", f)
		}
	}
}

func TestTimeAsEncodingJSON(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", -5*3600-30*60)),
		time.Unix(1_700_000_000, 123_000_000).In(time.FixedZone("y", 3600))} {
		got, ok := Time(nil, tm)
		if !ok {
			t.Fatalf("%v refused", tm)
		}
		sameAsStd(t, tm, got)
	}
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, ok := Time(nil, tm); ok {
			t.Fatalf("%v accepted; encoding/json refuses it", tm)
		}
	}
}

func TestKeyAndScalars(t *testing.T) {
	b := Key([]byte("{"), "a_b")
	b = Int(b, -42)
	b = Bool(Key(b, "ok"), true)
	sameAsStd(t, struct {
		A  int  `json:"a_b"`
		OK bool `json:"ok"`
	}{-42, true}, append(b, '}'))
}

func FuzzString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sameAsStd(t, s, String(nil, s))
	})
}

func FuzzFloat(f *testing.F) {
	for _, x := range []float64{0, 1e-7, 1e21, 0.1, -3.75} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		got, ok := Float(nil, x)
		if !ok {
			if _, err := json.Marshal(x); err == nil {
				t.Fatalf("%v refused, encoding/json takes it", x)
			}
			return
		}
		sameAsStd(t, x, got)
	})
}
