package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/socle-dev/socle/internal/store"
)

const buildColumns = `id, name, repository, digest, tag, tags, parent, parent_digest, inputs, packages, reasons, status, error, started_at, finished_at, by_whom`

func (s *DB) RecordBuild(ctx context.Context, b store.Build) (int64, error) {
	tags, _ := json.Marshal(nonNil(b.Tags))
	reasons, _ := json.Marshal(nonNil(b.Reasons))
	pkgs, _ := json.Marshal(b.Packages)
	var id int64
	err := s.queryRow(ctx, s.db, `INSERT INTO builds (name, repository, digest, tag, tags, parent, parent_digest, inputs, packages, reasons,
status, error, started_at, finished_at, by_whom) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		b.Name, b.Repository, b.Digest, b.Tag, string(tags), b.Parent, b.ParentDigest, b.Inputs, string(pkgs), string(reasons),
		b.Status, b.Error, ts(b.StartedAt), ts(b.FinishedAt), b.By).Scan(&id)
	return id, err
}

func (s *DB) LastBuild(ctx context.Context, name string) (store.Build, error) {
	row := s.queryRow(ctx, s.db, `SELECT `+buildColumns+` FROM builds WHERE name = ? AND status = ? ORDER BY id DESC LIMIT 1`,
		name, store.BuildSucceeded)
	b, err := scanBuild(row)
	if err != nil {
		return b, notFound(err, "build of "+name)
	}
	return b, nil
}

func (s *DB) BuildHistory(ctx context.Context, name string, limit int) ([]store.Build, error) {
	limit = pageLimit(limit, 100)
	q, args := `SELECT `+buildColumns+` FROM builds`, []any{}
	if name != "" {
		q, args = q+` WHERE name = ?`, append(args, name)
	}
	rows, err := s.query(ctx, s.db, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Build
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func scanBuild(row interface{ Scan(...any) error }) (store.Build, error) {
	var b store.Build
	var tags, pkgs, reasons string
	var started, finished int64
	if err := row.Scan(&b.ID, &b.Name, &b.Repository, &b.Digest, &b.Tag, &tags, &b.Parent, &b.ParentDigest, &b.Inputs,
		&pkgs, &reasons, &b.Status, &b.Error, &started, &finished, &b.By); err != nil {
		return b, err
	}
	b.StartedAt, b.FinishedAt = fromTS(started), fromTS(finished)
	_ = json.Unmarshal([]byte(tags), &b.Tags)
	_ = json.Unmarshal([]byte(reasons), &b.Reasons)
	_ = json.Unmarshal([]byte(pkgs), &b.Packages)
	return b, nil
}
