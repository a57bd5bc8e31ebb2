// Package scan ties the pieces of one image scan together: it opens the
// image, builds its inventory through the per-layer cache, records the
// image and its packages in the store's index, and matches them against
// the advisories. The command line and the server share it.
package scan
