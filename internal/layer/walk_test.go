package layer_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/testenv"
)

// recorder keeps what a walk reports.
type recorder struct {
	entries   []layer.Entry
	contents  map[string]string
	whiteouts []layer.Whiteout
}

func (r *recorder) Entry(e *layer.Entry, content io.Reader) error {
	r.entries = append(r.entries, *e)
	if content != nil {
		b, err := io.ReadAll(content)
		if err != nil {
			return err
		}
		if r.contents == nil {
			r.contents = map[string]string{}
		}
		r.contents[e.Path] = string(b)
	}
	return nil
}

func (r *recorder) Whiteout(w layer.Whiteout) error {
	r.whiteouts = append(r.whiteouts, w)
	return nil
}

// The layers below are hand-made for these tests.
func TestWalkNormalisesAndReportsWhiteouts(t *testing.T) {
	tarb := testenv.TarBytes(t, []testenv.File{
		{Path: "./", Dir: true},
		{Path: "/etc/", Dir: true},
		{Path: "./etc/hostname", Content: []byte("box\n")},
		{Path: "etc/.wh.passwd"},
		{Path: "usr/lib/.wh..wh..opq"},
		{Path: "usr/.wh..wh.plnk/123"},
		{Path: "bin/sh", Link: "busybox"},
		{Path: "bin/ash", Hardlink: "/bin/busybox"},
	})
	var r recorder
	if err := layer.Walk(bytes.NewReader(tarb), 0, layer.Limits{}, &r); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range r.entries {
		paths = append(paths, e.Path+":"+e.Kind.String())
	}
	want := []string{"etc:dir", "etc/hostname:file", "bin/sh:symlink", "bin/ash:hardlink"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("entries = %v, want %v", paths, want)
	}
	if r.contents["etc/hostname"] != "box\n" {
		t.Fatalf("content = %q", r.contents["etc/hostname"])
	}
	if r.entries[3].Link != "bin/busybox" {
		t.Fatalf("hard link target = %q, want it made root-relative", r.entries[3].Link)
	}
	wantWh := []layer.Whiteout{{Path: "etc/passwd"}, {Path: "usr/lib", Opaque: true}}
	if !reflect.DeepEqual(r.whiteouts, wantWh) {
		t.Fatalf("whiteouts = %+v, want %+v", r.whiteouts, wantWh)
	}
}

func TestWalkRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []testenv.File
	}{
		{"dotdot name", []testenv.File{{Path: "../../etc/passwd", Content: []byte("x")}}},
		{"dotdot inside", []testenv.File{{Path: "a/../../b", Content: []byte("x")}}},
		{"hard link out", []testenv.File{{Path: "a", Hardlink: "../../etc/shadow"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := layer.Walk(bytes.NewReader(testenv.TarBytes(t, tc.files)), 0, layer.Limits{}, &recorder{})
			if !errors.Is(err, layer.ErrUnsafePath) {
				t.Fatalf("err = %v, want ErrUnsafePath", err)
			}
			var ee *layer.EntryError
			if !errors.As(err, &ee) || ee.Index != 0 {
				t.Fatalf("error does not name the entry: %v", err)
			}
		})
	}
}

