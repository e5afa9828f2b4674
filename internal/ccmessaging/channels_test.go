package ccmessaging

import (
	"maps"
	"testing"
)

// TestChannelGrants checks that an app keeps its grant while it stays
// listed, gets a new one when it is added again, and that apps listed
// before grants were recorded keep grant 0, the grant of their sessions.
func TestChannelGrants(t *testing.T) {
	r := channelRecord{AppKeys: []string{"old"}} // stored before grants
	for _, step := range []struct {
		keys []string
		want map[string]int64
	}{
		{[]string{"old", "a"}, map[string]int64{"old": 0, "a": 1}},
		{[]string{"a", "old", "b"}, map[string]int64{"old": 0, "a": 1, "b": 2}},
		{[]string{"b"}, map[string]int64{"b": 2}},
		{[]string{"old", "a", "b"}, map[string]int64{"old": 3, "a": 4, "b": 2}},
		{nil, map[string]int64{}},
	} {
		r.setAppKeys(step.keys)
		ch := channel{rec: r}
		got := map[string]int64{}
		for _, k := range []string{"old", "a", "b"} {
			if g, ok := ch.grant(k); ok {
				got[k] = g
			}
		}
		if !maps.Equal(got, step.want) {
			t.Fatalf("apps %v: grants %v, want %v", step.keys, got, step.want)
		}
	}
}
