package boarddcli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// ExecWorkloads replaces this process with WorkloadsBinary, found next to
// this executable or else on PATH, with the same arguments and
// environment. It returns only if that binary is missing or cannot run.
func ExecWorkloads(args []string) error {
	path, err := findWorkloads()
	if err != nil {
		return err
	}
	argv := append([]string{path}, args...)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("--workloads: exec %s: %w", path, err)
	}
	return nil // not reached
}

func findWorkloads() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), WorkloadsBinary)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(WorkloadsBinary)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("--workloads: no %s next to boardd or on PATH (an image without workloads)", WorkloadsBinary)
		}
		return "", fmt.Errorf("--workloads: %w", err)
	}
	return p, nil
}
