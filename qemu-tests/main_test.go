// Package qemutests runs podos's boot scenarios on the emulated board
// (qemu-tests/board): QEMU under TCG with ipmi_sim as the BMC, booting
// the image `make image` built (out/<board>). The scenarios share one
// board and run in order; each leaves the board healthy for the next.
package qemutests

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"podos.dev/podos/internal/testtool"
	"podos.dev/podos/qemu-tests/board"
)

const boardName = "emulated-ruggedpod"

var shared struct {
	once sync.Once
	b    *board.Board
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.b != nil {
		shared.b.Stop()
	}
	if shared.dir != "" && code == 0 {
		os.RemoveAll(shared.dir)
	} else if shared.dir != "" {
		fmt.Fprintf(os.Stderr, "board run directory kept: %s\n", shared.dir)
	}
	os.Exit(code)
}

// sharedBoard returns the board all scenarios use, started on first use.
func sharedBoard(t *testing.T) *board.Board {
	t.Helper()
	for _, tool := range board.Tools {
		testtool.Require(t, tool)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	imageDir := filepath.Join(root, "out", boardName)
	if _, err := os.Stat(filepath.Join(imageDir, "manifest.json")); err != nil {
		testtool.Missing(t, "no board image in "+imageDir+" (make image)")
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "podos-board-")
		if shared.err != nil {
			return
		}
		shared.b, shared.err = board.Start(context.Background(), board.Options{
			ConfigPath: filepath.Join(root, "board-configs", boardName+".yaml"),
			ImageDir:   imageDir,
			Dir:        shared.dir,
			Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
	})
	if shared.err != nil {
		t.Fatalf("start board: %v", shared.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(shared.b.SerialLog())
			if len(data) > 6000 {
				data = data[len(data)-6000:]
			}
			t.Logf("serial console (tail):\n%s", data)
		}
	})
	return shared.b
}
