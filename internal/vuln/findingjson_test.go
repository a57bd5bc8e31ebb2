package vuln

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// fill sets every field of v (a pointer), nested ones too, to a value
// that is not empty, so that a field the appender does not write (one
// added to Finding, sbom.Package, store.PackageKey or store.Rating later)
// makes the output differ from encoding/json's.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("v<&>\u2028" + string(rune('a'+*n%26)))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Float64:
		v.SetFloat(float64(*n) * 1.5e-7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2024, 1, 2, 3, 4, 5, *n, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	default:
		panic("fill: a field of kind " + v.Kind().String() + ": teach fill and the appender about it")
	}
}

func TestFindingsJSONAsEncodingJSON(t *testing.T) {
	var full Finding
	n := 0
	fill(reflect.ValueOf(&full).Elem(), &n)
	for name, fs := range map[string][]Finding{
		"every field set": {full, full},
		"zero":            {{}},
		"none":            {},
		"nil":             nil,
		"from the store":  FromStore(fromStoreRows()),
	} {
		got, ok := AppendFindingsJSON(nil, fs)
		want, err := json.Marshal(fs)
		if !ok || err != nil || string(got) != string(want) {
			t.Fatalf("%s: ok %v, err %v\n got %s\nwant %s", name, ok, err, got, want)
		}
	}
	bad := full
	bad.Risk = math.NaN()
	if _, ok := AppendFindingsJSON(nil, []Finding{bad}); ok {
		t.Fatal("NaN risk accepted; encoding/json refuses it")
	}
	bad = full
	bad.Ratings = append([]store.Rating(nil), full.Ratings...)
	bad.Ratings[1].Score = math.Inf(1)
	if _, ok := AppendFindingsJSON(nil, []Finding{bad}); ok {
		t.Fatal("an infinite rating score accepted")
	}
}

func BenchmarkFindingsJSON(b *testing.B) {
	var fs []Finding
	for range 60 {
		fs = append(fs, FromStore(fromStoreRows())...)
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(fs)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = AppendFindingsJSON(buf[:0], fs)
		}
	})
}
