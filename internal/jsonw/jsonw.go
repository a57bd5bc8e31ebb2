// Package jsonw appends JSON values exactly as encoding/json writes them
// (its HTML-safe string escaping, its number format, RFC 3339 times), for
// the answers whose cost is encoding/json's reflection: an image's
// findings at fleet scale. A value encoding/json refuses (NaN, a year
// outside 0-9999) makes the append report false, and the caller falls
// back to encoding/json, which returns its error.
package jsonw

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// plain holds the ASCII bytes a string keeps as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// String appends s as a JSON string: '"', '\' and control characters
// escaped, '<', '>', '&', U+2028 and U+2029 as \u escapes, and each byte
// that is not UTF-8 as U+FFFD.
func String(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = escapeASCII(append(b, s[start:i]...), c)
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	return append(append(b, s[start:]...), '"')
}

func escapeASCII(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// Strings appends a list of strings; null for a nil one.
func Strings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}

// Float appends f as the shortest decimal that reads back as f, in
// exponent form below 1e-6 and from 1e21 (as ECMAScript writes numbers);
// false for NaN and the infinities.
func Float(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// A one-digit negative exponent is written without its zero.
		if n := len(b); b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// Int appends i.
func Int(b []byte, i int64) []byte { return strconv.AppendInt(b, i, 10) }

// Bool appends v.
func Bool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// Time appends t as a quoted RFC 3339 time with its fraction of a second;
// false where encoding/json refuses it.
func Time(b []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, false
	}
	return append(out, '"'), true
}

// Key appends a member's name and its colon, after a comma unless it
// opens the object (b ends with '{'). The name is a Go struct tag's:
// ASCII that needs no escape, written as it is.
func Key(b []byte, name string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(append(b, '"'), name...)
	return append(b, '"', ':')
}

// OmitEmpty appends a string member tagged omitempty: nothing when v is
// empty.
func OmitEmpty(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return String(Key(b, name), v)
}
