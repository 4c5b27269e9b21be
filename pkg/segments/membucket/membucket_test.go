package membucket_test

import (
	"testing"

	"github.com/streambed/streambed/pkg/segments"
	"github.com/streambed/streambed/pkg/segments/membucket"
	"github.com/streambed/streambed/pkg/segments/segmentstest"
)

func TestAcceptance(t *testing.T) {
	segmentstest.Run(t, func(t *testing.T) segments.Bucket { return membucket.New() })
}
