// Package catalog is the image socle: the images a platform team builds,
// declared in socle.yaml, each on its parent. It validates the graph,
// renders tags from the naming convention, finds an image's lineage,
// plans what must be rebuilt and why, and builds it in dependency order.
package catalog
