package bolttable

import (
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
)

// FuzzDecodeValue: stored bbolt values are refused or decoded, never a panic.
func FuzzDecodeValue(f *testing.F) {
	f.Add(encodeValue(3, 0, []byte("value")))
	f.Add(encodeValue(1, 99, nil))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := decodeValue(offsets.Key{PK: "p", SK: "s"}, b)
		if err == nil && (it.Version <= 0 || len(it.Value) != len(b)-16) {
			t.Fatalf("accepted %x as %+v", b, it)
		}
	})
}
