// Package kmod reads a kernel's modules.dep and orders modules for loading:
// every module after the modules it depends on. The image builder uses it
// to pick the .ko files a board needs, and the board's early init uses it
// to load them with finit_module.
//
// Written by hand rather than with u-root's pkg/kmodule: kmodule resolves
// and loads in one step (and loads independent dependencies in parallel),
// while the builder needs the resolved set without loading anything and
// init wants a fixed, logged order.
package kmod

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Dep is one modules.dep line: a module file and the files it needs.
type Dep struct {
	Path string   // relative to /lib/modules/<release>, e.g. kernel/fs/ext4/ext4.ko
	Deps []string // paths, as modules.dep lists them
}

// Index maps a module name (dashes folded to underscores) to its entry.
type Index map[string]Dep

// maxLine bounds one modules.dep line (real ones are well under 4 KiB).
const maxLine = 1 << 16

// Name returns the module name of a module file path: its base name
// without .ko and compression suffixes, with '-' folded to '_' as the
// kernel does.
func Name(p string) string {
	b := path.Base(p)
	for _, suf := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, suf)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// Parse reads modules.dep. Blank lines and '#' comments are skipped; any
// other line without "path.ko:" is an error naming the line.
func Parse(r io.Reader) (Index, error) {
	idx := Index{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, deps, ok := strings.Cut(line, ":")
		file = strings.TrimSpace(file)
		if !ok || file == "" || strings.ContainsAny(file, " \t") || !isModuleFile(file) {
			return nil, fmt.Errorf("modules.dep line %d: want \"path.ko: deps...\", got %q", n, truncate(line))
		}
		d := Dep{Path: file}
		for _, f := range strings.Fields(deps) {
			if !isModuleFile(f) {
				return nil, fmt.Errorf("modules.dep line %d: dependency %q is not a module file", n, truncate(f))
			}
			d.Deps = append(d.Deps, f)
		}
		idx[Name(file)] = d
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return idx, nil
}

func isModuleFile(p string) bool {
	for _, suf := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(p, suf) && len(p) > len(suf) {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Order returns the module files to load for the named modules, each
// after its dependencies and each once, keeping the requested order
// otherwise. Built-in modules are not in modules.dep: a name found in
// builtin (module names, e.g. from modules.builtin) is skipped; any other
// unknown name is an error.
func (idx Index) Order(names []string, builtin map[string]bool) ([]string, error) {
	var out []string
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		if done[name] {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("dependency cycle: %s -> %s", strings.Join(chain, " -> "), name)
		}
		d, ok := idx[name]
		if !ok {
			if builtin[name] {
				done[name] = true
				return nil
			}
			if len(chain) > 0 {
				return fmt.Errorf("module %s (needed by %s) is not in modules.dep", name, chain[len(chain)-1])
			}
			return fmt.Errorf("module %s is not in modules.dep (nor built in)", name)
		}
		visiting[name] = true
		// modules.dep lists the deepest dependency last; load from the end
		// so that each dependency's own dependencies come first.
		deps := append([]string(nil), d.Deps...)
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(Name(deps[i]), append(chain, name)); err != nil {
				return err
			}
		}
		visiting[name] = false
		done[name] = true
		out = append(out, d.Path)
		return nil
	}
	for _, n := range names {
		n = strings.ReplaceAll(strings.TrimSpace(n), "-", "_")
		if n == "" {
			continue
		}
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Subset returns modules.dep text for the given module files only (with
// their dependencies, which Order already included), sorted, so a trimmed
// image carries a consistent modules.dep.
func (idx Index) Subset(files []string) string {
	keep := map[string]bool{}
	for _, f := range files {
		keep[f] = true
	}
	var lines []string
	for _, d := range idx {
		if !keep[d.Path] {
			continue
		}
		l := d.Path + ":"
		if len(d.Deps) > 0 {
			l += " " + strings.Join(d.Deps, " ")
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// ParseBuiltin reads modules.builtin (one module path a line) into a set
// of module names.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[Name(line)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.builtin: %w", err)
	}
	return set, nil
}
