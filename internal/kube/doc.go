// Package kube connects socle to Kubernetes clusters: it watches pods
// with client-go informers and records what runs where (the live
// inventory), and tells admission the labels of namespaces.
package kube
