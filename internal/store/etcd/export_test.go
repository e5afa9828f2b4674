package etcd

// Every test of the package lists in pages of three keys, so that the
// conformance suite's listings and watches after a listing cross page
// boundaries.
func init() { listPage = 3 }
