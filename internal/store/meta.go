package store

import (
	"context"
)

// Meta keeps small settings.
type Meta interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}
