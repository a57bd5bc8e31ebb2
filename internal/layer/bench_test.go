package layer_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/testenv"
)

// BenchmarkWalk walks a hand-made layer of 10,000 small files, the shape
// of a language runtime's tree.
func BenchmarkWalk(b *testing.B) {
	var files []testenv.File
	for i := 0; i < 10000; i++ {
		files = append(files, testenv.File{Path: fmt.Sprintf("usr/lib/x/%03d/f%d.py", i%500, i), Content: bytes.Repeat([]byte("x"), 200)})
	}
	data := testenv.TarBytes(b, files)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := layer.Walk(bytes.NewReader(data), 0, layer.Limits{}, &recorder{}); err != nil {
			b.Fatal(err)
		}
	}
}
