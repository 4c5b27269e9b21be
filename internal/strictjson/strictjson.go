// Package strictjson reads JSON request bodies in one pass, strictly:
// duplicate object keys are errors (encoding/json lets the last one win,
// so {"value":"a","value":"b"} would silently drop "a"), and every error
// carries the byte position and the path of the value it is in
// ("records[3].value_b64"), so an API can name the offending field.
//
// A Reader pulls values from a byte slice it does not copy: strings
// without escapes are returned as sub-slices of it.
package strictjson

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Error is a malformed or refused document.
type Error struct {
	Offset int    // byte position
	Path   string // the value's path, "" at the top
	Msg    string
	// Syntax is true for malformed JSON, false for well-formed JSON with a
	// refused value (a duplicate key, a wrong type).
	Syntax bool
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Offset)
	}
	return fmt.Sprintf("%s: %s (at byte %d)", e.Path, e.Msg, e.Offset)
}

// Kind is the type of the next value.
type Kind byte

// Kinds of value.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	return [...]string{"invalid", "null", "a boolean", "a number", "a string", "an array", "an object"}[k]
}

// MaxDepth bounds nesting, so a hostile body cannot exhaust the stack.
const MaxDepth = 128

// Reader reads one JSON document.
type Reader struct {
	data  []byte
	pos   int
	depth int
	// path is the current value's path, maintained by Object and Array.
	path []byte
}

// NewReader returns a Reader over data.
func NewReader(data []byte) *Reader { return &Reader{data: data} }

// Path is the path of the value being read.
func (r *Reader) Path() string { return string(r.path) }

// Errorf returns an error about the current value (not a syntax error).
func (r *Reader) Errorf(format string, args ...any) *Error {
	return &Error{Offset: r.pos, Path: r.Path(), Msg: fmt.Sprintf(format, args...)}
}

func (r *Reader) syntax(format string, args ...any) *Error {
	e := r.Errorf(format, args...)
	e.Syntax = true
	return e
}

func (r *Reader) skipSpace() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// Peek reports the kind of the next value.
func (r *Reader) Peek() Kind {
	r.skipSpace()
	if r.pos >= len(r.data) {
		return Invalid
	}
	switch c := r.data[r.pos]; {
	case c == 'n':
		return Null
	case c == 't' || c == 'f':
		return Bool
	case c == '"':
		return String
	case c == '[':
		return Array
	case c == '{':
		return Object
	case c == '-' || (c >= '0' && c <= '9'):
		return Number
	}
	return Invalid
}

// End checks that nothing but whitespace follows the document.
func (r *Reader) End() error {
	r.skipSpace()
	if r.pos != len(r.data) {
		return r.syntax("unexpected data after the JSON value")
	}
	return nil
}

func (r *Reader) want(k Kind) error {
	got := r.Peek()
	if got == k {
		return nil
	}
	if got == Invalid {
		if r.pos >= len(r.data) {
			return r.syntax("unexpected end of input")
		}
		return r.syntax("invalid character %q", r.data[r.pos])
	}
	return r.Errorf("must be %s, not %s", k, got)
}

func (r *Reader) literal(word string) error {
	if len(r.data)-r.pos < len(word) || string(r.data[r.pos:r.pos+len(word)]) != word {
		return r.syntax("invalid literal")
	}
	r.pos += len(word)
	return nil
}

// Null consumes a null.
func (r *Reader) Null() error {
	if err := r.want(Null); err != nil {
		return err
	}
	return r.literal("null")
}

// Bool reads a boolean.
func (r *Reader) Bool() (bool, error) {
	if err := r.want(Bool); err != nil {
		return false, err
	}
	if r.data[r.pos] == 't' {
		return true, r.literal("true")
	}
	return false, r.literal("false")
}

// number returns the span of a number, checking its grammar.
func (r *Reader) number() ([]byte, error) {
	if err := r.want(Number); err != nil {
		return nil, err
	}
	start := r.pos
	d := r.data
	i := r.pos
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		r.pos = i
		return nil, r.syntax("malformed number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			r.pos = i
			return nil, r.syntax("malformed number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			r.pos = i
			return nil, r.syntax("malformed number")
		}
	}
	r.pos = i
	return d[start:i], nil
}

