// Package sign signs and verifies images and attestations with the cosign
// library, in cosign's formats: key pairs as `cosign generate-key-pair`
// writes them, signatures under the sha256-<hex>.sig tag, in-toto
// attestations in DSSE envelopes under sha256-<hex>.att. Signatures made
// here verify with `cosign verify --key`, and cosign's verify here.
// Keys are local: no transparency log or certificate authority is used.
package sign
