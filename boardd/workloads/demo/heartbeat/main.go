// Command heartbeat is podos's demo workload: a tiny static program that
// prints a heartbeat line every second. Flags make it useful in tests:
// exit after a while with a code, or (for exec) print and exit at once.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	every := flag.Duration("every", time.Second, "heartbeat period")
	exitAfter := flag.Duration("exit-after", 0, "exit after this long (0: never)")
	code := flag.Int("code", 0, "exit code (with -exit-after or -echo)")
	echo := flag.String("echo", "", "print this to stdout and exit (exec)")
	echoErr := flag.String("echo-stderr", "", "print this to stderr (with -echo)")
	spin := flag.Bool("spin", false, "burn CPU between heartbeats")
	flag.Parse()

	if *echo != "" || *echoErr != "" {
		if *echo != "" {
			fmt.Println(*echo)
		}
		if *echoErr != "" {
			fmt.Fprintln(os.Stderr, *echoErr)
		}
		os.Exit(*code)
	}
	host, _ := os.Hostname()
	fmt.Printf("heartbeat: starting on %s (pid %d)\n", host, os.Getpid())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	var deadline <-chan time.Time
	if *exitAfter > 0 {
		deadline = time.After(*exitAfter)
	}
	n := 0
	for {
		if *spin {
			spinUntil(tick.C, sig, deadline)
		}
		select {
		case <-tick.C:
			n++
			fmt.Printf("heartbeat %d %s\n", n, time.Now().UTC().Format(time.RFC3339Nano))
		case s := <-sig:
			fmt.Printf("heartbeat: %s, exiting\n", s)
			os.Exit(0)
		case <-deadline:
			fmt.Fprintf(os.Stderr, "heartbeat: exiting with code %d\n", *code)
			os.Exit(*code)
		}
	}
}

// spinUntil burns CPU until one of the channels is ready (without
// consuming it), so CPU quota changes are visible.
func spinUntil(tick <-chan time.Time, sig chan os.Signal, deadline <-chan time.Time) {
	for len(tick) == 0 && len(sig) == 0 {
		for i := 0; i < 1e6; i++ {
		}
		if deadline != nil && len(deadline) > 0 {
			return
		}
	}
}
