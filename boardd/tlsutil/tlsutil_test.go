package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestSelfSignedKept(t *testing.T) {
	dir := t.TempDir()
	c1, err := Load(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if c1.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion %x", c1.MinVersion)
	}
	leaf, err := x509.ParseCertificate(c1.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "tls", "key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	c2, err := Load(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(c2.Certificates[0].Certificate[0]) != string(c1.Certificates[0].Certificate[0]) {
		t.Fatal("a second Load made a new certificate instead of keeping the first")
	}
	// A configured pair is used as given.
	c3, err := Load(t.TempDir(), filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem"))
	if err != nil || string(c3.Certificates[0].Certificate[0]) != string(c1.Certificates[0].Certificate[0]) {
		t.Fatalf("configured pair: %v", err)
	}
	if _, err := Load(dir, "cert-only.pem", ""); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	if _, err := Load(dir, filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing-key.pem")); err == nil {
		t.Fatal("missing files accepted")
	}
}
