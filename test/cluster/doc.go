// Package cluster holds Gatehouse's multi-replica integration tests. They
// build the gatehouse binary, start a three-member etcd cluster in the test
// process and several `gatehouse serve --store etcd` processes on it, and
// check every rule that spans replicas: the shared key ring, the shared
// lockout counters, revocations, apps and ccmessaging sessions, how fast
// changes reach the other replicas, and what clients see when one etcd
// member or the whole cluster is lost. The package has no code outside its
// tests.
package cluster
