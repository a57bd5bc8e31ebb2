package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
)

// Predicate types socle writes and checks.
const (
	// PredicateCycloneDX is cosign's type for `--type cyclonedx`.
	PredicateCycloneDX = "https://cyclonedx.org/bom"
	// PredicateSPDX is cosign's type for `--type spdx|spdxjson`.
	PredicateSPDX = "https://spdx.dev/Document"
	// PredicatePromotion records a promotion to an environment.
	PredicatePromotion = "https://socle.dev/attestation/promotion/v1"
)

// KeyPair is a cosign key pair, PEM-encoded; the private key is
// encrypted with the password.
type KeyPair struct {
	Private []byte
	Public  []byte
}

// GenerateKeyPair makes an ECDSA P-256 key pair, the private key
// encrypted as cosign encrypts it.
func GenerateKeyPair(password []byte) (KeyPair, error) {
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Private: kb.PrivateBytes, Public: kb.PublicBytes}, nil
}

// Signer signs payloads with a private key.
type Signer struct {
	sv signature.SignerVerifier
}

// LoadSigner decrypts a cosign private key (or reads an unencrypted
// PKCS#8/EC PEM key).
func LoadSigner(pem, password []byte) (*Signer, error) {
	sv, err := cosign.LoadPrivateKey(pem, password, nil)
	if err == nil {
		return &Signer{sv: sv}, nil
	}
	pk, perr := cryptoutils.UnmarshalPEMToPrivateKey(pem, cryptoutils.SkipPassword)
	if perr != nil {
		return nil, fmt.Errorf("loading the private key: %w", err)
	}
	sv, err = signature.LoadSignerVerifier(pk, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Signer{sv: sv}, nil
}

// LoadSignerFile reads a private key file; the password comes from
// COSIGN_PASSWORD, as for cosign.
func LoadSignerFile(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return LoadSigner(b, []byte(os.Getenv("COSIGN_PASSWORD")))
}

// PublicKeyPEM returns the signer's public key.
func (s *Signer) PublicKeyPEM() ([]byte, error) {
	pub, err := s.sv.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// SignBytes signs a payload (SHA-256, the key's algorithm), as cosign
// sign-blob does.
func (s *Signer) SignBytes(payload []byte) ([]byte, error) {
	return s.sv.SignMessage(bytes.NewReader(payload))
}

// VerifyBytes checks a signature SignBytes made.
func (v *Verifier) VerifyBytes(payload, sig []byte) error {
	return v.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload))
}

// Verifier checks signatures with one public key.
type Verifier struct {
	// Name is where the key came from (a file name), for evidence.
	Name string
	v    signature.Verifier
}

// LoadVerifier reads a PEM public key.
func LoadVerifier(name string, pem []byte) (*Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Verifier{Name: name, v: v}, nil
}

// LoadVerifierFile reads a PEM public key file.
func LoadVerifierFile(path string) (*Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return LoadVerifier(path, b)
}

func ociOptions(opts []remote.Option) []ociremote.Option {
	return []ociremote.Option{ociremote.WithRemoteOptions(opts...)}
}

// Sign signs the image ref (by digest) and stores the signature next to
// it, as `cosign sign --key` does. Annotations go into the signed payload.
func (s *Signer) Sign(ctx context.Context, ref name.Digest, annotations map[string]any, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	payload, err := (&sigpayload.Cosign{Image: ref, Annotations: annotations}).MarshalJSON()
	if err != nil {
		return err
	}
	raw, err := s.sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	sig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return err
	}
	se, err := ociremote.SignedEntity(ref, ociOptions(opts)...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ref, err)
	}
	se, err = mutate.AttachSignatureToEntity(se, sig, mutate.WithDupeDetector(sameSignature{v: s.sv}))
	if err != nil {
		return err
	}
	return ociremote.WriteSignatures(ref.Context(), se, ociOptions(opts)...)
}