// Int reads an integer that fits in bits (a number with a fraction or
// exponent, or out of range, is an error).
func (r *Reader) Int(bits int) (int64, error) {
	at := r.pos
	span, err := r.number()
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(string(span), 10, bits)
	if perr != nil {
		r.pos = at
		return 0, r.Errorf("must be an integer of at most %d bits, not %s", bits, span)
	}
	return n, nil
}

// StringBytes reads a string: a sub-slice of the input when it has no
// escapes (do not modify it), else a fresh unescaped copy.
func (r *Reader) StringBytes() ([]byte, error) {
	if err := r.want(String); err != nil {
		return nil, err
	}
	d := r.data
	i := r.pos + 1
	start := i
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			r.pos = i + 1
			return d[start:i], nil
		case c == '\\':
			return r.unescape(start)
		case c < 0x20:
			r.pos = i
			return nil, r.syntax("control character in a string")
		case c < utf8.RuneSelf:
			i++
		default:
			rn, size := utf8.DecodeRune(d[i:])
			if rn == utf8.RuneError && size == 1 {
				r.pos = i
				return nil, r.syntax("invalid UTF-8 in a string")
			}
			i += size
		}
	}
	r.pos = i
	return nil, r.syntax("unexpected end of input in a string")
}

// unescape decodes a string with escapes, from start (after the quote).
func (r *Reader) unescape(start int) ([]byte, error) {
	d := r.data
	out := make([]byte, 0, 64)
	i := start
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			r.pos = i + 1
			return out, nil
		case c == '\\':
			if i+1 >= len(d) {
				r.pos = i
				return nil, r.syntax("unexpected end of input in a string")
			}
			switch e := d[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				rn, ok := hex4(d, i+2)
				if !ok {
					r.pos = i
					return nil, r.syntax("malformed \\u escape")
				}
				i += 6
				if utf16.IsSurrogate(rn) {
					// A pair: the low half must follow as another \u escape;
					// an unpaired half becomes U+FFFD, as encoding/json does.
					dec := utf8.RuneError
					if i+6 <= len(d) && d[i] == '\\' && d[i+1] == 'u' {
						if lo, ok := hex4(d, i+2); ok {
							if dec = utf16.DecodeRune(rn, lo); dec != utf8.RuneError {
								i += 6
							}
						}
					}
					rn = dec
				}
				out = utf8.AppendRune(out, rn)
				continue
			default:
				r.pos = i
				return nil, r.syntax("invalid escape \\%c", e)
			}
			i += 2
		case c < 0x20:
			r.pos = i
			return nil, r.syntax("control character in a string")
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			rn, size := utf8.DecodeRune(d[i:])
			if rn == utf8.RuneError && size == 1 {
				r.pos = i
				return nil, r.syntax("invalid UTF-8 in a string")
			}
			out = append(out, d[i:i+size]...)
			i += size
		}
	}
	r.pos = i
	return nil, r.syntax("unexpected end of input in a string")
}

