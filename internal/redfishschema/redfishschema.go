// Package redfishschema validates Redfish resources against the DMTF JSON
// schemas it embeds (schemas/, DMTF's BSD-3-Clause license beside them in
// schemas/LICENSE-DMTF.md). It is the project's single copy of those
// schemas: tests of every package that serves Redfish use it, and it never
// goes online.
//
// The validation itself is santhosh-tekuri/jsonschema; what is written by
// hand here is only the loader that maps schema URIs to the embedded files
// (the library has no notion of DMTF's URI layout) and the mapping from an
// @odata.type to its schema definition.
package redfishschema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schemas/*.json
var embedded embed.FS

const (
	// Base is the URI prefix of DMTF's Redfish schemas.
	Base = "http://redfish.dmtf.org/schemas/v1/"
	// swordfishBase is the URI prefix of SNIA's Swordfish schemas, which
	// DMTF's schemas reference but DMTF does not ship.
	swordfishBase = "http://redfish.dmtf.org/schemas/swordfish/v1/"
)

// ErrUnknownType is wrapped by the errors for an @odata.type that is
// malformed or has no schema here.
var ErrUnknownType = errors.New("no schema for @odata.type")

// Validator validates documents against the embedded schemas. Schemas are
// read and compiled on first use and cached. It is safe for concurrent use.
type Validator struct {
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	cache    map[string]*jsonschema.Schema
	loader   *loader
}

// New returns a Validator over the embedded schemas.
func New() (*Validator, error) {
	files, err := fs.Glob(embedded, "schemas/*.json")
	if err != nil {
		return nil, fmt.Errorf("redfishschema: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("redfishschema: no embedded schemas")
	}
	l := &loader{fsys: embedded, used: map[string]bool{}}
	c := jsonschema.NewCompiler()
	c.UseLoader(l)
	return &Validator{compiler: c, cache: map[string]*jsonschema.Schema{}, loader: l}, nil
}

// URI maps an @odata.type to the URI of its schema definition:
// "#Sensor.v1_12_0.Sensor" to
// http://redfish.dmtf.org/schemas/v1/Sensor.v1_12_0.json#/definitions/Sensor
// and the unversioned "#SensorCollection.SensorCollection" to
// .../SensorCollection.json#/definitions/SensorCollection.
func URI(odataType string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(odataType, "#"), ".")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "/#") {
			return "", fmt.Errorf("%w: bad @odata.type %q", ErrUnknownType, odataType)
		}
	}
	switch len(parts) {
	case 3:
		return Base + parts[0] + "." + parts[1] + ".json#/definitions/" + parts[2], nil
	case 2:
		return Base + parts[0] + ".json#/definitions/" + parts[1], nil
	}
	return "", fmt.Errorf("%w: bad @odata.type %q", ErrUnknownType, odataType)
}

// Check compiles the schema for odataType without validating anything; an
// error means the type has no usable schema.
func (v *Validator) Check(odataType string) error {
	_, err := v.schema(odataType)
	return err
}

// Validate validates doc against the schema definition of odataType
// (e.g. "#Sensor.v1_12_0.Sensor"). doc is either raw JSON ([]byte or
// json.RawMessage) or any value encoding/json marshals (a decoded
// map[string]any, a struct); it is re-read with json.Number, as the schema
// library wants. An @odata.type without a schema here is an error wrapping
// ErrUnknownType.
func (v *Validator) Validate(odataType string, doc any) error {
	s, err := v.schema(odataType)
	if err != nil {
		return err
	}
	var raw []byte
	switch d := doc.(type) {
	case []byte:
		raw = d
	case json.RawMessage:
		raw = d
	default:
		if raw, err = json.Marshal(doc); err != nil {
			return fmt.Errorf("redfishschema: encode %s document: %w", odataType, err)
		}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("redfishschema: bad JSON for %s: %w", odataType, err)
	}
	// Compiled schemas are immutable; validation needs no lock.
	return s.Validate(inst)
}

// Used lists the schema files loaded so far, sorted (to see which of the
// embedded files a test suite needs).
func (v *Validator) Used() []string {
	v.loader.mu.Lock()
	defer v.loader.mu.Unlock()
	out := make([]string, 0, len(v.loader.used))
	for n := range v.loader.used {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (v *Validator) schema(odataType string) (*jsonschema.Schema, error) {
	uri, err := URI(odataType)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[uri]; ok {
		return s, nil
	}
	// The library's load error does not unwrap to fs.ErrNotExist, so look
	// for the file first to tell a type without a schema from a broken one.
	file, _, _ := strings.Cut(strings.TrimPrefix(uri, Base), "#")
	if _, err := fs.Stat(v.loader.fsys, path.Join("schemas", file)); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrUnknownType, odataType, err)
	}
	s, err := v.compiler.Compile(uri)
	if err != nil {
		return nil, fmt.Errorf("redfishschema: schema %s for %s: %w", uri, odataType, err)
	}
	v.cache[uri] = s
	return s, nil
}

// loader resolves schema URIs to the embedded files; any other URI is an
// error, so validation never goes online.
type loader struct {
	fsys fs.FS

	mu    sync.Mutex
	used  map[string]bool
	sword map[string]map[string]any // Swordfish URI -> referenced definitions
}

// aliases maps schema file names as referenced to the file DMTF ships them
// in: odata-v4.json declares $id odata.v4_0_5.json.
var aliases = map[string]string{"odata.v4_0_5.json": "odata-v4.json"}

func (l *loader) Load(url string) (any, error) {
	if strings.HasPrefix(url, swordfishBase) {
		return l.swordfishStub(url)
	}
	name, ok := strings.CutPrefix(url, Base)
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("schema %s is not a DMTF schema URI", url)
	}
	if a, ok := aliases[name]; ok {
		name = a
	}
	f, err := l.fsys.Open(path.Join("schemas", name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l.mu.Lock()
	l.used[name] = true
	l.mu.Unlock()
	return jsonschema.UnmarshalJSON(f)
}

var swordfishRef = regexp.MustCompile(`"(http://redfish\.dmtf\.org/schemas/swordfish/v1/[A-Za-z0-9_.]+\.json)#/definitions/([A-Za-z0-9_]+)"`)

// swordfishStub stands in for a SNIA Swordfish schema: navigation
// properties to storage resources reference them, but they are not in
// DMTF's bundle. The stub defines every definition the embedded DMTF
// schemas reference in that file, each accepting anything. A resource
// whose own @odata.type is a Swordfish type still fails: it has no DMTF
// schema.
func (l *loader) swordfishStub(url string) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sword == nil {
		sword := map[string]map[string]any{}
		files, err := fs.Glob(l.fsys, "schemas/*.json")
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			b, err := fs.ReadFile(l.fsys, f)
			if err != nil {
				return nil, err
			}
			for _, m := range swordfishRef.FindAllSubmatch(b, -1) {
				u, def := string(m[1]), string(m[2])
				if sword[u] == nil {
					sword[u] = map[string]any{}
				}
				sword[u][def] = map[string]any{}
			}
		}
		l.sword = sword
	}
	defs, ok := l.sword[url]
	if !ok {
		return nil, fmt.Errorf("swordfish schema %s is referenced by no embedded schema", url)
	}
	// A fresh map each time: the compiler may keep what it is given.
	out := make(map[string]any, len(defs))
	for k := range defs {
		out[k] = map[string]any{}
	}
	return map[string]any{"$id": url, "definitions": out}, nil
}
