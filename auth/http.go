package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"resh/internal/fserr"
)

// Files of the web dashboard in RESH_HOME.
const (
	// HTTPTokenFile holds the token the dashboard asks for off loopback.
	HTTPTokenFile = "http-token"
	// HTTPKeyFile holds the dashboard's HTTPS key (ECDSA P-256, PKCS #8).
	HTTPKeyFile = "http_key.pem"
	// HTTPCertFile holds its self-signed certificate.
	HTTPCertFile = "http_cert.pem"
)

// httpCertLife is how long a dashboard certificate is made for; one that
// ends within httpCertRenew is made again.
const (
	httpCertLife  = 2 * 365 * 24 * time.Hour
	httpCertRenew = 30 * 24 * time.Hour
)

// HTTPToken returns the dashboard's token from home's HTTPTokenFile,
// creating it (32 random bytes, in hex, mode 0600) the first time.
func HTTPToken(home string) (string, error) {
	path := filepath.Join(home, HTTPTokenFile)
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			tok := strings.TrimSpace(string(b))
			if len(tok) < 32 {
				return "", fmt.Errorf("%s holds no token (remove it to make a new one)", path)
			}
			return tok, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("cannot read %s: %w", path, fserr.Bare(err))
		}
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		if _, err := createExclusive(path, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("cannot create %s", path)
}

// HTTPCertificate returns the dashboard's HTTPS certificate for names
// (host names and IP addresses), and the SHA-256 fingerprint of the
// certificate (as browsers show it). The key is home's HTTPKeyFile,
// created the first time; the self-signed certificate in HTTPCertFile is
// kept while it covers names and is not near its end, else made anew.
//
// It is not the host key: browsers refuse Ed25519 server certificates,
// so the dashboard has an ECDSA P-256 key of its own.
func HTTPCertificate(home string, names []string) (tls.Certificate, string, error) {
	key, err := httpKey(filepath.Join(home, HTTPKeyFile))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPath := filepath.Join(home, HTTPCertFile)
	der, err := keptCertificate(certPath, key, names)
	if err != nil {
		der, err = newHTTPCertificate(key, names)
		if err != nil {
			return tls.Certificate{}, "", err
		}
		tmp := certPath + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return tls.Certificate{}, "", fmt.Errorf("cannot write %s: %w", certPath, fserr.Bare(err))
		}
		if err := os.Rename(tmp, certPath); err != nil {
			_ = os.Remove(tmp)
			return tls.Certificate{}, "", fmt.Errorf("cannot write %s: %w", certPath, fserr.Bare(err))
		}
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, fingerprintHex(sum[:]), nil
}

// fingerprintHex writes a digest as browsers do: upper-case hex pairs
// joined by colons.
func fingerprintHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// httpKey reads the PEM PKCS #8 ECDSA key at path, creating it the first
// time.
func httpKey(path string) (*ecdsa.PrivateKey, error) {
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			blk, _ := pem.Decode(b)
			if blk == nil {
				return nil, fmt.Errorf("%s is not a PEM key (remove it to make a new one)", path)
			}
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%s holds a %s key, not ECDSA", path, keyKind(k))
			}
			return ek, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cannot read %s: %w", path, fserr.Bare(err))
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		if _, err := createExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("cannot create %s", path)
}

// keptCertificate returns the certificate at path if it is key's, covers
// names and does not end soon.
func keptCertificate(path string, key *ecdsa.PrivateKey, names []string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("another key's")
	}
	if time.Until(c.NotAfter) < httpCertRenew || time.Now().Before(c.NotBefore) {
		return nil, errors.New("ends soon")
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return nil, errors.New("does not cover " + n)
			}
		} else if !slices.Contains(c.DNSNames, n) {
			return nil, errors.New("does not cover " + n)
		}
	}
	return blk.Bytes, nil
}

// newHTTPCertificate makes a self-signed certificate of key for names.
func newHTTPCertificate(key *ecdsa.PrivateKey, names []string) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "reshd dashboard " + host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(httpCertLife),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cannot make the dashboard's certificate: %w", err)
	}
	return der, nil
}
