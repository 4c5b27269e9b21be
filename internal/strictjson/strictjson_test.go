package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		doc    string
		path   string // "" for valid documents
		syntax bool
	}{
		{`{"a":1,"b":[true,false,null,"x",{"c":-1.5e3}]}`, "", false},
		{`  {}  `, "", false},
		{`[]`, "", false},
		{`"\u00e9\ud83d\ude00\n"`, "", false},
		{`{"a":1,"a":2}`, "a", false},
		{`{"r":[{"k":1},{"k":1,"v":2,"k":3}]}`, "r[1].k", false},
		{`{"a":1,}`, "", true},
		{`[1,]`, "", true},
		{`{"a" 1}`, "", true},
		{`{"a":01}`, "", true},
		{`{"a":1} x`, "", true},
		{`{"a":"\x01"}`, "a", true},
		{"{\"a\":\"\xff\"}", "a", true},
		{`{"a":tru}`, "a", true},
		{`{"a":"\q"}`, "a", true},
		{`{1:2}`, "", true},
		{``, "", true},
		{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), "", false},
	} {
		err := Check([]byte(c.doc))
		valid := c.path == "" && !c.syntax && !strings.HasPrefix(c.doc, "[[[[")
		if valid {
			if err != nil {
				t.Errorf("%q: %v", c.doc, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: accepted (%v)", c.doc, err)
			continue
		}
		if c.path != "" && e.Path != c.path {
			t.Errorf("%q: path %q, want %q (%v)", c.doc, e.Path, c.path, e)
		}
		if e.Syntax != c.syntax && !strings.HasPrefix(c.doc, "[[[[") {
			t.Errorf("%q: syntax %v, want %v (%v)", c.doc, e.Syntax, c.syntax, e)
		}
	}
}

func TestCheckObjectRefusesOtherTopLevelValues(t *testing.T) {
	for _, doc := range []string{`null`, `[]`, `"x"`, `1`} {
		if err := CheckObject([]byte(doc)); err == nil || !strings.Contains(err.Error(), "must be a JSON object") {
			t.Errorf("%s: %v", doc, err)
		}
	}
	if err := CheckObject([]byte(`{"a":null}`)); err != nil {
		t.Error(err)
	}
}

func TestStringsMatchEncodingJSON(t *testing.T) {
	for _, s := range []string{`"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`, `"é中😀"`} {
		got, err := NewReader([]byte(s)).String()
		var want string
		if jerr := json.Unmarshal([]byte(s), &want); jerr != nil || err != nil || got != want {
			t.Errorf("%s: got %q (%v), encoding/json %q (%v)", s, got, err, want, jerr)
		}
	}
}

// FuzzCheck: whatever strictjson accepts, encoding/json accepts too, and
// what encoding/json accepts strictjson refuses only for duplicate keys,
// depth or invalid UTF-8; the strings it reads decode as encoding/json decodes them.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `{"a":1,"a":2}`, `"\ud83d\ude00"`, `[1e5,-0.5,true,null]`, `{"records":[{"value_b64":"AA=="}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		if err == nil {
			if !json.Valid(data) {
				t.Fatalf("accepted what encoding/json refuses: %q", data)
			}
			var v any
			if NewReader(data).Peek() == String {
				got, _ := NewReader(data).String()
				_ = json.Unmarshal(data, &v)
				if got != v {
					t.Fatalf("string %q read as %q, encoding/json %q", data, got, v)
				}
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error of another type: %v", err)
		}
		// encoding/json also takes invalid UTF-8 (as U+FFFD); JSON text must
		// be UTF-8 (RFC 8259), and strictjson holds it to that.
		if e.Syntax && json.Valid(data) && utf8.Valid(data) {
			t.Fatalf("syntax error on valid JSON %q: %v", data, e)
		}
	})
}
