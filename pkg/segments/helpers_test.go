package segments_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/streambed/streambed/pkg/segments"
)

func snappyEncode(b []byte) []byte { return s2.EncodeSnappy(nil, b) }

// rawRecordsSection returns the uncompressed records section of a batch.
func rawRecordsSection(codec *segments.Codec, batch []byte) ([]byte, error) {
	h, err := segments.ReadBatchHeader(batch)
	if err != nil {
		return nil, err
	}
	recs, err := codec.DecodeSlice(batch, 0, nil)
	if err != nil {
		return nil, err
	}
	plain, _, err := codec.AppendBatch(nil, recs, segments.BatchOptions{Producer: &segments.Producer{ID: h.ProducerID, Epoch: h.ProducerEpoch, BaseSequence: h.BaseSequence}})
	if err != nil {
		return nil, err
	}
	return plain[segments.BatchHeaderSize:], nil
}

// rebuildBatch replaces a batch's records section and fixes length and CRC.
func rebuildBatch(t *testing.T, batch, section []byte) []byte {
	t.Helper()
	b := append(append([]byte(nil), batch[:segments.BatchHeaderSize]...), section...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return recrc(b)
}

func recrc(b []byte) []byte {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
