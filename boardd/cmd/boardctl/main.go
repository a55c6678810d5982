// Command boardctl is the podos operator CLI. (Placeholder until the daemon lands.)
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "boardctl: not built yet")
	os.Exit(2)
}
