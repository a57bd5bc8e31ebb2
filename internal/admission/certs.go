package admission

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Certificates are the webhook listener's: a CA, whose certificate is
// the webhook configurations' caBundle, and a serving certificate it
// signed for the names the API server dials.
type Certificates struct {
	CA      []byte // PEM
	Serving tls.Certificate
}

// LoadCertificates reads a given certificate, key and CA.
func LoadCertificates(certFile, keyFile, caFile string) (Certificates, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return Certificates{}, fmt.Errorf("admission TLS: %w", err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return Certificates{}, fmt.Errorf("admission TLS: %w", err)
	}
	return Certificates{CA: ca, Serving: c}, nil
}

// Certificate lifetimes; a serving certificate is renewed 30 days
// before it ends.
const (
	caLifetime      = 10 * 365 * 24 * time.Hour
	servingLifetime = 365 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
)

// EnsureCertificates loads the CA and serving certificate kept in dir,
// making the CA when there is none, and a serving certificate when
// there is none, it misses one of hosts, or it ends within 30 days.
func EnsureCertificates(dir string, hosts []string, now time.Time) (Certificates, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Certificates{}, err
	}
	caCert, caKey, caPEM, err := ensureCA(dir, now)
	if err != nil {
		return Certificates{}, err
	}
	certPath, keyPath := filepath.Join(dir, "serving.pem"), filepath.Join(dir, "serving.key")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil && covers(leaf, hosts) &&
			now.Before(leaf.NotAfter.Add(-renewBefore)) && leaf.CheckSignatureFrom(caCert) == nil {
			return Certificates{CA: caPEM, Serving: c}, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certificates{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "socle admission"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(servingLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return Certificates{}, err
	}
	if err := writeKeyPair(certPath, keyPath, der, key); err != nil {
		return Certificates{}, err
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	return Certificates{CA: caPEM, Serving: c}, err
}

// ReadCA returns the CA kept in dir, for the webhook configurations.
func ReadCA(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if errors.Is(err, os.ErrNotExist) {
		_, _, b, err = ensureCA(dir, time.Now())
	}
	return b, err
}

func ensureCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, perr := x509.ParseCertificate(c.Certificate[0])
		key, ok := c.PrivateKey.(*ecdsa.PrivateKey)
		if perr == nil && ok && now.Before(leaf.NotAfter.Add(-renewBefore)) {
			b, err := os.ReadFile(certPath)
			return leaf, key, b, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "socle admission CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := writeKeyPair(certPath, keyPath, der, key); err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func writeKeyPair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func covers(leaf *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if h != "" && !slices.Contains(leaf.DNSNames, h) {
			return false
		}
	}
	return true
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
