package api

import (
	"errors"
	"strings"
	"testing"

	"podos.dev/podos/boardd/workloads"
)

// FuzzDecodeSpec: any body yields a spec or a field/bad-request error,
// never a panic; a spec that decodes and normalizes is valid.
func FuzzDecodeSpec(f *testing.F) {
	f.Add(`{"name":"demo","image":"oci-archive:/usr/share/podos/images/demo.tar","cpu":0.5,"memory_mb":64,"restart":"always","priority":"sheddable"}`)
	f.Add(`{"image":"demo","env":{"A":"1"},"args":["-x"]}`)
	f.Add(`{"image":"demo","memory_mb":"lots"}`)
	f.Add(`{"image":1}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		s, err := DecodeSpec(strings.NewReader(body))
		if err != nil {
			var fe *workloads.FieldError
			var br *BadRequest
			if !errors.As(err, &fe) && !errors.As(err, &br) && !strings.HasPrefix(err.Error(), "json: ") {
				t.Fatalf("unclassified error %T %v", err, err)
			}
			if fe != nil && fe.Field == "" {
				t.Fatalf("field error without a field: %v", err)
			}
			return
		}
		n, err := workloads.Normalize(s)
		if err != nil {
			var fe *workloads.FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("validation error without a field: %v", err)
			}
			return
		}
		if workloads.Validate(n) != nil {
			t.Fatal("normalized spec does not validate")
		}
	})
}
