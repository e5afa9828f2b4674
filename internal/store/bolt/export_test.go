package bolt

// Every test of the package scans in pages of three items, so that the
// conformance suite's scans cross page boundaries.
func init() { scanPage = 3 }
