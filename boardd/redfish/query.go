package redfish

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// maxExpandLevels is the deepest $expand served (ProtocolFeaturesSupported).
const maxExpandLevels = 3

// query is a parsed set of DSP0266 query parameters.
type query struct {
	sel       []string // $select paths, split on "/"
	expand    string   // "", "*", "." or "~"
	levels    int
	top, skip int
	hasTop    bool
	hasSkip   bool
	only      bool
}

func (q query) active() bool {
	return q.sel != nil || q.expand != "" || q.hasTop || q.hasSkip || q.only
}

// Query parameters that DSP0266 defines but boardd does not support: they
// are refused, not ignored, so a client never gets a result it did not
// ask for.
var unsupportedParams = map[string]bool{
	"$filter": true, "excerpt": true, "includeoriginofcondition": true, "$apply": true,
	"$count": true, "$orderby": true, "$search": true, "$format": true, "$levels": true,
}

var selectRe = regexp.MustCompile(`^[A-Za-z0-9@#._]+(/[A-Za-z0-9@#._]+)*$`)
var expandRe = regexp.MustCompile(`^([*.~])(\(\$levels=([0-9]+)\))?$`)

// rawParams splits a raw query into its parameters (url.ParseQuery would
// accept ";" and hide duplicates).
func rawParams(raw string) ([][2]string, bool) {
	var out [][2]string
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		kk, err1 := url.QueryUnescape(k)
		vv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		out = append(out, [2]string{kk, vv})
	}
	return out, true
}

// noQuery refuses the $ parameters on documents that take none.
func (s *Service) noQuery(r *http.Request) *apiError {
	params, ok := rawParams(r.URL.RawQuery)
	if !ok {
		return s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", r.URL.RawQuery, "query")
	}
	for _, kv := range params {
		if strings.HasPrefix(kv[0], "$") || unsupportedParams[strings.ToLower(kv[0])] || kv[0] == "only" {
			return s.errorf(http.StatusBadRequest, "QueryNotSupportedOnResource")
		}
	}
	return nil
}

func (s *Service) parseQuery(r *http.Request, res *rendered) (query, *apiError) {
	var q query
	params, ok := rawParams(r.URL.RawQuery)
	if !ok {
		return q, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", r.URL.RawQuery, "query")
	}
	seen := map[string]bool{}
	for _, kv := range params {
		k, v := kv[0], kv[1]
		if seen[k] {
			return q, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", v, k)
		}
		seen[k] = true
		switch k {
		case "$select":
			for _, f := range strings.Split(v, ",") {
				f = strings.TrimSpace(f)
				if !selectRe.MatchString(f) {
					return q, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", v, k)
				}
				q.sel = append(q.sel, f)
			}
		case "$expand":
			m := expandRe.FindStringSubmatch(v)
			if m == nil {
				return q, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", v, k)
			}
			q.expand, q.levels = m[1], 1
			if m[3] != "" {
				n, err := strconv.Atoi(m[3])
				if err != nil || n < 1 || n > maxExpandLevels {
					return q, s.errorf(http.StatusBadRequest, "QueryParameterOutOfRange", v, k, "1-"+strconv.Itoa(maxExpandLevels))
				}
				q.levels = n
			}
		case "$top", "$skip":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || strings.HasPrefix(v, "+") {
				return q, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", v, k)
			}
			if !res.coll {
				return q, s.errorf(http.StatusBadRequest, "QueryNotSupportedOnResource")
			}
			if k == "$top" {
				q.top, q.hasTop = n, true
			} else {
				q.skip, q.hasSkip = n, true
			}
		case "only":
			if v != "" {
				return q, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", v, k)
			}
			if !res.coll {
				return q, s.errorf(http.StatusBadRequest, "QueryNotSupportedOnResource")
			}
			q.only = true
		default:
			if strings.HasPrefix(k, "$") || unsupportedParams[strings.ToLower(k)] {
				return q, s.errorf(http.StatusBadRequest, "QueryNotSupported")
			}
			// DSP0266: other parameters not beginning with $ are ignored.
		}
	}
	if q.only && len(params) > 1 {
		return q, s.errorf(http.StatusBadRequest, "QueryCombinationInvalid")
	}
	return q, nil
}