// hex4 reads 4 hex digits at i.
func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var v rune
	for _, c := range d[i : i+4] {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			v |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// String reads a string.
func (r *Reader) String() (string, error) {
	b, err := r.StringBytes()
	return string(b), err
}

func (r *Reader) enter() error {
	r.depth++
	if r.depth > MaxDepth {
		return r.Errorf("nested deeper than %d", MaxDepth)
	}
	return nil
}

// Object reads an object, calling fn for each member with its key (valid
// only during the call) while the reader is at its value; fn must read or
// Skip the value. A key that appears twice is an error.
func (r *Reader) Object(fn func(key []byte) error) error {
	if err := r.want(Object); err != nil {
		return err
	}
	if err := r.enter(); err != nil {
		return err
	}
	r.pos++
	base := len(r.path)
	var seen [][]byte
	var seenSet map[string]struct{}
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == '}' {
		r.pos++
		r.depth--
		return nil
	}
	for {
		r.skipSpace()
		if r.pos >= len(r.data) {
			return r.syntax("unexpected end of input in an object")
		}
		if r.data[r.pos] != '"' {
			return r.syntax("expected a string key in an object")
		}
		keyAt := r.pos
		key, err := r.StringBytes()
		if err != nil {
			return err
		}
		if r.isDup(key, &seen, &seenSet) {
			r.pos = keyAt
			r.path = appendKey(r.path[:base], key, base == 0)
			return r.Errorf("appears twice in one object (duplicate keys are refused)")
		}
		r.skipSpace()
		if r.pos >= len(r.data) || r.data[r.pos] != ':' {
			return r.syntax("expected ':' after an object key")
		}
		r.pos++
		r.path = appendKey(r.path[:base], key, base == 0)
		if err := fn(key); err != nil {
			return err
		}
		r.path = r.path[:base]
		r.skipSpace()
		if r.pos >= len(r.data) {
			return r.syntax("unexpected end of input in an object")
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
			continue
		case '}':
			r.pos++
			r.depth--
			return nil
		default:
			return r.syntax("expected ',' or '}' in an object")
		}
	}
}

func (r *Reader) isDup(key []byte, seen *[][]byte, set *map[string]struct{}) bool {
	if *set != nil {
		if _, ok := (*set)[string(key)]; ok {
			return true
		}
		(*set)[string(key)] = struct{}{}
		return false
	}
	for _, k := range *seen {
		if string(k) == string(key) {
			return true
		}
	}
	*seen = append(*seen, key)
	if len(*seen) > 16 {
		*set = make(map[string]struct{}, 32)
		for _, k := range *seen {
			(*set)[string(k)] = struct{}{}
		}
	}
	return false
}

func appendKey(path []byte, key []byte, top bool) []byte {
	if !top {
		path = append(path, '.')
	}
	return append(path, key...)
}

// Array reads an array, calling fn with each element's index while the
// reader is at it; fn must read or Skip the element.
func (r *Reader) Array(fn func(i int) error) error {
	if err := r.want(Array); err != nil {
		return err
	}
	if err := r.enter(); err != nil {
		return err
	}
	r.pos++
	base := len(r.path)
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == ']' {
		r.pos++
		r.depth--
		return nil
	}
	for i := 0; ; i++ {
		r.path = append(strconv.AppendInt(append(r.path[:base], '['), int64(i), 10), ']')
		if err := fn(i); err != nil {
			return err
		}
		r.path = r.path[:base]
		r.skipSpace()
		if r.pos >= len(r.data) {
			return r.syntax("unexpected end of input in an array")
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
			continue
		case ']':
			r.pos++
			r.depth--
			return nil
		default:
			return r.syntax("expected ',' or ']' in an array")
		}
	}
}

// Skip reads and discards one value of any kind (checking it, duplicate
// keys included).
func (r *Reader) Skip() error {
	switch r.Peek() {
	case Null:
		return r.Null()
	case Bool:
		_, err := r.Bool()
		return err
	case Number:
		_, err := r.number()
		return err
	case String:
		_, err := r.StringBytes()
		return err
	case Array:
		return r.Array(func(int) error { return r.Skip() })
	case Object:
		return r.Object(func([]byte) error { return r.Skip() })
	}
	return r.want(Object) // reports what is there
}

// Raw reads one value of any kind and returns its bytes as they are in
// the input.
func (r *Reader) Raw() ([]byte, error) {
	r.skipSpace()
	start := r.pos
	if err := r.Skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos], nil
}

// Check reads a whole document, refusing malformed JSON and duplicate
// keys at any depth.
func Check(data []byte) error {
	r := NewReader(data)
	if err := r.Skip(); err != nil {
		return err
	}
	return r.End()
}

// ErrNotObject is returned by CheckObject for a document that is not an
// object (null included).
var ErrNotObject = errors.New("the body must be a JSON object")

// CheckObject is Check for a document that must be an object.
func CheckObject(data []byte) error {
	r := NewReader(data)
	if k := r.Peek(); k != Object {
		if k == Invalid {
			return r.want(Object)
		}
		return &Error{Offset: r.pos, Msg: fmt.Sprintf("%v, not %s", ErrNotObject, k)}
	}
	if err := r.Skip(); err != nil {
		return err
	}
	return r.End()
}
