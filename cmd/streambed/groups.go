package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/streambed/streambed/pkg/api"
)

func runGroups(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "groups", []command{
		{"list", "list consumer groups", groupsList},
		{"describe", "show a group's state, members and assignments", groupsDescribe},
		{"lag", "show committed offsets and lag per partition", groupsLag},
		{"reset", "reset committed offsets of an empty group: reset GROUP --topic T --to earliest|latest|TIME|OFFSET", groupsReset},
		{"delete", "delete empty groups", groupsDelete},
	}, args, stdout, stderr)
}

// groupCmd parses the flags shared by the single-group commands.
func groupCmd(name, synopsis string, args []string, stderr io.Writer, extra func(*flagSet)) (*flagSet, string, error) {
	fs := &flagSet{FlagSet: newFlags("groups "+name, synopsis, stderr)}
	fs.ep = endpointFlags(fs.FlagSet)
	fs.asJSON = fs.Bool("json", false, "print JSON")
	if extra != nil {
		extra(fs)
	}
	pos, err := parseArgs(fs.FlagSet, args)
	if err != nil {
		return nil, "", usageErr(err)
	}
	if len(pos) != 1 {
		return nil, "", badArgs(fs.FlagSet, "need exactly one group name")
	}
	return fs, pos[0], nil
}

func groupsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("groups list", "groups list [flags]", stderr)
	ep := endpointFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return usageErr(err)
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	names, err := c.Groups(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if names == nil {
			names = []string{}
		}
		return printJSON(stdout, map[string]any{"groups": names})
	}
	tb := newTable(stdout, "GROUP", "STATE", "MEMBERS", "TOTAL-LAG")
	for _, g := range names {
		d, err := c.Group(ctx, g)
		if err != nil {
			return err
		}
		lag, err := c.GroupLag(ctx, g)
		if err != nil {
			return err
		}
		tb.row(g, d.State, len(d.Members), lag.TotalLag)
	}
	return tb.flush()
}

func groupsDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g, err := groupCmd("describe", "groups describe GROUP [flags]", args, stderr, nil)
	if err != nil {
		return err
	}
	c, err := fs.ep.client(ctx)
	if err != nil {
		return err
	}
	d, err := c.Group(ctx, g)
	if err != nil {
		return err
	}
	if *fs.asJSON {
		return printJSON(stdout, d)
	}
	fmt.Fprintf(stdout, "Group:    %s\nState:    %s\nEpoch:    %d\nAssignor: %s\n\n", d.Group, d.State, d.GroupEpoch, d.Assignor)
	tb := newTable(stdout, "MEMBER", "EPOCH", "TOPICS", "ASSIGNED", "CLIENT")
	for _, m := range d.Members {
		tb.row(m.MemberID, m.MemberEpoch, strings.Join(m.Topics, ","), formatTPs(m.Assignment), orDash(m.ClientID))
	}
	return tb.flush()
}

func groupsLag(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, g, err := groupCmd("lag", "groups lag GROUP [flags]", args, stderr, nil)
	if err != nil {
		return err
	}
	c, err := fs.ep.client(ctx)
	if err != nil {
		return err
	}
	lag, err := c.GroupLag(ctx, g)
	if err != nil {
		return err
	}
	if *fs.asJSON {
		return printJSON(stdout, lag)
	}
	tb := newTable(stdout, "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "TIME-LAG", "OWNER")
	for _, p := range lag.Partitions {
		committed := "-"
		if p.CommittedOffset != nil {
			committed = strconv.FormatInt(*p.CommittedOffset, 10)
		}
		tb.row(p.Topic, p.Partition, committed, p.LogEndOffset, p.Lag, humanMs(p.TimeLagMs), orDash(p.MemberID))
	}
	if err := tb.flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "\ntotal lag %d, max %d\n", lag.TotalLag, lag.MaxLag)
	return err
}

func groupsReset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var topic, to string
	var parts multiFlag
	fs, g, err := groupCmd("reset", "groups reset GROUP --topic T --to earliest|latest|TIME|OFFSET [flags]", args, stderr, func(fs *flagSet) {
		fs.StringVar(&topic, "topic", "", "topic whose offsets to reset (required)")
		fs.StringVar(&to, "to", "", "earliest, latest, an offset, or a time (RFC 3339, Unix ms, or a duration ago like 1h)")
		fs.Var(&parts, "partition", "only this partition (repeatable; default all)")
	})
	if err != nil {
		return err
	}
	if topic == "" || to == "" {
		return badArgs(fs.FlagSet, "--topic and --to are required")
	}
	req := api.ResetRequest{Topic: topic}
	for _, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 {
			return badArgs(fs.FlagSet, "--partition %q is not a partition number", p)
		}
		req.Partitions = append(req.Partitions, int32(n))
	}
	switch to {
	case "earliest", "latest":
		req.To = to
	default:
		if n, err := strconv.ParseInt(to, 10, 64); err == nil && n < 1e12 {
			req.To, req.Offset = "offset", &n // small numbers are offsets, large ones Unix ms
		} else if t, err := parseTime(to); err == nil {
			ms := t.UnixMilli()
			req.To, req.Timestamp = "timestamp", &ms
		} else {
			return badArgs(fs.FlagSet, "--to: %v", err)
		}
	}
	c, err := fs.ep.client(ctx)
	if err != nil {
		return err
	}
	out, err := c.ResetGroupOffsets(ctx, g, req)
	if err != nil {
		return err
	}
	if *fs.asJSON {
		return printJSON(stdout, map[string]any{"offsets": out})
	}
	tb := newTable(stdout, "TOPIC", "PARTITION", "NEW-OFFSET")
	for _, o := range out {
		tb.row(o.Topic, o.Partition, o.Offset)
	}
	return tb.flush()
}

func groupsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("groups delete", "groups delete GROUP... [flags]", stderr)
	ep := endpointFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) == 0 {
		return badArgs(fs, "need a group name")
	}
	c, err := ep.client(ctx)
	if err != nil {
		return err
	}
	for _, g := range pos {
		if err := c.DeleteGroup(ctx, g); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted group %s\n", g)
	}
	return nil
}

type flagSet struct {
	*flag.FlagSet
	ep     *endpoint
	asJSON *bool
}

func formatTPs(tps []api.TopicPartitions) string {
	var parts []string
	for _, tp := range tps {
		ps := make([]string, len(tp.Partitions))
		for i, p := range tp.Partitions {
			ps[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, tp.Topic+":"+strings.Join(ps, ","))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanMs prints a duration in milliseconds for people: 0s, 850ms, 5m50.9s,
// 2h3m (a long lag needs no milliseconds).
func humanMs(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case ms == 0:
		return "0s"
	case d < time.Second:
		return d.String()
	case d < time.Hour:
		return d.Round(100 * time.Millisecond).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
