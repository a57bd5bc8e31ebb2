package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// Kinds of feed.
const (
	KindGit  = "git"
	KindHTTP = "http"
	KindPath = "path"
)

// maxDownload bounds an HTTP feed.
const maxDownload = 2 << 30

// Store is what a sync reads and writes.
type Store interface {
	vuln.AdvisoryWriter
	PutFeed(ctx context.Context, f store.Feed) error
	Feeds(ctx context.Context) ([]store.Feed, error)
}

var _ Store = store.Store(nil)

// Reevaluator re-matches the stored versions of package names.
type Reevaluator func(ctx context.Context, names []store.PackageName) (versions int, changes store.FindingChanges, err error)

// Syncer syncs feeds.
type Syncer struct {
	Store Store
	// Dir keeps Git clones and downloads.
	Dir    string
	Client *http.Client
	// Reevaluate runs after records changed; nil skips it.
	Reevaluate Reevaluator
	// Notify receives "findings.new" when a sync opened findings.
	Notify func(ctx context.Context, event string, payload any)
	// ApplyVEX applies the kept VEX documents to every image after a sync
	// brought new ones (vuln.StoredVEX.Hook); nil skips it.
	ApplyVEX func(ctx context.Context, digests []string) error
	// KEVAlert runs after each sync: it fires findings.kev for the
	// known-exploited findings that newly run in production.
	KEVAlert func(ctx context.Context) error
	// After runs after each successful sync (auto-remediation).
	After  func(ctx context.Context, r Result)
	Logger *slog.Logger
	Now    func() time.Time
}

// Result is what one sync did.
type Result struct {
	Feed string `json:"feed"`
	Kind string `json:"kind"`
	// Unchanged: the source said nothing changed (same commit or ETag).
	Unchanged bool `json:"unchanged,omitempty"`
	// Files read, records in them, and what the store did with them.
	Files            int `json:"files"`
	Records          int `json:"records"`
	Added            int `json:"added"`
	Updated          int `json:"updated"`
	Skipped          int `json:"skipped"`
	UnchangedRecords int `json:"unchanged_records"`
	// Changed are the IDs of the records added or updated.
	Changed []string `json:"changed,omitempty"`
	// Reevaluated package versions, and the findings opened and closed.
	Reevaluated int                  `json:"reevaluated"`
	Findings    store.FindingChanges `json:"findings"`
	Cursor      string               `json:"cursor,omitempty"`
	Error       string               `json:"error,omitempty"`
	Seconds     float64              `json:"seconds"`
}

// KindOf says how a feed URL is read.
func KindOf(u string) string {
	switch {
	case strings.HasPrefix(u, "git+"), strings.HasSuffix(strings.TrimSuffix(u, "/"), ".git"):
		return KindGit
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		return KindHTTP
	}
	return KindPath
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Syncer) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Syncer) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	// No total timeout, which a large feed could need: every step of the
	// download has its deadline, and the sync job its maximum run time.
	return &http.Client{Transport: source.NewTransport(source.Timeouts{})}
}

