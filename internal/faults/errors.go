package faults

import (
	"errors"

	"github.com/streambed/streambed/pkg/offsets"
)

func isInjected(err error) bool  { return errors.Is(err, ErrInjected) }
func isCondition(err error) bool { return errors.Is(err, offsets.ErrConditionFailed) }
