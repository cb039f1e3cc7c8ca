// Package storagetest runs a storage contract suite against every database
// a service supports: SQLite always, and PostgreSQL when
// BANKBRIDGE_TEST_POSTGRES_URL names a server to create test databases on.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// PostgresURLEnv names the environment variable holding the URL of a
// PostgreSQL server on which the tests may create and drop databases, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const PostgresURLEnv = "BANKBRIDGE_TEST_POSTGRES_URL"

// setupTimeout bounds creating and dropping a test database.
const setupTimeout = 30 * time.Second

// Each runs suite once per database, each as its own subtest ("sqlite",
// "postgres") with a fresh, empty database that is removed when the subtest
// ends: a SQLite file in a temporary directory, and a PostgreSQL database
// created for the run on the server at $BANKBRIDGE_TEST_POSTGRES_URL. With
// that variable unset the PostgreSQL run is skipped, and the test log says
// so rather than passing in silence.
func Each(t *testing.T, suite func(t *testing.T, db *storage.DB)) {
	t.Helper()
	t.Run(string(storage.SQLite), func(t *testing.T) {
		suite(t, OpenSQLite(t))
	})
	t.Run(string(storage.Postgres), func(t *testing.T) {
		admin := os.Getenv(PostgresURLEnv)
		if admin == "" {
			t.Skipf("storagetest: %s is not set, so this suite did NOT run against PostgreSQL; "+
				"set it (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run it", PostgresURLEnv)
		}
		suite(t, OpenPostgres(t, admin))
	})
}

// OpenSQLite opens a fresh SQLite database in a temporary directory, closed
// when the test ends.
func OpenSQLite(t testing.TB) *storage.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := storage.Open(ctx, storage.SQLiteURL(t.TempDir(), "test"))
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// OpenPostgres creates a database with a random name on the server at
// adminURL, opens it, and drops it when the test ends.
func OpenPostgres(t testing.TB, adminURL string) *storage.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := storage.Open(ctx, PostgresDatabase(t, adminURL))
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	// Registered after the drop, so it runs before it.
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// PostgresDatabase creates a database with a random name on the server at
// adminURL, drops it when the test ends, and returns its URL: for a test
// that hands a service its --database-url.
func PostgresDatabase(t testing.TB, adminURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin, err := storage.Open(ctx, adminURL)
	if err != nil {
		t.Fatalf("storagetest: %s: %v", PostgresURLEnv, err)
	}
	t.Cleanup(func() { _ = admin.Close() })

	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "bbtest_" + hex.EncodeToString(b[:])
	// The name is ours, made of [a-z0-9_]: safe to splice into DDL.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storagetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		// FORCE ends connections a failed test may have left open.
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storagetest: drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("storagetest: %s: not a URL", PostgresURLEnv)
	}
	u.Path = "/" + name
	return u.String()
}
