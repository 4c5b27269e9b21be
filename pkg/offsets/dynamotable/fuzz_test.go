package dynamotable

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FuzzDecodeItem: items as DynamoDB returns them, with arbitrary attribute
// contents, are refused or decoded, never a panic.
func FuzzDecodeItem(f *testing.F) {
	f.Add("p#x#0", "head", "3", []byte("{}"), "1700000000", true)
	f.Add("", "", "-1", []byte(nil), "x", false)
	f.Fuzz(func(t *testing.T, pk, sk, v string, d []byte, ttl string, withD bool) {
		av := map[string]types.AttributeValue{
			attrPK:  &types.AttributeValueMemberS{Value: pk},
			attrSK:  &types.AttributeValueMemberS{Value: sk},
			attrV:   &types.AttributeValueMemberN{Value: v},
			attrTTL: &types.AttributeValueMemberN{Value: ttl},
		}
		if withD {
			av[attrD] = &types.AttributeValueMemberB{Value: d}
		}
		it, err := decodeItem(av)
		if err == nil && it.Version <= 0 {
			t.Fatalf("accepted version %q", v)
		}
	})
}
