package redfish

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// The DMTF registries boardd uses, trimmed to the messages it emits
// (DMTF's BSD-3-Clause license: registries/LICENSE-DMTF.md).
//
//go:embed registries/*.json
var registryFS embed.FS

// Registry prefixes and versions served.
const (
	baseRegistry          = "Base.1.22.1"
	resourceEventRegistry = "ResourceEvent.1.4.3"
	podosRegistry         = "Podos.1.0.0"
)

type regMessage struct {
	Description     string   `json:"Description"`
	Message         string   `json:"Message"`
	Severity        string   `json:"Severity"`
	MessageSeverity string   `json:"MessageSeverity"`
	NumberOfArgs    int      `json:"NumberOfArgs"`
	ParamTypes      []string `json:"ParamTypes"`
	Resolution      string   `json:"Resolution"`
}

type registry struct {
	id       string // Base.1.22.1
	prefix   string // Base
	version  string // 1.22.1
	raw      []byte
	messages map[string]regMessage
}

type registries map[string]*registry // by prefix

func loadRegistries() (registries, error) {
	out := registries{}
	for _, id := range []string{baseRegistry, resourceEventRegistry, podosRegistry} {
		b, err := registryFS.ReadFile("registries/" + id + ".json")
		if err != nil {
			return nil, fmt.Errorf("redfish: registry %s: %w", id, err)
		}
		var r struct {
			RegistryPrefix  string                `json:"RegistryPrefix"`
			RegistryVersion string                `json:"RegistryVersion"`
			Messages        map[string]regMessage `json:"Messages"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("redfish: registry %s: %w", id, err)
		}
		out[r.RegistryPrefix] = &registry{id: id, prefix: r.RegistryPrefix, version: r.RegistryVersion, raw: b, messages: r.Messages}
	}
	return out, nil
}

// lookup finds a message by its id ("Prefix.Major.Minor[.Patch].Key" or
// "Prefix.Key"); the version is not checked beyond the major number.
func (rs registries) lookup(id string) (*registry, regMessage, bool) {
	parts := strings.Split(id, ".")
	if len(parts) < 2 {
		return nil, regMessage{}, false
	}
	r, ok := rs[parts[0]]
	if !ok {
		return nil, regMessage{}, false
	}
	if len(parts) > 2 && !strings.HasPrefix(r.version, parts[1]+".") {
		return nil, regMessage{}, false
	}
	m, ok := r.messages[parts[len(parts)-1]]
	return r, m, ok
}

// format renders a registry message with its arguments; ok is false when
// the id is unknown or the arguments do not fit.
func (rs registries) format(id string, args []string) (string, regMessage, bool) {
	_, m, ok := rs.lookup(id)
	if !ok || len(args) != m.NumberOfArgs {
		return "", m, false
	}
	s := m.Message
	for i := len(args); i >= 1; i-- { // %10 before %1
		s = strings.ReplaceAll(s, "%"+strconv.Itoa(i), args[i-1])
	}
	return s, m, true
}

// message builds a Message object (Message.v1_3_0) from the Base
// registry. Args are rendered into the text and kept in MessageArgs.
func (rs registries) message(key string, args ...string) map[string]any {
	id := baseRegistry + "." + key
	text, m, ok := rs.format(id, args)
	if !ok {
		text = m.Message
	}
	if args == nil {
		args = []string{}
	}
	msg := map[string]any{
		"@odata.type":     "#Message.v1_3_0.Message",
		"MessageId":       id,
		"Message":         text,
		"MessageArgs":     args,
		"MessageSeverity": m.MessageSeverity,
		"Resolution":      m.Resolution,
	}
	return msg
}

// relate adds RelatedProperties (JSON pointers) to a message.
func relate(m map[string]any, props ...string) map[string]any {
	if len(props) > 0 {
		m["RelatedProperties"] = props
	}
	return m
}

// apiError is a Redfish error response: a status and its messages.
type apiError struct {
	status int
	msgs   []map[string]any
}

func (e *apiError) Error() string {
	if len(e.msgs) == 0 {
		return http.StatusText(e.status)
	}
	return fmt.Sprint(e.msgs[0]["Message"])
}

func (s *Service) errorf(status int, key string, args ...string) *apiError {
	return &apiError{status: status, msgs: []map[string]any{s.regs.message(key, args...)}}
}

// writeError writes a Redfish error body (redfish-error.v1_0_2).
func (s *Service) writeError(w http.ResponseWriter, e *apiError) {
	code, text := baseRegistry+".GeneralError", "A general error has occurred."
	if len(e.msgs) == 1 {
		code, _ = e.msgs[0]["MessageId"].(string)
		text, _ = e.msgs[0]["Message"].(string)
	} else if len(e.msgs) > 1 {
		text = "Multiple errors occurred; see @Message.ExtendedInfo."
	}
	body, err := json.Marshal(map[string]any{"error": map[string]any{
		"code":                  code,
		"message":               text,
		"@Message.ExtendedInfo": e.msgs,
	}})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	w.Write(body)
}

// authError is the auth.ErrorWriter for 401 and 403.
func (s *Service) authError(w http.ResponseWriter, _ *http.Request, status int) {
	if status == http.StatusForbidden {
		s.writeError(w, s.errorf(status, "InsufficientPrivilege"))
		return
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="boardd"`)
	s.writeError(w, s.errorf(http.StatusUnauthorized, "NoValidSession"))
}

// schemaOf splits "#Sensor.v1_12_0.Sensor" into "Sensor" and "Sensor.v1_12_0".
func schemaOf(odataType string) (name, versioned string) {
	t := strings.TrimPrefix(odataType, "#")
	parts := strings.Split(t, ".")
	if len(parts) == 3 {
		return parts[0], parts[0] + "." + parts[1]
	}
	if len(parts) == 2 {
		return parts[0], parts[0]
	}
	return t, t
}

// schemaURI is the DMTF JSON schema of an @odata.type.
func schemaURI(odataType string) string {
	_, v := schemaOf(odataType)
	return "http://redfish.dmtf.org/schemas/v1/" + path.Clean(v) + ".json"
}
