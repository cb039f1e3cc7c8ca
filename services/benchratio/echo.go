package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bankbridge/bankbridge/services/devstack/stack"
)

// echoProc is the running echo baseline (benchecho).
type echoProc struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	// caFile is its self-signed certificate, which the load generators
	// trust.
	caFile string
}

// startEcho starts benchecho on free ports and waits until both listen.
func startEcho(ctx context.Context, bin, dir string) (*echoProc, error) {
	e := &echoProc{caFile: filepath.Join(dir, "echo-ca.pem")}
	var err error
	if e.grpcAddr, err = stack.FreeAddr(); err != nil {
		return nil, err
	}
	if e.httpAddr, err = stack.FreeAddr(); err != nil {
		return nil, err
	}
	e.cmd = exec.Command(bin, "--grpc-addr="+e.grpcAddr, "--http-addr="+e.httpAddr, "--ca-out="+e.caFile)
	e.cmd.Stdout, e.cmd.Stderr = os.Stderr, os.Stderr
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{e.grpcAddr, e.httpAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				e.stop()
				return nil, fmt.Errorf("benchecho does not listen on %s: %w", addr, errors.Join(err, ctx.Err()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return e, nil
}

func (e *echoProc) stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-done
	}
}
