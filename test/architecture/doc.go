// Package architecture checks the direction of Gatehouse's dependencies
// (docs/architecture.md) from the packages' imports, so that a change that
// breaks it fails the test suite. The package has no code outside its
// tests.
package architecture