// Sync syncs one feed and records its state. The error, if any, is in
// the result (and in the feed's state); the data of the last good sync
// stays.
func (s *Syncer) Sync(ctx context.Context, f config.Feed) Result {
	start := s.now()
	res := Result{Feed: f.Name, Kind: KindOf(f.URL)}
	prev := store.Feed{}
	if all, err := s.Store.Feeds(ctx); err == nil {
		for _, x := range all {
			if x.Name == f.Name {
				prev = x
			}
		}
	}
	im := vuln.NewImporter(s.Store, f.Name)
	var err error
	switch res.Kind {
	case KindGit:
		res.Cursor, res.Unchanged, err = s.syncGit(ctx, f, prev.Cursor, im)
	case KindHTTP:
		res.Cursor, res.Unchanged, err = s.syncHTTP(ctx, f, prev.Cursor, im)
	default:
		err = im.ImportPath(ctx, localPath(f.URL))
	}
	var stats vuln.ImportStats
	if err == nil {
		stats, err = im.Finish(ctx)
	}
	state := prev
	state.Name, state.Kind, state.URL, state.LastAttempt = f.Name, res.Kind, redact(f.URL), s.now().UTC()
	if err == nil && !res.Unchanged && !stats.Found() && prev.Cursor == "" && res.Kind != KindGit {
		err = errors.New("no advisory found")
	}
	if err != nil {
		// Keep the last good data and cursor: report the failure.
		res.Error = err.Error()
		state.LastError = err.Error()
		if perr := s.Store.PutFeed(ctx, state); perr != nil {
			s.log().Error("recording a feed failure", "feed", f.Name, "err", perr)
		}
		s.log().Warn("feed sync failed; keeping the last good data", "feed", f.Name, "err", err)
		res.Seconds = s.now().Sub(start).Seconds()
		return res
	}
	res.Files, res.Records, res.Added, res.Updated, res.UnchangedRecords, res.Skipped = stats.Files, stats.Records, stats.Added, stats.Updated, stats.Unchanged, stats.Skipped
	res.Changed = stats.Changed
	if len(stats.Packages) > 0 && s.Reevaluate != nil {
		n, ch, err := s.Reevaluate(ctx, stats.Packages)
		if err != nil {
			res.Error = "re-evaluation: " + err.Error()
		}
		res.Reevaluated, res.Findings = n, ch
		if ch.OpenedFixable > 0 && s.Notify != nil {
			s.Notify(ctx, "findings.new", map[string]any{"feed": f.Name, "opened_fixable": ch.OpenedFixable, "opened": ch.Opened,
				"closed": ch.Closed, "images": ch.Images, "images_truncated": ch.ImagesTruncated, "advisories": stats.Changed})
		}
	}
	if s.KEVAlert != nil {
		if err := s.KEVAlert(ctx); err != nil {
			s.log().Warn("checking known-exploited findings", "err", err)
		}
	}
	if stats.VEX > 0 && s.ApplyVEX != nil {
		if err := s.ApplyVEX(ctx, nil); err != nil {
			res.Error = "applying VEX: " + err.Error()
		}
	}
	state.LastSuccess, state.LastError = state.LastAttempt, res.Error
	if res.Cursor != "" {
		state.Cursor = res.Cursor
	}
	if !res.Unchanged {
		if prev.Records > 0 && res.Kind == KindGit && prev.Cursor != "" {
			state.Records = prev.Records + stats.Added
		} else {
			state.Records = stats.Records
		}
	}
	if err := s.Store.PutFeed(ctx, state); err != nil {
		res.Error = err.Error()
	}
	res.Seconds = s.now().Sub(start).Seconds()
	if s.After != nil && res.Error == "" {
		s.After(ctx, res)
	}
	return res
}

func localPath(u string) string {
	if strings.HasPrefix(u, "file://") {
		if p, err := url.Parse(u); err == nil {
			return p.Path
		}
	}
	return u
}

// syncGit clones or fetches the repository and imports the record files
// changed since the cursor commit (all of them on the first sync).
func (s *Syncer) syncGit(ctx context.Context, f config.Feed, cursor string, im *vuln.Importer) (string, bool, error) {
	src := strings.TrimPrefix(f.URL, "git+")
	if strings.HasPrefix(src, "file://") {
		src = localPath(src)
	}
	dir := filepath.Join(s.Dir, "git", safeName(f.Name))
	repo, err := git.PlainOpen(dir)
	switch {
	case errors.Is(err, git.ErrRepositoryNotExists):
		if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
			return "", false, err
		}
		repo, err = git.PlainCloneContext(ctx, dir, true, &git.CloneOptions{URL: src, Depth: 0, Tags: git.NoTags})
		if err != nil {
			os.RemoveAll(dir)
			return "", false, fmt.Errorf("cloning %s: %w", redact(src), err)
		}
	case err != nil:
		return "", false, err
	default:
		err := repo.FetchContext(ctx, &git.FetchOptions{RemoteURL: src, Force: true, Tags: git.NoTags,
			RefSpecs: []gitconfig.RefSpec{"+refs/heads/*:refs/heads/*"}})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return "", false, fmt.Errorf("fetching %s: %w", redact(src), err)
		}
	}
	head, err := repo.Head()
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", redact(src), err)
	}
	commit, err := repo.CommitObject(head.Hash())
	if err != nil {
		return "", false, err
	}
	if cursor == head.Hash().String() {
		return cursor, true, nil
	}
	tree, err := commit.Tree()
	if err != nil {
		return "", false, err
	}
	var files []string
	if cursor != "" {
		if old, err := repo.CommitObject(plumbing.NewHash(cursor)); err == nil {
			oldTree, err := old.Tree()
			if err != nil {
				return "", false, err
			}
			changes, err := object.DiffTreeWithOptions(ctx, oldTree, tree, object.DefaultDiffTreeOptions)
			if err != nil {
				return "", false, err
			}
			for _, c := range changes {
				if c.To.Name != "" { // added or modified; a deleted record is left as it was
					files = append(files, c.To.Name)
				}
			}
		} else {
			cursor = "" // history rewritten: read everything
		}
	}
	if cursor == "" {
		err := tree.Files().ForEach(func(fl *object.File) error {
			files = append(files, fl.Name)
			return nil
		})
		if err != nil {
			return "", false, err
		}
	}
	for _, name := range files {
		if !isRecord(name) {
			continue
		}
		fl, err := tree.File(name)
		if err != nil {
			return "", false, err
		}
		r, err := fl.Reader()
		if err != nil {
			return "", false, err
		}
		err = im.ImportReader(ctx, f.Name+":"+name, r, commit.Committer.When)
		r.Close()
		if err != nil {
			return "", false, err
		}
	}
	return head.Hash().String(), false, nil
}

