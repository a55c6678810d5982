package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"podos.dev/podos/boardd/workloads"
)

// BadRequest is a request body that is not valid JSON at all.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

// DecodeSpec reads one workload spec (JSON) and rejects unknown fields,
// wrong types and trailing data with an error naming the field (a
// *workloads.FieldError) or a *BadRequest. It does not validate values:
// workloads.Normalize does.
func DecodeSpec(r io.Reader) (workloads.Spec, error) {
	var s workloads.Spec
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, jsonFieldError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return s, &BadRequest{Msg: "the body holds more than one JSON value"}
	}
	return s, nil
}

// jsonFieldError turns encoding/json's errors into field errors where it
// can name the field.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return &BadRequest{Msg: fmt.Sprintf("the body must be a JSON object, not %s", te.Value)}
		}
		return &workloads.FieldError{Field: field, Message: fmt.Sprintf("must be %s, not %s", jsonType(te.Type.Kind().String()), te.Value)}
	case errors.As(err, &se):
		return &BadRequest{Msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	case errors.Is(err, io.EOF):
		return &BadRequest{Msg: "empty body: a JSON object is required"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &BadRequest{Msg: "truncated JSON body"}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.TrimSuffix(strings.TrimPrefix(f, `"`), `"`)
		if f == "" {
			f = `""` // an empty key still needs a name the client can see
		}
		return &workloads.FieldError{Field: f, Message: "is not a known field"}
	}
	return err
}

func jsonType(kind string) string {
	switch kind {
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "float64", "int", "int64":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return "a " + kind
}
