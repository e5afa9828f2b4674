package ccmessaging

import (
	"strings"
	"testing"
)

func TestLanguageTable(t *testing.T) {
	if len(languages) != 184 {
		t.Fatalf("%d language codes, want the 184 of ISO 639-1", len(languages))
	}
	for code := range languages {
		if len(code) != 2 || strings.ToLower(code) != code {
			t.Errorf("code %q is not two lower-case letters", code)
		}
	}
}

func TestValidLocale(t *testing.T) {
	for _, tc := range []struct {
		locale string
		want   bool
	}{
		{"zh", true},
		{"en", true},
		{"zh_CN", true},
		{"en_US", true},
		{"en-US", true},
		{"pt-br", true},
		{"EN", true},
		{"es_419", true},
		{"zu", true},
		{"bh", true},
		{"", false},
		{"x", false},
		{"xx", false},  // not a language
		{"eng", false}, // ISO 639-2, not 639-1
		{"zh_", false}, // empty region
		{"zh-", false}, // empty region
		{"zh_CHN", false},
		{"zh_C1", false},
		{"zh_41", false},
		{"zh_4190", false},
		{"zh_CN_x", false},
		{"zh_CN-x", false},
		{"_CN", false},
		{"zh CN", false},
		{"\u212Aa", false}, // Kelvin sign lower-cases to k
		{"zh\x00", false},
	} {
		if got := ValidLocale(tc.locale); got != tc.want {
			t.Errorf("ValidLocale(%q) = %v, want %v", tc.locale, got, tc.want)
		}
	}
}
