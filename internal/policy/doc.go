// Package policy evaluates Rego policies (OPA) over one document that
// describes an image and its promotion: any deny message blocks.
package policy
