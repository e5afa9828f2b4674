package server

import "os"

// RootPasswordFromEnv reads the bootstrap root password from the
// environment: Gatehouse's own GATEHOUSE_ROOT_PASSWORD first, then Service
// Center's SC_INIT_ROOT_PASSWORD.
func RootPasswordFromEnv() string {
	if v := os.Getenv("GATEHOUSE_ROOT_PASSWORD"); v != "" {
		return v
	}
	return os.Getenv("SC_INIT_ROOT_PASSWORD")
}
