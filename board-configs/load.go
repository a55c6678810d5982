package boardconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// APIVersion is the only apiVersion this package reads.
const APIVersion = "podos.dev/v1"

// Defaults applied by Load, Parse and Default.
const (
	DefaultPollInterval = time.Second
	DefaultDebounce     = 1
	DefaultBMCTimeout   = time.Second
	DefaultBMCRetries   = 3
	DefaultHold         = 30 * time.Second
	DefaultFabricID     = "pcie"
	DefaultInterface    = "eth0"
	DefaultNetworkMode  = "dhcp"
	DefaultPriority     = "normal"
	DefaultRestart      = "always"
)

// MaxSize is the largest config file Load and Parse accept.
const MaxSize = 1 << 20

// Load reads, parses, defaults and validates the board config at path.
// Errors name the file's base name, line and field: see Parse.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("board config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("board config %s: %w", path, err)
	}
	return Parse(filepath.Base(path), data)
}

// Parse parses, defaults and validates one board config. name is used in
// errors only. A config with problems returns a nil *Config and an Errors
// listing every problem found, one per line, each as
// "name:line: field.path: reason".
func Parse(name string, data []byte) (*Config, error) {
	el := &errorList{file: name, lines: map[string]int{}}
	if len(data) > MaxSize {
		el.addAt(0, "", "file is larger than %d bytes", MaxSize)
		return nil, el.err()
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			el.addAt(0, "", "empty config")
		} else {
			el.addAt(yamlErrLine(err), "", "%s", yamlErrMsg(err))
		}
		return nil, el.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		el.addAt(extra.Line, "", "more than one YAML document")
		return nil, el.err()
	} else if !errors.Is(err, io.EOF) {
		el.addAt(yamlErrLine(err), "", "%s", yamlErrMsg(err))
		return nil, el.err()
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	c := new(Config)
	d := &decoder{el: el}
	d.decode(root, reflect.ValueOf(c).Elem(), "", 0)
	if len(el.errs) > 0 {
		// Type errors first: validating half-decoded fields would only
		// repeat them.
		return nil, el.err()
	}
	c.applyDefaults()
	c.validate(el)
	if err := el.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlErrLine digs the line out of a yaml.v3 syntax error ("yaml: line 3: ...").
func yamlErrLine(err error) int {
	var line int
	if _, e := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); e == nil {
		return line
	}
	return 0
}

// yamlErrMsg is a yaml.v3 error without its "yaml: line N: " prefix.
func yamlErrMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	return msg
}

// Default is the config boardd runs with when it is given none: board
// "board", every sensor the BMC's SDR lists judged by the BMC's own
// thresholds, no policy rules, no fabric expectations, no workloads.
func Default() *Config {
	c := &Config{APIVersion: APIVersion, Board: Board{ID: "board", Model: "unknown"}}
	c.applyDefaults()
	return c
}

// applyDefaults fills every unset field that has a default.
func (c *Config) applyDefaults() {
	if c.BMC.Timeout.Duration == 0 {
		c.BMC.Timeout = D(DefaultBMCTimeout)
	}
	if c.BMC.Retries == 0 {
		c.BMC.Retries = DefaultBMCRetries
	}
	if c.Poll.Interval.Duration == 0 {
		c.Poll.Interval = D(DefaultPollInterval)
	}
	if c.Poll.Debounce == 0 {
		c.Poll.Debounce = DefaultDebounce
	}
	if c.Sensors == nil {
		c.Sensors = []Sensor{} // "sensors": [] in JSON, never null
	}
	for i := range c.Sensors {
		if c.Sensors[i].Required == nil {
			t := true
			c.Sensors[i].Required = &t
		}
	}
	if c.Policy.Hold.Duration == 0 {
		c.Policy.Hold = D(DefaultHold)
	}
	if c.Fabric != nil && c.Fabric.ID == "" {
		c.Fabric.ID = DefaultFabricID
	}
	for i := range c.Workloads {
		w := &c.Workloads[i]
		if w.Priority == "" {
			w.Priority = DefaultPriority
		}
		if w.Restart == "" {
			w.Restart = DefaultRestart
		}
	}
	if c.Boot.Network.Interface == "" {
		c.Boot.Network.Interface = DefaultInterface
	}
	if c.Boot.Network.Mode == "" {
		c.Boot.Network.Mode = DefaultNetworkMode
	}
}

// IsRequired tells whether a missing sensor is Critical (default true).
func (s *Sensor) IsRequired() bool { return s.Required == nil || *s.Required }

// SensorDebounce is the number of consecutive samples the sensor needs
// before its state changes: its own debounce, else poll.debounce, else 1.
func (c *Config) SensorDebounce(s *Sensor) int {
	switch {
	case s != nil && s.Debounce > 0:
		return s.Debounce
	case c != nil && c.Poll.Debounce > 0:
		return c.Poll.Debounce
	}
	return DefaultDebounce
}

// Sensor finds the configured sensor with the given BMC name, or nil.
func (c *Config) Sensor(name string) *Sensor {
	if c == nil {
		return nil
	}
	for i := range c.Sensors {
		if c.Sensors[i].Name == name {
			return &c.Sensors[i]
		}
	}
	return nil
}
