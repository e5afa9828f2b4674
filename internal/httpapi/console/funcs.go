package console

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// timeLayout is how the pages show instants: UTC, to the second.
const timeLayout = "2006-01-02 15:04:05 UTC"

// unixTime shows a time in unix seconds, given as a number or as the
// decimal string the API's records carry; zero shows as a dash.
func unixTime(v any) string {
	var s int64
	switch t := v.(type) {
	case int64:
		s = t
	case string:
		s, _ = strconv.ParseInt(t, 10, 64)
	}
	if s == 0 {
		return "–"
	}
	return time.Unix(s, 0).UTC().Format(timeLayout)
}

// rfcTime shows t; the zero time shows as a dash.
func rfcTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format(timeLayout)
}

// age shows how long ago t was, roughly.
func age(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// contains reports whether list holds s.
func contains(list []string, s string) bool { return slices.Contains(list, s) }
