package boardconfig

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder fills a value from a yaml.Node tree, field by field, so that
// every problem can name its line and field path. yaml.v3's own decoder
// reports lines but not paths, and stops at the first type error; walking
// the node tree by hand (over the struct's yaml tags) gives one error per
// problem and the path → line map that validation uses.
type decoder struct {
	el *errorList
}

var durationType = reflect.TypeFor[Duration]()

// maxAliasExpansion bounds alias expansion (billion-laughs configs).
const maxAliasExpansion = 10000

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if depth > 64 {
		d.el.addAt(n.Line, path, "nesting too deep")
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.el.addAt(n.Line, path, "unknown alias")
			return
		}
		n = n.Alias
	}
	d.el.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: keep the zero value (nil pointer, empty slice)
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		dur, err := parseDuration(n)
		if err != nil {
			d.el.addAt(n.Line, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(Duration{dur}))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path, depth)
	case reflect.Map:
		d.decodeMap(n, v, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.el.addAt(n.Line, path, "must be a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
		v.Set(s)
	default:
		d.decodeScalar(n, v, path)
	}
}

// pairs returns a mapping's key/value pairs with YAML merge keys ("<<")
// expanded: merged pairs first, so the mapping's own keys override them.
func (d *decoder) pairs(n *yaml.Node, path string, budget *int) [][2]*yaml.Node {
	var merged, own [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			srcs := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				srcs = val.Content
			}
			for _, src := range srcs {
				if src.Kind == yaml.AliasNode && src.Alias != nil {
					src = src.Alias
				}
				if src.Kind != yaml.MappingNode {
					d.el.addAt(k.Line, path, "merge key << must refer to a mapping")
					continue
				}
				*budget -= len(src.Content)
				if *budget < 0 {
					d.el.addAt(k.Line, path, "too many aliases expanded")
					return nil
				}
				merged = append(merged, d.pairs(src, path, budget)...)
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, val})
	}
	// Keys merged from several sources: the first source wins (YAML merge
	// rules), and own keys win over all merged ones.
	return append(merged, own...)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.el.addAt(n.Line, path, "must be a mapping, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fields[tag] = i
	}
	budget := maxAliasExpansion
	seen := map[string]keySeen{}
	for _, kv := range d.pairs(n, path, &budget) {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			d.el.addAt(k.Line, path, "keys must be strings")
			continue
		}
		fp := join(path, k.Value)
		i, ok := fields[k.Value]
		if !ok {
			d.el.addAt(k.Line, fp, "unknown field %q", k.Value)
			continue
		}
		if !d.firstKey(n, k, fp, seen) {
			continue
		}
		fv := v.Field(i)
		fv.Set(reflect.Zero(fv.Type())) // an overriding key replaces a merged value
		d.decode(val, fv, fp, depth+1)
		d.el.lines[fp] = k.Line
	}
}

// firstKey tells whether key k of mapping n is to be decoded: a key
// written twice in n itself is an error; of keys merged from several
// sources the first wins; a key of n overrides merged ones. seen maps each
// key to the line it was first decoded from and whether it was n's own.
func (d *decoder) firstKey(n, k *yaml.Node, path string, seen map[string]keySeen) bool {
	own := !isMerged(n, k)
	prev, dup := seen[k.Value]
	switch {
	case !dup:
	case own && prev.own:
		d.el.addAt(k.Line, path, "duplicate key (first at line %d)", prev.line)
		return false
	case !own:
		return false
	}
	seen[k.Value] = keySeen{k.Line, own}
	return true
}

type keySeen struct {
	line int
	own  bool
}

// isMerged tells whether key k came from a merge rather than from n itself
// (a key that n overrides is not a duplicate).
func isMerged(n *yaml.Node, k *yaml.Node) bool {
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i] == k {
			return false
		}
	}
	return true
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.el.addAt(n.Line, path, "must be a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	budget := maxAliasExpansion
	seen := map[string]keySeen{}
	for _, kv := range d.pairs(n, path, &budget) {
		k, val := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			d.el.addAt(k.Line, path, "keys must be strings, got %s", describe(k))
			continue
		}
		fp := join(path, k.Value)
		if !d.firstKey(n, k, fp, seen) {
			continue
		}
		ev := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, ev, fp, depth+1)
		d.el.lines[fp] = k.Line
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.el.addAt(n.Line, path, "must be a %s, got %s", kindName(v.Kind()), describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" {
			d.el.addAt(n.Line, path, "must be a string, got %s (quote it)", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.el.addAt(n.Line, path, "must be true or false, got %s", describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.el.addAt(n.Line, path, "must be true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := d.integer(n, path)
		if !ok {
			return
		}
		if v.OverflowInt(i) {
			d.el.addAt(n.Line, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := d.integer(n, path)
		if !ok {
			return
		}
		if i < 0 || v.OverflowUint(uint64(i)) {
			max := uint64(1)<<(8*v.Type().Size()) - 1
			d.el.addAt(n.Line, path, "%d is out of range 0..%d", i, max)
			return
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			d.el.addAt(n.Line, path, "must be a number, got %s", describe(n))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.el.addAt(n.Line, path, "must be a finite number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.el.addAt(n.Line, path, "unsupported field type %s", v.Type())
	}
}

func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if n.Tag != "!!int" {
		d.el.addAt(n.Line, path, "must be an integer, got %s", describe(n))
		return 0, false
	}
	var i int64
	if err := n.Decode(&i); err != nil {
		d.el.addAt(n.Line, path, "integer %q is out of range", n.Value)
		return 0, false
	}
	return i, true
}

// parseDuration reads a duration scalar such as "1s" or "250ms".
func parseDuration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return 0, fmt.Errorf("must be a duration such as \"1s\" or \"500ms\", got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, fmt.Errorf("must be a duration such as \"1s\" or \"500ms\", got %q", n.Value)
	}
	return v, nil
}

// describe names what a node is, for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.Tag {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("%s %q", n.Tag, n.Value)
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return "integer"
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}