// Attest signs an in-toto statement about ref with the predicate and
// stores it as `cosign attest --key --type T` does. predicateType is
// "cyclonedx" (or any cosign --type) or a URI for a custom predicate.
func (s *Signer) Attest(ctx context.Context, ref name.Digest, predicateType string, predicate []byte, now time.Time, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	h, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return err
	}
	st, err := attestation.GenerateStatement(attestation.GenerateOpts{
		Predicate: bytes.NewReader(predicate), Type: predicateType, Digest: h.Hex,
		Repo: ref.Context().String(), Time: func() time.Time { return now },
	})
	if err != nil {
		return err
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return err
	}
	env, err := dsse.WrapSigner(s.sv, types.IntotoPayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	var header struct {
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(payload, &header); err != nil {
		return err
	}
	att, err := static.NewAttestation(env, static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": header.PredicateType}))
	if err != nil {
		return err
	}
	se, err := ociremote.SignedEntity(ref, ociOptions(opts)...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ref, err)
	}
	se, err = mutate.AttachAttestationToEntity(se, att)
	if err != nil {
		return err
	}
	return ociremote.WriteAttestations(ref.Context(), se, ociOptions(opts)...)
}

// sameSignature finds a signature of the same payload by the same key
// already attached, so that signing twice does not add a second layer.
type sameSignature struct{ v signature.Verifier }

func (d sameSignature) Find(sigs oci.Signatures, sig oci.Signature) (oci.Signature, error) {
	want, err := sig.Payload()
	if err != nil {
		return nil, err
	}
	all, err := sigs.Get()
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		p, err := s.Payload()
		if err != nil || !bytes.Equal(p, want) {
			continue
		}
		b64, err := s.Base64Signature()
		if err != nil {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && d.v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(p)) == nil {
			return s, nil
		}
	}
	return nil, nil
}

// ErrNoSignature means no signature of the image verified with the keys.
var ErrNoSignature = errors.New("no valid signature")

func checkOpts(v *Verifier, claims func(oci.Signature, v1.Hash, map[string]any) error, opts []remote.Option) *cosign.CheckOpts {
	return &cosign.CheckOpts{
		SigVerifier:        v.v,
		IgnoreTlog:         true,
		IgnoreSCT:          true,
		ClaimVerifier:      claims,
		RegistryClientOpts: ociOptions(opts),
	}
}

// VerifySignature returns the name of the first key that verifies a
// signature of ref, or ErrNoSignature.
func VerifySignature(ctx context.Context, ref name.Digest, keys []*Verifier, opts ...remote.Option) (string, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	var errs []string
	for _, k := range keys {
		sigs, _, err := cosign.VerifyImageSignatures(ctx, ref, checkOpts(k, cosign.SimpleClaimVerifier, opts))
		if err == nil && len(sigs) > 0 {
			return k.Name, nil
		}
		if err != nil {
			errs = append(errs, k.Name+": "+firstLine(err.Error()))
		}
	}
	if len(keys) == 0 {
		return "", fmt.Errorf("%w: no keys configured", ErrNoSignature)
	}
	return "", fmt.Errorf("%w (%s)", ErrNoSignature, strings.Join(errs, "; "))
}

// Statement is a verified in-toto statement.
type Statement struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
	// Key names the key that verified it.
	Key string `json:"-"`
}

// VerifyAttestations returns the statements of ref whose DSSE envelope
// verifies with one of the keys and whose subject is ref, of the given
// predicate type ("" for all).
func VerifyAttestations(ctx context.Context, ref name.Digest, keys []*Verifier, predicateType string, opts ...remote.Option) ([]Statement, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	var out []Statement
	var lastErr error
	for _, k := range keys {
		atts, _, err := cosign.VerifyImageAttestations(ctx, ref, checkOpts(k, cosign.IntotoSubjectClaimVerifier, opts))
		if err != nil {
			lastErr = err
			continue
		}
		for _, a := range atts {
			st, err := statementOf(a)
			if err != nil {
				return nil, err
			}
			if predicateType == "" || st.PredicateType == predicateType {
				st.Key = k.Name
				out = append(out, st)
			}
		}
	}
	if len(out) == 0 && lastErr != nil {
		var nm *cosign.ErrNoMatchingAttestations
		if errors.As(lastErr, &nm) {
			return nil, nil
		}
		return nil, lastErr
	}
	return out, nil
}

func statementOf(a oci.Signature) (Statement, error) {
	env, err := a.Payload()
	if err != nil {
		return Statement{}, err
	}
	var e struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(env, &e); err != nil {
		return Statement{}, fmt.Errorf("attestation envelope: %w", err)
	}
	body, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return Statement{}, fmt.Errorf("attestation payload: %w", err)
	}
	var st Statement
	if err := json.Unmarshal(body, &st); err != nil {
		return Statement{}, fmt.Errorf("attestation statement: %w", err)
	}
	return st, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
