package cluster

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// recordBounds are the sizes in etcd (key and value, as docs/deployment.md
// gives them for sizing) that the records of ordinary use stay within.
var recordBounds = map[string]int{
	"accounts":   512,
	"ccsessions": 768,
	"lockouts":   256,
	"revoked":    128,
	"audit":      512,
}

// testRecordSizes reads what the replicas stored in etcd under the
// default prefix, logs the size of each kind of record and checks those
// that grow with use against recordBounds.
func testRecordSizes(t *testing.T, f *fleet) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: f.etcd.Endpoints(), DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	const prefix = "/gatehouse/"
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string][]int{}
	for _, kv := range resp.Kvs {
		kind, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), prefix), "/")
		sizes[kind] = append(sizes[kind], len(kv.Key)+len(kv.Value))
	}
	for _, kind := range slices.Sorted(maps.Keys(sizes)) {
		s := sizes[kind]
		total := 0
		for _, n := range s {
			total += n
		}
		t.Logf("%-10s %5d records, mean %4d B, largest %4d B", kind, len(s), total/len(s), slices.Max(s))
	}
	for kind, bound := range recordBounds {
		switch s := sizes[kind]; {
		case len(s) == 0:
			t.Errorf("no %s records in etcd", kind)
		case slices.Max(s) > bound:
			t.Errorf("a %s record takes %d B in etcd, more than the %d B planned for", kind, slices.Max(s), bound)
		}
	}
}
