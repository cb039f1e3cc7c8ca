package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

// TestMatrix is `make faults`: it starts the stack behind the proxies,
// runs the rows BANKBRIDGE_FAULTS names ("all", "quick", or a list), prints
// the table and fails when a row does. Without BANKBRIDGE_FAULTS it is
// skipped: a go test ./... does not start a fault run.
//
// FAULTS_POSTGRES_URL runs every service with storage on that PostgreSQL
// server (fresh databases, dropped after); FAULTS_USERS sets the number of
// load users (default 1,000); the stack's output goes to FAULTS_LOG
// (default bankbridge-faults.log in the temporary directory).
func TestMatrix(t *testing.T) {
	spec, ok := os.LookupEnv("BANKBRIDGE_FAULTS")
	if !ok {
		t.Skip("the fault matrix runs with make faults (BANKBRIDGE_FAULTS)")
	}
	rows, err := Select(Rows(), spec)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	root, err := stack.FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	users := 1000
	if v := os.Getenv("FAULTS_USERS"); v != "" {
		if users, err = strconv.Atoi(v); err != nil || users < watchedUsers {
			t.Fatalf("FAULTS_USERS=%q: want a number ≥ %d", v, watchedUsers)
		}
	}
	logPath := os.Getenv("FAULTS_LOG")
	if logPath == "" {
		logPath = filepath.Join(os.TempDir(), "bankbridge-faults.log")
	}
	logs, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()

	start := time.Now()
	h, err := Start(ctx, Config{Root: root, Users: users, PostgresURL: os.Getenv("FAULTS_POSTGRES_URL"), Logs: logs})
	if err != nil {
		t.Fatalf("start the stack (its output: %s): %v", logPath, err)
	}
	defer h.Close()
	storage := "SQLite"
	if len(h.dbs) > 0 {
		storage = "PostgreSQL"
	}
	fmt.Printf("stack up with %d linked users on %s in %s; its output: %s\n", len(h.Users), storage, time.Since(start).Round(time.Second), logPath)

	m := &Matrix{H: h, PGCluster: localCluster()}
	passed := m.Run(ctx, rows, os.Stdout)
	fmt.Printf("\nFault matrix, %s, %d users, services on %s:\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), len(h.Users), storage)
	m.Table(os.Stdout)
	if !passed {
		t.Error("a row of the fault matrix failed or was not done; see the table")
	}
}

// localCluster is the local PostgreSQL cluster pg_ctlcluster restarts:
// FAULTS_PG_CLUSTER ("15 main"), else the one cluster under
// /etc/postgresql; nil when there is none.
func localCluster() []string {
	if v := os.Getenv("FAULTS_PG_CLUSTER"); v != "" {
		var version, name string
		if _, err := fmt.Sscan(v, &version, &name); err == nil {
			return []string{version, name}
		}
	}
	versions, _ := os.ReadDir("/etc/postgresql")
	for _, v := range versions {
		if _, err := os.Stat(filepath.Join("/etc/postgresql", v.Name(), "main")); err == nil {
			return []string{v.Name(), "main"}
		}
	}
	return nil
}
