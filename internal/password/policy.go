package password

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrPolicy is wrapped by every error of CheckPassword and
// CheckNewAccountPassword. Their messages name the rule that failed and
// never contain the password.
var ErrPolicy = errors.New("password does not meet the policy")

// Length bounds of account and role names and of passwords, in characters.
const (
	maxNameLen     = 64
	minPasswordLen = 8
	maxPasswordLen = 32
)

// namePattern is the rule shared by account and role names. It admits only
// ASCII, so byte and character counts agree.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9]*$|^[a-zA-Z0-9][a-zA-Z0-9_\-.]*[a-zA-Z0-9]$`)

// ValidName reports whether name is a valid account or role name: 1 to 64
// characters, letters and digits, with '_', '-' and '.' allowed except at
// either end.
func ValidName(name string) bool {
	return name != "" && len(name) <= maxNameLen && namePattern.MatchString(name)
}

// characterClasses are the classes a password must each draw from.
var characterClasses = []struct {
	name string
	is   func(rune) bool
}{
	{"an upper-case letter", unicode.IsUpper},
	{"a lower-case letter", unicode.IsLower},
	{"a digit", unicode.IsDigit},
	{"a special character", func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }},
}

// CheckPassword enforces the password policy: 8 to 32 characters of valid
// UTF-8 including at least one upper-case letter, one lower-case letter, one
// digit and one special character (Unicode punctuation or symbol).
func CheckPassword(pw string) error {
	if !utf8.ValidString(pw) {
		return fmt.Errorf("%w: must be valid UTF-8", ErrPolicy)
	}
	if n := utf8.RuneCountInString(pw); n < minPasswordLen || n > maxPasswordLen {
		return fmt.Errorf("%w: must be %d to %d characters long", ErrPolicy, minPasswordLen, maxPasswordLen)
	}
	var missing []string
	for _, class := range characterClasses {
		if !strings.ContainsFunc(pw, class.is) {
			missing = append(missing, class.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: must contain %s", ErrPolicy, strings.Join(missing, ", "))
	}
	return nil
}

// CheckNewAccountPassword enforces CheckPassword and, for an account being
// created, that the password is neither its name nor its name reversed.
func CheckNewAccountPassword(name, pw string) error {
	if err := CheckPassword(pw); err != nil {
		return err
	}
	if pw == name {
		return fmt.Errorf("%w: must not equal the account name", ErrPolicy)
	}
	if pw == reverse(name) {
		return fmt.Errorf("%w: must not equal the account name reversed", ErrPolicy)
	}
	return nil
}

// reverse returns s with its characters in reverse order.
func reverse(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}
