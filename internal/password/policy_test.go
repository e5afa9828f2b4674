package password

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"", false},
		{"a", true},
		{"7", true},
		{"root", true},
		{"Dev-Ops_1.2", true},
		{"a.b", true},
		{"a--b", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"a" + strings.Repeat("-", 62) + "b", true},
		{"-a", false},
		{"a-", false},
		{".a", false},
		{"a_", false},
		{"_", false},
		{"a b", false},
		{"a/b", false},
		{"a@b", false},
		{"ab\n", false},
		{"\nab", false},
		{"é", false},
		{"naïve", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name); got != tt.valid {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.valid)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		wantErr string // substring of the error, "" for none
	}{
		{"7 characters", "Aa1!aaa", "8 to 32 characters"},
		{"8 characters", "Aa1!aaaa", ""},
		{"32 characters", "Aa1!" + strings.Repeat("a", 28), ""},
		{"33 characters", "Aa1!" + strings.Repeat("a", 29), "8 to 32 characters"},
		{"empty", "", "8 to 32 characters"},
		{"length counts characters, not bytes", "Éé1€" + strings.Repeat("ü", 28), ""},
		{"33 multi-byte characters", "Éé1€" + strings.Repeat("ü", 29), "8 to 32 characters"},
		{"7 multi-byte characters in 14 bytes", "Éé1€üüü", "8 to 32 characters"},
		{"no upper-case letter", "aa1!aaaa", "an upper-case letter"},
		{"no lower-case letter", "AA1!AAAA", "a lower-case letter"},
		{"no digit", "Aaa!aaaa", "a digit"},
		{"no special character", "Aa1aaaaa", "a special character"},
		{"only lower-case letters", "aaaaaaaa", "an upper-case letter, a digit, a special character"},
		{"Unicode letters count", "Ωω1!ωωωω", ""},
		{"Unicode digit counts", "Aa١!aaaa", ""},
		{"symbol counts as special", "Aa1+aaaa", ""},
		{"currency symbol counts as special", "Aa1€aaaa", ""},
		{"Unicode punctuation counts as special", "Aa1¿aaaa", ""},
		{"space is not special", "Aa1 aaaa", "a special character"},
		{"invalid UTF-8", "Aa1!aaa\xff", "valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPolicyError(t, CheckPassword(tt.pw), tt.pw, tt.wantErr)
		})
	}
}

func TestCheckNewAccountPassword(t *testing.T) {
	tests := []struct {
		name, account, pw string
		wantErr           string
	}{
		{"acceptable", "alice", "Secr3t-Pw", ""},
		{"equals the name", "Adm1n.Ops", "Adm1n.Ops", "must not equal the account name"},
		{"equals the name reversed", "Adm1n.Ops", "spO.n1mdA", "account name reversed"},
		{"differs from the name in case", "Adm1n.Ops", "adm1n.Ops", ""},
		{"differs from the name reversed in case", "Adm1n.Ops", "spO.n1mda", ""},
		{"policy is checked first", "alice", "alice", "8 to 32 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPolicyError(t, CheckNewAccountPassword(tt.account, tt.pw), tt.pw, tt.wantErr)
		})
	}
}

// checkPolicyError checks err against want (a substring, or "" for no
// error) and that it neither leaks pw nor forgets to wrap ErrPolicy.
func checkPolicyError(t *testing.T, err error, pw, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want ErrPolicy mentioning %q", err, want)
	}
	if pw != "" && strings.Contains(err.Error(), pw) {
		t.Fatalf("error %q contains the password", err)
	}
}
