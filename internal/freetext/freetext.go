// Package freetext holds the rule every free-text field of the API Fabric
// and ccmessaging APIs follows (names, descriptions, user ids and names).
package freetext

import (
	"unicode"
	"unicode/utf8"
)

// Valid reports whether s is valid UTF-8 of minLen to maxLen characters
// without control characters.
func Valid(s string, minLen, maxLen int) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxLen {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
