package main

import (
	"fmt"
	"io"
	"time"

	"podos.dev/podos/fabric/internal/sysfsfix"
)

func dump(w io.Writer) error {
	// Give the PCIe port services (pciehp, AER) a moment to settle.
	time.Sleep(500 * time.Millisecond)
	b, err := sysfsfix.Capture("/sys")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "=== BEGIN SYSFS ===\n%s=== END SYSFS ===\n", b)
	return nil
}
