package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/streambed/streambed/internal/strictjson"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/offsets"
)

// kafkaSetting is one topic setting a request named the Kafka way
// ("retention.ms"), with its value as text, as Kafka's tools pass it.
type kafkaSetting struct{ name, value string }

// splitKafkaConfig takes the Kafka-named settings out of a request body's
// "config" object, so users who arrive with kafka-topics' names are
// understood: the rest of the body goes through the strict decoder as it
// is. A body it cannot read is returned unchanged, for the decoder to
// report.
func splitKafkaConfig(body []byte) ([]byte, []kafkaSetting, *api.Problem) {
	if !bytes.Contains(body, []byte(".")) {
		return body, nil, nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return body, nil, nil
	}
	var cfg map[string]json.RawMessage
	if raw, ok := top["config"]; !ok || json.Unmarshal(raw, &cfg) != nil {
		return body, nil, nil
	}
	var out []kafkaSetting
	for name, raw := range cfg {
		if !strings.Contains(name, ".") {
			continue
		}
		k, ok := offsets.LookupKafkaSetting(name)
		if !ok {
			return nil, nil, fieldProblem("config."+name, "is not a topic setting Streambed knows; its settings are %s (Kafka's names such as retention.ms are accepted too)", strings.Join(snakeNames(), ", "))
		}
		if _, both := cfg[k.Field]; both && k.Field != "" {
			return nil, nil, fieldProblem("config."+name, "and config.%s are the same setting; send one of them", k.Field)
		}
		var v string
		switch {
		case json.Unmarshal(raw, &v) == nil:
		case isJSONNumber(raw):
			v = string(raw)
		default:
			return nil, nil, fieldProblem("config."+name, "must be a string or a number, not %s", raw)
		}
		out = append(out, kafkaSetting{name, v})
		delete(cfg, name)
	}
	if len(out) == 0 {
		return body, nil, nil
	}
	slices.SortFunc(out, func(a, b kafkaSetting) int { return strings.Compare(a.name, b.name) })
	rest, err := json.Marshal(cfg)
	if err != nil {
		return nil, nil, api.NewProblem(api.CodeInternal, err.Error())
	}
	top["config"] = rest
	if body, err = json.Marshal(top); err != nil {
		return nil, nil, api.NewProblem(api.CodeInternal, err.Error())
	}
	return body, out, nil
}

func isJSONNumber(raw []byte) bool {
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(&n) == nil
}

// applyKafka applies Kafka-named settings to c (an ignored one, such as
// min.insync.replicas, changes nothing, as on the Kafka listener). The
// caller validates the result.
func applyKafka(c *offsets.TopicConfig, settings []kafkaSetting) error {
	for _, s := range settings {
		if err := c.SetKafka(s.name, s.value); err != nil {
			return err
		}
	}
	return nil
}

// decodeTopicBody is decodeBody for the topic routes, whose "config" may
// use Kafka's names.
func (s *Server) decodeTopicBody(w http.ResponseWriter, r *http.Request, v any) ([]kafkaSetting, *api.Problem) {
	if p := checkJSONContentType(r); p != nil {
		return nil, p
	}
	body, p := s.readBody(w, r)
	if p != nil {
		return nil, p
	}
	// The body as sent, duplicate keys and all, before a Kafka name is
	// taken out of it (which re-encodes it).
	if err := strictjson.CheckObject(body); err != nil {
		return nil, problemOf(err)
	}
	body, kafka, p := splitKafkaConfig(body)
	if p != nil {
		return nil, p
	}
	return kafka, decodeStrict(body, v, "")
}

// snakeNames lists the API's own names of the topic settings.
func snakeNames() []string {
	var out []string
	for _, k := range offsets.KafkaSettings() {
		if k.Field != "" {
			out = append(out, k.Field)
		}
	}
	return out
}
