package server

import (
	"bytes"
	"net/http"
	"sync"
)

// answerCache keeps the JSON answers of read-only API routes whose data
// only changes with the store's data generation: a repeated query (the
// dashboard polling, many clients asking about the same CVE) is answered
// without reading the index again. Any write to images, tags,
// deployments, matches, findings or advisories, by any replica, changes
// the generation and so every key.
type answerCache struct {
	mu      sync.Mutex
	gen     string
	entries map[string]cachedAnswer
	bytes   int
}

type cachedAnswer struct {
	code int
	body []byte
}

// maxCachedAnswers and maxCachedBytes bound the cache; it is emptied
// when either is reached, and when the generation moves. The byte bound
// keeps socle serve's memory flat at fleet scale, where one image's
// findings answer weighs a few hundred kilobytes.
const (
	maxCachedAnswers = 2000
	maxCachedBytes   = 64 << 20
)

// maxCachedBody leaves large answers out of the cache.
const maxCachedBody = 1 << 20

func (c *answerCache) get(gen, key string) (cachedAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return cachedAnswer{}, false
	}
	a, ok := c.entries[key]
	return a, ok
}

func (c *answerCache) put(gen, key string, a cachedAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.entries == nil || len(c.entries) >= maxCachedAnswers || c.bytes+len(a.body) > maxCachedBytes {
		c.gen, c.entries, c.bytes = gen, map[string]cachedAnswer{}, 0
	}
	if old, ok := c.entries[key]; ok {
		c.bytes -= len(old.body)
	}
	c.entries[key] = a
	c.bytes += len(a.body)
}

// captureWriter records what a handler writes.
type captureWriter struct {
	header http.Header
	code   int
	buf    bytes.Buffer
	// taken is a whole body handed over by takeBody, not copied.
	taken []byte
}

func (w *captureWriter) Header() http.Header  { return w.header }
func (w *captureWriter) WriteHeader(code int) { w.code = code }
func (w *captureWriter) Write(b []byte) (int, error) {
	w.flushTaken()
	return w.buf.Write(b)
}

// takeBody appends b, which the caller gives up (it is neither changed
// nor reused after): a large answer is then kept without a copy.
func (w *captureWriter) takeBody(b []byte) {
	if w.taken == nil && w.buf.Len() == 0 {
		w.taken = b
		return
	}
	w.Write(b)
}

func (w *captureWriter) flushTaken() {
	if w.taken != nil {
		w.buf.Write(w.taken)
		w.taken = nil
	}
}

// body is what was written; taken is true when it is a body handed over
// whole (no one else holds it), false when it is the buffer's.
func (w *captureWriter) body() (b []byte, taken bool) {
	if w.taken != nil && w.buf.Len() == 0 {
		return w.taken, true
	}
	w.flushTaken()
	return w.buf.Bytes(), false
}

// writeBody writes b, a body the caller gives up, without a copy when w
// keeps it (the answer cache).
func writeBody(w http.ResponseWriter, b []byte) {
	if t, ok := w.(interface{ takeBody([]byte) }); ok {
		t.takeBody(b)
		return
	}
	w.Write(b)
}

// cached serves h's successful answers from the cache while the data
// generation holds. The role check happens before, in requireAPI.
func (s *API) cached(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		gen, err := s.st.DataGeneration(r.Context())
		if err != nil {
			h(w, r)
			return
		}
		key := r.URL.Path + "?" + r.URL.RawQuery
		if a, ok := s.answers.get(gen, key); ok {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Socle-Cache", "hit")
			w.WriteHeader(a.code)
			w.Write(a.body)
			return
		}
		cw := &captureWriter{header: w.Header(), code: http.StatusOK}
		h(cw, r)
		body, taken := cw.body()
		if cw.code == http.StatusOK && len(body) <= maxCachedBody {
			kept := body
			if !taken {
				kept = bytes.Clone(body) // the buffer's array is larger
			}
			s.answers.put(gen, key, cachedAnswer{code: cw.code, body: kept})
		}
		w.WriteHeader(cw.code)
		w.Write(body)
	}
}
