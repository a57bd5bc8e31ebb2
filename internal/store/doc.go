// Package store defines the contract between socle and its database.
//
// Store is implemented twice, by store/sqlite (modernc.org/sqlite, the
// default, in the data directory) and by store/postgres (pgx), over one
// SQL implementation in store/sqlstore. store/storetest is the suite both
// must pass. Each method documents what every implementation must do;
// in particular, every method that writes is atomic: it commits all of
// its effect or none of it.
package store
