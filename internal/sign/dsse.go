package sign

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnverifiedEnvelope is returned for a DSSE envelope no trusted key
// signed.
var ErrUnverifiedEnvelope = errors.New("the envelope's signature does not verify with the trusted keys")

// VerifyDSSE checks a DSSE envelope (what cosign attest writes) against
// keys, and returns its payload type, payload and the name of the key
// that verified it. The signature covers DSSE's pre-authentication
// encoding of the type and the payload.
func VerifyDSSE(envelope []byte, keys []*Verifier) (payloadType string, payload []byte, key string, err error) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		return "", nil, "", fmt.Errorf("not a DSSE envelope: %w", err)
	}
	payload, err = base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return "", nil, "", fmt.Errorf("DSSE payload: %w", err)
	}
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d ", len(env.PayloadType), env.PayloadType, len(payload))
	pae = append(pae, payload...)
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		for _, k := range keys {
			if k.VerifyBytes(pae, sig) == nil {
				return env.PayloadType, payload, k.Name, nil
			}
		}
	}
	return "", nil, "", ErrUnverifiedEnvelope
}
