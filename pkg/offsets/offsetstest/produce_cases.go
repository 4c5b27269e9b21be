package offsetstest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/offsets"
)

var objectSeq atomic.Int64

func objectKey() string { return fmt.Sprintf("l0/test/%06d", objectSeq.Add(1)) }

func app(p int32, n int64) offsets.Append {
	return offsets.Append{Partition: p, Records: n, Length: 100 * n, Bytes: 100 * n, MinTs: 1000, MaxTs: 2000, ExpectedOffset: -1}
}

// commitN commits one object with n records to partition p and returns the result.
func commitN(t *testing.T, e *env, tp offsets.Topic, p int32, n int64) offsets.AppendResult {
	t.Helper()
	res, err := e.store.Commit(e.ctx, tp, offsets.ObjectMeta{Key: objectKey(), Size: 100 * n}, []offsets.Append{app(p, n)})
	must(t, err)
	must(t, res[0].Err)
	return res[0]
}

func idem(p int32, n int64, id int64, epoch int16, seq int32) offsets.Append {
	a := app(p, n)
	a.Producer = &offsets.ProducerID{ID: id, Epoch: epoch, FirstSeq: seq}
	return a
}

func commitOne(t *testing.T, e *env, tp offsets.Topic, a offsets.Append) offsets.AppendResult {
	t.Helper()
	res, err := e.store.Commit(e.ctx, tp, offsets.ObjectMeta{Key: objectKey(), Size: a.Length}, []offsets.Append{a})
	must(t, err)
	return res[0]
}

func logEnd(t *testing.T, e *env, tp offsets.Topic, p int32) int64 {
	t.Helper()
	st, err := e.store.Partitions(e.ctx, tp, p)
	must(t, err)
	return st[0].LogEnd
}

