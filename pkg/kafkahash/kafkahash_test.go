package kafkahash

import "testing"

func TestMurmur2MatchesKafka(t *testing.T) {
	// From Kafka's UtilsTest.testMurmur2, librdkafka's rdmurmur2.c and
	// Akka's Murmur2Spec (values taken from Kafka's Utils.murmur2).
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc":   479470107,
		"kafka": -798503068,
		"1":     -1993445489,
		"12":    126087238,
		"123":   -267702483,
		"1234":  -1614185708,
		"12345": -1188365604,
	}
	for k, want := range cases {
		if got := Murmur2([]byte(k)); got != want {
			t.Errorf("Murmur2(%q) = %d, want %d", k, got, want)
		}
	}
	// Partition choice = toPositive(hash) % n, as Kafka's partitioner.
	for k, want := range map[string]int32{"21": int32((-973932308 & 0x7fffffff) % 6), "foobar": int32((-790332482 & 0x7fffffff) % 6)} {
		if got := Partition([]byte(k), 6); got != want {
			t.Errorf("Partition(%q, 6) = %d, want %d", k, got, want)
		}
	}
}
