package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, the certificate files are
// looked at again.
const certCheckInterval = time.Second

// certReloader serves the key pair of certFile and keyFile, loading it
// again when either file changes (modification time or size, looked at
// during a TLS handshake at most once per certCheckInterval). A pair that
// fails to load, such as a certificate already replaced whose key is not
// yet, leaves the previous one in use. Established connections keep the
// certificate they were set up with.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	loaded  [2]fileStamp // of the files cert was loaded from
	failed  [2]fileStamp // of the files that last failed to load
	checked time.Time
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  int64 // modification time, Unix nanoseconds
	size int64
}

func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	stamps, err := c.stamps()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamps); err != nil {
		return nil, err
	}
	c.checked = time.Now()
	return c, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= certCheckInterval {
		c.checked = now
		c.reloadIfChanged()
	}
	return c.cert, nil
}

func (c *certReloader) reloadIfChanged() {
	stamps, err := c.stamps()
	if err != nil || stamps == c.loaded || stamps == c.failed {
		return
	}
	if err := c.load(stamps); err != nil {
		c.failed = stamps
		c.logger.Warn("TLS certificate not reloaded; the previous one stays in use", "err", err)
		return
	}
	c.logger.Info("TLS certificate reloaded", "cert", c.certFile)
}

func (c *certReloader) load(stamps [2]fileStamp) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	c.cert, c.loaded = &cert, stamps
	return nil
}

func (c *certReloader) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return s, fmt.Errorf("TLS: %w", err)
		}
		s[i] = fileStamp{mod: fi.ModTime().UnixNano(), size: fi.Size()}
	}
	return s, nil
}
