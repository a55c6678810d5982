package redfish

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"sort"
	"strings"
)

// metadata is the service's CSDL document: a reference to the DMTF CSDL
// of every schema (and version) the service serves.
func metadata(objs map[string]obj) []byte {
	ns := map[string]map[string]bool{} // file -> namespaces
	add := func(file string, names ...string) {
		if ns[file] == nil {
			ns[file] = map[string]bool{}
		}
		for _, n := range names {
			ns[file][n] = true
		}
	}
	add("ServiceRoot", "ServiceRoot", "ServiceRoot.v1_20_0")
	add("Resource", "Resource", "Resource.v1_23_0")
	add("RedfishExtensions", "RedfishExtensions.v1_0_0")
	add("Message", "Message", "Message.v1_3_0")
	add("Event", "Event", "Event.v1_13_0")
	add("MessageRegistry", "MessageRegistry", "MessageRegistry.v1_7_0")
	for _, o := range objs {
		typ, _ := o["@odata.type"].(string)
		name, versioned := schemaOf(typ)
		if name == "" {
			continue
		}
		add(name, name, versioned)
	}
	files := make([]string, 0, len(ns))
	for f := range ns {
		files = append(files, f)
	}
	sort.Strings(files)
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">` + "\n")
	for _, f := range files {
		b.WriteString(`  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/` + esc(f) + `_v1.xml">` + "\n")
		names := make([]string, 0, len(ns[f]))
		for n := range ns[f] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b.WriteString(`    <edmx:Include Namespace="` + esc(n) + `"/>` + "\n")
		}
		b.WriteString("  </edmx:Reference>\n")
	}
	b.WriteString(`  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">
      <EntityContainer Name="Service" Extends="ServiceRoot.v1_20_0.ServiceContainer"/>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
`)
	return b.Bytes()
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// odataDoc is the OData service document: the service root's top-level
// resources.
func odataDoc(objs map[string]obj) []byte {
	var value []any
	value = append(value, obj{"name": "Service", "kind": "Singleton", "url": root + "/"})
	if r, ok := objs[root]; ok {
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if l, ok := r[k].(obj); ok {
				if u, ok := l["@odata.id"].(string); ok && len(l) == 1 {
					value = append(value, obj{"name": k, "kind": "Singleton", "url": u})
				}
			}
		}
	}
	b, _ := json.Marshal(obj{"@odata.context": root + "/$metadata", "value": value})
	return b
}