var produceCases = map[string]func(*testing.T, *env){
	"DenseOffsets": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "dense", 2)
		r1 := commitN(t, e, tp, 0, 3)
		r2 := commitN(t, e, tp, 0, 5)
		r3 := commitN(t, e, tp, 1, 2)
		if r1.Base != 0 || r1.Last != 2 || r2.Base != 3 || r2.Last != 7 || r2.LogEnd != 8 || r3.Base != 0 {
			t.Fatalf("results %+v %+v %+v", r1, r2, r3)
		}
		st, err := e.store.Partitions(e.ctx, tp)
		must(t, err)
		if st[0].LogEnd != 8 || st[0].Bytes != 800 || st[1].LogEnd != 2 || st[0].LogStart != 0 {
			t.Fatalf("states %+v", st)
		}
	},
	"OneObjectManyPartitions": func(t *testing.T, e *env) {
		// 50 partitions need two transactions (3 items each, 100 per transaction).
		tp := createTopic(t, e, "wide", 50)
		var apps []offsets.Append
		for p := range int32(50) {
			apps = append(apps, app(p, int64(p)+1))
		}
		res, err := e.store.Commit(e.ctx, tp, offsets.ObjectMeta{Key: "l0/wide/1", Size: 5000}, apps)
		must(t, err)
		for p, r := range res {
			if r.Err != nil || r.Partition != int32(p) || r.Base != 0 || r.Last != int64(p) {
				t.Fatalf("partition %d: %+v", p, r)
			}
		}
		refs, err := e.store.ObjectRefs(e.ctx, []string{"l0/wide/1"})
		must(t, err)
		if !refs[0].Known || refs[0].Refs != 50 || refs[0].Size != 5000 {
			t.Fatalf("object ref %+v", refs[0])
		}
		entries, _, err := e.store.Index(e.ctx, tp.ID, 49, 0, 0)
		must(t, err)
		if len(entries) != 1 || entries[0].Object != "l0/wide/1" || entries[0].Records != 50 {
			t.Fatalf("index %+v", entries)
		}
	},
	"BadAppendsGetTheirOwnErrors": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "mixed", 2)
		res, err := e.store.Commit(e.ctx, tp, offsets.ObjectMeta{Key: objectKey(), Size: 10}, []offsets.Append{app(0, 1), app(7, 1), app(1, 0), app(0, 1)})
		must(t, err)
		if res[0].Err != nil || !errors.Is(res[1].Err, offsets.ErrUnknownPartition) || !errors.Is(res[2].Err, offsets.ErrInvalid) || res[3].Err != nil || res[3].Base != 1 {
			t.Fatalf("results %+v", res)
		}
		if logEnd(t, e, tp, 0) != 2 || logEnd(t, e, tp, 1) != 0 {
			t.Fatal("bad appends changed the log")
		}
	},
	// ManyAppendsToOnePartition: appends of several requests (a group
	// commit) to one partition land in order, contiguous, each deciding on
	// the state the ones before it left: expected offsets and producer
	// sequences chain, and one that fails fails alone. More than one
	// transaction holds split across transactions.
	"ManyAppendsToOnePartition": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "group", 2)
		var apps []offsets.Append
		for i := range 150 {
			a := app(int32(i%2), 2)
			a.Offset = int64(1000 * i)
			switch {
			case i == 4:
				a.ExpectedOffset = 4 // partition 0 after appends 0 and 2
			case i == 6:
				a.ExpectedOffset = 5 // wrong: 6
			case i == 8 || i == 10:
				a.Producer = &offsets.ProducerID{ID: 9, FirstSeq: int32(i-8) / 2 * 2}
			case i == 12:
				a.Producer = &offsets.ProducerID{ID: 9, FirstSeq: 9} // out of order
			}
			apps = append(apps, a)
		}
		res, err := e.store.Commit(e.ctx, tp, offsets.ObjectMeta{Key: objectKey(), Size: 1000 * 150}, apps)
		must(t, err)
		next := [2]int64{}
		for i, r := range res {
			p := i % 2
			switch i {
			case 6:
				var om *offsets.OffsetMismatchError
				if !errors.As(r.Err, &om) || om.LogEnd != next[p] {
					t.Fatalf("append %d: %+v", i, r)
				}
				continue
			case 12:
				wantErr(t, r.Err, offsets.ErrOutOfOrderSequence)
				continue
			}
			if r.Err != nil || r.Base != next[p] || r.Last != next[p]+1 {
				t.Fatalf("append %d to partition %d: %+v, want base %d", i, p, r, next[p])
			}
			next[p] += 2
		}
		if logEnd(t, e, tp, 0) != next[0] || logEnd(t, e, tp, 1) != next[1] {
			t.Fatal("log ends differ from the appends")
		}
		// Each append has its own index entry, in order.
		entries, _, err := e.store.Index(e.ctx, tp.ID, 0, 0, 0)
		must(t, err)
		if int64(len(entries)) != next[0]/2 {
			t.Fatalf("%d index entries for %d appends", len(entries), next[0]/2)
		}
		// The producer's retry is answered from its state as a duplicate.
		r := commitOne(t, e, tp, offsets.Append{Partition: 0, Records: 2, Length: 200, Bytes: 200, ExpectedOffset: -1, Producer: &offsets.ProducerID{ID: 9, FirstSeq: 2}})
		if !r.Duplicate || r.Base != res[10].Base {
			t.Fatalf("retry of the second producer batch: %+v, want base %d", r, res[10].Base)
		}
	},
	"IdempotentDuplicates": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "idem", 1)
		var first []offsets.AppendResult
		seq := int32(0)
		for i := range 6 {
			r := commitOne(t, e, tp, idem(0, 2, 77, 0, seq))
			must(t, r.Err)
			if r.Duplicate || r.Base != int64(2*i) {
				t.Fatalf("batch %d: %+v", i, r)
			}
			first = append(first, r)
			seq += 2
		}
		// The last five batches are remembered: retries get original offsets.
		for i := 1; i < 6; i++ {
			r := commitOne(t, e, tp, idem(0, 2, 77, 0, int32(2*i)))
			if r.Err != nil || !r.Duplicate || r.Base != first[i].Base || r.Last != first[i].Last {
				t.Fatalf("retry of batch %d: %+v, want %+v", i, r, first[i])
			}
		}
		// The sixth-oldest is forgotten: an old sequence is out of order.
		r := commitOne(t, e, tp, idem(0, 2, 77, 0, 0))
		wantErr(t, r.Err, offsets.ErrOutOfOrderSequence)
		if logEnd(t, e, tp, 0) != 12 {
			t.Fatal("duplicates changed the log end")
		}
	},
	"SequenceGapsAndUnknownProducers": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "gaps", 1)
		wantErr(t, commitOne(t, e, tp, idem(0, 1, 5, 0, 3)).Err, offsets.ErrOutOfOrderSequence)
		must(t, commitOne(t, e, tp, idem(0, 3, 5, 0, 0)).Err)
		wantErr(t, commitOne(t, e, tp, idem(0, 1, 5, 0, 4)).Err, offsets.ErrOutOfOrderSequence)
		wantErr(t, commitOne(t, e, tp, idem(0, 1, 5, 0, 2)).Err, offsets.ErrOutOfOrderSequence)
		must(t, commitOne(t, e, tp, idem(0, 1, 5, 0, 3)).Err)
		if logEnd(t, e, tp, 0) != 4 {
			t.Fatalf("log end %d, want 4", logEnd(t, e, tp, 0))
		}
		wantErr(t, commitOne(t, e, tp, idem(0, 1, -1, 0, 0)).Err, offsets.ErrInvalid)
	},
	"ProducerStateExpires": func(t *testing.T, e *env) {
		tp := createTopic(t, e, "expire", 1)
		must(t, commitOne(t, e, tp, idem(0, 1, 9, 0, 0)).Err)
		e.clock.Advance(8 * 24 * 3600 * 1e9)
		// Forgotten after the TTL: like a new producer, it must restart at 0.
		wantErr(t, commitOne(t, e, tp, idem(0, 1, 9, 0, 1)).Err, offsets.ErrOutOfOrderSequence)
		must(t, commitOne(t, e, tp, idem(0, 1, 9, 0, 0)).Err)
	},
	"StaleUploadRefused": func(t *testing.T, e *env) {
		// A writer that stalled past the commit limit must not reference an
		// object the orphan sweep may already have deleted.
		tp := createTopic(t, e, "stale", 1)
		obj := offsets.ObjectMeta{Key: objectKey(), Size: 10, Uploaded: e.clock.Now().Add(-20 * time.Minute)}
		res, err := e.store.Commit(e.ctx, tp, obj, []offsets.Append{app(0, 1)})
		must(t, err)
		wantErr(t, res[0].Err, offsets.ErrUnavailable)
		if logEnd(t, e, tp, 0) != 0 {
			t.Fatal("a stale upload was committed")
		}
		obj.Uploaded = e.clock.Now().Add(-time.Minute)
		res, _ = e.store.Commit(e.ctx, tp, obj, []offsets.Append{app(0, 1)})
		must(t, res[0].Err)
	},
	"AmbiguousWriteCommittedOnce": func(t *testing.T, e *env) {
		// The write lands but its response is lost; Commit must find out
		// from the index and not append the batch twice.
		lossy := &losingTable{Table: e.table, lose: 1}
		s := offsets.New(lossy, offsets.WithClock(e.clock.Now))
		tp := createTopic(t, e, "lossy", 2)
		res, err := s.Commit(e.ctx, tp, offsets.ObjectMeta{Key: "l0/lossy/1", Size: 300}, []offsets.Append{app(0, 2), app(1, 1)})
		must(t, err)
		if res[0].Err != nil || res[0].Base != 0 || res[0].Last != 1 || res[1].Err != nil || res[1].Base != 0 {
			t.Fatalf("results %+v", res)
		}
		if lossy.lost.Load() != 1 {
			t.Fatal("no response was lost; the test proves nothing")
		}
		if logEnd(t, e, tp, 0) != 2 || logEnd(t, e, tp, 1) != 1 {
			t.Fatal("the batch was committed twice")
		}
		refs, _ := e.store.ObjectRefs(e.ctx, []string{"l0/lossy/1"})
		if refs[0].Refs != 2 {
			t.Fatalf("object refs %d, want 2", refs[0].Refs)
		}
	},
}

// losingTable applies writes but reports failure for the first `lose` of
// them, as when a response is lost after the backend committed.
type losingTable struct {
	offsets.Table
	lose int64
	lost atomic.Int64
}

func (l *losingTable) Write(ctx context.Context, ops ...offsets.Op) error {
	if err := l.Table.Write(ctx, ops...); err != nil {
		return err
	}
	if l.lost.Add(1) <= l.lose {
		return errors.New("connection reset by peer (response lost after commit)")
	}
	return nil
}
