// Command boardd is the podos board daemon. (Placeholder until the daemon lands.)
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "boardd: not built yet")
	os.Exit(2)
}
