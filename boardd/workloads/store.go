package workloads

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// persisted is the desired state the API changed, kept in the state dir
// so applies and removals survive boardd restarts. The board config's
// workloads are the base; Applied overrides or adds, Removed takes a
// config workload away.
type persisted struct {
	Version int               `json:"version"`
	Applied []Spec            `json:"applied"`
	Removed []string          `json:"removed,omitempty"`
	Images  map[string]string `json:"images,omitempty"` // uploaded image name -> archive path
}

const stateFile = "workloads.json"

// errCorruptState marks a state file that does not parse.
var errCorruptState = errors.New("workloads: corrupt state file")

func loadState(dir string) (persisted, error) {
	var p persisted
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return persisted{Version: 1}, nil
	}
	if err != nil {
		return p, fmt.Errorf("workloads: read state: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w %s: %v", errCorruptState, filepath.Join(dir, stateFile), err)
	}
	return p, nil
}

// saveState writes the state atomically (temp file, fsync, rename) so a
// power cut leaves either the old or the new file.
func saveState(dir string, p persisted) error {
	p.Version = 1
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("workloads: encode state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("workloads: state dir: %w", err)
	}
	f, err := os.CreateTemp(dir, stateFile+".*")
	if err != nil {
		return fmt.Errorf("workloads: write state: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("workloads: write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("workloads: sync state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("workloads: write state: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("workloads: write state: %w", err)
	}
	return nil
}
