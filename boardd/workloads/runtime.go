package workloads

import (
	"context"
	"errors"
	"io"
	"time"
)

// Runtime runs containers: the edge between the Manager and containerd
// (package ctrd). Every id is a workload name. Methods return an error
// wrapping ErrNotFound when the container or task does not exist, and
// ErrUnavailable when the runtime itself cannot be reached (the Manager
// then retries without counting a workload failure).
type Runtime interface {
	// EnsureImage makes ref runnable (importing an oci-archive:/path or
	// pulling a registry reference when it is not present) and returns
	// the local image name.
	EnsureImage(ctx context.Context, ref string) (string, error)
	// ImportArchive imports an OCI image archive and returns the names
	// of the images it holds.
	ImportArchive(ctx context.Context, r io.Reader) ([]string, error)
	// Start creates the container id from spec, replacing any leftover
	// container of that id, and starts its task with stdout and stderr
	// copied to out.
	Start(ctx context.Context, id string, spec TaskSpec, out Output) error
	// Attach reconnects out to the output of an existing task (after a
	// boardd restart).
	Attach(ctx context.Context, id string, out Output) error
	// Status reports the container's task.
	Status(ctx context.Context, id string) (Status, error)
	// Wait returns a channel that receives the task's exit (or an Exit
	// with Err set when the runtime connection is lost).
	Wait(ctx context.Context, id string) (<-chan Exit, error)
	// Pause freezes the task (cgroup freezer); Resume thaws it.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// SetCPU sets the task's CPU quota in cores (0: unlimited).
	SetCPU(ctx context.Context, id string, cores float64) error
	// Stop ends the task (SIGTERM, SIGKILL after grace) and deletes it;
	// the container stays.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes the task, the container and its snapshot.
	Remove(ctx context.Context, id string) error
	// Exec runs cmd in the running task and returns its exit code.
	Exec(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error)
	// List returns the ids of every container the runtime holds for us.
	List(ctx context.Context) ([]string, error)
}

// TaskSpec is what a container is created from.
type TaskSpec struct {
	Image    string // local image name from EnsureImage
	Args     []string
	Env      map[string]string
	CPU      float64 // cores, 0 unlimited
	MemoryMB int
	Hash     string // stored with the container; see Hash
}

// Output receives a task's stdout and stderr.
type Output struct {
	Stdout io.Writer
	Stderr io.Writer
}

// TaskState is a task's state as the runtime reports it.
type TaskState string

// Task states.
const (
	TaskAbsent  TaskState = "absent"  // no container, or a container with no task
	TaskCreated TaskState = "created" // created, not started
	TaskRunning TaskState = "running"
	TaskPaused  TaskState = "paused"
	TaskStopped TaskState = "stopped" // exited; ExitCode is set
)

// Status is a container's task.
type Status struct {
	State     TaskState
	Container bool // the container exists
	Hash      string
	ExitCode  int
	ExitedAt  time.Time
	Pid       uint32
}

// Exit is a task's end.
type Exit struct {
	Code int
	At   time.Time
	Err  error // the wait broke (runtime unavailable); Code is meaningless
}

// Runtime errors.
var (
	ErrNotFound    = errors.New("not found")
	ErrUnavailable = errors.New("runtime unavailable")
)
