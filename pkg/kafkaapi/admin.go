package kafkaapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/offsets"
)

// Replication factors are accepted and mean nothing: the object store
// replicates. Topics report 1.

// topicConfigFrom applies Kafka config names to the defaults.
func topicConfigFrom(base offsets.TopicConfig, configs map[string]*string) (offsets.TopicConfig, error) {
	cfg := base
	for name, v := range configs {
		if v == nil {
			continue
		}
		if err := cfg.SetKafka(name, *v); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// configErrorCode is INVALID_CONFIG for a bad setting, else the catalog's.
func configErrorCode(err error) int16 {
	if errors.Is(err, offsets.ErrInvalid) {
		return kerr.InvalidConfig.Code
	}
	return errorCode(err)
}

func handleCreateTopics(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := kmsg.NewPtrCreateTopicsResponse()
	for _, rt := range req.Topics {
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		out.NumPartitions, out.ReplicationFactor = -1, -1
		fail := func(code int16, err error) {
			out.ErrorCode, out.ErrorMessage = code, errorMessage(err)
			resp.Topics = append(resp.Topics, out)
		}
		if !c.may(auth.Admin, auth.Topic, rt.Topic) {
			fail(kerr.TopicAuthorizationFailed.Code, nil)
			continue
		}
		parts := rt.NumPartitions
		if parts == -1 {
			parts = c.s.cfg.DefaultPartitions
		}
		if len(rt.ReplicaAssignment) > 0 {
			if parts != -1 && parts != int32(len(rt.ReplicaAssignment)) && rt.NumPartitions != -1 {
				fail(kerr.InvalidRequest.Code, fmt.Errorf("give partitions or a replica assignment, not both"))
				continue
			}
			parts = int32(len(rt.ReplicaAssignment))
		}
		if rt.ReplicationFactor < -1 || rt.ReplicationFactor == 0 {
			fail(kerr.InvalidReplicationFactor.Code, fmt.Errorf("replication factor %d: use -1 or at least 1 (it means nothing here: the object store replicates)", rt.ReplicationFactor))
			continue
		}
		configs := map[string]*string{}
		for _, kv := range rt.Configs {
			configs[kv.Name] = kv.Value
		}
		cfg, err := topicConfigFrom(offsets.DefaultTopicConfig(), configs)
		if err != nil {
			fail(configErrorCode(err), err)
			continue
		}
		if parts < 1 || parts > offsets.MaxPartitions {
			fail(kerr.InvalidPartitions.Code, fmt.Errorf("%d partitions: between 1 and %d", parts, offsets.MaxPartitions))
			continue
		}
		if err := offsets.ValidateTopicName(rt.Topic); err != nil {
			fail(kerr.InvalidTopicException.Code, err)
			continue
		}
		var t offsets.Topic
		if req.ValidateOnly {
			if _, err := c.s.b.Topic(ctx, rt.Topic); err == nil {
				fail(kerr.TopicAlreadyExists.Code, fmt.Errorf("topic %s exists", rt.Topic))
				continue
			}
			t = offsets.Topic{Name: rt.Topic, Partitions: parts, Config: cfg}
		} else if t, err = c.s.b.CreateTopic(ctx, rt.Topic, parts, cfg); err != nil {
			fail(errorCode(err), err)
			continue
		}
		out.NumPartitions, out.ReplicationFactor = t.Partitions, 1
		if t.ID != "" {
			out.TopicID = c.s.ids.note(t)
		}
		for _, k := range offsets.KafkaSettings() {
			tc := kmsg.NewCreateTopicsResponseTopicConfig()
			tc.Name, tc.Value, tc.Source = k.Name, strp(k.Value(t.Config)), int8(configSource(k, configs))
			tc.ReadOnly = k.Ignored()
			out.Configs = append(out.Configs, tc)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// configSource is where a topic setting's value comes from.
func configSource(k offsets.KafkaSetting, set map[string]*string) kmsg.ConfigSource {
	if _, ok := set[k.Name]; ok && !k.Ignored() {
		return kmsg.ConfigSourceDynamicTopicConfig
	}
	return kmsg.ConfigSourceDefaultConfig
}

func handleDeleteTopics(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := kmsg.NewPtrDeleteTopicsResponse()
	type target struct {
		name string
		id   [16]byte
	}
	var targets []target
	for _, n := range req.TopicNames {
		targets = append(targets, target{name: n})
	}
	for _, rt := range req.Topics {
		tg := target{id: rt.TopicID}
		if rt.Topic != nil {
			tg.name = *rt.Topic
		}
		targets = append(targets, tg)
	}
	for _, tg := range targets {
		out := kmsg.NewDeleteTopicsResponseTopic()
		out.TopicID = tg.id
		if tg.name == "" {
			if n, ok := c.s.topicName(ctx, tg.id); ok {
				tg.name = n
			} else {
				out.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, out)
				continue
			}
		}
		out.Topic = strp(tg.name)
		switch {
		case !c.may(auth.Admin, auth.Topic, tg.name):
			out.ErrorCode = kerr.TopicAuthorizationFailed.Code
		default:
			if err := c.s.b.DeleteTopic(ctx, tg.name); err != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
			}
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// handleCreatePartitions grows topics; a smaller count is INVALID_PARTITIONS
// (partitions never shrink, as in Kafka).
func handleCreatePartitions(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := kmsg.NewPtrCreatePartitionsResponse()
	for _, rt := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		if !c.may(auth.Admin, auth.Topic, rt.Topic) {
			out.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, out)
			continue
		}
		t, err := c.s.b.Topic(ctx, rt.Topic)
		switch {
		case err != nil:
			out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		case rt.Count < t.Partitions:
			out.ErrorCode = kerr.InvalidPartitions.Code
			out.ErrorMessage = strp(fmt.Sprintf("topic %s has %d partitions; partitions can be added, never removed", rt.Topic, t.Partitions))
		case rt.Count == t.Partitions:
			out.ErrorCode = kerr.InvalidPartitions.Code
			out.ErrorMessage = strp(fmt.Sprintf("topic %s already has %d partitions", rt.Topic, t.Partitions))
		case rt.Count > offsets.MaxPartitions:
			out.ErrorCode = kerr.InvalidPartitions.Code
			out.ErrorMessage = strp(fmt.Sprintf("%d partitions: at most %d", rt.Count, offsets.MaxPartitions))
		case req.ValidateOnly:
		default:
			n := rt.Count
			if _, err := c.s.b.UpdateTopic(ctx, rt.Topic, &n, nil); err != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
			}
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// brokerConfigs are what DescribeConfigs reports for a broker: the few
// that describe this server's behaviour.
func (s *Server) brokerConfigs() [][2]string {
	l := s.b.Limits()
	return [][2]string{
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics)},
		{"num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions))},
		{"message.max.bytes", strconv.Itoa(offsets.MaxRecordBytesMax)},
		{"log.message.timestamp.after.max.ms", strconv.FormatInt(l.MaxFutureTimestamp.Milliseconds(), 10)},
		{"default.replication.factor", "1"},
		{"min.insync.replicas", "1"},
		{"transaction.state.log.replication.factor", "1"},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.MaxFrameBytes))},
	}
}

func handleDescribeConfigs(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for _, rr := range req.Resources {
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		add := func(name, value string, src kmsg.ConfigSource, readOnly bool, doc string) {
			if !want(name) {
				return
			}
			rc := kmsg.NewDescribeConfigsResponseResourceConfig()
			rc.Name, rc.Value, rc.Source, rc.ReadOnly = name, strp(value), src, readOnly
			rc.IsDefault = src == kmsg.ConfigSourceDefaultConfig
			if req.IncludeDocumentation {
				rc.Documentation = strp(doc)
			}
			out.Configs = append(out.Configs, rc)
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if !c.may(auth.Read, auth.Topic, rr.ResourceName) {
				out.ErrorCode = kerr.TopicAuthorizationFailed.Code
				break
			}
			t, err := c.s.b.Topic(ctx, rr.ResourceName)
			if err != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			dflt := offsets.DefaultTopicConfig()
			for _, k := range offsets.KafkaSettings() {
				src := kmsg.ConfigSourceDefaultConfig
				if !k.Ignored() && k.Value(t.Config) != k.Value(dflt) {
					src = kmsg.ConfigSourceDynamicTopicConfig
				}
				add(k.Name, k.Value(t.Config), src, k.Ignored(), k.Doc)
			}
		case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
			for _, kv := range c.s.brokerConfigs() {
				add(kv[0], kv[1], kmsg.ConfigSourceStaticBrokerConfig, true, "")
			}
		default:
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = strp(fmt.Sprintf("resource type %v is not supported", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

// alterTopic applies a change to a topic's settings, as AlterConfigs
// (replace all) or IncrementalAlterConfigs (set, delete) ask.
func (c *conn) alterTopic(ctx context.Context, name string, validateOnly bool, change func(cfg *offsets.TopicConfig) error) error {
	t, err := c.s.b.Topic(ctx, name)
	if err != nil {
		return err
	}
	cfg := t.Config
	if err := change(&cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	_, err = c.s.b.UpdateTopic(ctx, name, nil, &cfg)
	return err
}

func handleAlterConfigs(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := kmsg.NewPtrAlterConfigsResponse()
	for _, rr := range req.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		switch {
		case rr.ResourceType != kmsg.ConfigResourceTypeTopic:
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = strp("only topic configs can be changed")
		case !c.may(auth.Admin, auth.Topic, rr.ResourceName):
			out.ErrorCode = kerr.TopicAuthorizationFailed.Code
		default:
			err := c.alterTopic(ctx, rr.ResourceName, req.ValidateOnly, func(cfg *offsets.TopicConfig) error {
				// AlterConfigs replaces: what is not named returns to its default.
				*cfg = offsets.DefaultTopicConfig()
				for _, kv := range rr.Configs {
					if kv.Value == nil {
						continue
					}
					if err := cfg.SetKafka(kv.Name, *kv.Value); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				out.ErrorCode, out.ErrorMessage = configErrorCode(err), errorMessage(err)
			}
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}

func handleIncrementalAlterConfigs(ctx context.Context, c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	for _, rr := range req.Resources {
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		switch {
		case rr.ResourceType != kmsg.ConfigResourceTypeTopic:
			out.ErrorCode = kerr.InvalidRequest.Code
			out.ErrorMessage = strp("only topic configs can be changed")
		case !c.may(auth.Admin, auth.Topic, rr.ResourceName):
			out.ErrorCode = kerr.TopicAuthorizationFailed.Code
		default:
			err := c.alterTopic(ctx, rr.ResourceName, req.ValidateOnly, func(cfg *offsets.TopicConfig) error {
				dflt := offsets.DefaultTopicConfig()
				for _, kv := range rr.Configs {
					k, ok := offsets.LookupKafkaSetting(kv.Name)
					if !ok {
						return fmt.Errorf("%w: unknown topic config %q", offsets.ErrInvalid, kv.Name)
					}
					switch kv.Op {
					case kmsg.IncrementalAlterConfigOpSet:
						if kv.Value == nil {
							return fmt.Errorf("%w: %s: no value to set", offsets.ErrInvalid, kv.Name)
						}
						if err := cfg.SetKafka(kv.Name, *kv.Value); err != nil {
							return err
						}
					case kmsg.IncrementalAlterConfigOpDelete:
						if err := cfg.SetKafka(kv.Name, k.Value(dflt)); err != nil {
							return err
						}
					default:
						return fmt.Errorf("%w: %s: append and subtract apply to list settings, which topics here do not have", offsets.ErrInvalid, kv.Name)
					}
				}
				return nil
			})
			if err != nil {
				out.ErrorCode, out.ErrorMessage = configErrorCode(err), errorMessage(err)
			}
		}
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}