// deepCopy copies a JSON value so a query never changes the cache.
func deepCopy(v any) any {
	switch x := v.(type) {
	case obj:
		o := make(obj, len(x))
		for k, e := range x {
			o[k] = deepCopy(e)
		}
		return o
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = deepCopy(e)
		}
		return a
	}
	return v
}

func (s *Service) applyQuery(t *tree, p string, res *rendered, q query) ([]byte, *apiError) {
	o := res.obj
	if q.only {
		ms, _ := o["Members"].([]any)
		if len(ms) == 1 {
			if m, ok := ms[0].(obj); ok {
				if u, ok := m["@odata.id"].(string); ok {
					if r, ok := t.res[u]; ok {
						return r.body, nil
					}
				}
			}
		}
		return res.body, nil
	}
	o = deepCopy(o).(obj)
	if q.hasTop || q.hasSkip {
		ms, _ := o["Members"].([]any)
		start := min(q.skip, len(ms))
		end := len(ms)
		if q.hasTop {
			end = min(start+q.top, len(ms))
		}
		o["Members"] = ms[start:end]
		if end < len(ms) {
			n := end - start
			if !q.hasTop {
				n = len(ms) - start
			}
			o["Members@odata.nextLink"] = p + "?$skip=" + strconv.Itoa(end) + "&$top=" + strconv.Itoa(max(n, 1))
		}
	}
	if q.expand != "" {
		expand(t, o, q.expand, q.levels, false)
	}
	if q.sel != nil {
		o = selectProps(o, q.sel)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, s.errorf(http.StatusInternalServerError, "InternalError")
	}
	return b, nil
}

// expand replaces reference objects ({"@odata.id": ...} alone) with the
// resources they name: "*" all, "." those outside Links, "~" those in
// Links.
func expand(t *tree, v any, mode string, levels int, inLinks bool) any {
	if levels <= 0 {
		return v
	}
	switch x := v.(type) {
	case obj:
		if u, ok := x["@odata.id"].(string); ok && len(x) == 1 {
			if mode == "*" || (mode == "." && !inLinks) || (mode == "~" && inLinks) {
				if r, ok := t.res[u]; ok && !strings.Contains(u, "/Actions/") {
					c := deepCopy(r.obj).(obj)
					expand(t, c, mode, levels-1, false)
					return c
				}
			}
			return x
		}
		for k, e := range x {
			if k == "Actions" || strings.HasPrefix(k, "@") || k == "Members@odata.nextLink" {
				continue
			}
			x[k] = expand(t, e, mode, levels, inLinks || k == "Links")
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = expand(t, e, mode, levels, inLinks)
		}
		return x
	}
	return v
}

// selectProps keeps the selected properties (and the OData annotations
// DSP0266 requires).
func selectProps(o obj, sel []string) obj {
	out := obj{}
	for _, k := range []string{"@odata.id", "@odata.type", "@odata.etag", "@odata.context"} {
		if v, ok := o[k]; ok {
			out[k] = v
		}
	}
	for _, path := range sel {
		parts := strings.Split(path, "/")
		copyPath(o, out, parts)
	}
	return out
}

func copyPath(src, dst obj, parts []string) {
	v, ok := src[parts[0]]
	if !ok {
		return
	}
	if len(parts) == 1 {
		dst[parts[0]] = v
		if c, ok := src[parts[0]+"@odata.count"]; ok {
			dst[parts[0]+"@odata.count"] = c
		}
		return
	}
	sub, ok := v.(obj)
	if !ok {
		return
	}
	d, ok := dst[parts[0]].(obj)
	if !ok {
		d = obj{}
		dst[parts[0]] = d
	}
	copyPath(sub, d, parts[1:])
}
