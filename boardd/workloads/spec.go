// Package workloads runs the board's container workloads and protects the
// board with them: a Manager reconciles the desired workloads (from the
// board config and API applies, persisted in the state dir) against a
// Runtime (containerd in production, see package ctrd), applies restart
// policies, keeps each workload's output in a bounded ring, and a
// Protector freezes, stops or throttles workloads by priority when the
// board's health matches the policy rules.
package workloads

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	boardconfig "podos.dev/podos/board-configs"
)

// Spec is one workload as the board config and the API describe it.
type Spec = boardconfig.Workload

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// Priorities, from the one shed first to the one never touched.
const (
	PrioritySheddable = "sheddable"
	PriorityNormal    = "normal"
	PriorityCritical  = "critical"
)

// Limits on a spec.
const (
	MaxNameLen = 63
	MaxArgs    = 256
	MaxEnv     = 256
	MaxCPU     = 1024.0  // cores
	MaxMemMB   = 1 << 20 // 1 TiB
	maxStrLen  = 4096
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FieldError says which field of a spec is wrong and why.
type FieldError struct {
	Field   string // JSON/YAML name, e.g. "memory_mb" or "env.FOO"
	Message string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %s: %s", e.Field, e.Message) }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, a...)}
}

// Normalize returns s with defaults filled in (restart always, priority
// normal) and validates it. The error is a *FieldError.
func Normalize(s Spec) (Spec, error) {
	if s.Restart == "" {
		s.Restart = RestartAlways
	}
	if s.Priority == "" {
		s.Priority = PriorityNormal
	}
	return s, Validate(s)
}

// Validate checks a spec (after Normalize's defaults). The error is a
// *FieldError naming the first wrong field.
func Validate(s Spec) error {
	switch {
	case s.Name == "":
		return fieldErr("name", "is required")
	case len(s.Name) > MaxNameLen:
		return fieldErr("name", "is longer than %d characters", MaxNameLen)
	case !nameRE.MatchString(s.Name):
		return fieldErr("name", "%q must be lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name)
	}
	if s.Image == "" {
		return fieldErr("image", "is required")
	}
	if len(s.Image) > maxStrLen || strings.ContainsAny(s.Image, " \t\n\x00") {
		return fieldErr("image", "%q is not an image reference or oci-archive:/path", s.Image)
	}
	if p, ok := strings.CutPrefix(s.Image, ArchivePrefix); ok && !strings.HasPrefix(p, "/") {
		return fieldErr("image", "archive path %q must be absolute", p)
	}
	if len(s.Args) > MaxArgs {
		return fieldErr("args", "has more than %d entries", MaxArgs)
	}
	for i, a := range s.Args {
		if len(a) > maxStrLen || strings.ContainsRune(a, 0) {
			return fieldErr(fmt.Sprintf("args[%d]", i), "is too long or contains a NUL byte")
		}
	}
	if len(s.Env) > MaxEnv {
		return fieldErr("env", "has more than %d entries", MaxEnv)
	}
	for k, v := range s.Env {
		if !envKeyRE.MatchString(k) {
			return fieldErr("env."+k, "is not a valid variable name")
		}
		if len(v) > maxStrLen || strings.ContainsRune(v, 0) {
			return fieldErr("env."+k, "value is too long or contains a NUL byte")
		}
	}
	if math.IsNaN(s.CPU) || s.CPU < 0 || s.CPU > MaxCPU {
		return fieldErr("cpu", "must be between 0 (unlimited) and %g cores", MaxCPU)
	}
	if s.CPU > 0 && s.CPU < 0.01 {
		return fieldErr("cpu", "must be at least 0.01 cores when set")
	}
	if s.MemoryMB < 0 || s.MemoryMB > MaxMemMB {
		return fieldErr("memory_mb", "must be between 0 (unlimited) and %d", MaxMemMB)
	}
	if s.MemoryMB > 0 && s.MemoryMB < 4 {
		return fieldErr("memory_mb", "must be at least 4 when set")
	}
	switch s.Restart {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		return fieldErr("restart", "%q must be always, on-failure or never", s.Restart)
	}
	switch s.Priority {
	case PriorityCritical, PriorityNormal, PrioritySheddable:
	default:
		return fieldErr("priority", "%q must be critical, normal or sheddable", s.Priority)
	}
	return nil
}

// Hash is a stable digest of what the container is made from: a change
// means the container must be recreated.
func Hash(s Spec) string {
	env := make([]string, 0, len(s.Env))
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	b, _ := json.Marshal(struct {
		Image    string
		Args     []string
		Env      []string
		CPU      float64
		MemoryMB int
	}{s.Image, s.Args, env, s.CPU, s.MemoryMB})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// ArchivePrefix marks an image given as an OCI archive on the board.
const ArchivePrefix = "oci-archive:"
