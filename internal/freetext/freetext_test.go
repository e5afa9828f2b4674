package freetext

import "testing"

func TestValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s        string
		min, max int
		want     bool
	}{
		{"crm", 1, 64, true},
		{"", 0, 64, true},
		{"", 1, 64, false},
		{"abcd", 1, 3, false},
		{"äöü", 3, 3, true}, // characters, not bytes
		{"日本語", 1, 3, true},
		{"a\tb", 1, 64, false},
		{"a\nb", 1, 64, false},
		{"a\u0085b", 1, 64, false}, // C1 control
		{"a\x00b", 1, 64, false},
		{"a\x7fb", 1, 64, false},
		{"\xff", 1, 64, false},
		{"a b", 1, 64, true},
	} {
		if got := Valid(tc.s, tc.min, tc.max); got != tc.want {
			t.Errorf("Valid(%q, %d, %d) = %v, want %v", tc.s, tc.min, tc.max, got, tc.want)
		}
	}
}
