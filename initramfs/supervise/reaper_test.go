package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestZombieChildOf(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, stat string) {
		os.MkdirAll(filepath.Join(proc, pid), 0o755)
		os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(stat), 0o644)
	}
	write("10", "10 (containerd-shim) Z 1 10 10 0 -1")
	write("11", "11 (we ird) name)) Z 42 11 11 0 -1")
	write("12", "12 (sleep) S 42 12 12 0 -1")
	write("13", "13 (x) Z 7 13 13 0 -1")
	write("14", "garbage")
	tests := []struct {
		pid, ppid int
		want      bool
	}{
		{10, 1, true}, {11, 42, true}, {12, 42, false}, {13, 42, false}, {14, 42, false}, {99, 42, false},
	}
	for _, tt := range tests {
		if got := zombieChildOf(proc, tt.pid, tt.ppid); got != tt.want {
			t.Errorf("zombieChildOf(%d, %d) = %v, want %v", tt.pid, tt.ppid, got, tt.want)
		}
	}
}

// An orphan re-parented to the subreaper is reaped; a supervised child
// that has exited keeps its exit status for os/exec.
func TestReaperReapsOrphansNotOwnedChildren(t *testing.T) {
	r, err := NewReaper(nil)
	if err != nil {
		t.Skipf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
	owned := exec.Command("sh", "-c", "exit 3")
	if err := r.start(owned); err != nil {
		t.Fatal(err)
	}
	// The shell exits at once; its background child re-parents to us.
	out, err := exec.Command("sh", "-c", "(sleep 0.2; exit 7) & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	var orphan int
	if _, err := fmt.Sscan(string(out), &orphan); err != nil {
		t.Fatalf("orphan pid %q: %v", out, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var reaped []int
	for !slices.Contains(reaped, orphan) {
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d never reaped (reaped %v)", orphan, reaped)
		}
		got := r.Reap()
		if slices.Contains(got, owned.Process.Pid) {
			t.Fatalf("reaped the owned child %d", owned.Process.Pid)
		}
		reaped = append(reaped, got...)
		time.Sleep(50 * time.Millisecond)
	}
	err = owned.Wait()
	r.done(owned.Process.Pid)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("owned child's status: %v, want exit status 3", err)
	}
}
