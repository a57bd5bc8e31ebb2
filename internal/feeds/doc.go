// Package feeds syncs advisory feeds into the store, incrementally: a
// Git repository of OSV records is fetched and only the files changed
// since the last synced commit are read; an HTTP export is downloaded
// only when its ETag or Last-Modified changed; a local directory or file
// is read whole, and only records whose content changed are written.
// Every sync ends with a re-evaluation of the package names the changed
// records touch. A feed that fails keeps its last good data and records
// the failure.
package feeds