func isRecord(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".json", ".yaml", ".yml":
		return !strings.HasPrefix(path.Base(name), ".")
	}
	return false
}

// syncHTTP downloads the export unless the server says it has not
// changed since the cursor (ETag or Last-Modified).
func (s *Syncer) syncHTTP(ctx context.Context, f config.Feed, cursor string, im *vuln.Importer) (string, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return "", false, err
	}
	if etag, ok := strings.CutPrefix(cursor, "etag:"); ok {
		req.Header.Set("If-None-Match", etag)
	} else if lm, ok := strings.CutPrefix(cursor, "last-modified:"); ok {
		req.Header.Set("If-Modified-Since", lm)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return "", false, fmt.Errorf("fetching %s: %w", redact(f.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return cursor, true, nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", false, fmt.Errorf("fetching %s: %s", redact(f.URL), resp.Status)
	}
	next := ""
	if e := resp.Header.Get("ETag"); e != "" {
		next = "etag:" + e
	} else if lm := resp.Header.Get("Last-Modified"); lm != "" {
		next = "last-modified:" + lm
	}
	// Keep the extension, which says how to read it.
	u, _ := url.Parse(f.URL)
	ext := path.Ext(u.Path)
	if ext == "" {
		ext = ".json"
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return "", false, err
	}
	tmp, err := os.CreateTemp(s.Dir, "feed-*"+ext)
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, maxDownload+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fmt.Errorf("downloading %s: %w", redact(f.URL), err)
	}
	if n > maxDownload {
		return "", false, fmt.Errorf("%s is larger than %d bytes", redact(f.URL), int64(maxDownload))
	}
	if err := im.ImportPath(ctx, tmp.Name()); err != nil {
		return "", false, err
	}
	return next, false, nil
}

// redact drops credentials from a URL before it is logged or stored.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = url.User("REDACTED")
	return p.String()
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' {
			return '_'
		}
		return r
	}, s)
}

// JobKind is the job that syncs one feed: replicas sharing a store claim
// it from the job queue, so a feed is synced by one of them at a time,
// and the sync shows on the Jobs page with its progress.
const JobKind = "feed-sync"

// JobPayload names the feed a job syncs.
type JobPayload struct {
	Feed string `json:"feed"`
}

// Job returns the job handler for the feeds of socle.yaml.
func (s *Syncer) Job(list []config.Feed) func(ctx context.Context, j *store.Job, progress func(done, total int, msg string)) error {
	return func(ctx context.Context, j *store.Job, progress func(done, total int, msg string)) error {
		var p JobPayload
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return fmt.Errorf("feed job payload: %w", err)
		}
		for _, f := range list {
			if f.Name != p.Feed {
				continue
			}
			progress(0, 1, "syncing "+f.Name)
			r := s.Sync(ctx, f)
			msg := fmt.Sprintf("%d added, %d updated; %d findings opened, %d closed", r.Added, r.Updated, r.Findings.Opened, r.Findings.Closed)
			if r.Unchanged {
				msg = "no change at the source"
			}
			progress(1, 1, msg)
			if r.Error != "" {
				return errors.New(r.Error)
			}
			return nil
		}
		return fmt.Errorf("feed %q is not in socle.yaml", p.Feed)
	}
}

// NewSyncer returns the syncer of a data directory: Git clones and
// downloads are kept in DATA_DIR/feeds.
func NewSyncer(st Store, dataDir string, re Reevaluator, log *slog.Logger) *Syncer {
	return &Syncer{Store: st, Dir: filepath.Join(dataDir, "feeds"), Reevaluate: re, Logger: log}
}

// Queue is the job queue feed syncs are put on.
type Queue interface {
	EnqueueJob(ctx context.Context, kind, key string, payload []byte) (int64, bool, error)
}

// Schedule queues a sync job for each feed at once and then on its
// interval, until ctx ends, calling wake after each so that a worker
// picks it up. Each feed's sync is a job: replicas sharing the store
// claim it, so one of them syncs a feed at a time.
func Schedule(ctx context.Context, q Queue, list []config.Feed, wake func(), log *slog.Logger) {
	for _, f := range list {
		go func(f config.Feed) {
			payload, _ := json.Marshal(JobPayload{Feed: f.Name})
			t := time.NewTicker(f.SyncInterval())
			defer t.Stop()
			for {
				if _, _, err := q.EnqueueJob(ctx, JobKind, "feed:"+f.Name, payload); err != nil && ctx.Err() == nil {
					log.Warn("queueing a feed sync", "feed", f.Name, "err", err)
				}
				wake()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}(f)
	}
}
