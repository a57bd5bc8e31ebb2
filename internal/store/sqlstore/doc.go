// Package sqlstore implements store.Store over database/sql, once for
// both SQLite and PostgreSQL. The differences between the two (column
// types, placeholders, how a job is claimed, how concurrent matchers are
// serialised) are confined to a Dialect supplied by store/sqlite and
// store/postgres.
package sqlstore
