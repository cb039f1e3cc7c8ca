// Command ghz-bench is `make bench-ratio`'s gRPC load generator: ghz's
// runner (github.com/bojand/ghz, pinned in this module's go.mod) with one
// thing the ghz command lacks, a bearer token per user. --users names a
// file of "<user>\t<token>\t<request JSON>" lines; call n sends the
// request and token of line n mod len(lines), so the load is spread over
// every user, each authenticated as itself. Without --users every call
// sends {} and no token (the echo baseline's health check).
//
// It prints one JSON object: calls, req/s, p50 and p99 in milliseconds, and
// the errors by status. This module is the tools' own, like tools/ and
// deploy/vault: ghz's dependencies never enter a product module.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bojand/ghz/runner"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Result is what ghz-bench prints.
type Result struct {
	Calls  uint64         `json:"calls"`
	RPS    float64        `json:"rps"`
	P50ms  float64        `json:"p50_ms"`
	P99ms  float64        `json:"p99_ms"`
	Errors int            `json:"errors"`
	ByCode map[string]int `json:"by_code"`
}

type user struct{ token, request string }

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ghz-bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ghz-bench", flag.ContinueOnError)
	var (
		call        = fs.String("call", "grpc.health.v1.Health/Check", "fully qualified method")
		host        = fs.String("host", "", "host:port to load")
		caCert      = fs.String("cacert", "", "PEM CA the server's certificate chains to (TLS); empty: plaintext")
		protoset    = fs.String("protoset", "", "compiled descriptor set holding the method; empty: the gRPC health service's")
		usersFile   = fs.String("users", "", "file of <user>\\t<token>\\t<request JSON> lines, sent round-robin")
		purpose     = fs.String("purpose", "", "bankbridge-purpose metadata sent with every call that has a token")
		concurrency = fs.Uint("concurrency", 50, "concurrent calls")
		connections = fs.Uint("connections", 4, "gRPC connections they share")
		duration    = fs.Duration("duration", 15*time.Second, "how long to load")
		rps         = fs.Uint("rps", 0, "calls per second; 0: as many as the server answers")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *host == "" {
		return errors.New("--host is required")
	}
	opts := []runner.Option{
		runner.WithConcurrency(*concurrency), runner.WithConnections(*connections),
		runner.WithRunDuration(*duration), runner.WithRPS(*rps),
		// Calls in flight when the time is up finish and count: closing
		// their connections would count them as UNAVAILABLE.
		runner.WithDurationStopAction("wait"),
		runner.WithTimeout(20 * time.Second), runner.WithCountErrors(true),
	}
	if *caCert != "" {
		opts = append(opts, runner.WithRootCertificate(*caCert))
	} else {
		opts = append(opts, runner.WithInsecure(true))
	}
	if *protoset != "" {
		opts = append(opts, runner.WithProtoset(*protoset))
	} else {
		set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
			protodesc.ToFileDescriptorProto(grpc_health_v1.File_grpc_health_v1_health_proto)}}
		b, err := proto.Marshal(set)
		if err != nil {
			return err
		}
		opts = append(opts, runner.WithProtosetBinary(b))
	}
	if *usersFile == "" {
		opts = append(opts, runner.WithDataFromJSON("{}"))
	} else {
		users, err := readUsers(*usersFile)
		if err != nil {
			return err
		}
		requests := make([]json.RawMessage, len(users))
		mds := make([]metadata.MD, len(users))
		for i, u := range users {
			requests[i] = json.RawMessage(u.request)
			mds[i] = metadata.Pairs("authorization", "Bearer "+u.token, "bankbridge-purpose", *purpose)
		}
		data, err := json.Marshal(requests)
		if err != nil {
			return err
		}
		// ghz sends element n mod len of an array of requests as call n's;
		// the token follows the same n, so each call is its user's.
		opts = append(opts, runner.WithDataFromJSON(string(data)),
			runner.WithMetadataProvider(func(cd *runner.CallData) (*metadata.MD, error) {
				md := mds[cd.RequestNumber%int64(len(mds))]
				return &md, nil
			}))
	}
	report, err := runner.Run(*call, *host, opts...)
	if err != nil {
		return err
	}
	res := Result{Calls: report.Count, RPS: report.Rps, ByCode: map[string]int{}}
	for _, l := range report.LatencyDistribution {
		switch l.Percentage {
		case 50:
			res.P50ms = ms(l.Latency)
		case 99:
			res.P99ms = ms(l.Latency)
		}
	}
	for code, n := range report.StatusCodeDist {
		if code != "OK" {
			res.Errors += n
			res.ByCode[code] = n
		}
	}
	return json.NewEncoder(stdout).Encode(res)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func readUsers(path string) ([]user, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []user
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s:%d: want <user>\\t<token>\\t<request JSON>", path, len(users)+1)
		}
		users = append(users, user{token: parts[1], request: parts[2]})
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users", path)
	}
	return users, sc.Err()
}