func TestWalkLimits(t *testing.T) {
	big := bytes.Repeat([]byte{0}, 1<<20)
	tarb := testenv.TarBytes(t, []testenv.File{{Path: "a", Content: big}, {Path: "b", Content: big}})
	t.Run("file size", func(t *testing.T) {
		err := layer.Walk(bytes.NewReader(tarb), 0, layer.Limits{MaxFileSize: 1000}, &recorder{})
		if !errors.Is(err, layer.ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("total size", func(t *testing.T) {
		err := layer.Walk(bytes.NewReader(tarb), 0, layer.Limits{MaxTotalSize: 1 << 20}, &recorder{})
		if !errors.Is(err, layer.ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("entries", func(t *testing.T) {
		err := layer.Walk(bytes.NewReader(tarb), 0, layer.Limits{MaxEntries: 1}, &recorder{})
		if !errors.Is(err, layer.ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("within limits", func(t *testing.T) {
		if err := layer.Walk(bytes.NewReader(tarb), 0, layer.Limits{}, &recorder{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDecompressionBomb feeds a gzip layer whose content is 64 MiB of
// zeros: about 64 KiB compressed, a ratio near 1000.
func TestDecompressionBomb(t *testing.T) {
	zeros := bytes.Repeat([]byte{0}, 64<<20)
	tarb := testenv.TarBytes(t, []testenv.File{{Path: "bomb", Content: zeros}})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarb)
	zw.Close()
	zr, err := gzip.NewReader(bytes.NewReader(gz.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	err = layer.Walk(zr, int64(gz.Len()), layer.Limits{MaxRatio: 100, MinRatioBytes: 1 << 20}, &recorder{})
	if !errors.Is(err, layer.ErrTooLarge) || !strings.Contains(err.Error(), "decompression bomb") {
		t.Fatalf("err = %v, want a decompression-bomb error", err)
	}
	// The same layer passes when its compressed size allows the ratio.
	zr, _ = gzip.NewReader(bytes.NewReader(gz.Bytes()))
	if err := layer.Walk(zr, int64(len(tarb)), layer.Limits{MaxRatio: 100, MinRatioBytes: 1 << 20}, &recorder{}); err != nil {
		t.Fatal(err)
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":          "",
		"./":         "",
		"a/./b//c/":  "a/b/c",
		"/usr/bin/x": "usr/bin/x",
		"a/b/../c":   "a/c",
		`a\b`:        "a/b",
	} {
		got, err := layer.CleanPath(in)
		if err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestResolveLinkStaysInRoot(t *testing.T) {
	for _, tc := range []struct{ link, target, want string }{
		{"etc/os-release", "../usr/lib/os-release", "usr/lib/os-release"},
		{"etc/os-release", "/usr/lib/os-release", "usr/lib/os-release"},
		{"etc/x", "../../../../etc/shadow", "etc/shadow"},
		{"a/b/c", "/../../x", "x"},
	} {
		if got := layer.ResolveLink(tc.link, tc.target); got != tc.want {
			t.Errorf("ResolveLink(%q, %q) = %q, want %q", tc.link, tc.target, got, tc.want)
		}
	}
}

func extract(t *testing.T, root *os.Root, files []testenv.File) error {
	t.Helper()
	return layer.Extract(bytes.NewReader(testenv.TarBytes(t, files)), 0, layer.Limits{}, root)
}

func TestExtractAppliesWhiteouts(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := extract(t, root, []testenv.File{
		{Path: "etc/a", Content: []byte("a")},
		{Path: "etc/b", Content: []byte("b")},
		{Path: "lib/x/1", Content: []byte("1")},
		{Path: "lib/x/2", Content: []byte("2")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := extract(t, root, []testenv.File{
		{Path: "etc/.wh.a"},
		{Path: "lib/x/.wh..wh..opq"},
		{Path: "lib/x/3", Content: []byte("3")},
		{Path: "etc/b", Content: []byte("B")},
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel+"="+string(b))
		}
		return nil
	})
	want := []string{"etc/b=B", "lib/x/3=3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tree = %v, want %v", got, want)
	}
}

// TestExtractNeverLeavesRoot plants links that point out of the root
// and then writes through them; nothing may appear outside.
func TestExtractNeverLeavesRoot(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(outside, 0o755)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	attacks := [][]testenv.File{
		{{Path: "evil", Link: outside}, {Path: "evil/pwned", Content: []byte("x")}},
		{{Path: "rel", Link: "../outside"}, {Path: "rel/pwned", Content: []byte("x")}},
		{{Path: "f", Link: filepath.Join(outside, "file")}, {Path: "f", Content: []byte("x")}, {Path: "g", Hardlink: "f"}},
		{{Path: "d", Link: "../outside"}, {Path: "d/.wh.victim"}},
	}
	os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644)
	for i, files := range attacks {
		_ = extract(t, root, files) // an error is fine; escaping is not
		entries, _ := os.ReadDir(outside)
		if len(entries) != 1 || entries[0].Name() != "victim" {
			t.Fatalf("attack %d wrote outside the root: %v", i, entries)
		}
	}
}
