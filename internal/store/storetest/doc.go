// Package storetest is the suite every store.Store implementation must
// pass. Run calls each check against a fresh store from the factory,
// so that the SQLite and PostgreSQL backends are held to the same
// behaviour.
package storetest
