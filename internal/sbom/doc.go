// Package sbom builds the inventory of an image: its packages, the layer
// that introduced each one and the layer that removed it, and its
// operating system.
//
// Each layer is analysed once, on its own, by osv-scalibr's extractors
// while its tar stream is read; the result is cached by the layer's
// DiffID, so a second image that shares base layers reads only its own.
// The per-layer results are then merged in layer order, applying
// whiteouts and overwrites, which reads no layer again. CycloneDX and
// SPDX encoders turn an Inventory into a document.
package sbom
