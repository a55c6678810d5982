// Command boardctl is the podos operator CLI. It talks to boardd's
// /podos/v1 JSON API over HTTPS.
//
//	boardctl [--url URL] [--user USER] [--password-file FILE] [--insecure | --ca-file FILE] COMMAND
//
//	boardctl workloads list
//	boardctl workloads get NAME
//	boardctl workloads apply -f spec.yaml
//	boardctl workloads logs NAME [-f] [--tail N]
//	boardctl workloads exec NAME -- CMD [ARG...]
//	boardctl workloads rm NAME
//	boardctl images push ARCHIVE.tar
//
// The environment supplies defaults: PODOS_URL, PODOS_USER,
// PODOS_PASSWORD_FILE. Errors are one line on stderr; the exit status is
// 1 for an error, 2 for bad usage, and exec's own exit code for exec.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
