package memtable_test

import (
	"testing"

	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/offsets/offsetstest"
)

func TestAcceptance(t *testing.T) {
	offsetstest.Run(t, func(t *testing.T) offsets.Table { return memtable.New() })
}
