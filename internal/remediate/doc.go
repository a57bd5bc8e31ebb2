// Package remediate carries fixes to new digests without waiting for the
// teams that own the images. For each catalog image with open fixable
// findings it attributes every finding to the catalog image whose layers
// introduced it (a base's finding belongs to the base, not to every app),
// then picks a strategy and explains it:
//
//   - rebuild an assembled image from updated packages, the new versions
//     coming from the archive (pins in socle.yaml are bumped);
//   - rebase an image's own layers onto its parent's new digest, when they
//     do not depend on it (append-layer images, or rebase: safe);
//   - bump the digest in Git (Dockerfile FROM lines, kustomize images,
//     Helm values) for what is deployed from Git rather than built here;
//   - nothing yet, when no fix exists upstream.
//
// Every candidate is scanned before it is offered, and kept only if it
// removes findings without adding any; the outcome is recorded.
package remediate
