package offsets

import (
	"strings"
	"testing"
)

// TestNameErrorsNameCharacters: an invalid name is reported by the
// character and its position in characters, not a byte of it.
func TestNameErrorsNameCharacters(t *testing.T) {
	for name, want := range map[string]string{
		"ünïcode": `'ü' at position 0`,
		"abcé":    `'é' at position 3`,
		"a b":     `' ' at position 1`,
	} {
		err := ValidateTopicName(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %s", name, err, want)
		}
	}
	if err := ValidateTopicName("orders.v2_eu-west"); err != nil {
		t.Errorf("a valid name was refused: %v", err)
	}
}
