package kafkaapi

import (
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
)

// errorCode is the Kafka error code of an error, from the one error
// catalog (api.Catalog), as the HTTP API's status is.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	return api.Catalog[broker.CodeOf(err)].Kafka
}

// errorMessage is a response's error message for err (nil for none).
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	return strp(err.Error())
}
