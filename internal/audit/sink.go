package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OpenSink returns the sink a location names: an http(s):// URL, an
// oci://registry/repository, or a directory.
func OpenSink(location string, remoteOpts []remote.Option, client *http.Client) (Sink, error) {
	switch {
	case strings.HasPrefix(location, "http://"), strings.HasPrefix(location, "https://"):
		if client == nil {
			client = &http.Client{Timeout: 30 * time.Second}
		}
		return HTTPSink{URL: location, Client: client}, nil
	case strings.HasPrefix(location, "oci://"):
		repo, err := name.NewRepository(strings.TrimPrefix(location, "oci://"))
		if err != nil {
			return nil, fmt.Errorf("checkpoint sink %q: %w", location, err)
		}
		return OCISink{Repo: repo, Remote: remoteOpts}, nil
	case location == "":
		return nil, errors.New("no checkpoint sink")
	}
	return DirSink{Dir: location}, nil
}

// DirSink writes each checkpoint to a file of a directory.
type DirSink struct{ Dir string }

func (d DirSink) String() string { return d.Dir }

// Put writes checkpoint-SEQ-TIME.json, durably.
func (d DirSink) Put(_ context.Context, c Signed) error {
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(d.Dir, fmt.Sprintf("checkpoint-%012d-%d.json", c.Seq, c.At.UnixNano()))
	f, err := os.CreateTemp(d.Dir, ".checkpoint-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	f.Close()
	return os.Rename(f.Name(), p)
}

// List reads every checkpoint file.
func (d DirSink) List(context.Context) ([]Signed, error) {
	paths, err := filepath.Glob(filepath.Join(d.Dir, "checkpoint-*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []Signed
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		s, err := decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// HTTPSink POSTs each checkpoint to a URL; a GET of the same URL lists
// them (a JSON array), which is what an auditor's endpoint serves.
type HTTPSink struct {
	URL    string
	Client *http.Client
}

func (h HTTPSink) String() string { return h.URL }

func (h HTTPSink) Put(ctx context.Context, c Signed) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("the checkpoint endpoint answered %d", resp.StatusCode)
	}
	return nil
}

func (h HTTPSink) List(ctx context.Context) ([]Signed, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the checkpoint endpoint answered %d", resp.StatusCode)
	}
	var out []Signed
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	return out, nil
}

// checkpointType is the artifact type of a checkpoint in a registry.
const checkpointType = "application/vnd.socle.audit.checkpoint.v1+json"

// OCISink pushes each checkpoint to a repository as an artifact tagged
// checkpoint-SEQ-UNIXNANO.
type OCISink struct {
	Repo   name.Repository
	Remote []remote.Option
}

func (o OCISink) String() string { return "oci://" + o.Repo.Name() }

func (o OCISink) Put(ctx context.Context, c Signed) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, checkpointType)
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(b, checkpointType)})
	if err != nil {
		return err
	}
	tag := o.Repo.Tag(fmt.Sprintf("checkpoint-%012d-%d", c.Seq, c.At.UnixNano()))
	return remote.Write(tag, img, append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)...)
}

func (o OCISink) List(ctx context.Context) ([]Signed, error) {
	opts := append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)
	tags, err := remote.List(o.Repo, opts...)
	if err != nil {
		return nil, err
	}
	var out []Signed
	for _, t := range tags {
		if !strings.HasPrefix(t, "checkpoint-") {
			continue
		}
		img, err := remote.Image(o.Repo.Tag(t), opts...)
		if err != nil {
			return nil, err
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			return nil, fmt.Errorf("%s: not a checkpoint", t)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			return nil, err
		}
		s, err := decode(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		out = append(out, s)
	}
	return out, nil
}
